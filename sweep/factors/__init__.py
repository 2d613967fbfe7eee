"""Factors: a registry of ``Factor`` records (see ``registry``); the built-ins of
SEMANTICS §4 register on import (``builtin``)."""

from sweep.factors.registry import FACTORS, Factor, compute, get, names, register, unregister
from sweep.factors import builtin  # noqa: F401  (registers the built-in factors)
from sweep.factors import trend  # noqa: F401  (registers ewmac and breakout, SEMANTICS §11)
from sweep.factors import columns  # noqa: F401  (resolves "column:NAME" factors)
from sweep.factors.user import FactorPanel, factor  # noqa: F401  (a researcher's own factors)

__all__ = ["FACTORS", "Factor", "compute", "get", "names", "register", "unregister"]
