""""The best" under a metric's direction, among books that were not ruined.

Every place that picks a best configuration (a grid's summary, ``sweep show``,
Optuna's reported best, a walk-forward fold's choice, Monte Carlo's P(best),
the legs of ``sweep portfolio`` and ``sweep export``) goes through here, so a
book whose NAV reached zero (SEMANTICS §8) can never be "the best": its ratios
are measured over a closed book and say nothing about a tradable one.

Examples:
    >>> import numpy as np
    >>> best_index(np.array([0.5, 2.0, np.nan, 1.0]), "sharpe", ruined=np.array([0., 1., 0., 0.]))
    3
    >>> best_index(np.array([0.3, 0.1]), "turnover")  # lower is better
    1
    >>> best_index(np.array([np.nan, 1.0]), "sharpe", ruined=np.array([0., 1.]))
    -1
"""

from __future__ import annotations

import numpy as np

from sweep import metrics


def minimises(objective: str) -> bool:
    """Whether a smaller value of ``objective`` is better."""
    return metrics.lower_is_better(objective)


def best_index(values: np.ndarray, objective: str, ruined: np.ndarray | None = None) -> int:
    """Index of the best finite ``values`` among the books not ruined (first on ties); -1 when none."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    if ruined is not None:
        ok &= ~(np.asarray(ruined, dtype=np.float64) > 0.0)
    if not ok.any():
        return -1
    score = -v if minimises(objective) else v
    return int(np.flatnonzero(ok & (score == score[ok].max()))[0])


def usable(ruined: np.ndarray | None, n: int) -> np.ndarray:
    """Boolean mask of the books that may be chosen (all of them when nothing says ruined)."""
    if ruined is None:
        return np.ones(n, dtype=bool)
    return ~(np.asarray(ruined, dtype=np.float64) > 0.0)
