"""Backtesting of the margin model: replay, coverage tests, the ES test Z2, procyclicality, report.

:func:`riskmodel.backtest.replay.replay` runs the engine date by date over static portfolios
(the book of a positions file, or :mod:`riskmodel.backtest.portfolios`) and produces a long
table (one row per date and netting set); :func:`riskmodel.backtest.statistics.summarise` turns
it into a JSON-ready summary and :func:`riskmodel.backtest.report.write_report` into plots and a
self-contained HTML page. :mod:`riskmodel.backtest.run` is the ``riskmodel backtest`` command:
inputs, checks, replay, summary and atomic outputs (imported on demand: it pulls in the whole
engine and matplotlib).
"""

from riskmodel.backtest.statistics import (
    acerbi_szekely_z2,
    christoffersen_independence,
    conditional_coverage,
    flat_rate_equivalent,
    kupiec_pof,
    max_increase,
    peak_to_trough,
    summarise,
    traffic_light,
    z2_critical_value,
)

__all__ = [
    "acerbi_szekely_z2",
    "christoffersen_independence",
    "conditional_coverage",
    "flat_rate_equivalent",
    "kupiec_pof",
    "max_increase",
    "peak_to_trough",
    "summarise",
    "traffic_light",
    "z2_critical_value",
]
