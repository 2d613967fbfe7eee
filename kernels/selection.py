"""The universe and the per-day cross-sectional ranking (SEMANTICS §5).

A ranking is computed once per (feature, eligibility, universe) and shared by
every configuration that uses it: a configuration then only slices buckets off
the sorted list on its rebalance days.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def stable_order(val, n, o, tmp):
    """Fill ``o[:n]`` with ``0 .. n-1`` sorted by ``val[:n]`` ascending, ties by index: what
    ``np.argsort(val[:n], kind="mergesort")`` returns for values without NaN. A bottom-up
    merge sort through the scratch ``tmp`` (length >= n), written out because Numba's
    generic argsort took seconds to compile for a few lines of work."""
    for j in range(n):
        o[j] = j
    width = 1
    while width < n:
        lo = 0
        while lo < n:
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            a = lo
            b = mid
            k = lo
            while a < mid and b < hi:
                # The right run's element goes first only when strictly smaller: stable.
                if val[o[b]] < val[o[a]]:
                    tmp[k] = o[b]
                    b += 1
                else:
                    tmp[k] = o[a]
                    a += 1
                k += 1
            while a < mid:
                tmp[k] = o[a]
                a += 1
                k += 1
            while b < hi:
                tmp[k] = o[b]
                b += 1
                k += 1
            lo = hi
        for j in range(n):
            o[j] = tmp[j]
        width *= 2


@njit(cache=True, nogil=True)
def volume_mean(volume, window):
    """Mean traded value of ``volume[t-window+1 .. t, i]`` over its finite values (SEMANTICS §5).

    Convention: a day before day 0 counts as non-finite; the mean (the sum of
    the finite values over their count, summed afresh for each window in day
    order) is NaN unless at least ``ceil(window / 2)`` of the ``window`` values
    are finite. Equals pandas
    ``df.rolling(window, min_periods=(window + 1) // 2).mean()`` up to rounding.
    """
    T, N = volume.shape
    need = (window + 1) // 2
    out = np.empty((T, N))
    out[:] = np.nan
    for t in range(T):
        lo = max(0, t - window + 1)
        for i in range(N):
            s = 0.0
            n = 0
            for u in range(lo, t + 1):
                x = volume[u, i]
                if np.isfinite(x):
                    s += x
                    n += 1
            if n >= need:
                out[t, i] = s / n
    return out


@njit(cache=True, nogil=True)
def universe(market_cap, excluded, liquid, top_k):
    """Per-day universe mask ``(T, N)`` of SEMANTICS §5's filters, in order.

    Convention: a symbol is in day ``t``'s universe when it is not
    ``excluded``, passes ``liquid[t]`` when ``liquid`` has rows (the
    ``min_volume`` filter), and, when ``top_k > 0``, is among the ``top_k``
    largest finite market caps of the symbols the filters before kept (ties by
    symbol order): pandas ``cap.where(kept).rank(axis=1, ascending=False,
    method="first") <= top_k``. With neither ``liquid`` rows nor ``top_k`` the
    result is ``(0, N)`` (no filter beyond ``excluded``); ``market_cap`` may be
    ``(0, 0)`` when ``top_k == 0``.
    """
    N = excluded.shape[0]
    use_liquid = liquid.shape[0] > 0
    if top_k <= 0 and not use_liquid:
        return np.empty((0, N), dtype=np.bool_)
    T = liquid.shape[0] if use_liquid else market_cap.shape[0]
    out = np.zeros((T, N), dtype=np.bool_)
    if top_k <= 0:
        for t in range(T):
            for i in range(N):
                out[t, i] = liquid[t, i] and not excluded[i]
        return out
    idx = np.empty(N, dtype=np.int64)
    neg = np.empty(N)
    o = np.empty(N, dtype=np.int64)
    tmp = np.empty(N, dtype=np.int64)
    for t in range(T):
        n = np.int64(0)  # not the literal 0: Numba would compile stable_order for that type too
        for i in range(N):
            c = market_cap[t, i]
            if not excluded[i] and (not use_liquid or liquid[t, i]) and np.isfinite(c):
                idx[n] = i
                neg[n] = -c
                n += 1
        # A stable sort of -cap over ascending symbol indices breaks ties by symbol order.
        stable_order(neg, n, o, tmp)
        for j in range(min(top_k, n)):
            out[t, idx[o[j]]] = True
    return out


@njit(cache=True, nogil=True)
def rank_eligible(feature, close, vol, excluded, allowed):
    """Sort each day's eligible symbols by ``feature`` ascending, ties by symbol order.

    Eligible at ``t``: not ``excluded``, inside ``allowed[t]`` when ``allowed``
    has rows (the top-by-market-cap universe), ``feature[t]`` and ``close[t]``
    finite, and, when ``vol`` has rows (risk-parity weighting), ``vol[t]``
    finite and > 0. Returns ``order`` ``(T, N)`` int32 (the first ``count[t]``
    entries of row ``t`` are symbol indices, the rest -1) and ``count`` ``(T,)``.
    Equals ``sorted(eligible, key=lambda i: (feature[t, i], i))`` per day.
    """
    T, N = feature.shape
    use_vol = vol.shape[0] > 0
    use_allowed = allowed.shape[0] > 0
    order = np.empty((T, N), dtype=np.int32)
    order[:] = -1
    count = np.zeros(T, dtype=np.int32)
    idx = np.empty(N, dtype=np.int64)
    val = np.empty(N)
    o = np.empty(N, dtype=np.int64)
    tmp = np.empty(N, dtype=np.int64)
    for t in range(T):
        n = np.int64(0)  # not the literal 0: Numba would compile stable_order for that type too
        for i in range(N):
            if excluded[i] or (use_allowed and not allowed[t, i]):
                continue
            f = feature[t, i]
            if not (np.isfinite(f) and np.isfinite(close[t, i])):
                continue
            if use_vol and not (np.isfinite(vol[t, i]) and vol[t, i] > 0.0):
                continue
            idx[n] = i
            val[n] = f
            n += 1
        stable_order(val, n, o, tmp)
        for j in range(n):
            order[t, j] = idx[o[j]]
        count[t] = n
    return order, count


@njit(cache=True, nogil=True)
def restrict_ranking(order, count, vol):
    """Keep, in order, the ranked symbols whose ``vol[t]`` is finite and > 0.

    A sorted list stays sorted (ties still by symbol order) when entries are
    dropped, so the risk-parity ranking derives from the equal-weight one in
    O(N) a day instead of a second sort. Equals ``rank_eligible`` with ``vol``.
    """
    T, N = order.shape
    out = np.empty((T, N), dtype=np.int32)
    out[:] = -1
    out_count = np.zeros(T, dtype=np.int32)
    for t in range(T):
        n = 0
        for j in range(count[t]):
            i = order[t, j]
            v = vol[t, i]
            if np.isfinite(v) and v > 0.0:
                out[t, n] = i
                n += 1
        out_count[t] = n
    return out, out_count
