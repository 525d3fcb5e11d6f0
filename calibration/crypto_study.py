"""The crypto model study: candidate margin models against both flat rates on the shared coins.

Reruns the comparison behind ``riskmodel/data/profiles/crypto.toml`` and the README's section
"Crypto: the model against flat rates"::

    python -m calibration.crypto_study --out DIR [--shared ../shared/data] [--only NAME ...]

Data: the daily BTC, ETH and DOGE closes of ``crypto_daily_close.csv`` from 2017-11-10 (the
shared validation data: read, never copied into the project; the inputs the backtests read are
written under ``DIR/inputs``). Portfolios (:func:`write_inputs`): a long and a short perpetual
in each coin worth 10,000 at the last close, a basket of a third of each and an ETH/BTC pair
(long ETH, short BTC), eight netting sets of one account. Every candidate is a full
``riskmodel backtest`` (:func:`riskmodel.backtest.run.run_backtest`, the engine's replay:
margin from ``price_market`` and ``margin_book`` at every date, GARCH refitted every 21 dates
unless the candidate says otherwise) from 2019-01-01 to 2025-02-19 at one day and 99%.

Outputs under ``DIR``: ``candidates.csv`` (one row per candidate: coverage passes, pooled
statistics, the median set's cost against both flat rates at equal coverage), ``portfolios.csv``
(per set and pooled, for the issue's starting point and the profile), ``shapes.csv`` (the bound
of :func:`volatility_shapes`) and ``tables.md`` (the same as Markdown, for the README).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from calibration.fitters import default_fitter
from riskmodel.backtest.run import BacktestInputs, BacktestWindow, run_backtest
from riskmodel.backtest.statistics import flat_rate_equivalent
from riskmodel.config import config_from_mapping, read_toml
from riskmodel.errors import RiskModelError

__all__ = [
    "CANDIDATES",
    "Candidate",
    "PROFILE",
    "run_candidate",
    "volatility_shapes",
    "write_inputs",
]

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PROFILE = Path(__file__).resolve().parents[1] / "riskmodel" / "data" / "profiles" / "crypto.toml"
COINS = ("BTC", "ETH", "DOGE")
FIRST_PRICE, START, END = "2017-11-10", "2019-01-01", "2025-02-19"
NOTIONAL = 10_000.0
#: The issue's command: ``--method fhs --horizon 1 --confidence 0.99 --lookback 365``.
ISSUE = {"method": "fhs", "horizon": 1, "confidence": 0.99, "lookback": 365}


@dataclass(frozen=True)
class Candidate:
    """One configuration: the issue's settings with ``changes`` (or the profile file)."""

    name: str
    changes: Mapping[str, Any] = field(default_factory=dict)
    recalibrate_every: int | None = None
    profile: bool = False

    def raw(self) -> dict[str, Any]:
        """The RUN.toml mapping of this candidate."""
        base = read_toml(PROFILE) if self.profile else dict(ISSUE)
        out: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v)
                               for k, v in base.items()}
        for key, value in self.changes.items():
            if isinstance(value, Mapping):
                out[key] = {**out.get(key, {}), **value}
            else:
                out[key] = value
        return out


_VAR_365 = {"measure": "var", "calibration": {"min_history": 365}}
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("issue: GARCH-normal, ES 99%"),
    Candidate("refit every 125 dates", recalibrate_every=125),
    Candidate("one fit (no refit)", recalibrate_every=0),
    Candidate("GJR-t", {"calibration": {"model": "gjr", "dist": "t"}}),
    Candidate("GARCH-t", {"calibration": {"dist": "t"}}),
    Candidate("GARCH skew-t", {"calibration": {"dist": "skewt"}}),
    Candidate("EGARCH-t", {"calibration": {"model": "egarch", "dist": "t"}}),
    Candidate("EWMA 0.94", {"volatility": {"model": "ewma", "ewma_lambda": 0.94}}),
    Candidate("EWMA 0.97", {"volatility": {"model": "ewma", "ewma_lambda": 0.97}}),
    Candidate("HS (no filter)", {"method": "hs"}),
    Candidate("VaR 99%", {"measure": "var"}),
    Candidate("VaR 99%, GARCH from 365 returns", _VAR_365),
    Candidate("VaR 99%, lookback 250", {"measure": "var", "lookback": 250}),
    Candidate("VaR 99%, GJR, 365 returns, DOGE->BTC",
              {"measure": "var", "calibration": {"model": "gjr", "min_history": 365,
                                                 "proxies": {"DOGE": "BTC"}}}),
    Candidate("profile, ES 99%", {"measure": "es"}, profile=True),
    Candidate("profile, ES 97.5%", {"measure": "es", "confidence": 0.975}, profile=True),
    Candidate("profile, refit every 63 dates", recalibrate_every=63, profile=True),
    Candidate("profile, one fit", recalibrate_every=0, profile=True),
    Candidate("profile, lookback 300", {"lookback": 300}, profile=True),
    Candidate("profile (crypto.toml)", profile=True),
)


def _closes(shared: Path) -> pd.DataFrame:
    closes = pd.read_csv(shared / "crypto_daily_close.csv", parse_dates=["date"])
    return closes.loc[closes["date"] >= FIRST_PRICE, ["date", *COINS]].reset_index(drop=True)


def write_inputs(folder: Path, shared: Path = SHARED) -> BacktestInputs:
    """Write the prices, perpetuals and the eight portfolios under ``folder`` (module doc).

    Returns
    -------
    BacktestInputs of ``prices.csv``, ``instruments.csv``, ``positions.csv``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    closes = _closes(shared)
    closes.to_csv(folder / "prices.csv", index=False, date_format="%Y-%m-%d")
    perps = [f"{c}-PERP" for c in COINS]
    pd.DataFrame({"instrument_id": perps, "kind": "perpetual", "underlying": list(COINS),
                  "multiplier": 1.0}).to_csv(folder / "instruments.csv", index=False)
    last = closes.iloc[-1]
    rows = []
    for coin, perp in zip(COINS, perps):
        quantity = NOTIONAL / float(last[coin])
        rows += [("venue", f"long_{coin}", perp, quantity),
                 ("venue", f"short_{coin}", perp, -quantity)]
    rows += [("venue", "basket", perp, NOTIONAL / 3 / float(last[coin]))
             for coin, perp in zip(COINS, perps)]
    rows += [("venue", "pair_ETH_BTC", "ETH-PERP", NOTIONAL / float(last["ETH"])),
             ("venue", "pair_ETH_BTC", "BTC-PERP", -NOTIONAL / float(last["BTC"]))]
    pd.DataFrame(rows, columns=["account_id", "netting_set", "instrument_id", "quantity"]
                 ).to_csv(folder / "positions.csv", index=False)
    return BacktestInputs(folder / "prices.csv", folder / "instruments.csv",
                          folder / "positions.csv")


def _hindsight_scaled(frame: pd.DataFrame) -> float:
    """The median set's model margin scaled with hindsight to its own breach count (the
    smallest factor keeping them), over the hindsight flat rate at that count: what a
    perfectly calibrated version of the same margin would cost."""
    ratios = []
    for _, rows in frame.groupby("netting_set", sort=True):
        loss = rows["realized_loss"].to_numpy()
        margin = rows["initial_margin"].to_numpy()
        breaches = int(np.count_nonzero(loss > margin))
        scaled = flat_rate_equivalent(loss, margin, breaches)["mean_margin"]
        flat = flat_rate_equivalent(loss, rows["gross_notional"].to_numpy(), breaches)
        ratios.append(scaled / flat["mean_margin"])
    return float(np.median(ratios))


def run_candidate(candidate: Candidate, inputs: BacktestInputs, start: str = START,
                  end: str = END) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Backtest one candidate; its ``candidates.csv`` row and its per-set table (None when
    the engine refused it: the row says why)."""
    clock = time.perf_counter()
    row: dict[str, Any] = {"candidate": candidate.name}
    try:
        config = config_from_mapping(candidate.raw(), {}, source=candidate.name)
        result = run_backtest(inputs, config, BacktestWindow(start, end, 1,
                                                             candidate.recalibrate_every),
                              fitter=default_fitter(), n_sim=0)
    except RiskModelError as exc:
        row.update(status=f"refused: {type(exc).__name__}: {exc}"[:200],
                   runtime_s=round(time.perf_counter() - clock, 1))
        return row, None
    summary = result.summary
    pooled = summary["pooled"]
    fallbacks = sorted({f"{f['factor']}: {f['reason'].split(':')[0]}"
                        for f in summary["volatility"]["fallbacks"]})
    ratios, medians = pooled["cost_ratios"], pooled["median_cost_ratios"]
    row.update(
        status="ok", passes=pooled["coverage_passes"]["both"],
        exceptions=pooled["exceptions"], kupiec_pvalue=pooled["kupiec_pvalue"],
        christoffersen_pvalue=pooled["christoffersen_pvalue"],
        margin_breaches=pooled["margin_breaches"], mean_margin=pooled["mean_margin"],
        pooled_over_flat_equivalent=ratios["flat_rate_equivalent"],
        pooled_over_realisable_equivalent=ratios.get("realisable_flat_rate_equivalent"),
        median_over_flat_equivalent=medians["flat_rate_equivalent"],
        median_over_realisable_equivalent=medians.get("realisable_flat_rate_equivalent"),
        median_over_realisable=medians.get("realisable_flat_rate"),
        median_hindsight_scaled=_hindsight_scaled(result.backtest),
        fallbacks="; ".join(fallbacks), runtime_s=round(time.perf_counter() - clock, 1))
    return row, portfolio_table(summary, candidate.name)


def portfolio_table(summary: Mapping[str, Any], name: str) -> pd.DataFrame:
    """Per set and pooled: coverage, the model's mean margin and both flat rates beside it."""
    rows = []
    for p in [*summary["portfolios"], {**summary["pooled"], "netting_set": "pooled"}]:
        eq, real = p["flat_rate_equivalent"], p.get("realisable_flat_rate") or {}
        real_eq = p.get("realisable_flat_rate_equivalent") or {}
        rows.append({
            "candidate": name, "portfolio": p["netting_set"], "n_obs": p["n_obs"],
            "exceptions": p["exceptions"], "kupiec_pvalue": p["kupiec_pvalue"],
            "christoffersen_pvalue": p["christoffersen_pvalue"],
            "traffic_light": p["traffic_light"], "margin_breaches": p["margin_breaches"],
            "mean_margin": p["mean_margin"], "flat_equivalent_rate": eq["rate"],
            "flat_equivalent_margin": eq["mean_margin"],
            "over_flat_equivalent": p["cost_ratios"]["flat_rate_equivalent"],
            "realisable_breaches": real.get("breaches"),
            "realisable_mean_rate": real.get("mean_rate"),
            "realisable_margin": real.get("mean_margin"),
            "realisable_equivalent_margin": real_eq.get("mean_margin"),
            "over_realisable_equivalent": p["cost_ratios"].get(
                "realisable_flat_rate_equivalent")})
    return pd.DataFrame(rows)


def _ewma(x: np.ndarray, lam: float, start: np.ndarray) -> np.ndarray:
    """EWMA of the rows of ``x`` (n, k): row j of the result is the forecast for row j (made
    with rows before j), row n the one after the last; NaN inputs carry the forecast over."""
    out = np.empty((x.shape[0] + 1, x.shape[1]))
    out[0] = start
    for j in range(x.shape[0]):
        out[j + 1] = np.where(np.isfinite(x[j]), lam * out[j] + (1 - lam) * x[j], out[j])
    return out


def _variance_proxies(shared: Path) -> tuple[pd.DatetimeIndex, np.ndarray, dict[str, np.ndarray]]:
    """The dates, the log returns (n, 3) and the daily variance measures of each coin: squared
    close-to-close returns and, from the daily highs and lows of ``crypto_daily_ohlcv.csv``,
    Parkinson's ``ln(H / L)^2 / (4 ln 2)`` and Garman-Klass's
    ``0.5 ln(H / L)^2 - (2 ln 2 - 1) ln(C / O)^2``."""
    closes = _closes(shared).set_index("date")
    bars = pd.read_csv(shared / "crypto_daily_ohlcv.csv", parse_dates=["date"])

    def wide(column: str) -> np.ndarray:
        table = bars.pivot(index="date", columns="symbol", values=column)
        return table.reindex(closes.index)[list(COINS)].to_numpy(np.float64)[1:]

    returns = np.log(closes.to_numpy(np.float64))
    returns = returns[1:] - returns[:-1]
    hl, co = np.log(wide("high") / wide("low")), np.log(wide("close") / wide("open"))
    return closes.index[1:], returns, {
        "close": returns ** 2, "parkinson": hl ** 2 / (4 * np.log(2)),
        "garman_klass": 0.5 * hl ** 2 - (2 * np.log(2) - 1) * co ** 2}


def volatility_shapes(inputs: BacktestInputs, shared: Path = SHARED,
                      estimators: Sequence[tuple[str, float]] = (
                          ("close", 0.94), ("close", 0.97), ("close", 0.99),
                          ("parkinson", 0.94), ("parkinson", 0.97),
                          ("garman_klass", 0.94), ("garman_klass", 0.97)),
                      breach_rates: Sequence[float] = (0.01, 0.0045)) -> pd.DataFrame:
    """The best any margin proportional to a volatility forecast could do, with hindsight.

    For each estimator (an EWMA with decay ``lam`` of a daily variance measure of
    :func:`_variance_proxies`) and each set, the margin ``k x sigma_t`` (``sigma_t`` the set's
    one-day forecast volatility in currency: the coins' forecasts and the correlation of their
    returns standardised by them over the trailing 365 days) scaled by the smallest ``k`` with
    no more breaches than ``breach_rate`` of the dates, against the hindsight flat rate with
    the same breaches. Both are scaled with hindsight, so the ratio isolates the shape: below 1
    the forecast tells big losses from small ones better than notional does. The median over
    the sets is returned (columns ``estimator, decay, breach_rate, median_ratio, ratios``).
    """
    dates, returns, measures = _variance_proxies(shared)
    positions = pd.read_csv(inputs.positions)
    prices = _closes(shared).set_index("date")[list(COINS)].to_numpy(np.float64)[1:]
    index = pd.DatetimeIndex(dates)
    first, last = index.searchsorted(pd.Timestamp(START)), index.searchsorted(pd.Timestamp(END))
    sets = list(dict.fromkeys(positions["netting_set"]))
    quantity = np.zeros((len(sets), len(COINS)))
    for _, p in positions.iterrows():
        quantity[sets.index(p["netting_set"]), COINS.index(p["instrument_id"][:-5])] += \
            p["quantity"]
    rows = []
    for name, lam in estimators:
        measure = measures[name]
        variance = _ewma(measure, lam, np.nanmean(measure[:30], axis=0))
        z = returns / np.sqrt(variance[:-1])
        days = range(first, last + 1)  # date t: forecast for t + 1, loss over t .. t + 1
        corr = [np.corrcoef(z[t - 364:t + 1].T) for t in days]
        for rate in breach_rates:
            ratios = []
            for k in range(len(sets)):
                exposure = quantity[k] * prices[first:last + 1]
                loss = -(exposure * np.expm1(returns[first + 1:last + 2])).sum(axis=1)
                scaled = exposure * np.sqrt(variance[first + 1:last + 2])
                sigma = np.sqrt(np.einsum("ti,tij,tj->t", scaled, np.array(corr), scaled))
                budget = int(rate * loss.size)
                flat = flat_rate_equivalent(loss, np.abs(exposure).sum(axis=1), budget)
                shaped = flat_rate_equivalent(loss, sigma, budget)
                ratios.append(shaped["mean_margin"] / flat["mean_margin"])
            rows.append({"estimator": name, "decay": lam, "breach_rate": rate,
                         "median_ratio": float(np.median(ratios)),
                         "ratios": " ".join(f"{r:.2f}" for r in ratios)})
    return pd.DataFrame(rows)


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table of ``frame`` (numbers rounded), for the README."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if not np.isfinite(value) else (f"{value:.{digits}g}" if abs(value) < 1e4
                                                      else f"{value:,.0f}")
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |",
             "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the candidates (or ``--only`` some) and write the tables under ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m calibration.crypto_study",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--only", nargs="*", help="candidate names to run (default: all)")
    args = parser.parse_args(argv)
    out: Path = args.out
    inputs = write_inputs(out / "inputs", args.shared)
    rows, tables = [], []
    chosen = [c for c in CANDIDATES if not args.only or c.name in args.only]
    for candidate in chosen:
        row, table = run_candidate(candidate, inputs)
        rows.append(row)
        if table is not None and candidate.name in (CANDIDATES[0].name, CANDIDATES[-1].name):
            tables.append(table)
        print(f"{candidate.name}: " + ", ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in row.items() if k != "candidate"), flush=True)
    candidates = pd.DataFrame(rows)
    candidates.to_csv(out / "candidates.csv", index=False)
    shapes = volatility_shapes(inputs, args.shared)
    shapes.to_csv(out / "shapes.csv", index=False)
    parts = ["## Candidates", _markdown(candidates.drop(columns=["fallbacks"], errors="ignore")),
             "## Volatility shapes (hindsight-scaled)", _markdown(shapes)]
    if tables:
        portfolios = pd.concat(tables, ignore_index=True)
        portfolios.to_csv(out / "portfolios.csv", index=False)
        parts += ["## Portfolios", _markdown(portfolios)]
    (out / "tables.md").write_text("\n\n".join(parts) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
