"""Factor diagnostics (issue 15): forward returns, daily rank IC, quantiles, books, rank
autocorrelation and quantile turnover, the numbers alphalens' tear sheets show.

Inputs are C-contiguous float64 ``(T, N)`` panels. ``x`` is the factor as the strategy
ranks it, NaN where a name is not eligible on that day (outside the universe, no
feature or no close): it uses data up to ``t`` only. Outputs cover the evaluation
window ``s .. e``: row ``t - s`` is day ``t``. Scratch arrays are allocated once per
call, never inside the loops over days.
"""

import numpy as np
from numba import njit

from kernels.selection import stable_order


@njit(cache=True, nogil=True)
def forward_returns(close, h, e):
    """``out[t, i] = close[t + h, i] / close[t, i] - 1`` for ``t + h <= e``.

    NaN (missing, never 0) where either close is not finite or ``t + h`` is past the
    evaluation window's last day ``e``. Equals pandas
    ``close.shift(-h) / close - 1`` with the rows after ``e - h`` set to NaN
    (alphalens' ``compute_forward_returns``: ``prices.pct_change(h).shift(-h)``).
    """
    T, N = close.shape
    out = np.empty((T, N))
    out[:] = np.nan
    for t in range(max(0, min(T, e + 1) - h)):
        for i in range(N):
            a = close[t, i]
            b = close[t + h, i]
            if np.isfinite(a) and np.isfinite(b):
                out[t, i] = b / a - 1.0
    return out


@njit(cache=True, nogil=True)
def finite_of(row, val, idx):
    """The finite values of ``row`` into ``val[:n]`` and their columns into ``idx[:n]``, in column
    order; returns ``n``."""
    n = 0
    for i in range(row.shape[0]):
        if np.isfinite(row[i]):
            val[n] = row[i]
            idx[n] = i
            n += 1
    return n


@njit(cache=True, nogil=True)
def average_ranks(val, n, o, tmp, out):
    """``out[:n]`` = 1-based ranks of ``val[:n]`` (no NaN), ties given their average rank:
    ``scipy.stats.rankdata(val[:n])`` (method "average"), as ``Series.rank()``."""
    stable_order(val, n, o, tmp)
    j = 0
    while j < n:
        k = j
        while k + 1 < n and val[o[k + 1]] == val[o[j]]:
            k += 1
        r = 0.5 * (j + k) + 1.0
        for m in range(j, k + 1):
            out[o[m]] = r
        j = k + 1


@njit(cache=True, nogil=True)
def pearson(a, b, n):
    """Pearson correlation of ``a[:n]`` and ``b[:n]`` (two-pass means, as ``np.corrcoef``);
    NaN when ``n < 2`` or either side is constant."""
    if n < 2:
        return np.nan
    ma = 0.0
    mb = 0.0
    for j in range(n):
        ma += a[j]
        mb += b[j]
    ma /= n
    mb /= n
    sab = 0.0
    saa = 0.0
    sbb = 0.0
    for j in range(n):
        da = a[j] - ma
        db = b[j] - mb
        sab += da * db
        saa += da * da
        sbb += db * db
    if saa <= 0.0 or sbb <= 0.0:
        return np.nan
    return sab / np.sqrt(saa * sbb)


@njit(cache=True, nogil=True)
def rank_ic(x, fwd, s, e):
    """Daily information coefficient ``ic[t - s]``, ``t = s .. e``: the Spearman rank
    correlation of ``x[t]`` and ``fwd[t]`` over the names where both are finite
    (average ranks for ties). NaN with fewer than 2 such names or a constant side.
    Equals ``scipy.stats.spearmanr(x[t][m], fwd[t][m])[0]`` per day (alphalens'
    ``factor_information_coefficient``)."""
    N = x.shape[1]
    out = np.empty(e - s + 1)
    xa, ya, xr, yr = np.empty(N), np.empty(N), np.empty(N), np.empty(N)
    o, tmp = np.empty(N, dtype=np.int64), np.empty(N, dtype=np.int64)
    for t in range(s, e + 1):
        n = 0
        for i in range(N):
            if np.isfinite(x[t, i]) and np.isfinite(fwd[t, i]):
                xa[n] = x[t, i]
                ya[n] = fwd[t, i]
                n += 1
        average_ranks(xa, n, o, tmp, xr)
        average_ranks(ya, n, o, tmp, yr)
        out[t - s] = pearson(xr, yr, n)
    return out


@njit(cache=True, nogil=True)
def quantile_labels(x, q, s, e):
    """Quantile ``1 .. q`` of each name on days ``s .. e`` (0: none): pandas
    ``pd.qcut(x[t][finite], q, labels=False) + 1`` (alphalens' buckets).

    Edges are the day's finite values' ``np.quantile(v, np.linspace(0, 1, q + 1))`` (linear,
    computed as numpy does: what pandas 3's ``Series.quantile`` calls; pandas 2 went through
    ``np.percentile(v, 100 * p)``, which can move an edge that falls on a value by an ulp);
    a name's bucket is the number of edges strictly below it, at least 1 (``pd.cut``
    with ``right=True, include_lowest=True``). A day whose edges are not all distinct
    (pandas raises "Bin edges must be unique") gets no quantiles.
    """
    N = x.shape[1]
    out = np.zeros((e - s + 1, N), dtype=np.int32)
    val, edges = np.empty(N), np.empty(q + 1)
    o, tmp, idx = np.empty(N, dtype=np.int64), np.empty(N, dtype=np.int64), np.empty(N, dtype=np.int64)
    step = 1.0 / q
    for t in range(s, e + 1):
        n = finite_of(x[t], val, idx)
        if n == 0:
            continue
        stable_order(val, n, o, tmp)
        unique = True
        for k in range(q + 1):
            p = 1.0 if k == q else k * step  # np.linspace(0, 1, q + 1)
            v = (n - 1) * p
            lo = min(int(np.floor(v)), n - 1)
            hi = min(lo + 1, n - 1)
            g = v - lo
            a = val[o[lo]]
            d = val[o[hi]] - a
            edges[k] = val[o[hi]] - d * (1.0 - g) if g >= 0.5 else a + d * g
            if k > 0 and edges[k] == edges[k - 1]:
                unique = False
        if not unique:
            continue
        for j in range(n):
            c = 0
            for k in range(q + 1):
                if edges[k] < val[j]:
                    c += 1
            out[t - s, idx[j]] = max(c, 1)
    return out


@njit(cache=True, nogil=True)
def quantile_means(labels, fwd, q, s):
    """``out[d, k - 1]``: mean of ``fwd[s + d]`` over the names in quantile ``k`` on day
    ``s + d`` with a finite forward return (NaN when there is none). Equals pandas
    ``df.groupby(["date", "quantile"]).fwd.mean()`` (alphalens' daily quantile means)."""
    D, N = labels.shape
    out = np.empty((D, q))
    cnt = np.empty(q)
    for d in range(D):
        out[d, :] = 0.0
        cnt[:] = 0.0
        for i in range(N):
            k = labels[d, i]
            r = fwd[s + d, i]
            if k > 0 and np.isfinite(r):
                out[d, k - 1] += r
                cnt[k - 1] += 1.0
        for k in range(q):
            out[d, k] = out[d, k] / cnt[k] if cnt[k] > 0 else np.nan
    return out


@njit(cache=True, nogil=True)
def daily_ranks(x, s, e):
    """``out[t - s, i]``: the average rank of ``x[t, i]`` among day ``t``'s finite values,
    NaN where ``x`` is not finite; pandas ``x.rank(axis=1)`` (alphalens' daily factor rank)."""
    N = x.shape[1]
    out = np.empty((e - s + 1, N))
    out[:] = np.nan
    val, r = np.empty(N), np.empty(N)
    o, tmp, idx = np.empty(N, dtype=np.int64), np.empty(N, dtype=np.int64), np.empty(N, dtype=np.int64)
    for t in range(s, e + 1):
        n = finite_of(x[t], val, idx)
        average_ranks(val, n, o, tmp, r)
        for j in range(n):
            out[t - s, idx[j]] = r[j]
    return out


@njit(cache=True, nogil=True)
def rank_autocorr(ranks, lags):
    """``out[d, lag - 1]``: Pearson correlation of ``ranks[d]`` and ``ranks[d - lag]`` over
    the names ranked on both days; NaN for ``d < lag``, fewer than 2 such names or a
    constant side. Equals alphalens' ``factor_rank_autocorrelation``:
    ``R.corrwith(R.shift(lag), axis=1)`` of the daily ranks ``R``."""
    D, N = ranks.shape
    out = np.empty((D, lags))
    out[:] = np.nan
    a, b = np.empty(N), np.empty(N)
    for lag in range(1, lags + 1):
        for d in range(lag, D):
            n = 0
            for i in range(N):
                if np.isfinite(ranks[d, i]) and np.isfinite(ranks[d - lag, i]):
                    a[n] = ranks[d, i]
                    b[n] = ranks[d - lag, i]
                    n += 1
            out[d, lag - 1] = pearson(a, b, n)
    return out


@njit(cache=True, nogil=True)
def quantile_turnover(labels, q):
    """``out[d, k - 1]``: the share of the names of quantile ``k`` on day ``d`` that were not
    in it on day ``d - 1``. NaN on the first day, when day ``d - 1`` had no quantiles or
    quantile ``k`` is empty on day ``d``. Equals alphalens' ``quantile_turnover(.., period=1)``
    (``len(names_t - names_t-1) / len(names_t)``) on a panel with quantiles every day."""
    D, N = labels.shape
    out = np.empty((D, q))
    out[:] = np.nan
    now, new = np.empty(q), np.empty(q)
    for d in range(1, D):
        before = False
        for i in range(N):
            if labels[d - 1, i] > 0:
                before = True
        if not before:
            continue
        now[:] = 0.0
        new[:] = 0.0
        for i in range(N):
            k = labels[d, i]
            if k > 0:
                now[k - 1] += 1.0
                if labels[d - 1, i] != k:
                    new[k - 1] += 1.0
        for k in range(q):
            if now[k] > 0:
                out[d, k] = new[k] / now[k]
    return out
