"""Report writers: every page (HTML, Markdown) and plot (PNG) a person reads.

The top of the engine's flow, next to the CLI: these modules may import any of ``riskmodel``
below the orchestration (the margin policy, the volatility parameters, the output staging), and
nothing under ``riskmodel/`` imports them but the one orchestration call that writes each report.
They take plain data (tables, series, dicts of numbers); the statistics stay with the modules
that own them (:mod:`riskmodel.backtest.statistics`, :mod:`calibration.diagnostics`,
:mod:`calibration.studies`).

The layer every page uses:

* :mod:`.page`: Jinja2 rendering of ``templates/`` (``base.html.j2`` with the one stylesheet
  ``report.css`` inlined, ``macros.html.j2``), figures embedded as PNG data URIs with title,
  alt text and checked axis labels (:func:`~.page.embed`), tables of formatted cells that
  scroll inside their own box (:func:`~.page.frame_table`);
* :mod:`.formats`: numbers for people (thousands separators, units, percentages, signs);
* :mod:`.columns`: every table column named and formatted once;
* :mod:`.common`: bare Agg figures (no pyplot state) and PNG data URIs (PNG files are
  written by :func:`~.page.embed`).

The pages, each opening with its verdict and headline numbers in words, then its figures,
then the detail:

* :mod:`.eod` (with :mod:`.eod_data`, :mod:`.eod_changes`, :mod:`.eod_figures`): the
  end-of-day report of ``riskmodel eod`` and ``riskmodel demo``;
* :mod:`.backtest` (with :mod:`.backtest_plots`): ``riskmodel backtest``;
* :mod:`.calibration` (with :mod:`.calibration_data`, :mod:`.calibration_plots`): the
  diagnostics of ``riskmodel calibrate --report``, HTML and Markdown;
* :mod:`.liquidation_map`: ``riskmodel liquidation-map``;
* :mod:`.study`: the coverage-against-cost frontier of ``riskmodel study``.
"""
