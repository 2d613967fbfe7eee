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
* ``bootstrap``, ``regime``, ``columns``, ``trend``: resampled closes, the regime
  filter's market, column transforms, the trend rules (SEMANTICS §11).
* ``diagnostics``: forward returns, daily rank IC, qcut quantiles, quantile books,
  rank autocorrelation and quantile turnover (``kind = "diagnostics"``).
"""

import importlib.abc
import importlib.machinery
import sys


class _NumbaWithoutScipy(importlib.abc.MetaPathFinder):
    """Import ``numba`` and ``numba.np.arraymath`` with SciPy hidden when it is not loaded yet.

    Numba imports SciPy, when installed, for no kernel here: ``numba`` to check its version,
    and ``numba.np.arraymath`` (imported by the first call of any kernel, a cached one too)
    to probe BLAS through ``scipy.linalg.cython_blas``, together 0.2 s of every ``sweep run``.
    Hidden, the version check is skipped and the probe fails; the one effect is that
    ``np.convolve`` and ``np.correlate`` in jitted code use Numba's own loop instead of BLAS.
    ``np.dot`` and ``np.linalg`` still work: they import SciPy when first compiled.
    """

    MODULES = ("numba", "numba.np.arraymath")

    def find_spec(self, name, path, target=None):
        if name not in self.MODULES:
            return None
        if name == self.MODULES[-1]:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        hidden = next((m for m in ("scipy", "scipy.linalg") if m not in sys.modules), None)
        if spec is None or hidden is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            sys.modules[hidden] = None  # an import of it raises ImportError
            try:
                run(module)
            finally:
                if hidden in sys.modules and sys.modules[hidden] is None:
                    del sys.modules[hidden]

        spec.loader.exec_module = exec_module
        return spec


if "numba.np.arraymath" not in sys.modules:
    sys.meta_path.insert(0, _NumbaWithoutScipy())
