"""The parameter-set format: what ``calibration`` writes and the engine reads.

JSON, one object::

    {"schema_version": 1, "created_at": "...", "return_scale": 100.0,
     "data": {"start": "...", "end": "...", "sha256": "..."},
     "factors": {"SPX": {"model": "garch", "dist": "normal", "mean": "zero",
                         "return_scale": 100.0,
                         "params": {"mu": 0.0, "omega": 0.012, "alpha": 0.09, "beta": 0.9},
                         "converged": true, "fallback": null}}}

Parameters are stored in the units of the scaled returns they were fitted on (``return_scale`` x
return; a factor's own ``return_scale`` wins over the top-level one). ``model`` is ``garch``
(GARCH(1,1)) or ``ewma`` (``params.lambda``). ``fallback``, when not null, says why a factor did not
get the model that was asked for; every run that uses it repeats that in its manifest.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskmodel.errors import InputDataError

SCHEMA_VERSION = 1
VOL_MODELS = ("garch", "ewma")


@dataclass(frozen=True)
class FactorParams:
    """Volatility parameters of one risk factor, in scaled-return units."""

    model: str
    return_scale: float = 1.0
    mu: float = 0.0
    omega: float = 0.0
    alpha: float = 0.0
    beta: float = 0.0
    lam: float = 0.94
    dist: str = "normal"
    mean: str = "zero"
    converged: bool = True
    fallback: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model not in VOL_MODELS:
            raise ValueError(f"model {self.model!r} must be one of {VOL_MODELS}")
        for name in ("return_scale", "mu", "omega", "alpha", "beta", "lam"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} = {value!r} must be a finite number")
        if self.return_scale <= 0:
            raise ValueError(f"return_scale = {self.return_scale!r} must be > 0")
        if self.model == "garch":
            if self.omega <= 0 or self.alpha < 0 or self.beta < 0:
                raise ValueError(
                    f"GARCH needs omega > 0, alpha >= 0, beta >= 0 "
                    f"(omega={self.omega!r}, alpha={self.alpha!r}, beta={self.beta!r})"
                )
            if self.alpha + self.beta >= 1.0:
                raise ValueError(
                    f"GARCH is not covariance-stationary: alpha + beta = "
                    f"{self.alpha + self.beta!r} >= 1"
                )
        elif not 0.0 < self.lam < 1.0:
            raise ValueError(f"lambda = {self.lam!r} must be in (0, 1)")

    def to_json(self) -> dict[str, Any]:
        params: dict[str, float] = {"mu": self.mu}
        if self.model == "garch":
            params.update(omega=self.omega, alpha=self.alpha, beta=self.beta)
        else:
            params["lambda"] = self.lam
        return {
            "model": self.model,
            "dist": self.dist,
            "mean": self.mean,
            "return_scale": self.return_scale,
            "params": params,
            "converged": self.converged,
            "fallback": self.fallback,
            **dict(self.extra),
        }


@dataclass(frozen=True)
class ParameterSet:
    """A versioned set of per-factor volatility parameters."""

    factors: Mapping[str, FactorParams]
    created_at: str
    data: Mapping[str, Any] = field(default_factory=dict)
    source: str = "file"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "created_at": self.created_at,
            "data": dict(self.data),
            "factors": {k: v.to_json() for k, v in sorted(self.factors.items())},
        }

    @property
    def id(self) -> str:
        """Content hash of the canonical JSON: names the parameter set in manifests."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]

    def write(self, path: str | Path) -> None:
        """Write atomically (temporary file, then rename)."""
        p = Path(path)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
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
            f"{p}: schema_version must be {SCHEMA_VERSION} (value {found!r})"
        )
    factors_raw = raw.get("factors")
    if not isinstance(factors_raw, Mapping) or not factors_raw:
        raise InputDataError(f"{p}: 'factors' must be a non-empty object")
    top_scale = raw.get("return_scale", 1.0)
    factors: dict[str, FactorParams] = {}
    for asset, entry in factors_raw.items():
        try:
            params = dict(entry.get("params", {}))
            known = {"model", "dist", "mean", "return_scale", "params", "converged", "fallback"}
            factors[str(asset)] = FactorParams(
                model=entry["model"],
                return_scale=float(entry.get("return_scale", top_scale)),
                mu=float(params.get("mu", 0.0)),
                omega=float(params.get("omega", 0.0)),
                alpha=float(params.get("alpha", 0.0)),
                beta=float(params.get("beta", 0.0)),
                lam=float(params.get("lambda", 0.94)),
                dist=str(entry.get("dist", "normal")),
                mean=str(entry.get("mean", "zero")),
                converged=bool(entry.get("converged", True)),
                fallback=entry.get("fallback"),
                extra={k: v for k, v in entry.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputDataError(f"{p}: factor {asset!r}: invalid parameters: {exc}") from None
    return ParameterSet(
        factors=factors,
        created_at=str(raw.get("created_at", "")),
        data=dict(raw.get("data", {})),
        source=str(p),
    )
