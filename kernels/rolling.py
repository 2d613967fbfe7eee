"""Trailing-window features (SEMANTICS §3).

Conventions shared by every kernel here:

* A window ``w`` at day ``t`` counts the ``w`` observations ``x[t-w+1 .. t]``:
  the value at ``t`` uses data up to and including ``t`` and nothing after.
* The value is NaN unless all ``w`` observations are finite (pandas'
  ``min_periods = w``); a NaN anywhere in the window makes it NaN.
* Moments are centred on the window's mean, which is kept as a running sum
  with Kahan compensation (restarted at every gap): one pass over the window
  then sums the centred powers. Running sums of the powers themselves would be
  O(1) per day but cancel badly in the third and fourth moments; centring
  keeps every result within a few ulps of the exact two-pass value, and an
  error in the mean only enters the variance at second order.
* A window whose values are all equal has zero variance, detected exactly (a
  count of equal consecutive values), not from a rounded variance: ``std`` is
  exactly 0; skewness, kurtosis and a beta against a constant market are NaN
  (pandas' rule).
* Sums and means (momentum, carry) are recomputed per window, exactly: their
  windows are short, and a running sum would turn exact ties (two coins with
  identical returns, a stablecoin's zeros) into rounding noise that reorders
  the ranking.
"""

import numpy as np
from numba import njit

STD, SKEW, KURT = 0, 1, 2


@njit(inline="always")
def _kahan_add(total, comp, v):
    """``total + v`` with the compensation term carried in ``comp``."""
    y = v - comp
    t = total + y
    return t, (t - total) - y


@njit(inline="always")
def _centred_sums(x, lo, hi, i, m):
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    for u in range(lo, hi):
        d = x[u, i] - m
        d2 = d * d
        s2 += d2
        s3 += d2 * d
        s4 += d2 * d2
    return s2, s3, s4


@njit(cache=True, nogil=True)
def _moment_windows(x, w, kind):
    T, N = x.shape
    out = np.empty((T, N))
    out[:] = np.nan
    n = float(w)
    for i in range(N):
        run = 0  # consecutive finite values ending at t
        same = 0  # consecutive equal values ending at t
        total = 0.0
        comp = 0.0
        absum = 0.0  # sum of |updates| since the running sum was exact: bounds its error
        for t in range(T):
            v = x[t, i]
            if not np.isfinite(v):
                run = 0
                same = 0
                total = comp = absum = 0.0
                continue
            same = same + 1 if run > 0 and v == x[t - 1, i] else 1
            run += 1
            total, comp = _kahan_add(total, comp, v)
            absum += abs(v)
            if run > w:
                total, comp = _kahan_add(total, comp, -x[t - w, i])
                absum += abs(x[t - w, i])
            if run < w:
                continue
            if same >= w:
                if kind == STD:
                    out[t, i] = 0.0
                continue
            lo = t - w + 1
            s2, s3, s4 = _centred_sums(x, lo, t + 1, i, total / n)
            # Guard: when the running mean's error bound (2 eps * absum / n) is not
            # negligible next to the window's spread (a huge value has left the
            # window), make the sum exact again and redo the pass.
            err = 4.5e-16 * absum / n
            if err * err * n > 1e-24 * s2:
                total = 0.0
                absum = 0.0
                for u in range(lo, t + 1):
                    total += x[u, i]
                    absum += abs(x[u, i])
                comp = 0.0
                s2, s3, s4 = _centred_sums(x, lo, t + 1, i, total / n)
            if kind == STD:
                out[t, i] = np.sqrt(s2 / (n - 1.0))
            elif kind == SKEW:
                m2 = s2 / n
                out[t, i] = np.sqrt(n * (n - 1.0)) / (n - 2.0) * (s3 / n) / (m2 * np.sqrt(m2))
            else:
                a = n * (n + 1.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
                b = 3.0 * (n - 1.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
                out[t, i] = a * s4 / (s2 * s2) - b
    return out


@njit(cache=True, nogil=True)
def rolling_std(x, w):
    """Sample standard deviation over ``w`` days, ddof = 1.

    Equals ``pandas.DataFrame(x).rolling(w).std()``. Requires ``w >= 2``.
    """
    return _moment_windows(x, w, STD)


@njit(cache=True, nogil=True)
def rolling_skew(x, w):
    """Bias-corrected sample skewness over ``w`` days (the adjusted
    Fisher-Pearson G1): ``sqrt(n(n-1))/(n-2) * m3 / m2**1.5`` with ``m_k`` the
    biased central moments.

    Equals ``pandas.DataFrame(x).rolling(w).skew()``. Requires ``w >= 3``.
    """
    return _moment_windows(x, w, SKEW)


@njit(cache=True, nogil=True)
def rolling_kurt(x, w):
    """Bias-corrected sample EXCESS kurtosis over ``w`` days (G2; 0 for a normal):
    ``n(n+1)(n-1)/((n-2)(n-3)) * S4/S2**2 - 3(n-1)**2/((n-2)(n-3))`` with
    ``S_k`` the sums of centred powers.

    Equals ``pandas.DataFrame(x).rolling(w).kurt()``. Requires ``w >= 4``.
    """
    return _moment_windows(x, w, KURT)


@njit(cache=True, nogil=True)
def _window_mean(x, lo, hi, i):
    s = 0.0
    for u in range(lo, hi):
        s += x[u, i]
    return s / (hi - lo)


@njit(cache=True, nogil=True)
def rolling_sum(x, w):
    """Sum over ``w`` days (momentum on log returns).

    Equals ``pandas.DataFrame(x).rolling(w).sum()``. Requires ``w >= 1``.
    """
    T, N = x.shape
    out = np.empty((T, N))
    out[:] = np.nan
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
    out = np.empty((T, N))
    out[:] = np.nan
    for i in range(N):
        run = 0
        for t in range(T):
            run = run + 1 if np.isfinite(x[t, i]) else 0
            if run >= w:
                out[t, i] = _window_mean(x, t - w + 1, t + 1, i)
    return out


@njit(inline="always")
def _co_sums(x, m, lo, hi, i, mx, mm):
    sxm = 0.0
    sxx = 0.0
    smm = 0.0
    for u in range(lo, hi):
        dx = x[u, i] - mx
        dm = m[u] - mm
        sxm += dx * dm
        sxx += dx * dx
        smm += dm * dm
    return sxm, sxx, smm


@njit(cache=True, nogil=True)
def rolling_beta(x, m, w):
    """``cov(x_i, m) / var(m)`` over ``w`` days, both ddof = 1 (they cancel).

    ``m`` is the market's log return, shape ``(T,)``. NaN unless the ``w`` days
    are finite for both the symbol and the market, and where the market is
    constant over the window. Means are running Kahan sums, the
    co-moments one centred pass. Equals
    ``df[i].rolling(w).cov(m) / m.rolling(w).var()``. Requires ``w >= 2``.
    """
    T, N = x.shape
    out = np.empty((T, N))
    out[:] = np.nan
    n = float(w)
    same = np.zeros(T, dtype=np.int64)  # consecutive equal market values ending at t
    for t in range(T):
        if np.isfinite(m[t]):
            same[t] = same[t - 1] + 1 if t > 0 and m[t] == m[t - 1] else 1
    for i in range(N):
        run = 0
        tx = cx = tm = cm = 0.0
        ax = am = 0.0  # sums of |updates|: bound the running sums' errors
        for t in range(T):
            if not (np.isfinite(x[t, i]) and np.isfinite(m[t])):
                run = 0
                tx = cx = tm = cm = ax = am = 0.0
                continue
            run += 1
            tx, cx = _kahan_add(tx, cx, x[t, i])
            tm, cm = _kahan_add(tm, cm, m[t])
            ax += abs(x[t, i])
            am += abs(m[t])
            if run > w:
                tx, cx = _kahan_add(tx, cx, -x[t - w, i])
                tm, cm = _kahan_add(tm, cm, -m[t - w])
                ax += abs(x[t - w, i])
                am += abs(m[t - w])
            if run < w or same[t] >= w:
                continue
            lo = t - w + 1
            sxm, sxx, smm = _co_sums(x, m, lo, t + 1, i, tx / n, tm / n)
            # Mean errors enter the co-moments at second order (n * dx * dm):
            # make the sums exact again where that is not negligible.
            ex = 4.5e-16 * ax / n
            em = 4.5e-16 * am / n
            if n * em * em > 1e-24 * smm or n * ex * ex > 1e-24 * sxx:
                tx = tm = ax = am = 0.0
                for u in range(lo, t + 1):
                    tx += x[u, i]
                    tm += m[u]
                    ax += abs(x[u, i])
                    am += abs(m[u])
                cx = cm = 0.0
                sxm, sxx, smm = _co_sums(x, m, lo, t + 1, i, tx / n, tm / n)
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
    out = np.empty((T, N))
    out[:] = np.nan
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
