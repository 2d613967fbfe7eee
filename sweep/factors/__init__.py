"""Factors: a registry of ``Factor`` records (see ``registry``); the built-ins of
SEMANTICS §4 register on import (``builtin``)."""

from sweep.factors.registry import FACTORS, Factor, compute, get, names, register, unregister
from sweep.factors import builtin  # noqa: F401  (registers the built-in factors)

__all__ = ["FACTORS", "Factor", "compute", "get", "names", "register", "unregister"]
