"""riskmodel: a portfolio-margin engine.

GARCH/EWMA-filtered historical simulation, plain historical simulation and (later) Monte Carlo
scenarios feed VaR / expected-shortfall tail kernels over netted portfolios; the margin policy turns
them into initial and maintenance margin, status and margin calls.
"""

__version__ = "0.1.0"
