"""Any data column as a feature: ``factor = "column:NAME"`` (README "Any data column as a feature").

A numeric column of the input table beyond ``close`` (open interest, supply, a
sentiment score; the optional ``volume``, ``market_cap`` and ``funding_rate`` too)
is ranked through one of five transforms, parameter ``transform`` over ``window``
(``w``), the value at day ``t`` from ``x[.. t]`` only and NaN unless every value
of its window is finite:

* ``level``: ``x[t]`` (no window);
* ``mean``: the mean of ``x[t-w+1 .. t]``;
* ``change``: ``x[t] - x[t-w]`` (window ``x[t-w .. t]``);
* ``pct_change``: ``x[t] / x[t-w] - 1``, NaN where ``x[t-w]`` is 0;
* ``zscore``: ``(x[t] - mean) / std`` over ``x[t-w+1 .. t]``, std with ddof = 1
  (``w >= 2``), NaN where the window is constant.

The factor ``column:NAME`` is built on first use (a resolver of the registry), so
it is a choice of ``factor`` like any other and is found again when results are
read back. Its cache key is ``("column:NAME", transform[, window])``: a feature is
computed once per study and shared by every configuration that ranks it. Its
default long side is ``"high"`` (buy the largest values; ``long = "low"`` flips it)
and its default window 30.

    >>> import numpy as np
    >>> from sweep import factors
    >>> f = factors.get("column:open_interest")
    >>> f.long, f.window, f.cache_key({"transform": "change", "window": 7})
    ('high', 30, ('column:open_interest', ('transform', 'change'), ('window', 7)))
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from kernels import columns as K

from sweep.core.errors import SweepError
from sweep.data.panel import Panel
from sweep.factors.registry import Factor, add_resolver

PREFIX = "column:"
DEFAULT_WINDOW = 30
# transform -> (kernel of (x, window), or None for the level itself; smallest window)
TRANSFORMS: dict[str, tuple[Callable[[np.ndarray, int], np.ndarray] | None, int]] = {
    "level": (None, 1),
    "mean": (K.column_mean, 1),
    "change": (K.column_change, 1),
    "pct_change": (K.column_pct_change, 1),
    "zscore": (K.column_zscore, 2),
}


def apply(x: np.ndarray, how: str, window: int | None = None) -> np.ndarray:
    """Transform ``how`` of the ``(T, N)`` column ``x`` over ``window``, a new array."""
    kernel, _ = TRANSFORMS[how]
    x = np.ascontiguousarray(x, dtype=np.float64)
    return x.copy() if kernel is None else kernel(x, int(window))


def _reads(p: dict[str, Any]) -> tuple[str, ...]:
    # The level has no window: configurations that differ only in window share its feature.
    return ("transform",) if p["transform"] == "level" else ("transform", "window")


def column_factor(column: str) -> Factor:
    """The factor ``column:<column>`` (not registered: ``sweep.factors.get`` registers it)."""
    name = PREFIX + column

    def feature(panel: Panel, transform: str, window: int | None = None) -> np.ndarray:
        return apply(panel.field(column, f"factor '{name}'"), transform, window)

    def check(panel: Panel, p: dict[str, Any], where: str) -> None:
        if column in panel.non_numeric:
            raise SweepError(f"{where}: factor '{name}': column '{column}' of {panel.source} is not numeric "
                             f"(type {panel.non_numeric[column]})")
        if not panel.has(column):
            raise SweepError(f"{where}: factor '{name}': {panel.source} has no column '{column}' (its "
                             f"columns: {', '.join(sorted(panel.fields))})")
        low = TRANSFORMS[p["transform"]][1]
        if p["transform"] != "level" and p["window"] < low:
            raise SweepError(f"{where}: window = {p['window']} is below the minimum {low} of the "
                             f"{p['transform']} transform of factor '{name}'")

    feature.__doc__ = f"Column '{column}' transformed (level, mean, change, pct_change, zscore)."
    return Factor(name, feature, window=DEFAULT_WINDOW, long="high", min_window=1,
                  params=("transform", "window"), reads=_reads, check=check)


def resolve(name: str) -> Factor | None:
    """The factor of ``column:NAME`` names; None for any other name."""
    if not name.startswith(PREFIX):
        return None
    column = name[len(PREFIX):]
    if not column or column.strip() != column:
        raise SweepError(f"name a column after '{PREFIX}' (e.g. 'column:open_interest')")
    if column in ("date", "symbol"):
        raise SweepError(f"'{column}' is a key of the table, not a numeric column")
    return column_factor(column)


add_resolver(resolve)
