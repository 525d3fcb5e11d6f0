"""The end-of-day report, ``report.html``: what a risk committee asks of an ``eod`` run.

The page opens with its verdict (who is below maintenance margin, who owes a call) and the
headline numbers in words (initial margin against flat-rate margin and gross notional, the
liquidation stage, stress, the change since the previous run), then the figures (margin-level
distribution with the thresholds, margin against flat rate by underlying and kind, stress
losses against margin, the biggest Euler contributors, what moved margin since the previous
run), then the detail tables (counts and amounts by status, by underlying and kind, the sets
nearest liquidation, the largest calls, the largest contributions, stress scenarios and the
policy tools that bound, the liquidation orders, the changes, the run's facts).

:func:`write_eod_report` is called by :func:`riskmodel.batch.eod.write_eod` inside its staging
folder, after the tables are written and before the manifest: it reads the attribution back
from ``attribution.parquet`` (only the columns it needs) and takes everything else from the
finished run. Every aggregate is a vectorised pass over the tables (:mod:`.eod_data`), every
figure a histogram or a bar chart of aggregates (:mod:`.eod_figures`), every table a top-k: the
page of a million netting sets is written in seconds and weighs a few hundred kB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from riskmodel.config.rates import RateTable
from riskmodel.margin.policy import STATUSES
from riskmodel.report import eod_data as data
from riskmodel.report import formats as f
from riskmodel.report.columns import columns
from riskmodel.report.eod_changes import Changes, compare_previous
from riskmodel.report.eod_figures import (
    changes_figure,
    contributors_figure,
    exposure_figure,
    level_figure,
    stress_figure,
)
from riskmodel.report.page import (
    Column,
    PageTable,
    frame_table,
    key_values,
    page_context,
    write_page,
)

__all__ = ["EodRun", "write_eod_report"]

REPORT = "report.html"
TOP = 20  # rows of each top-k table


class EodRun(Protocol):
    """What the page reads of a finished run (:class:`riskmodel.batch.eod.EodResult`)."""

    margins: pd.DataFrame
    factors: pd.DataFrame
    manifest: dict[str, Any]
    liquidation_orders: pd.DataFrame | None
    state: Any


def _instruments(run: EodRun, folder: Path) -> pd.DataFrame:
    state = getattr(run, "state", None)
    if state is not None:
        return state.instrument_table[["instrument_id", "kind", "underlying"]]
    return pd.read_parquet(folder / "state" / "instruments.parquet",
                           columns=["instrument_id", "kind", "underlying"])


def write_eod_report(folder: Path, run: EodRun, *, previous_run: str | Path | None = None,
                     attribution: Path | None = None) -> Path:
    """Write ``folder/report.html`` for ``run``, whose attribution is in ``folder`` (or at
    ``attribution``).

    Parameters
    ----------
    folder : Path, the run's (staging) output folder.
    run : the finished run (margins, factors, manifest, liquidation orders, state).
    previous_run : the ``--previous-run`` folder, for the comparison (optional).
    attribution : Path, where the run's ``attribution.parquet`` is when it is not yet in
        ``folder`` (eod's writes in the background).
    """
    folder = Path(folder)
    margins, manifest = run.margins, run.manifest
    cfg = manifest["config"]
    currency = str(cfg.get("collateral", {}).get("reporting_currency", "USD"))
    codes = data.status_codes(margins)
    positions = data.read_positions(attribution or folder / "attribution.parquet", margins,
                                    quantity=previous_run is not None)
    instruments = _instruments(run, folder)
    by_underlying, by_kind = data.exposure_tables(
        positions, margins, instruments, RateTable(**cfg["margin"]["flat_rates"]))
    status = data.status_table(margins, codes)
    by_instrument = data.instrument_contributions(positions)
    changes = (compare_previous(previous_run, margins, positions, run.factors,
                                manifest.get("calendar", {}).get("return_kinds", {}))
               if previous_run is not None else None)
    floor = data.initial_floor(positions, margins, instruments, cfg["margin"])
    orders = run.liquidation_orders
    figures = [level_figure(margins, codes, cfg["margin"]),
               exposure_figure(by_underlying, by_kind, currency)]
    if changes is not None:
        figures.append(changes_figure(*changes.initial_margin[:1], changes.split,
                                      changes.initial_margin[1], currency,
                                      f.date(changes.market_date) or "the previous run"))
    figures += [stress_figure(margins), contributors_figure(by_instrument, currency)]
    verdict, tone, findings = _verdict(status, manifest, margins, changes, currency)
    context = page_context(
        title=f"End-of-day margin run, {f.date(manifest['market_date'])}",
        subtitle=_subtitle(manifest), verdict=verdict, tone=tone, findings=findings,
        headline=_headline(status, manifest, currency, changes))
    tables = {
        "status": _status_table(status, currency),
        "underlying": _exposure_table(by_underlying, "underlying", currency),
        "kind": _exposure_table(by_kind, "instrument kind", currency),
        "nearest": _sets_table(data.nearest_liquidation(margins, codes, TOP), currency,
                               len(margins) - int(status["sets"].iloc[3])),
        "calls": _sets_table(data.largest_calls(margins, TOP), currency,
                             int(np.sum(margins["call_amount"].to_numpy() > 0))),
        "contributors": _contributors_table(data.top_contributors(positions, margins, TOP),
                                            len(positions.contribution), currency),
        "stress": _stress_table(data.stress_table(margins), margins, currency),
        "policy": PageTable(("tool", "bound", "what it means"),
                            tuple(data.policy_tools(margins, manifest, floor)),
                            (False, True, False)),
        "orders": _orders_table(orders) if orders is not None and len(orders) else None,
    }
    return write_page(folder / REPORT, "eod.html.j2", **context, figures=figures,
                      tables=tables, changes=_changes_tables(changes, currency),
                      liquidation=manifest.get("liquidation"), run=_run_facts(manifest),
                      warnings=list(manifest.get("warnings", [])),
                      timings=[(k, f"{v:,.3f} s") for k, v in
                               manifest.get("timings_s", {}).items()])


def _subtitle(manifest: dict[str, Any]) -> str:
    cfg, sc = manifest["config"], manifest["scenarios"]
    return (f"{f.count(manifest['counts']['netting_sets'])} netting sets in "
            f"{f.count(manifest['counts']['accounts'])} accounts · {sc['kind'].upper()}, "
            f"{f.count(sc['count'])} scenarios, {sc['horizon_days']}-day horizon, "
            f"{cfg['measure'].upper()} at {f.pct(cfg['confidence'])} · "
            f"parameter set {manifest['parameter_set'].get('source', '')}")


def _verdict(status: pd.DataFrame, manifest: dict[str, Any], margins: pd.DataFrame,
             changes: Changes | None, currency: str) -> tuple[str, str, list[str]]:
    sets = dict(zip(status["status"], status["sets"]))
    n = int(sets["total"])
    calls = float(status["call_amount"].iloc[-1])
    liq, call = int(sets["liquidation"]), int(sets["margin_call"])
    if liq:
        verdict = (f"{f.count(liq)} of {f.count(n)} netting sets ({f.pct(liq / n)}) are below "
                   f"maintenance margin and go to liquidation; {f.count(call)} more owe margin "
                   f"calls. Calls total {f.short_amount(calls, currency)}.")
        tone = "alarm"
    elif call:
        verdict = (f"No netting set is below maintenance margin; {f.count(call)} of "
                   f"{f.count(n)} owe margin calls totalling {f.short_amount(calls, currency)}.")
        tone = "attention"
    else:
        verdict = f"All {f.count(n)} netting sets cover their initial margin."
        tone = "good"
    tot = status.iloc[-1]
    findings = [
        f"Initial margin is {f.short_amount(tot['initial_margin'], currency)}: "
        f"{f.pct(tot['im_over_flat'])} of the {f.short_amount(tot['flat_rate_margin'], currency)}"
        f" a flat rate would charge and {f.pct(tot['initial_margin'] / tot['gross_notional'])}"
        f" of {f.short_amount(tot['gross_notional'], currency)} gross notional; equity held is "
        f"{f.short_amount(tot['equity'], currency)}."]
    liquidation = manifest.get("liquidation")
    if liquidation and liquidation.get("netting_sets"):
        findings.append(
            f"The liquidation stage issued {f.count(liquidation['orders'])} orders closing "
            f"{f.short_amount(liquidation['notional_liquidated'], currency)} of notional in "
            f"{f.count(liquidation['netting_sets'])} sets ({f.count(liquidation['restored'])} "
            f"restored to {liquidation['target_margin_level']:g} x initial margin); penalties "
            f"{f.money(liquidation['penalties'], currency)}.")
    above = int(np.sum(margins["stress_loss"].to_numpy() > margins["initial_margin"].to_numpy()))
    mode = manifest["config"]["stress"]["mode"]
    findings.append(
        f"In its worst stress scenario, {f.count(above)} sets ({f.pct(above / max(n, 1))}) would "
        f"lose more than their initial margin; stress is "
        + ("reported, not charged (stress.mode = report)." if mode == "report" else
           f"charged (stress.mode = {mode}) and raised the margin of "
           f"{f.count(manifest['stress'].get('binding_sets', 0))} sets."))
    if changes is not None:
        before, after = changes.initial_margin
        parts = ", ".join(f"{p.split(' (')[0]} {_signed_short(c, currency)}"
                          for p, c in zip(changes.split["part"], changes.split["change"]))
        findings.append(
            f"Since the run of {f.date(changes.market_date) or changes.folder}, initial margin "
            f"moved by {_signed_short(after - before, currency)} "
            f"({f.signed_pct(after / before - 1 if before else np.nan)}): {parts}.")
    if manifest.get("warnings"):
        findings.append(f"The run logged {len(manifest['warnings'])} warning(s), listed under "
                        "Run details.")
    return verdict, tone, findings


def _signed_short(value: float, currency: str) -> str:
    return ("+" if value > 0 else "") + f.short_amount(value, currency)


def _headline(status: pd.DataFrame, manifest: dict[str, Any], currency: str,
              changes: Changes | None) -> list[dict[str, str]]:
    tot = status.iloc[-1]
    sets = dict(zip(status["status"], status["sets"]))
    items = [
        (f.short_amount(tot["initial_margin"], currency), "initial margin"),
        (f.pct(tot["im_over_flat"]), "of flat-rate margin"),
        (f.pct(tot["initial_margin"] / tot["gross_notional"]), "of gross notional"),
        (f.count(sets["liquidation"]), "sets in liquidation"),
        (f.count(sets["margin_call"]), "sets in margin call"),
        (f.short_amount(tot["call_amount"], currency), "margin calls"),
    ]
    if changes is not None:
        before, after = changes.initial_margin
        items.append((f.signed_pct(after / before - 1 if before else np.nan),
                      "initial margin since previous run"))
    return [{"value": v, "label": k} for v, k in items]


def _status_table(status: pd.DataFrame, currency: str) -> PageTable:
    return frame_table(status, columns(
        "status", "sets", "share", "initial_margin", "maintenance_margin", "equity",
        "flat_rate_margin", "im_over_flat", "gross_notional", "call_amount",
        "liquidation_penalty", headers={"call_amount": "margin calls"}),
        caption=f"Amounts in {currency}",
        classes={"status": lambda s: s if s in STATUSES else ""})


def _exposure_table(table: pd.DataFrame, what: str, currency: str) -> PageTable:
    group = Column("group", what, str, False)
    return frame_table(table, [group, *columns(
        "positions", "initial_margin", "flat_rate_margin", "im_over_flat", "gross_notional",
        "im_over_gross", headers={"initial_margin": "initial margin (allocated)"})],
        caption=f"By {what} ({currency})")


def _sets_table(frame: pd.DataFrame, currency: str, total: int) -> PageTable:
    return frame_table(frame, columns(
        "account_id", "netting_set", "status", "equity", "initial_margin",
        "maintenance_margin", "margin_level", "call_amount", "dominant_underlying",
        "liq_move_dominant", "liq_sigmas_dominant"),
        caption=f"Amounts in {currency}", total_rows=total, where="margins.parquet",
        classes={"status": lambda s: s})


def _contributors_table(frame: pd.DataFrame, total: int, currency: str) -> PageTable:
    return frame_table(frame, columns(
        "account_id", "netting_set", "instrument_id", "notional", "contribution",
        "set_model_margin", "set_status"),
        caption=f"Largest position contributions to model margin ({currency})",
        total_rows=total, where="attribution.parquet", classes={"set_status": lambda s: s})


def _stress_table(frame: pd.DataFrame, margins: pd.DataFrame, currency: str) -> PageTable:
    total = int(margins["stress_scenario"].nunique())
    return frame_table(frame, columns(
        "scenario", "sets", "stress_loss", "above_im",
        headers={"sets": "sets where it is the worst"}),
        caption=f"Stress scenarios that bind ({currency})", total_rows=total,
        where="margins.parquet (stress_scenario)")


def _orders_table(orders: pd.DataFrame) -> PageTable:
    return frame_table(orders, columns(
        "account_id", "netting_set", "instrument_id", "quantity_to_close", "margin_after",
        "equity_after"), max_rows=50, where="liquidation_orders.parquet")


def _changes_tables(changes: Changes | None, currency: str) -> dict[str, Any] | None:
    if changes is None:
        return None
    migration = changes.migration.reset_index(names="before")
    cols = [Column("before", "previous status \u2192 today", str, False)]
    cols += [Column(c, c, f.count) for c in changes.migration.columns]
    note = "" if changes.positions_compared else (
        "The previous run has no attribution to compare positions with: sets present in both "
        "runs count as unchanged.")
    kinds = changes.factors["return_kind"].to_numpy()

    def vol(column: str) -> list[str]:  # log returns as a share; absolute ones in price units
        return [f.pct(v, 2) if k != "absolute" else f.number(v) + " (price)"
                for v, k in zip(changes.factors[column], kinds)]

    factors = changes.factors.assign(sigma_before=vol("sigma_before"), sigma_1d=vol("sigma_1d"))
    return {
        "folder": changes.folder, "date": f.date(changes.market_date), "note": note,
        "split": frame_table(changes.split, columns(
            "part", "change", "sets", headers={"change": f"change ({currency})"})),
        "factors": frame_table(factors, columns(
            "asset", "price_before", "price", "price_change", "sigma_before", "sigma_1d",
            "sigma_change", headers={"price": "price now"}),
            note="Daily volatility in return units (price units for absolute-return "
                 "factors)."),
        "migration": frame_table(migration, cols),
        "movers": frame_table(changes.movers, columns(
            "account_id", "netting_set", "initial_margin_before", "initial_margin", "change",
            "reason", headers={"initial_margin": "IM now"})),
    }


def _run_facts(manifest: dict[str, Any]) -> PageTable:
    cfg, sc = manifest["config"], manifest["scenarios"]
    pairs = [
        ("market date", f.date(manifest["market_date"])),
        ("as of", str(manifest.get("as_of") or "last price date")),
        ("scenarios", f"{sc['kind']}, {f.count(sc['count'])} scenarios, window "
                      f"{f.date(sc['window_start'])} to {f.date(sc['window_end'])}"),
        ("measure", f"{cfg['measure'].upper()} at {f.pct(cfg['confidence'])}, "
                    f"{cfg['horizon']}-day default horizon"),
        ("parameter set", f"{manifest['parameter_set'].get('id')} "
                          f"({manifest['parameter_set'].get('source', '')})"),
        ("configuration SHA-256", str(manifest.get("config_sha256", ""))[:16] + "…"),
        ("riskmodel", str(manifest.get("riskmodel_version", ""))),
    ]
    pairs += [(f"input: {k}", str(v.get("path", ""))) for k, v in
              manifest.get("inputs", {}).items()]
    return key_values(pairs)
