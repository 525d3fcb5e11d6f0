"""The run-time volatility fitter: what ``eod`` without ``--params``, the backtest's refits and
the parameter studies estimate with (the engine never imports calibration).

Light to import: :mod:`calibration.estimate` imports arch (about 2 s), so it is imported on the
first fit, and a run on EWMA never pays for it.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.scenarios.model import VolatilityFitter
from riskmodel.volatility.params import FactorParams

__all__ = ["default_fitter"]


def default_fitter() -> VolatilityFitter:
    """The GARCH fitter of :mod:`calibration` under the run's ``[calibration]`` settings: each
    factor fitted on its sample, proxies resolved as ``calibrate`` resolves them."""

    def fit(samples: Mapping[str, pd.Series], config: RunConfig) -> dict[str, FactorParams]:
        from calibration.estimate import Spec
        from calibration.runner import fit_samples

        return fit_samples(samples, Spec.from_config(config.calibration, config.ewma_lambda))

    return fit
