"""The parameter-set format: what ``calibration`` writes and the engine reads.

JSON, one object (``schema_version`` 1)::

    {"schema_version": 1, "created_at": "2026-11-21T10:00:00+00:00",
     "data": {"file": "...", "sha256": "...", "start": "...", "end": "..."},
     "factors": {
       "SPX": {"model": "gjr", "dist": "t", "mean": "zero", "return_scale": 100.0,
               "params": {"mu": 0.0, "omega": 0.02, "alpha": 0.0, "gamma": 0.15, "beta": 0.88,
                          "nu": 6.1},
               "std_errors": {"omega": 0.004, ...},
               "backcast": "ewma", "backcast_value": 1.3,
               "sample_start": "2010-01-05T00:00:00", "sample_end": "2018-12-31T00:00:00",
               "nobs": 2262, "loglik": -3011.2, "aic": 6032.4, "bic": 6061.0,
               "converged": true, "fallback": null,
               "last_variance": 2.9, "last_residual": 0.85, "unconditional_vol": 0.0112,
               "runners_up": [{"model": "garch", "dist": "t", "bic": 6070.2}]}},
     "dependence": {"method": "ledoit-wolf", "factors": ["NASDAQ", "SPX"],
                    "correlation": [[1.0, 0.9], [0.9, 1.0]], "shrinkage": 0.01,
                    "copula": {"family": "t", "nu": 7.5}}}

Units: parameters, ``backcast_value``, ``last_variance`` and ``last_residual`` are in the units of
the scaled returns they were fitted on (``return_scale`` x return; a file may also give a
top-level ``return_scale`` as the default for factors without one); ``unconditional_vol`` is in
return units. ``last_variance`` is the conditional variance of the last in-sample return and
``last_residual`` that return's residual: together they give the next day's variance through the
model's recursion.

Models: ``garch`` (GARCH(1,1)), ``gjr`` (GJR-GARCH(1,1,1)), ``egarch`` (EGARCH(1,1,1)) with
``omega, alpha, gamma, beta``; ``ewma`` with ``decay``. Innovations: ``normal``, ``t`` (``nu``),
``skewt`` (``nu``, ``lambda``), standardised to unit variance as in arch. ``fallback``, when not
null, says why a factor did not get the model that was asked for; every run that uses it repeats
that in its manifest.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from riskmodel.errors import InputDataError
from riskmodel.validation import check_choice, check_number

SCHEMA_VERSION = 1
VOL_MODELS = ("ewma", "garch", "gjr", "egarch")
DISTRIBUTIONS = ("normal", "t", "skewt")
MEANS = ("zero", "constant")
BACKCASTS = ("ewma", "sample")
MODEL_CODES = {"ewma": 0, "garch": 1, "gjr": 2, "egarch": 3}

# JSON name of each numeric parameter inside "params" and the dataclass field holding it.
_PARAM_FIELDS = {
    "mu": "mu", "omega": "omega", "alpha": "alpha", "gamma": "gamma", "beta": "beta",
    "nu": "nu", "lambda": "skew", "decay": "decay",
}
# Top-level per-factor entries copied as they are.
_META_FIELDS = (
    "backcast", "backcast_value", "sample_start", "sample_end", "nobs", "loglik", "aic", "bic",
    "converged", "fallback", "last_variance", "last_residual", "unconditional_vol",
    "runners_up", "std_errors",
)


@dataclass(frozen=True)
class FactorParams:
    """Volatility model of one risk factor, parameters in scaled-return units."""

    model: str
    return_scale: float = 1.0
    dist: str = "normal"
    mean: str = "zero"
    mu: float = 0.0
    omega: float = 0.0
    alpha: float = 0.0
    gamma: float = 0.0
    beta: float = 0.0
    nu: float | None = None
    skew: float | None = None
    decay: float = 0.94
    backcast: str = "ewma"
    backcast_value: float | None = None
    sample_start: str | None = None
    sample_end: str | None = None
    nobs: int | None = None
    loglik: float | None = None
    aic: float | None = None
    bic: float | None = None
    converged: bool = True
    fallback: str | None = None
    last_variance: float | None = None
    last_residual: float | None = None
    unconditional_vol: float | None = None
    runners_up: tuple[Mapping[str, Any], ...] = ()
    std_errors: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # ValueError: the loader reports it as an input error naming the factor (exit 3)
        check_choice("model", self.model, VOL_MODELS, error=ValueError)
        check_choice("dist", self.dist, DISTRIBUTIONS, error=ValueError)
        check_choice("mean", self.mean, MEANS, error=ValueError)
        check_choice("backcast", self.backcast, BACKCASTS, error=ValueError)
        for name in ("return_scale", "mu", "omega", "alpha", "gamma", "beta", "decay"):
            check_number(name, getattr(self, name), error=ValueError)
        if self.return_scale <= 0:
            raise ValueError(f"return_scale = {self.return_scale!r} must be > 0")
        if self.model in ("garch", "gjr"):
            if self.omega <= 0 or self.alpha < 0 or self.beta < 0 or self.alpha + self.gamma < 0:
                raise ValueError(
                    f"{self.model} needs omega > 0, alpha >= 0, alpha + gamma >= 0, beta >= 0 "
                    f"(omega={self.omega!r}, alpha={self.alpha!r}, gamma={self.gamma!r}, "
                    f"beta={self.beta!r})"
                )
            if self.model == "garch" and self.gamma != 0:
                raise ValueError(f"garch has no gamma (gamma={self.gamma!r}); use gjr")
            if self.persistence >= 1.0:
                raise ValueError(
                    f"{self.model} is not covariance-stationary: persistence "
                    f"{self.persistence!r} >= 1"
                )
        elif self.model == "egarch":
            if abs(self.beta) >= 1.0:
                raise ValueError(f"egarch is not stationary: |beta| = {abs(self.beta)!r} >= 1")
        elif not 0.0 < self.decay < 1.0:
            raise ValueError(f"decay = {self.decay!r} must be in (0, 1)")
        if self.dist in ("t", "skewt"):
            if self.nu is None or not math.isfinite(self.nu) or self.nu <= 2.0:
                raise ValueError(f"nu = {self.nu!r} must be a finite number > 2 for {self.dist}")
        if self.dist == "skewt":
            if self.skew is None or not -1.0 < self.skew < 1.0:
                raise ValueError(f"lambda = {self.skew!r} must be in (-1, 1) for skewt")
        if self.backcast_value is not None and not self.backcast_value > 0:
            raise ValueError(f"backcast_value = {self.backcast_value!r} must be > 0")

    @property
    def persistence(self) -> float:
        """alpha + gamma / 2 + beta (GARCH family), beta (EGARCH), decay (EWMA)."""
        if self.model in ("garch", "gjr"):
            return self.alpha + 0.5 * self.gamma + self.beta
        if self.model == "egarch":
            return self.beta
        return self.decay

    def recursion(self) -> tuple[int, float, float, float, float, float]:
        """``(code, omega, alpha, gamma, beta, decay)`` in unscaled return units.

        Variances scale with ``return_scale**2``; for EGARCH the log-variance shifts by
        ``2 ln c``, which moves omega by ``2 ln c (beta - 1)``.
        """
        c = self.return_scale
        if self.model == "egarch":
            omega = self.omega + 2.0 * math.log(c) * (self.beta - 1.0)
        else:
            omega = self.omega / c**2
        return MODEL_CODES[self.model], omega, self.alpha, self.gamma, self.beta, self.decay

    def to_json(self) -> dict[str, Any]:
        params: dict[str, float] = {"mu": self.mu}
        if self.model == "ewma":
            params["decay"] = self.decay
        else:
            params.update(omega=self.omega, alpha=self.alpha, beta=self.beta)
            if self.model != "garch":
                params["gamma"] = self.gamma
        if self.nu is not None:
            params["nu"] = self.nu
        if self.skew is not None:
            params["lambda"] = self.skew
        out: dict[str, Any] = {
            "model": self.model,
            "dist": self.dist,
            "mean": self.mean,
            "return_scale": self.return_scale,
            "params": params,
        }
        for name in _META_FIELDS:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else (
                dict(value) if isinstance(value, Mapping) else value
            )
        return out

    @classmethod
    def from_json(cls, entry: Mapping[str, Any], default_scale: float = 1.0) -> FactorParams:
        params = entry.get("params", {})
        if not isinstance(params, Mapping):
            raise ValueError("'params' must be an object")
        unknown = set(params) - set(_PARAM_FIELDS)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}")
        kwargs: dict[str, Any] = {
            _PARAM_FIELDS[k]: float(v) for k, v in params.items() if v is not None
        }
        known = {f.name for f in fields(cls)}
        for name in _META_FIELDS:
            if name in entry and name in known:
                kwargs[name] = entry[name]
        kwargs["runners_up"] = tuple(kwargs.get("runners_up") or ())
        kwargs["std_errors"] = dict(kwargs.get("std_errors") or {})
        return cls(
            model=entry["model"],
            return_scale=float(entry.get("return_scale", default_scale)),
            dist=str(entry.get("dist", "normal")),
            mean=str(entry.get("mean", "zero")),
            **kwargs,
        )


@dataclass(frozen=True)
class ParameterSet:
    """A versioned set of per-factor volatility parameters and their dependence."""

    factors: Mapping[str, FactorParams]
    created_at: str
    data: Mapping[str, Any] = field(default_factory=dict)
    dependence: Mapping[str, Any] | None = None
    source: str = "file"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "created_at": self.created_at,
            "data": dict(self.data),
            "factors": {k: v.to_json() for k, v in sorted(self.factors.items())},
        }
        if self.dependence is not None:
            out["dependence"] = dict(self.dependence)
        return out

    @property
    def id(self) -> str:
        """Content hash of the canonical JSON: names the parameter set in manifests."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]

    def data_end(self, factors: list[str] | None = None) -> tuple[str, _dt.datetime] | None:
        """The latest date of data the set was estimated on, and what says so: the set's
        ``data.end`` and the ``sample_end`` of each of ``factors`` (default: all), naive UTC;
        None when it records none. An unparsable date is an :class:`InputDataError`."""
        ends: list[tuple[str, str]] = []
        if self.data.get("end"):
            ends.append(("its data", str(self.data["end"])))
        ends += [(f"factor {f!r}", fp.sample_end) for f, fp in sorted(self.factors.items())
                 if (factors is None or f in factors) and fp.sample_end]
        latest: tuple[str, _dt.datetime] | None = None
        for what, text in ends:
            try:
                stamp = _dt.datetime.fromisoformat(text)
            except ValueError:
                raise InputDataError(f"{self.source}: {what}: unparsable sample end "
                                     f"(value {text!r})") from None
            if stamp.tzinfo is not None:
                stamp = stamp.astimezone(_dt.timezone.utc).replace(tzinfo=None)
            if latest is None or stamp > latest[1]:
                latest = (what, stamp)
        return latest

    def check_as_of(self, as_of: _dt.datetime, factors: list[str], max_age_days: float,
                    flag: str = "--params", date_name: str = "the valuation date"
                    ) -> list[str]:
        """Whether the set may be used for a valuation at ``as_of`` (naive UTC) on ``factors``:
        estimated on data after it is look-ahead, an :class:`InputDataError` naming what and
        when; older than ``max_age_days`` (``as_of`` minus the set's last sample date, not the
        file's age) returns a warning."""
        end = self.data_end(factors)
        if end is None:
            return []
        what, stamp = end
        if stamp > as_of:
            raise InputDataError(
                f"{flag} {self.source}: {what} was estimated on data up to "
                f"{stamp.isoformat()}, after {date_name} {as_of.isoformat()}: that is "
                f"look-ahead; calibrate with --end on or before it (value "
                f"{stamp.isoformat()!r})")
        age = (as_of - stamp).total_seconds() / 86400.0
        if age > max_age_days:
            return [f"parameter set {self.id} was estimated on data up to "
                    f"{stamp.date().isoformat()}, {age:.0f} days before the valuation date "
                    f"(calibration.max_age_days = {max_age_days:g}): recalibrate"]
        return []

    def write(self, path: str | Path) -> None:
        """Write atomically (temporary file beside it, then rename)."""
        p = Path(path)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n")
        tmp.replace(p)


def load_parameter_set(path: str | Path) -> ParameterSet:
    """Read and validate a parameter set; any problem is an input error naming the factor."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputDataError(f"parameter set not found: {p}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputDataError(f"{p}: not valid JSON: {exc}") from None
    if not isinstance(raw, Mapping) or raw.get("schema_version") != SCHEMA_VERSION:
        found = raw.get("schema_version") if isinstance(raw, Mapping) else None
        raise InputDataError(
            f"{p}: column 'schema_version': must be {SCHEMA_VERSION} (value {found!r})"
        )
    factors_raw = raw.get("factors")
    if not isinstance(factors_raw, Mapping) or not factors_raw:
        raise InputDataError(f"{p}: 'factors' must be a non-empty object")
    top_scale = raw.get("return_scale", 1.0)
    factors: dict[str, FactorParams] = {}
    for asset, entry in factors_raw.items():
        try:
            factors[str(asset)] = FactorParams.from_json(entry, float(top_scale))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputDataError(f"{p}: factor {asset!r}: invalid parameters: {exc}") from None
    return ParameterSet(
        factors=factors,
        created_at=str(raw.get("created_at", "")),
        data=dict(raw.get("data", {})),
        dependence=raw.get("dependence"),
        source=str(p),
    )
