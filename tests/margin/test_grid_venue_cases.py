"""The grid method against a venue's own published portfolio-margin cases.

``../shared/data/derive_pmrm/cases/*.json`` (and the folder named by ``DERIVE_PMRM_CASES``):
portfolio cases of the options portfolio-margin model an on-chain venue runs, with the losses
its own test suite expects (see that folder's README; the files are read, never copied). Each
case's portfolio and parameters are translated here into riskmodel inputs: a price history
ending at the case's marks (spot, the perpetual's own mark, each option's forward as the
option's own Black-76 price, each coin at its price in the stablecoin, the stablecoin's own
price as the peg), instruments, one netting set whose equity is the venue's mark-to-market
(cash included), and a ``[grid]`` holding the case's scenarios and parameters; then the
engine's own path: ``value_as_of`` -> ``price_market`` -> ``margin_book``.

Compared, with the venue's tolerance (1e-8 relative; 1e-8 absolute for values under 1e-10):
every scenario loss, the basis contingency, every other contingency, the initial loss factor,
and ``MM`` and ``IM`` (the venue's margins: equity less the maintenance and initial
requirements). Vols come from each expiry's SVI smile (the case's parameters written to an SVI
file) and, in a second pass, from the per-option vols the case lists.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from grid_inputs import grid_market, instrument_frame

from riskmodel.config import (
    GridCollateral,
    GridConfig,
    GridScenario,
    MarginPolicy,
    RateTable,
    RunConfig,
)
from riskmodel.engine import margin_book
from riskmodel.engine.grid import grid_scenario_losses
from riskmodel.portfolio.netting import net_positions, with_empty_sets

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "derive_pmrm" / "cases"
FOLDERS = [p for p in (SHARED, Path(os.environ.get("DERIVE_PMRM_CASES", "")))
           if str(p) not in ("", ".") and p.is_dir()]
CASES = sorted({p.resolve() for folder in FOLDERS for p in folder.glob("*.json")})
REF_TIME = pd.Timestamp(1_630_000_000, unit="s")  # the venue's test clock
VOL = {"Up": "up", "Down": "down", "None": "none", "LINEAR": "linear", "ABS": "abs"}


def _f(x: object) -> float:
    return float(x)  # the files write numbers as JSON numbers or as decimal strings


def _grid(case: dict, svi_file: str) -> GridConfig:
    p, s = case["Parameters"], case["Scenario"]
    vs, sk, mg = p["VolShock"], p["SkewShock"], p["Margin"]
    bc, oc = p["BasisContingency"], p["OtherContingency"]
    confidence = {"U": _f(s["SpotConfidence"]), "PERP": _f(s["PerpConfidence"])}
    feeds = {int(f["FeedExpiry"]): f for f in s["OptionFeeds"]}
    for i, o in enumerate(s["Options"]):
        f = feeds[int(o["Expiry"])]
        confidence[f"O{i}"] = min(_f(f["ForwardConfidence"]), _f(f["RateConfidence"]),
                                  _f(f["OptionVolConfidences"]))
    collateral = {}
    for c in s["Collaterals"]:
        confidence[c["Name"]] = _f(c["Confidence"])
        collateral[c["Name"]] = GridCollateral(
            _f(c["IMHaircut"]), _f(c["MMHaircut"]), "U", bool(c["IsRiskCancelling"]))
    return GridConfig(
        scenarios=tuple(GridScenario(_f(x["SpotShock"]) - 1.0, VOL[x["VolShockDirection"]],
                                     _f(x["DampeningFactor"])) for x in p["Scenarios"]),
        vol_range_up=_f(vs["VOLRANGEUP"]), vol_range_down=_f(vs["VOLRANGEDOWN"]),
        short_term_power=_f(vs["SHORTTERMPOWER"]), long_term_power=_f(vs["LONGTERMPOWER"]),
        dte_floor_days=_f(vs["DTE_FLOOR"]), min_vol_up=_f(vs["MIN_VOL_EVAL_SHOCKED"]),
        skew_linear_cap=_f(sk["LINEAR_SCALE_CAP"]), skew_linear_slope=_f(sk["LINEAR_CBASE"]),
        skew_abs_cap=_f(sk["ABS_SCALE_CAP"]), skew_abs_slope=_f(sk["ABS_CBASE"]),
        skew_min_k_star=_f(sk["MIN_K_STAR"]), skew_width_scale=_f(sk["MIN_WIDTH_SCALE"]),
        skew_vol_static=_f(sk["VOL_PARAM_STATIC"]), skew_vol_scale=_f(sk["VOL_PARAM_SCALE"]),
        im_loss_factor=_f(mg["IM_LOSS_FACTOR"]), mm_loss_factor=_f(mg["MM_LOSS_FACTOR"]),
        long_discount=_f(mg["BASE_STATIC_DISCOUNT"]),
        long_rate_scale=_f(mg["LONG_RATE_MULTSCALE"]),
        long_rate_add=_f(mg["LONG_RATE_ADDSCALE"]),
        short_discount=_f(mg["BASE_STATIC_DISCOUNT_NEG"]),
        short_rate_scale=_f(mg["SHORT_RATE_MULTSCALE"]),
        short_rate_add=_f(mg["SHORT_RATE_ADDSCALE"]),
        basis_up=_f(bc["SCENARIO_SPOT_UP"]) - 1.0, basis_down=1.0 - _f(bc["SCENARIO_SPOT_DOWN"]),
        basis_add=_f(bc["BASIS_CONT_ADD_FACTOR"]), basis_time=_f(bc["BASIS_CONT_MULT_FACTOR"]),
        peg_asset="USDC", peg_threshold=_f(oc["PEG_LOSS_THRESHOLD"]),
        peg_factor=_f(oc["PEG_LOSS_FACTOR"]), confidence_threshold=_f(oc["CONF_THRESHOLD"]),
        confidence_margin=_f(oc["CONF_MARGIN"]), confidence=confidence,
        mm_perp_rate=_f(oc["MM_PERP_PERCENT"]), im_perp_rate=_f(oc["IM_PERP_PERCENT"]),
        mm_option_rate=_f(oc["MM_OPTION_PERCENT"]), im_option_rate=_f(oc["IM_OPTION_PERCENT"]),
        collateral=collateral, svi_file=svi_file, term_days=30.0, settlement_window=1800.0,
    )


def _inputs(case: dict) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Marks by factor, instruments, positions and the SVI smiles of a case."""
    s = case["Scenario"]
    stable = _f(s["StablePrice"])
    marks = {"U": _f(s["SpotPrice"]), "USDC": stable}
    feeds = {int(f["FeedExpiry"]): f for f in s["OptionFeeds"]}
    inst: list[tuple] = [("U", "spot", "U", 1.0, np.nan, pd.NaT, "", np.nan, 0.0, "")]
    pos = []
    if _f(s["NumPerps"]) != 0:
        marks["PERP"] = _f(s["PerpPrice"])
        inst.append(("PERP", "perpetual", "U", 1.0, np.nan, pd.NaT, "", np.nan, 0.0, ""))
        pos.append(("PERP", _f(s["NumPerps"])))
    for i, o in enumerate(s["Options"]):
        f = feeds[int(o["Expiry"])]
        marks[f"O{i}"] = _f(f["Forward"])  # a black76 option is priced on its own series
        expiry = (REF_TIME + pd.Timedelta(seconds=int(o["Expiry"]))).tz_localize("UTC")
        inst.append((f"O{i}", "option", "U", 1.0, _f(o["Strike"]), expiry,
                     "call" if int(o["IsCall"]) else "put", _f(o["MarkVol"]), _f(f["Rate"]),
                     "black76"))
        pos.append((f"O{i}", _f(o["Amount"])))
    for c in s["Collaterals"]:
        marks[c["Name"]] = _f(c["Price"]) / stable  # coins valued in the stablecoin, as cash is
        inst.append((f"collateral:{c['Name']}", "collateral", c["Name"], 1.0, np.nan, pd.NaT,
                     "", np.nan, 0.0, ""))
        pos.append((f"collateral:{c['Name']}", _f(c["Amount"])))
    frame = instrument_frame(inst, marks)
    positions = pd.DataFrame(pos, columns=["instrument_id", "quantity"]).assign(
        account_id="A", netting_set="default")
    smiles = pd.DataFrame([{
        "underlying": "U",
        "expiry": (REF_TIME + pd.Timedelta(seconds=e)).tz_localize("UTC").isoformat(),
        **dict(zip(("a", "b", "rho", "m", "sigma", "forward", "tau"),
                   (_f(x) for x in f["SVIparam"])))} for e, f in feeds.items()])
    return marks, frame, positions, smiles


def _run(path: Path, tmp: Path, smiles: bool):
    case = json.loads(path.read_text())
    marks, instruments, positions, svi = _inputs(case)
    svi_file = tmp / f"{path.stem}-svi.csv"
    svi.to_csv(svi_file, index=False)
    config = RunConfig(
        method="grid", horizon=1, lookback=10, min_history=5, vol_model="ewma",
        grid=_grid(case, str(svi_file) if smiles and len(svi) else ""),
        margin=MarginPolicy(maintenance_rates=RateTable(default=1e-300),
                            initial_floor_rates=RateTable(default=0.0),
                            flat_rates=RateTable(default=0.0)))
    market = grid_market(marks, instruments, config, REF_TIME)
    book = net_positions(positions, market.axis)
    if book.n_sets == 0:  # a case holding cash only: one set without positions
        book = with_empty_sets(book, pd.DataFrame({"account_id": ["A"],
                                                   "netting_set": ["default"]}))
    equity = _f(case["Result"]["PortfolioMTM"])  # the venue's mark-to-market, cash included
    result = margin_book(market, book, config, collateral=np.array([equity]))
    losses = grid_scenario_losses(market, book, config).iloc[0, 2:].to_numpy(np.float64)
    return case["Result"], result.margins.iloc[0], losses, equity


def _close(got: float, want: float) -> bool:
    if abs(got) < 1e-10 or abs(want) < 1e-10:
        return abs(got - want) <= 1e-8
    return math.isclose(got, want, rel_tol=1e-8, abs_tol=0.0)


def _mismatches(result: dict, row: pd.Series, losses: np.ndarray, equity: float) -> list[str]:
    expected = ([_f(x[2]) for x in result["reg_losses"]]
                + [_f(x[2]) for x in result["tail_losses"]]
                + [_f(x[1]) for x in result["skew_losses"]])
    out = [f"scenario {j}: loss {-g!r}, venue P&L {w!r}"
           for j, (g, w) in enumerate(zip(losses, expected)) if not _close(-g, w)]
    if len(losses) != len(expected):
        out.append(f"{len(losses)} scenarios, venue {len(expected)}")
    pairs = [("grid_basis", "ForwardContingency"), ("grid_perp_mm", "MMPerpCont"),
             ("grid_perp_im", "IMPerpCont"), ("grid_option_mm", "MMOptionCont"),
             ("grid_option_im", "IMOptionCont"), ("grid_collateral_mm", "MMBaseCont"),
             ("grid_collateral_im", "IMBaseCont"), ("grid_oracle", "OracleCont")]
    out += [f"{c}: {row[c]!r}, venue {-_f(result[k])!r}" for c, k in pairs
            if not _close(float(row[c]), -_f(result[k]))]
    if not _close(float(row["grid_im_factor"]), _f(result["im_loss_factor"])):
        out.append(f"im factor {row['grid_im_factor']!r}, venue {result['im_loss_factor']!r}")
    for ours, venue in (("maintenance_margin", "MM"), ("initial_margin", "IM")):
        got = equity - float(row[ours])
        if not _close(got, _f(result[venue])):
            out.append(f"{venue}: {got!r}, venue {result[venue]!r}")
    return out


@pytest.mark.skipif(not CASES, reason="the venue's cases (../shared/data/derive_pmrm) are absent")
@pytest.mark.parametrize("smiles", [True, False], ids=["svi", "option-vols"])
def test_every_venue_case_matches(tmp_path, smiles):
    """Every case with the smiles; every fourth with the per-option vols the case lists (the
    same vols to about 1e-15: the second pass checks the path, the first the numbers)."""
    misses = {}
    for path in CASES if smiles else CASES[::4]:
        found = _mismatches(*_run(path, tmp_path, smiles))
        if found:
            misses[path.name] = found[:3]
    assert not misses, json.dumps(misses, indent=1)[:4000]
