"""The calibration page's figures: per factor the conditional volatility and the QQ plot of
the standardised residuals; over all factors, volatility now against its long-run level and the
shrunk correlation of the parameter set's dependence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from riskmodel.report.calibration_data import FactorDiagnostics
from riskmodel.report.common import new_figure
from riskmodel.report.formats import number
from riskmodel.report.page import PageFigure, embed, legend_beside

__all__ = ["correlation_figure", "qq_plot", "vol_levels_figure", "vol_plot"]

MAX_HEATMAP = 30  # factors; more are summarised by the distribution of their correlations


def vol_plot(res: FactorDiagnostics, path: Path) -> PageFigure:
    """Daily conditional volatility over the absolute residuals, with the long-run level."""
    ff = res.filtered
    x = ff.sigma2.index.to_numpy()
    fig = new_figure(7.0, 3.3)
    ax = fig.add_subplot()
    ax.plot(x, np.abs(res.resid), color="0.55", alpha=0.35, lw=0.6, label="|return - mean|")
    ax.plot(x, np.sqrt(ff.sigma2.to_numpy()), color="#0969da", lw=1.1,
            label="conditional σ")
    if res.params.unconditional_vol is not None:
        ax.axhline(res.params.unconditional_vol, color="#cf222e", lw=0.8, ls="--",
                   label="unconditional σ")
    ax.set_title(f"{res.name}: conditional volatility ({res.params.model}/{res.params.dist})",
                 fontsize=10)
    ax.set_ylabel("daily, return units")
    ax.set_xlabel("date")
    ax.set_ylim(bottom=0)
    legend_beside(fig, ax, where="lower center", ncols=3)
    return embed(fig, title=f"{res.name}: conditional volatility", path=path,
                 alt=f"Daily conditional volatility of {res.name} over its absolute returns, "
                     "with the unconditional level dashed.")


def qq_plot(res: FactorDiagnostics, path: Path) -> PageFigure:
    """QQ plot of the standardised residuals against the fitted innovation law."""
    z = np.sort(res.filtered.std_resid.to_numpy())
    theo = res.qq_theoretical
    fig = new_figure(4.6, 3.9)
    ax = fig.add_subplot()
    ax.scatter(theo, z, s=5, color="#0969da", alpha=0.6, linewidths=0)
    if z.size:
        lo = float(min(theo[0], z[0]))
        hi = float(max(theo[-1], z[-1]))
        ax.plot([lo, hi], [lo, hi], color="#cf222e", lw=0.9)
    fp = res.params
    shape = {"normal": "", "t": f", ν={number(fp.nu, 3)}",
             "skewt": f", ν={number(fp.nu, 3)}, λ={number(fp.skew, 3)}"}.get(fp.dist, "")
    ax.set_title(f"{res.name}: QQ vs {fp.dist}{shape}", fontsize=10)
    ax.set_xlabel("theoretical quantile (unit variance)")
    ax.set_ylabel("standardised residual")
    return embed(fig, title=f"{res.name}: QQ plot", path=path,
                 alt=f"QQ plot of the standardised residuals of {res.name} against the fitted "
                     f"{fp.dist} law; points on the diagonal mean a good fit.")


def vol_levels_figure(names: Sequence[str], now: Sequence[float | None],
                      long_run: Sequence[float | None], limit: int = 40) -> PageFigure:
    """Next-day volatility against the unconditional level, per factor (``limit`` factors,
    furthest from their long-run level first when there are more)."""
    now_a = np.array([np.nan if v is None else v for v in now], np.float64)
    run_a = np.array([np.nan if v is None else v for v in long_run], np.float64)
    order = np.arange(len(names))
    if len(names) > limit:
        ratio = np.abs(np.log(now_a / run_a))
        order = np.argsort(-np.nan_to_num(ratio, nan=-1.0), kind="stable")[:limit]
    fig = new_figure(6.2, 1.6 + 0.32 * len(order))
    ax = fig.subplots()
    y = np.arange(len(order))[::-1]
    ax.barh(y + 0.2, run_a[order], height=0.4, color="#afb8c1", label="unconditional")
    ax.barh(y - 0.2, now_a[order], height=0.4, color="#0969da", label="next day")
    ax.set_yticks(y, [str(names[int(i)]) for i in order])
    ax.set_xlabel("daily volatility, return units")
    ax.set_ylabel("factor")
    ax.set_title("Volatility now against its long-run level")
    legend_beside(fig, ax, where="lower center", ncols=2)
    left = len(names) - len(order)
    return embed(fig, title="Volatility now and in the long run",
                 alt="Horizontal bars of each factor's next-day and unconditional daily "
                     "volatility.",
                 caption="EGARCH's unconditional level is a geometric-mean level that "
                         "understates the mean variance; EWMA has none."
                         + (f" {left} factors closer to their long-run level are in the "
                            "table only." if left else ""))


def correlation_figure(dependence: Mapping[str, Any]) -> PageFigure:
    """The shrunk correlation as a heatmap (up to :data:`MAX_HEATMAP` factors), else the
    histogram of the pairwise correlations."""
    factors = [str(x) for x in dependence["factors"]]
    corr = np.asarray(dependence["correlation"], np.float64)
    if len(factors) <= MAX_HEATMAP:
        size = min(9.0, 3.2 + 0.4 * len(factors))
        fig = new_figure(size + 1.4, size)
        ax = fig.subplots()
        image = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_xticks(range(len(factors)), factors, rotation=90)
        ax.set_yticks(range(len(factors)), factors)
        if len(factors) <= 12:
            for i in range(len(factors)):
                for j in range(len(factors)):
                    ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=8,
                            color="white" if abs(corr[i, j]) > 0.6 else "black")
        ax.set_xlabel("factor")
        ax.set_ylabel("factor")
        ax.set_title("Shrunk correlation of standardised residuals", fontsize=10)
        bar = fig.colorbar(image, ax=ax, shrink=0.8)
        bar.set_label("correlation")
        alt = f"Heatmap of the {len(factors)} x {len(factors)} shrunk correlation matrix."
    else:
        upper = corr[np.triu_indices(len(factors), 1)]
        fig = new_figure(9, 3.5)
        ax = fig.subplots()
        ax.hist(upper, bins=np.linspace(-1, 1, 41).tolist(), color="#0969da")
        ax.set_xlabel("pairwise correlation")
        ax.set_ylabel("pairs of factors")
        ax.set_title(f"Shrunk correlations of {len(factors)} factors", fontsize=10)
        alt = f"Histogram of the {len(upper):,} pairwise shrunk correlations."
    return embed(fig, title="Dependence: correlation", alt=alt)
