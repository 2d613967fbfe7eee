"""Performance metrics of a daily net-return series (SEMANTICS §9).

A backtest's per-day byproducts travel as one ``(N_SERIES, n)`` array whose
rows are named by the ``S_*`` constants (``SERIES`` spells them); the metrics
come out in the order of ``METRICS``, slots named by the ``M_*`` constants, so
no kernel writes or reads an output by a bare position.

Means and standard deviations are two-pass (mean first, then centred squares)
so a series of tiny returns keeps its digits; ``std`` is ddof = 1 and every
annualisation uses 365 days (crypto trades every day).
"""

import numpy as np
from numba import njit

METRICS = (
    "total_return",
    "cagr",
    "ann_vol",
    "sharpe",
    "sharpe_pre_cost",
    "sortino",
    "max_drawdown",
    "calmar",
    "win_rate",
    "turnover",
    "cost_paid",
    "funding_return",
    "avg_long",
    "avg_short",
    "avg_net_exposure",
    "avg_gross_exposure",
    "n_rebalances",
    "ruined",
)
N_METRICS = len(METRICS)
# Output slots by name: Numba reads module-level integers as compile-time constants.
M_TOTAL_RETURN, M_CAGR, M_ANN_VOL, M_SHARPE, M_SHARPE_PRE_COST, M_SORTINO, M_MAX_DRAWDOWN, M_CALMAR, \
    M_WIN_RATE, M_TURNOVER, M_COST_PAID, M_FUNDING_RETURN, M_AVG_LONG, M_AVG_SHORT, M_AVG_NET_EXPOSURE, \
    M_AVG_GROSS_EXPOSURE, M_N_REBALANCES, M_RUINED = range(N_METRICS)
DAYS_PER_YEAR = 365.0

# Rows of the daily series array ``portfolio.simulate`` fills and ``compute_metrics`` reads.
SERIES = ("ret", "ret_pre_cost", "turnover", "cost", "funding", "n_long", "n_short", "net", "gross")
N_SERIES = len(SERIES)
S_RET, S_RET_PRE, S_TURNOVER, S_COST, S_FUNDING, S_LONG, S_SHORT, S_NET, S_GROSS = range(N_SERIES)


@njit(cache=True, nogil=True)
def mean_std(x):
    """Mean and sample standard deviation (ddof = 1; NaN for fewer than 2 values).

    Equals ``(x.mean(), x.std(ddof=1))``, except that a series of identical
    values has a standard deviation of exactly 0: the rounding of its mean
    would otherwise leave ~1e-17 and a Sharpe ratio of ~1e17 where SEMANTICS
    says NaN.
    """
    n = x.shape[0]
    if n == 0:
        return np.nan, np.nan
    m = 0.0
    equal = True
    for v in x:
        m += v
        equal = equal and v == x[0]
    m /= n
    if n < 2:
        return m, np.nan
    if equal:
        return x[0], 0.0
    s2 = 0.0
    for v in x:
        s2 += (v - m) * (v - m)
    return m, np.sqrt(s2 / (n - 1))


@njit(cache=True, nogil=True)
def sharpe(x):
    """``mean / std(ddof=1) * sqrt(365)``; NaN where std is 0."""
    m, sd = mean_std(x)
    if not sd > 0.0:
        return np.nan
    return m / sd * np.sqrt(DAYS_PER_YEAR)


@njit(cache=True, nogil=True)
def compute_metrics(series, n_reb, out):
    """Fill ``out`` (length ``N_METRICS``, slots ``M_*``) from ``series`` ``(N_SERIES, n)``.

    ``series[S_RET]`` is the net daily return for ``t = s .. e`` and the other
    rows (``S_*``) the per-day byproducts of ``portfolio.simulate``; ``n_reb``
    its rebalance count. ``ruined`` is read off the net returns: an open book
    has ``1 + R > 0`` every day (SEMANTICS §8), so a day with ``R == -1``
    exactly is a ruin, and a ruined book's NAV is 0 from then on
    (``total_return`` -1, ``cagr`` -1, ``max_drawdown`` -1, ``calmar`` -1 follow
    from the same sums, with no special case).
    """
    R = series[S_RET]
    n = R.shape[0]
    growth = 1.0
    peak = 1.0
    mdd = 0.0
    down2 = 0.0
    wins = 0
    nonzero = 0
    ruined = 0.0
    for v in R:
        if v == -1.0:
            ruined = 1.0
        growth *= 1.0 + v
        # The peak starts at the initial NAV of 1: a loss from day one is a drawdown.
        if growth > peak:
            peak = growth
        dd = growth / peak - 1.0
        if dd < mdd:
            mdd = dd
        if v < 0.0:
            down2 += v * v
        if v > 0.0:
            wins += 1
        if v != 0.0:
            nonzero += 1
    total = growth - 1.0
    cagr = growth ** (DAYS_PER_YEAR / n) - 1.0 if growth >= 0.0 else np.nan
    m, sd = mean_std(R)
    down = np.sqrt(down2 / n)
    out[M_TOTAL_RETURN] = total
    out[M_CAGR] = cagr
    out[M_ANN_VOL] = sd * np.sqrt(DAYS_PER_YEAR)
    out[M_SHARPE] = m / sd * np.sqrt(DAYS_PER_YEAR) if sd > 0.0 else np.nan
    out[M_SHARPE_PRE_COST] = sharpe(series[S_RET_PRE])
    out[M_SORTINO] = m / down * np.sqrt(DAYS_PER_YEAR) if down > 0.0 else np.nan
    out[M_MAX_DRAWDOWN] = mdd
    out[M_CALMAR] = cagr / abs(mdd) if mdd != 0.0 else np.nan
    out[M_WIN_RATE] = wins / nonzero if nonzero > 0 else np.nan
    # Plain sums in day order, each its own accumulator: what ``.sum()`` and ``.mean()``
    # compute (bit for bit), without compiling Numba's generic reductions.
    turnover = cost = funding = n_long = n_short = net = gross = 0.0
    for d in range(n):
        turnover += series[S_TURNOVER, d]
        cost += series[S_COST, d]
        funding += series[S_FUNDING, d]
        n_long += series[S_LONG, d]
        n_short += series[S_SHORT, d]
        net += series[S_NET, d]
        gross += series[S_GROSS, d]
    out[M_TURNOVER] = turnover * DAYS_PER_YEAR / n
    out[M_COST_PAID] = cost
    out[M_FUNDING_RETURN] = funding
    out[M_AVG_LONG] = n_long / n if n > 0 else np.nan
    out[M_AVG_SHORT] = n_short / n if n > 0 else np.nan
    out[M_AVG_NET_EXPOSURE] = net / n if n > 0 else np.nan
    out[M_AVG_GROSS_EXPOSURE] = gross / n if n > 0 else np.nan
    out[M_N_REBALANCES] = n_reb
    out[M_RUINED] = ruined
