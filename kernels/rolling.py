"""Trailing-window features (SEMANTICS §3).

Conventions shared by every kernel here:

* A window ``w`` at day ``t`` counts the ``w`` observations ``x[t-w+1 .. t]``:
  the value at ``t`` uses data up to and including ``t`` and nothing after.
* The value is NaN unless all ``w`` observations are finite (pandas'
  ``min_periods = w``); a NaN anywhere in the window makes it NaN.
* Each window is recomputed from its own values with a two-pass (centred)
  formula instead of running sums: running sums of powers cancel badly for the
  third and fourth moments, the two-pass result is exact to a few ulps, and a
  recompute costs ``w`` reads per cell, which is cheaper than the features'
  consumers (one ranking per day) for the windows used in practice.
* A window whose values are all equal has zero variance: ``std`` is exactly 0,
  skewness, kurtosis and a beta against a constant market are NaN (pandas' rule).
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _window_all_equal(x, lo, hi, i):
    first = x[lo, i]
    for u in range(lo + 1, hi):
        if x[u, i] != first:
            return False
    return True


@njit(cache=True, nogil=True)
def _window_mean(x, lo, hi, i):
    s = 0.0
    for u in range(lo, hi):
        s += x[u, i]
    return s / (hi - lo)


@njit(cache=True, nogil=True)
def rolling_std(x, w):
    """Sample standard deviation over ``w`` days, ddof = 1.

    Equals ``pandas.DataFrame(x).rolling(w).std()``. Requires ``w >= 2``.
    """
    T, N = x.shape
    out = np.full((T, N), np.nan)
    for i in range(N):
        run = 0
        for t in range(T):
            run = run + 1 if np.isfinite(x[t, i]) else 0
            if run < w:
                continue
            lo = t - w + 1
            if _window_all_equal(x, lo, t + 1, i):
                out[t, i] = 0.0
                continue
            m = _window_mean(x, lo, t + 1, i)
            s2 = 0.0
            for u in range(lo, t + 1):
                d = x[u, i] - m
                s2 += d * d
            out[t, i] = np.sqrt(s2 / (w - 1))
    return out


@njit(cache=True, nogil=True)
def rolling_skew(x, w):
    """Bias-corrected sample skewness over ``w`` days (the adjusted
    Fisher-Pearson G1): ``sqrt(n(n-1))/(n-2) * m3 / m2**1.5`` with ``m_k`` the
    biased central moments.

    Equals ``pandas.DataFrame(x).rolling(w).skew()``. Requires ``w >= 3``.
    """
    T, N = x.shape
    out = np.full((T, N), np.nan)
    n = float(w)
    adj = np.sqrt(n * (n - 1.0)) / (n - 2.0)
    for i in range(N):
        run = 0
        for t in range(T):
            run = run + 1 if np.isfinite(x[t, i]) else 0
            if run < w:
                continue
            lo = t - w + 1
            if _window_all_equal(x, lo, t + 1, i):
                continue
            m = _window_mean(x, lo, t + 1, i)
            s2 = 0.0
            s3 = 0.0
            for u in range(lo, t + 1):
                d = x[u, i] - m
                d2 = d * d
                s2 += d2
                s3 += d2 * d
            m2 = s2 / n
            m3 = s3 / n
            out[t, i] = adj * m3 / (m2 * np.sqrt(m2))
    return out


@njit(cache=True, nogil=True)
def rolling_kurt(x, w):
    """Bias-corrected sample EXCESS kurtosis over ``w`` days (G2; 0 for a normal):
    ``n(n+1)(n-1)/((n-2)(n-3)) * S4/S2**2 - 3(n-1)**2/((n-2)(n-3))`` with
    ``S_k`` the sums of centred powers.

    Equals ``pandas.DataFrame(x).rolling(w).kurt()``. Requires ``w >= 4``.
    """
    T, N = x.shape
    out = np.full((T, N), np.nan)
    n = float(w)
    a = n * (n + 1.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
    b = 3.0 * (n - 1.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
    for i in range(N):
        run = 0
        for t in range(T):
            run = run + 1 if np.isfinite(x[t, i]) else 0
            if run < w:
                continue
            lo = t - w + 1
            if _window_all_equal(x, lo, t + 1, i):
                continue
            m = _window_mean(x, lo, t + 1, i)
            s2 = 0.0
            s4 = 0.0
            for u in range(lo, t + 1):
                d = x[u, i] - m
                d2 = d * d
                s2 += d2
                s4 += d2 * d2
            out[t, i] = a * s4 / (s2 * s2) - b
    return out


@njit(cache=True, nogil=True)
def rolling_sum(x, w):
    """Sum over ``w`` days (momentum on log returns).

    Equals ``pandas.DataFrame(x).rolling(w).sum()``. Requires ``w >= 1``.
    """
    T, N = x.shape
    out = np.full((T, N), np.nan)
    for i in range(N):
        run = 0
        for t in range(T):
            run = run + 1 if np.isfinite(x[t, i]) else 0
            if run < w:
                continue
            s = 0.0
            for u in range(t - w + 1, t + 1):
                s += x[u, i]
            out[t, i] = s
    return out


@njit(cache=True, nogil=True)
def rolling_mean(x, w):
    """Mean over ``w`` days (carry on daily funding).

    Equals ``pandas.DataFrame(x).rolling(w).mean()``. Requires ``w >= 1``.
    """
    T, N = x.shape
    out = np.full((T, N), np.nan)
    for i in range(N):
        run = 0
        for t in range(T):
            run = run + 1 if np.isfinite(x[t, i]) else 0
            if run >= w:
                out[t, i] = _window_mean(x, t - w + 1, t + 1, i)
    return out


@njit(cache=True, nogil=True)
def rolling_beta(x, m, w):
    """``cov(x_i, m) / var(m)`` over ``w`` days, both ddof = 1 (they cancel).

    ``m`` is the market's log return, shape ``(T,)``. NaN unless the ``w`` days
    are finite for both the symbol and the market, and where the market is
    constant over the window. Equals
    ``df[i].rolling(w).cov(m) / m.rolling(w).var()``. Requires ``w >= 2``.
    """
    T, N = x.shape
    out = np.full((T, N), np.nan)
    for i in range(N):
        run = 0
        for t in range(T):
            run = run + 1 if (np.isfinite(x[t, i]) and np.isfinite(m[t])) else 0
            if run < w:
                continue
            lo = t - w + 1
            mx = _window_mean(x, lo, t + 1, i)
            mm = 0.0
            equal = True
            for u in range(lo, t + 1):
                mm += m[u]
                equal = equal and m[u] == m[lo]
            if equal:
                continue
            mm /= w
            sxm = 0.0
            smm = 0.0
            for u in range(lo, t + 1):
                dm = m[u] - mm
                sxm += (x[u, i] - mx) * dm
                smm += dm * dm
            out[t, i] = sxm / smm
    return out


@njit(cache=True, nogil=True)
def days_from_high(close, w):
    """Days since the highest close of ``close[t-w+1 .. t]``: 0 when today is the
    high, a tie goes to the latest day. NaN unless all ``w`` closes are finite.

    Equals ``df.rolling(w).apply(lambda a: np.argmax(a[::-1]), raw=True)``
    (``argmax`` of the reversed window finds the latest of tied highs).
    """
    T, N = close.shape
    out = np.full((T, N), np.nan)
    for i in range(N):
        run = 0
        for t in range(T):
            run = run + 1 if np.isfinite(close[t, i]) else 0
            if run < w:
                continue
            best = t
            hi = close[t, i]
            for u in range(t - 1, t - w, -1):
                if close[u, i] > hi:
                    hi = close[u, i]
                    best = u
            out[t, i] = float(t - best)
    return out
