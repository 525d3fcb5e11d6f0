"""The waterfall page: verdict in words first, then figures with alt text, then tables that
scroll; self-contained (no external resource)."""

import re

import pandas as pd
from conftest import DEMO_MOVES, write_moves

from riskmodel.report.waterfall import page_content, render
from riskmodel.waterfall.run import write_waterfall


def test_page(demo_run, tmp_path):
    moves = write_moves(tmp_path / "moves.csv", DEMO_MOVES)
    manifest = write_waterfall(demo_run, tmp_path / "out", scenarios_file=moves)
    page = (tmp_path / "out" / "report.html").read_text()
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)
    headline = page.index("class='headline'")
    assert headline < page.index("<img") < page.index("class='scroll'")
    worst = manifest["worst"]
    assert f"“{worst['scenario']}”" in page
    assert f"{worst['bankruptcy_loss']:,.0f}" in page
    assert "cover-1" in page and "cover-2" in page
    for img in re.findall(r"<img[^>]*>", page):
        assert re.search(r"alt='[^']{10,}'", img)
    assert page.count("class='scroll'") == 3  # scenarios, ADL, members


def test_content_without_losses_says_so():
    table = pd.DataFrame({c: [0.0] for c in (
        "bankruptcy_loss", "fund_used", "fund_left", "adl_amount", "socialised", "uncovered",
        "defaults", "adl_count", "cover_1", "cover_2", "move")})
    table["scenario"], table["source"], table["scope"] = "now", "now", ""
    cover = pd.DataFrame({"member": ["M"], "cover_exposure": [0.0]})
    content = page_content(table, pd.DataFrame(), cover, {"cover": {}})
    assert "No scenario of 1 leaves a bankruptcy loss" in content.headline[0]
    assert "<h1>" in render(content)
