"""``riskmodel demo`` and ``eod --previous-run`` write report.html: its structure, and its numbers
against the run's own tables."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from report_checks import check_page, headline_values

from riskmodel.cli import main
from riskmodel.report import formats as f

SECTIONS = ("figures", "status", "exposure", "nearest", "calls", "contributors", "stress",
            "liquidation", "run")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The demo (60 accounts), then two eod runs against it as the previous run: the same
    inputs, and the positions with some rows dropped and some quantities doubled."""
    root = tmp_path_factory.mktemp("eod_report")
    demo = root / "demo"
    assert main(["demo", "--out", str(demo), "--accounts", "60", "--quiet"]) == 0
    inputs = demo / "inputs"
    positions = pd.read_csv(inputs / "positions.csv")
    changed = positions.iloc[3:].copy()
    changed.iloc[:5, changed.columns.get_loc("quantity")] *= 2
    changed.to_csv(root / "positions.csv", index=False)
    args = ["eod", "--prices", str(inputs / "prices.csv"), "--instruments",
            str(inputs / "instruments.csv"), "--accounts", str(inputs / "accounts.csv"),
            "--config", str(inputs / "run.toml"), "--previous-run", str(demo), "--quiet"]
    assert main([*args, "--positions", str(inputs / "positions.csv"),
                 "--out", str(root / "same")]) == 0
    assert main([*args, "--positions", str(root / "positions.csv"),
                 "--out", str(root / "changed")]) == 0
    return root


def _page(folder):
    return (folder / "report.html").read_text(encoding="utf-8")


def test_demo_page_opens_with_its_verdict_and_numbers(runs):
    html = _page(runs / "demo")
    check_page(html)
    manifest = json.loads((runs / "demo" / "manifest.json").read_text())
    counts = manifest["counts"]["by_status"]
    verdict = re.search(r'<p class="verdict-text">(.*?)</p>', html, re.S).group(1)
    if counts["liquidation"]:
        assert f"{counts['liquidation']} of {manifest['counts']['netting_sets']}" in verdict
    values = headline_values(html)
    assert f.short_amount(manifest["totals"]["initial_margin"]) in values
    assert f.pct(manifest["capital_efficiency"]["im_over_flat"]) in values
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    assert "report" in manifest["timings_s"]
    # a figure for each of: levels, exposure, stress, contributors
    assert len(re.findall(r"<img\b", html)) == 4
    assert "Changes since" not in html


def test_status_table_totals_are_the_manifest_totals(runs):
    html = _page(runs / "demo")
    manifest = json.loads((runs / "demo" / "manifest.json").read_text())
    block = html[html.index('id="status"'):html.index('id="exposure"')]
    total_row = re.search(r"<tr><td class=\"label\">total</td>(.*?)</tr>", block, re.S).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", total_row)
    assert cells[0] == f.count(manifest["counts"]["netting_sets"])
    assert cells[2] == f.amount(manifest["totals"]["initial_margin"])
    assert cells[-2] == f.amount(manifest["totals"]["call_amount"])


def test_a_rerun_of_the_same_inputs_changed_nothing(runs):
    html = _page(runs / "same")
    check_page(html)
    assert 'id="changes"' in html
    split = html[html.index('id="changes"'):]
    # every set unchanged, same market: each part of the split is exactly 0
    for part in ("positions (new, closed and changed sets)", "prices",
                 "volatility and scenarios"):
        row = re.search(re.escape(part) + r"</td><td[^>]*>(.*?)</td>", split).group(1)
        assert row == "0", (part, row)


def test_changed_positions_are_found(runs):
    html = _page(runs / "changed")
    check_page(html)
    # which sets changed, from the two attributions (an independent comparison)
    key = ["account_id", "netting_set", "instrument_id"]
    before = pd.read_parquet(runs / "demo" / "attribution.parquet")[[*key, "quantity"]]
    after = pd.read_parquet(runs / "changed" / "attribution.parquet")[[*key, "quantity"]]
    both = before.merge(after, on=key, how="outer", suffixes=("_b", "_a"))
    moved = both[~np.isclose(both["quantity_b"].fillna(0), both["quantity_a"].fillna(0))]
    sets = set(map(tuple, moved[["account_id", "netting_set"]].to_numpy()))
    split = html[html.index('id="changes"'):]
    row = re.search(r"positions \(new, closed and changed sets\)</td><td[^>]*>.*?</td>"
                    r"<td[^>]*>(.*?)</td>", split).group(1)
    assert int(row.replace(",", "")) == len(sets) > 0
