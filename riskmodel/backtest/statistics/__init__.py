"""Backtest statistics: VaR coverage tests, the ES test Z2, procyclicality and flat-rate benchmarks.

Conventions (DESIGN.md): losses are positive; ``var`` and ``es`` are positive numbers at tail
probability ``alpha = 1 - confidence``; an *exception* (hit) on date ``t`` is
``realized_loss_t > var_t`` (strict), a *margin breach* ``realized_loss_t > initial_margin_t``.

One concern a module; every function is pure (arrays in, numbers out) except :func:`summarise`:

* :mod:`.coverage`: Kupiec (1995) POF, Christoffersen (1998) independence and conditional
  coverage, the Basel (1996) traffic light, and the independence caveat of all these tests;
* :mod:`.es_test`: the Acerbi-Szekely (2014) Z2 test of expected shortfall, its matched null
  distribution, simulated p-values and critical values;
* :mod:`.procyclicality`: peak-to-trough ratio and largest increases of a margin series
  (CPMI-IOSCO 2015 disclosures, ESMA 2018 anti-procyclicality guidelines);
* :mod:`.flat_rate`: the lowest flat rate on gross notional with the model's breach count;
* :mod:`.realisable`: the flat rate a venue could have run (re-set from the history it had)
  and its coverage equivalent;
* :mod:`.table`: the columns and checks of the backtest table (one row per date and netting
  set);
* :mod:`.summary`: :func:`summarise`, which turns that table into a JSON-ready summary.
"""

from riskmodel.backtest.statistics.coverage import (
    TrafficLight,
    christoffersen_independence,
    conditional_coverage,
    independence_lr_from_counts,
    kupiec_pof,
    traffic_light,
    traffic_light_bounds,
    transition_counts,
)
from riskmodel.backtest.statistics.es_test import (
    LossSampler,
    MatchedLossDistribution,
    acerbi_szekely_z2,
    matched_loss_distribution,
    z2_critical_value,
    z2_statistic,
)
from riskmodel.backtest.statistics.flat_rate import FlatRateEquivalent, flat_rate_equivalent
from riskmodel.backtest.statistics.procyclicality import max_increase, peak_to_trough
from riskmodel.backtest.statistics.realisable import (
    RealisableRates,
    realisable_equivalent,
    realisable_flat_rates,
)
from riskmodel.backtest.statistics.summary import summarise
from riskmodel.backtest.statistics.table import REQUIRED_COLUMNS

__all__ = [
    "FlatRateEquivalent",
    "LossSampler",
    "MatchedLossDistribution",
    "REQUIRED_COLUMNS",
    "RealisableRates",
    "TrafficLight",
    "acerbi_szekely_z2",
    "christoffersen_independence",
    "conditional_coverage",
    "flat_rate_equivalent",
    "independence_lr_from_counts",
    "kupiec_pof",
    "matched_loss_distribution",
    "max_increase",
    "peak_to_trough",
    "realisable_equivalent",
    "realisable_flat_rates",
    "summarise",
    "traffic_light",
    "traffic_light_bounds",
    "transition_counts",
    "z2_critical_value",
    "z2_statistic",
]
