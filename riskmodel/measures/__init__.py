"""VaR / expected-shortfall / Euler-contribution tail kernels over netted portfolios.

``tail_measures`` is the validated entry point; ``var_es`` the one-vector reference written from
the definition. The definition itself is in :mod:`riskmodel.measures.kernels`.
"""

from riskmodel.measures.api import TailResult, tail_measures
from riskmodel.measures.twins import var_es

__all__ = ["TailResult", "tail_measures", "var_es"]
