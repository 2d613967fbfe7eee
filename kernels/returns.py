"""Daily return panels (SEMANTICS §2).

Every kernel takes and returns C-contiguous float64 arrays of shape ``(T, N)``
(days x symbols); a missing observation is NaN.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def simple_returns(close):
    """``r[t, i] = close[t, i] / close[t-1, i] - 1`` where both closes are finite.

    NaN otherwise and on day 0; equals ``pandas.DataFrame(close).pct_change(fill_method=None)``.
    """
    T, N = close.shape
    r = np.empty((T, N))
    r[:] = np.nan
    for t in range(1, T):
        for i in range(N):
            a = close[t - 1, i]
            b = close[t, i]
            if np.isfinite(a) and np.isfinite(b):
                r[t, i] = b / a - 1.0
    return r


@njit(cache=True, nogil=True)
def log_returns(r):
    """``l = log(1 + r)``; ``log1p`` keeps the digits of tiny returns."""
    T, N = r.shape
    out = np.empty((T, N))
    for t in range(T):
        for i in range(N):
            out[t, i] = np.log1p(r[t, i])
    return out


@njit(cache=True, nogil=True)
def carried_returns(close):
    """What a held position earns: ``q[t, i] = c[t, i] / c[t-1, i] - 1``, ``c`` the
    close carried forward over gaps.

    A gap day earns 0 and the day the price returns earns the whole move since the
    last close; after the last close ``q`` is 0. ``q`` is NaN before the first close
    (the recursion counts it as 0). Equals
    ``df.ffill().pct_change(fill_method=None)`` with the leading NaNs kept.
    """
    T, N = close.shape
    q = np.empty((T, N))
    q[:] = np.nan
    for i in range(N):
        last = np.nan
        for t in range(T):
            c = close[t, i]
            if np.isfinite(c):
                if np.isfinite(last):
                    q[t, i] = c / last - 1.0
                last = c
            elif np.isfinite(last):
                q[t, i] = 0.0
    return q


@njit(cache=True, nogil=True)
def mean_finite_by_day(r):
    """Each day's mean of its finite values ``(T,)``: their sum, in symbol order, over their
    count; NaN on a day with none. Equals pandas ``r_df.mean(axis=1)`` (which skips NaN)
    up to rounding. The one average behind every equal-weight market figure."""
    T, N = r.shape
    out = np.empty(T)
    out[:] = np.nan
    for t in range(T):
        s = 0.0
        n = 0
        for i in range(N):
            x = r[t, i]
            if np.isfinite(x):
                s += x
                n += 1
        if n > 0:
            out[t] = s / n
    return out


@njit(cache=True, nogil=True)
def equal_weight_market(r):
    """Market log return of ``market = "equal_weight"``: ``log(1 + mean of day t's finite r)``.

    NaN on a day with no finite return (day 0 always).
    """
    return np.log1p(mean_finite_by_day(r))
