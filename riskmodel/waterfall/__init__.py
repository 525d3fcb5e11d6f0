"""When margin is not enough: the default waterfall of a finished ``eod`` run.

Scenarios (:mod:`~riskmodel.waterfall.scenarios`) move the run's prices instantly; the engine
decides at the moved prices which netting sets end in liquidation and what the liquidation
stage closes (:mod:`~riskmodel.waterfall.remark`, :mod:`~riskmodel.waterfall.closeout`,
:mod:`~riskmodel.waterfall.rounds`, with the cascade's price impact); close-outs pay slippage
(:mod:`~riskmodel.waterfall.slippage`) and penalties; bankruptcy losses go down the waterfall
(:mod:`~riskmodel.waterfall.allocation`: insurance fund, ADL by the kernel of
:mod:`~riskmodel.waterfall.kernels`, socialised, uncovered); the clearing-house view sizes the
cover-N default fund over members (:mod:`~riskmodel.waterfall.cover`,
:mod:`~riskmodel.waterfall.members`); :mod:`~riskmodel.waterfall.run` runs it all and writes the
outputs.
"""

from riskmodel.waterfall.run import WaterfallResult, run_waterfall, write_waterfall

__all__ = ["WaterfallResult", "run_waterfall", "write_waterfall"]
