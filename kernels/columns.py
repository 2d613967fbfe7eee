"""Transforms of a data column into a feature (``factor = "column:NAME"``, README "Any data
column as a feature").

Conventions shared by every kernel here (those of ``kernels.rolling``):

* ``x`` is a C-contiguous float64 ``(T, N)`` column; the value at day ``t`` uses
  ``x[.. t]`` only, nothing after ``t``.
* A window ``w`` at day ``t`` is ``x[t-w+1 .. t]`` (``mean``, ``zscore``) or
  ``x[t-w .. t]`` (``change``, ``pct_change``: the ``w + 1`` values from the one the
  change is measured from); the value is NaN unless every value of the window is
  finite (a window reaching before day 0 is incomplete).
* Sums are recomputed per window, exactly as written (no running sum whose rounding
  would turn exact ties into noise); a count of consecutive finite values ending at
  ``t`` decides completeness in O(1).
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def column_mean(x, w):
    """Mean of ``x[t-w+1 .. t]``, NaN unless all ``w`` are finite: pandas
    ``df.rolling(w).mean()`` (``min_periods = w``)."""
    T, N = x.shape
    out = np.full((T, N), np.nan)
    for i in range(N):
        run = 0  # consecutive finite values ending at t
        for t in range(T):
            if np.isfinite(x[t, i]):
                run += 1
            else:
                run = 0
            if run >= w:
                s = 0.0
                for u in range(t - w + 1, t + 1):
                    s += x[u, i]
                out[t, i] = s / w
    return out


@njit(cache=True, nogil=True)
def column_change(x, w):
    """``x[t] - x[t-w]``, NaN unless all ``w + 1`` values ``x[t-w .. t]`` are finite: pandas
    ``df.diff(w).where(df.rolling(w + 1).count() == w + 1)``."""
    T, N = x.shape
    out = np.full((T, N), np.nan)
    for i in range(N):
        run = 0
        for t in range(T):
            if np.isfinite(x[t, i]):
                run += 1
            else:
                run = 0
            if run > w:
                out[t, i] = x[t, i] - x[t - w, i]
    return out


@njit(cache=True, nogil=True)
def column_pct_change(x, w):
    """``x[t] / x[t-w] - 1``, NaN unless all ``w + 1`` values ``x[t-w .. t]`` are finite, and
    NaN where ``x[t-w]`` is 0: pandas ``df.pct_change(w)`` (no fill) ``.where(df.rolling(w +
    1).count() == w + 1)`` with its infinities (a division by 0) made NaN."""
    T, N = x.shape
    out = np.full((T, N), np.nan)
    for i in range(N):
        run = 0
        for t in range(T):
            if np.isfinite(x[t, i]):
                run += 1
            else:
                run = 0
            if run > w and x[t - w, i] != 0.0:
                out[t, i] = x[t, i] / x[t - w, i] - 1.0
    return out


@njit(cache=True, nogil=True)
def column_zscore(x, w):
    """``(x[t] - mean) / std`` over ``x[t-w+1 .. t]`` (``std`` with ddof = 1, both two-pass
    over the window), NaN unless all ``w >= 2`` values are finite and NaN where the window is
    constant (its std is 0, detected exactly as all values equal): pandas
    ``(df - df.rolling(w).mean()) / df.rolling(w).std()`` with a zero std made NaN."""
    T, N = x.shape
    out = np.full((T, N), np.nan)
    for i in range(N):
        run = 0
        for t in range(T):
            if np.isfinite(x[t, i]):
                run += 1
            else:
                run = 0
            if run < w:
                continue
            lo = t - w + 1
            s = 0.0
            constant = True
            for u in range(lo, t + 1):
                s += x[u, i]
                if x[u, i] != x[t, i]:
                    constant = False
            if constant:
                continue
            m = s / w
            ss = 0.0
            for u in range(lo, t + 1):
                d = x[u, i] - m
                ss += d * d
            if ss > 0.0:
                out[t, i] = (x[t, i] - m) / np.sqrt(ss / (w - 1))
    return out
