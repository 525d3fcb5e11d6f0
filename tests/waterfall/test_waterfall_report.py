"""The waterfall page on the report layer: verdict and headline numbers first, then figures
with alt text, then tables that scroll; self-contained (no external resource)."""

import re

import pandas as pd
from waterfall_venues import DEMO_MOVES, write_moves

from riskmodel.report.page import render
from riskmodel.report.waterfall import page_content
from riskmodel.waterfall.run import write_waterfall


def test_page(demo_run, tmp_path):
    moves = write_moves(tmp_path / "moves.csv", DEMO_MOVES)
    manifest = write_waterfall(demo_run, tmp_path / "out", scenarios_file=moves)
    page = (tmp_path / "out" / "report.html").read_text()
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)
    assert page.index('id="verdict"') < page.index("<img") < page.index('class="table-wrap')
    worst = manifest["worst"]
    assert f"“{worst['scenario']}”" in page
    assert f"{worst['bankruptcy_loss']:,.0f} USD" in page
    for words in ("fund used there", "fund left", "ADL", "socialised", "uncovered",
                  "cover-1 fund", "cover-2 fund"):
        assert f'<span class="what">{words}' in page
    for img in re.findall(r"<img[^>]*>", page):
        assert re.search(r'alt="[^"]{10,}"', img)
    assert page.count('class="table-wrap') == 4  # settings, scenarios, ADL, members


def test_content_without_losses_says_so():
    table = pd.DataFrame({c: [0.0] for c in (
        "bankruptcy_loss", "fund_used", "fund_left", "adl_amount", "socialised", "uncovered",
        "defaults", "adl_count", "cover_1", "cover_2", "move", "liquidated", "notional_closed",
        "slippage", "penalties_to_fund", "rounds")})
    table["scenario"], table["source"], table["scope"] = "now", "now", ""
    cover = pd.DataFrame({c: [0.0] for c in ("cover_exposure", "n_accounts", "initial_margin",
                                              "margin_held", "peak_exposure", "cover_rank",
                                              "share", "contribution")})
    cover["member"], cover["peak_scenario"] = "M", ""
    content = page_content(table, pd.DataFrame(), cover, {"cover": {}})
    assert content["verdict"].startswith("No scenario of 1 leaves a bankruptcy loss")
    assert content["tone"] == "good"
    assert "<h1>" in render("waterfall.html.j2", **content)
