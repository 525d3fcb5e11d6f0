"""What happens when margin is not enough: partial liquidation of a set through the engine
(:mod:`riskmodel.liquidation.partial`), the venue liquidation map and cascades over a finished
run (:mod:`riskmodel.liquidation.map`, written by :mod:`riskmodel.liquidation.map_run`)."""
