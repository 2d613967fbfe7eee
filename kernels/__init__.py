"""Numba kernels over dense daily panels: plain functions of arrays and scalars.

Every panel is a C-contiguous float64 array of shape ``(T, N)`` (days x
symbols, NaN where there is no data); every kernel is
``@njit(cache=True, nogil=True)`` and allocates only its outputs and per-call
scratch, never inside its inner loops. Related arrays travel as small tuples
(``(q, funding)``, a ranking, the stacks) and a backtest's daily series as one
``(N_SERIES, n)`` array with named rows, not as long positional lists. One
module per concern:

* ``returns``: simple, log and carried-forward returns, the equal-weight market.
* ``rolling``: trailing-window features (volatility, skewness, kurtosis, beta,
  sums and means, days from the high).
* ``selection``: the market-cap universe and the per-day ranking.
* ``portfolio``: the recursion of one configuration (SEMANTICS §7-§8).
* ``metrics``: the performance metrics of a return series (SEMANTICS §9).
* ``batch``: many configurations per call, the runner's unit of parallel work.
* ``cscv``: per-block moments and the combinatorially symmetric cross-validation
  behind the Probability of Backtest Overfitting.
"""
