"""The samples of a Monte Carlo study (``sweep.study.monte_carlo``): seeded random streams, the
stationary block bootstrap of days, a panel rebuilt from resampled days, random subperiods."""

from __future__ import annotations

import numpy as np

from kernels.bootstrap import rebuild_close

from sweep.core.errors import SweepError
from sweep.data.panel import Panel, panel_from_arrays

# Fields a bootstrap sample carries: the ones read by value, day by day.
RESAMPLED_FIELDS = ("volume", "market_cap", "funding_rate")


def sample_rng(seed: int, sample: int) -> np.random.Generator:
    """The random stream of sample ``sample``: a function of ``(seed, sample)`` only."""
    return np.random.default_rng([seed, sample])


def bootstrap_days(n_days: int, block_days: int, rng: np.random.Generator) -> np.ndarray:
    """Source day of each of ``n_days`` sample days, by a stationary bootstrap of days ``1 .. n_days - 1``.

    Day 0 maps to itself (it has no return). Each later day starts a new block
    (at a uniform random source day) with probability ``1 / block_days``, else
    continues with the source day after the previous one, wrapping from the
    last day to day 1; the first resampled day always starts a block.

    >>> bootstrap_days(6, 10**9, np.random.default_rng(0))  # one block: a rotation
    array([0, 4, 5, 1, 2, 3])
    """
    n = n_days - 1  # the pool: source days 1 .. n_days - 1
    if n < 1:
        raise SweepError(f"a block bootstrap needs at least 2 days of data, not {n_days}")
    u = rng.random(n)
    starts = rng.integers(0, n, size=n)
    new = u < 1.0 / block_days
    new[0] = True
    block = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    offset = np.arange(n) - first[block]
    days = np.empty(n_days, dtype=np.int64)
    days[0] = 0
    days[1:] = 1 + (starts[first][block] + offset) % n
    return days


def resample_panel(panel: Panel, days: np.ndarray, source: str | None = None) -> Panel:
    """The panel whose day ``t`` is source day ``days[t]`` for every symbol (``len(days)`` days).

    Closes are rebuilt from the source's simple returns (``kernels.bootstrap``);
    ``volume``, ``market_cap`` and ``funding_rate`` are taken from the same days.
    """
    n = len(days)
    days = np.ascontiguousarray(days, dtype=np.int64)
    close = rebuild_close(panel.close[: int(days.max()) + 1], panel.simple_returns, days)
    fields = {name: panel.fields[name][days] for name in RESAMPLED_FIELDS if name in panel.fields}
    return panel_from_arrays(panel.dates[:n], panel.symbols, close,
                             source=source or f"{panel.source} (resampled)", **fields)


def subperiod_window(s: int, e: int, length: int, rng: np.random.Generator) -> tuple[int, int]:
    """Day indices ``(a, a + length - 1)`` of a window inside ``[s, e]``, ``a`` uniform."""
    a = s + int(rng.integers(0, e - s - length + 2))
    return a, a + length - 1


__all__ = ["RESAMPLED_FIELDS", "bootstrap_days", "resample_panel", "sample_rng", "subperiod_window"]
