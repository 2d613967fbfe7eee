"""Closes of a day-resampled panel: the Monte Carlo block bootstrap's one sequential step.

A sample is a sequence of source days ``days`` (``days[0] == 0``: day 0 has no
return to resample). Sample day ``t`` takes every symbol's simple return of
source day ``days[t]``, so the cross-section of a day stays together; each
symbol's closes are then compounded from its first close.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def rebuild_close(close, r, days):
    """Closes ``(len(days), N)`` of the resampled panel.

    For each symbol, with ``x = r[days[t], i]`` and ``last`` its latest rebuilt
    close (NaN before the first):

    * ``x`` finite: ``close = last * (1 + x)``, or ``first * (1 + x)`` when the
      symbol has no close yet (``first``: its first finite close in ``close``);
    * ``x`` NaN, the symbol has no close yet and ``close[days[t], i]`` is finite
      (the source day lists it, or follows one of its gaps): it lists at ``first``;
    * otherwise NaN: the symbol is missing on the source day, or the source day
      carries no measurable move (it follows a gap or is a listing day), so no
      return is invented; the portfolio's carried price bridges the gap.

    Every finite return of the result is therefore a source return of the same
    day ``days[t]`` for every symbol.
    """
    N = close.shape[1]
    T = days.shape[0]
    out = np.full((T, N), np.nan)
    for i in range(N):
        first = np.nan
        for t in range(close.shape[0]):
            if np.isfinite(close[t, i]):
                first = close[t, i]
                break
        if not np.isfinite(first):
            continue
        last = np.nan
        for t in range(T):
            j = days[t]
            x = r[j, i]
            if np.isfinite(x):
                base = last if np.isfinite(last) else first
                last = base * (1.0 + x)
                out[t, i] = last
            elif not np.isfinite(last) and np.isfinite(close[j, i]):
                last = first
                out[t, i] = last
    return out
