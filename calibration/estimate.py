"""Per-factor estimation with arch: GARCH(1,1), GJR-GARCH(1,1,1), EGARCH(1,1,1).

Specification: model ``garch | gjr | egarch | auto``, innovations ``normal | t | skewt | auto``,
mean ``zero | constant``. ``auto`` fits every combination asked for and keeps the lowest BIC among
the fits that converged and are stationary; the others are recorded as runners-up with their BIC
or the reason they were rejected.

Scaling: returns are multiplied by a power of ten so that their standard deviation lies in
[0.5, 5) (percent for typical daily log returns) because arch's optimiser works best there; the
scale is recorded and parameters are stored in scaled units.

Pre-sample variance (``backcast``): ``ewma`` is arch's default (0.94-weighted mean of the first
75 squared residuals); ``sample`` is the sample mean of the squared residuals, the convention of
the published GARCH software benchmarks (Fiorentini, Calzolari and Panattoni 1996; McCullough and
Renfro 1998), where the backcast moves with mu inside the likelihood. arch takes a fixed backcast,
so with a constant mean and the ``sample`` rule mu is profiled out: for each trial mu the
zero-mean model is fitted to ``r - mu`` with backcast ``mean((r - mu)^2)``, and a bounded scalar
search maximises that profile likelihood over mu (this is the joint maximum of the benchmark's
likelihood; tested against the published estimates). Otherwise the backcast is computed once from
the returns less their sample mean (constant mean) or the returns (zero mean), as in arch. The
value used is stored, so the engine's filter reproduces the conditional variance exactly.

Fallbacks (never silent: ``fallback`` holds the reason and every run's manifest repeats it):
too short a history (fewer than ``min_history`` returns), a constant series, no candidate that
converged, or no candidate that is stationary (alpha + gamma/2 + beta >= 1; EGARCH |beta| >= 1).
The fallback is the proxy factor's parameters when the configuration names a proxy, else EWMA.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from arch import arch_model
from scipy import optimize

from riskmodel.config import CalibrationConfig
from riskmodel.validation import check_choice
from riskmodel.volatility.params import BACKCASTS, MEANS, FactorParams
from riskmodel.volatility.recursions_python import ewma_backcast

MODELS = ("garch", "gjr", "egarch")
DISTS = ("normal", "t", "skewt")
_ARCH_VOL = {"garch": ("GARCH", 0), "gjr": ("GARCH", 1), "egarch": ("EGARCH", 1)}
_ARCH_DIST = {"normal": "normal", "t": "t", "skewt": "skewt"}


_DEFAULTS = CalibrationConfig()  # a Spec's defaults are those of [calibration]


@dataclass(frozen=True)
class Spec:
    """What to fit for every factor (defaults: those of :class:`CalibrationConfig`)."""

    model: str = _DEFAULTS.model
    dist: str = _DEFAULTS.dist
    mean: str = _DEFAULTS.mean
    backcast: str = _DEFAULTS.backcast
    min_history: int = _DEFAULTS.min_history
    ewma_decay: float = 0.94
    proxies: Mapping[str, str] = field(default_factory=dict)
    max_iter: int | None = None  # optimiser iteration cap (None: arch's default)

    def __post_init__(self) -> None:
        check_choice("model", self.model, (*MODELS, "auto"), error=ValueError)
        check_choice("dist", self.dist, (*DISTS, "auto"), error=ValueError)
        check_choice("mean", self.mean, MEANS, error=ValueError)
        check_choice("backcast", self.backcast, BACKCASTS, error=ValueError)

    @classmethod
    def from_config(cls, calibration: CalibrationConfig, ewma_decay: float) -> Spec:
        """The spec of a run's ``[calibration]`` settings (and its EWMA decay for fallbacks)."""
        return cls(model=calibration.model, dist=calibration.dist, mean=calibration.mean,
                   backcast=calibration.backcast, min_history=calibration.min_history,
                   ewma_decay=ewma_decay, proxies=dict(calibration.proxies))

    def candidates(self) -> list[tuple[str, str]]:
        models = MODELS if self.model == "auto" else (self.model,)
        dists = DISTS if self.dist == "auto" else (self.dist,)
        return [(m, d) for m in models for d in dists]


def return_scale(returns: np.ndarray) -> float:
    """Power of ten that brings the sample standard deviation into [0.5, 5)."""
    std = float(np.std(returns))
    if std <= 0 or not math.isfinite(std):
        return 1.0
    return float(10.0 ** (-math.floor(math.log10(std / 0.5))))


def backcast_for(y: np.ndarray, mean: str, rule: str) -> float:
    """The pre-sample variance arch is given (scaled units); see the module docstring."""
    resid = y - y.mean() if mean == "constant" else y
    return float(np.mean(resid**2)) if rule == "sample" else ewma_backcast(resid)


def ewma_params(returns: np.ndarray, decay: float, reason: str | None, **meta: Any) -> FactorParams:
    """The EWMA fallback (zero mean, normal), with ``reason`` recorded."""
    return FactorParams(model="ewma", return_scale=return_scale(returns), decay=decay,
                        fallback=reason, converged=reason is None, **meta)


# arch constrains persistence to <= 1, so an integrated fit lands on the boundary (within the
# optimiser's tolerance) rather than above it: treat that as non-stationary too.
STATIONARITY_MARGIN = 1e-6


def _stationary(model: str, p: Mapping[str, float]) -> tuple[bool, float]:
    if model == "egarch":
        persistence = abs(p["beta"])
    else:
        persistence = p["alpha"] + 0.5 * p.get("gamma", 0.0) + p["beta"]
    return persistence < 1.0 - STATIONARITY_MARGIN, persistence


def _arch_fit(y: np.ndarray, model: str, dist: str, mean: str, backcast: float,
              max_iter: int | None) -> Any:
    vol, o = _ARCH_VOL[model]
    arch_vol: Any = vol  # arch types these as Literal; ours come from validated tables
    arch_dist: Any = _ARCH_DIST[dist]
    am = arch_model(y, mean="Zero" if mean == "zero" else "Constant", vol=arch_vol, p=1, o=o,
                    q=1, dist=arch_dist, rescale=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        options = {"maxiter": max_iter} if max_iter else None
        return am.fit(disp="off", show_warning=False, backcast=backcast, options=options)


def _profile_mu_fit(y: np.ndarray, model: str, dist: str, max_iter: int | None
                    ) -> tuple[Any, float, float]:
    """Constant mean with the ``sample`` backcast at the current mu: profile mu out.

    Returns the zero-mean fit at the optimal mu, that mu and the backcast used there.
    """
    def fit_at(mu: float) -> Any:
        e = y - mu
        return _arch_fit(e, model, dist, "zero", float(np.mean(e * e)), max_iter)

    se = float(np.std(y)) / math.sqrt(len(y))
    centre = float(np.mean(y))
    search = optimize.minimize_scalar(
        lambda mu: -fit_at(mu).loglikelihood, bounds=(centre - 6 * se, centre + 6 * se),
        method="bounded", options={"xatol": 1e-9 * max(float(np.std(y)), 1e-12)},
    )
    mu = float(search.x)
    e = y - mu
    return fit_at(mu), mu, float(np.mean(e * e))


def _fit_one(y: np.ndarray, model: str, dist: str, spec: Spec, backcast: float) -> dict[str, Any]:
    """Fit one candidate; returns a record with the arch result or the reason it failed."""
    profiled_mu = None
    try:
        if spec.mean == "constant" and spec.backcast == "sample":
            res, profiled_mu, backcast = _profile_mu_fit(y, model, dist, spec.max_iter)
        else:
            res = _arch_fit(y, model, dist, spec.mean, backcast, spec.max_iter)
    except (ValueError, np.linalg.LinAlgError, RuntimeError) as exc:
        return {"model": model, "dist": dist, "ok": False, "reason": f"fit failed: {exc}"}
    # A profiled mu is one more estimated parameter than the zero-mean fit reports.
    extra_k = 0 if profiled_mu is None else 1
    p = {
        "mu": float(res.params.get("mu", 0.0)) if profiled_mu is None else profiled_mu,
        "omega": float(res.params["omega"]),
        "alpha": float(res.params["alpha[1]"]),
        "gamma": float(res.params.get("gamma[1]", 0.0)),
        "beta": float(res.params["beta[1]"]),
    }
    if "nu" in res.params:
        p["nu"] = float(res.params["nu"])
    if "eta" in res.params:  # arch names the skew-t degrees of freedom eta
        p["nu"] = float(res.params["eta"])
    if "lambda" in res.params:
        p["skew"] = float(res.params["lambda"])
    record = {"model": model, "dist": dist, "params": p, "result": res, "backcast": backcast,
              "bic": float(res.bic) + extra_k * math.log(res.nobs),
              "aic": float(res.aic) + 2 * extra_k, "loglik": float(res.loglikelihood)}
    if res.convergence_flag != 0:
        return {**record, "ok": False,
                "reason": f"did not converge (optimizer flag {res.convergence_flag})"}
    stationary, persistence = _stationary(model, p)
    if not stationary:
        return {**record, "ok": False,
                "reason": f"non-stationary (persistence {persistence:.6f} >= 1)"}
    return {**record, "ok": True}


def _std_errors(res: Any) -> dict[str, float]:
    names = {"mu": "mu", "omega": "omega", "alpha[1]": "alpha", "gamma[1]": "gamma",
             "beta[1]": "beta", "nu": "nu", "eta": "nu", "lambda": "lambda"}
    out = {}
    for k, v in res.std_err.items():
        if k in names and np.isfinite(v):
            out[names[k]] = float(v)
    return out


def _unconditional_vol(
    model: str, p: Mapping[str, float], scale: float, sigma2: np.ndarray
) -> float:
    """Long-run daily volatility in return units.

    GARCH and GJR: ``sqrt(omega / (1 - alpha - gamma/2 - beta))`` (gamma/2 exact for symmetric
    innovations). EGARCH has no simple closed form for E[sigma^2] (exp of the mean
    log-variance understates it), so the in-sample mean conditional variance is reported.
    """
    if model == "egarch":
        return math.sqrt(float(np.mean(sigma2))) / scale
    persistence = p["alpha"] + 0.5 * p.get("gamma", 0.0) + p["beta"]
    return math.sqrt(p["omega"] / (1.0 - persistence)) / scale


def fit_factor(returns: pd.Series, spec: Spec) -> FactorParams:
    """Estimate one factor (returns: Series over dates, no NaN) according to ``spec``.

    Proxy fallbacks are resolved by :func:`calibration.runner.calibrate` once every factor has
    been fitted; here a factor that needs a fallback gets EWMA with the reason.
    """
    r = returns.to_numpy(np.float64)
    n = r.shape[0]
    meta: dict[str, Any] = {}
    if n:
        meta = {"sample_start": returns.index[0].isoformat(),
                "sample_end": returns.index[-1].isoformat(), "nobs": int(n)}
    if n < spec.min_history:
        return ewma_params(r, spec.ewma_decay,
                           f"short history: {n} returns < min_history {spec.min_history}", **meta)
    if float(np.std(r)) == 0.0:
        return ewma_params(r, spec.ewma_decay, "constant series: zero variance", **meta)
    scale = return_scale(r)
    y = r * scale
    backcast = backcast_for(y, spec.mean, spec.backcast)
    fits = [_fit_one(y, m, d, spec, backcast) for m, d in spec.candidates()]
    good = [f for f in fits if f["ok"]]
    if not good:
        reasons = "; ".join(f"{f['model']}/{f['dist']}: {f['reason']}" for f in fits)
        return ewma_params(r, spec.ewma_decay, reasons, **meta)
    best = min(good, key=lambda f: f["bic"])
    runners_up = tuple(
        {"model": f["model"], "dist": f["dist"], "bic": f.get("bic"),
         **({} if f["ok"] else {"rejected": f["reason"]})}
        for f in sorted(fits, key=lambda f: f.get("bic", math.inf)) if f is not best
    )
    res = best["result"]
    p = best["params"]
    sigma2 = np.asarray(res.conditional_volatility) ** 2
    resid = np.asarray(res.resid)
    return FactorParams(
        model=best["model"],
        return_scale=scale,
        dist=best["dist"],
        mean=spec.mean,
        mu=p["mu"],
        omega=p["omega"],
        alpha=p["alpha"],
        gamma=p["gamma"] if best["model"] != "garch" else 0.0,
        beta=p["beta"],
        nu=p.get("nu"),
        skew=p.get("skew"),
        backcast=spec.backcast,
        backcast_value=best["backcast"],
        loglik=best["loglik"],
        aic=best["aic"],
        bic=best["bic"],
        converged=True,
        last_variance=float(sigma2[-1]),
        last_residual=float(resid[-1]),
        unconditional_vol=_unconditional_vol(best["model"], p, scale, sigma2),
        runners_up=runners_up,
        std_errors=_std_errors(res),
        **meta,
    )
