"""Report writers: every page (HTML, Markdown) and plot (PNG) a person reads.

The top of the engine's flow, next to the CLI: these modules may import any of ``riskmodel``
(the backtest table checks, the volatility parameters, the output staging), and nothing under
``riskmodel/`` imports them but the one orchestration call that writes each report. They take
plain data (tables, series, dicts of numbers); the statistical tests stay with the modules that
own them (:mod:`riskmodel.backtest.statistics`, :mod:`calibration.diagnostics`).

* :mod:`.backtest`: the backtest plots and page (``riskmodel backtest``);
* :mod:`.calibration`: the volatility calibration diagnostics, Markdown and HTML (the
  statistics are :mod:`calibration.diagnostics`', which calls it);
* :mod:`.liquidation_map`: the liquidation-map heatmap and page;
* :mod:`.common`: what they share (bare Agg figures, PNG files, PNGs inlined as data URIs).
"""
