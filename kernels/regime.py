"""The regime filter of SEMANTICS §5: a market level and two moving averages of it.

The filter is one boolean a day, shared by every configuration with the same
(regime, fast, slow, market); the engine folds it into the daily ranking (a
day where it does not hold has no eligible symbol, so every selection mode
gives ``k = 0``: flat).
"""

import numpy as np
from numba import njit

from .returns import mean_finite_by_day

BEAR = -1
BULL = 1


@njit(cache=True, nogil=True)
def equal_weight_level(r):
    """The equal-weight market index ``M`` ``(T,)`` of ``market = "equal_weight"``.

    Convention: ``M_0 = 1``, ``M_t = M_{t-1} * (1 + mean of day t's finite r)``
    (the sum over the count, symbols in order), unchanged on a day without a
    finite ``r``. Equals pandas
    ``(1 + r_df.mean(axis=1).fillna(0)).cumprod()`` with the first value set to 1,
    up to rounding.
    """
    m = mean_finite_by_day(r)
    out = np.empty(r.shape[0])
    level = 1.0
    for t in range(r.shape[0]):
        if t > 0 and np.isfinite(m[t]):
            level = level * (1.0 + m[t])
        out[t] = level
    return out


@njit(cache=True, nogil=True)
def regime_holds(level, fast, slow, sign):
    """Days ``(T,)`` on which the regime holds: ``sign * (A_fast - A_slow) > 0``.

    Convention: ``A_f(t)`` is the sum of the ``f`` levels ``level[t-f+1 .. t]``
    summed afresh in day order, divided by ``f``; it is defined when
    ``t - f + 1 >= 0`` and all ``f`` levels are finite. ``sign = BEAR`` (-1)
    holds where ``A_fast < A_slow``, ``BULL`` (+1) where ``A_fast > A_slow``;
    an exact tie or an undefined average holds neither. Equals pandas
    ``s.rolling(fast).mean() < s.rolling(slow).mean()`` (for bear) up to the
    rounding of pandas' running sums, which can break an exact tie either way.
    """
    T = level.shape[0]
    out = np.zeros(T, dtype=np.bool_)
    for t in range(slow - 1, T):
        a_fast = 0.0
        a_slow = 0.0
        ok = True
        for u in range(t - slow + 1, t + 1):
            x = level[u]
            if not np.isfinite(x):
                ok = False
                break
            a_slow += x
        if not ok:
            continue
        for u in range(t - fast + 1, t + 1):
            a_fast += level[u]
        a_fast = a_fast / fast
        a_slow = a_slow / slow
        out[t] = a_fast < a_slow if sign == BEAR else a_fast > a_slow
    return out
