"""Parameter factory: estimation of volatility and dependence parameters with arch."""
