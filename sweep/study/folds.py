"""The folds of a walk-forward: their windows, the choice on a train window, the rank on a
test window, and one fold's outcome (kept on disk between runs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Fold:
    """Day indices of one fold, ends inclusive; ``keep_end`` ends its share of the stitched series."""

    fold: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int
    keep_end: int


def fold_windows(s0: int, e: int, train_days: int, test_days: int, step_days: int,
                 anchored: bool = False) -> list[Fold]:
    """The folds over evaluation days ``s0 .. e``; an incomplete last test window is dropped.

    >>> [(f.train_start, f.train_end, f.test_start, f.test_end) for f in fold_windows(10, 40, 10, 5, 5)]
    [(10, 19, 20, 24), (15, 24, 25, 29), (20, 29, 30, 34), (25, 34, 35, 39)]
    """
    bounds = []
    k = 0
    while True:
        b = s0 + k * step_days + train_days - 1
        c, d = b + 1, b + test_days
        if d > e:
            break
        bounds.append((s0 if anchored else s0 + k * step_days, b, c, d))
        k += 1
    return [Fold(k, a, b, c, d, min(d, bounds[k + 1][2] - 1) if k + 1 < len(bounds) else d)
            for k, (a, b, c, d) in enumerate(bounds)]


def choose(values: np.ndarray, minimise: bool, ruined: np.ndarray | None = None) -> int:
    """Index of the best value among candidates not ruined on the train window; NaN never
    wins, ties go to the first. When every candidate was ruined (or has no value), the best
    finite value of all of them, else index 0: a fold must trade something, and its
    ``train_ruined`` column says so."""
    v = -values if minimise else values
    ok = ~np.isnan(v)
    if ruined is not None and (ok & ~(ruined > 0)).any():
        ok &= ~(ruined > 0)
    if not ok.any():
        return 0
    return int(np.flatnonzero(ok & (v == v[ok].max()))[0])


def rank_of(values: np.ndarray, j: int, minimise: bool) -> int:
    """1 + the number of candidates strictly better than ``j`` (NaN ranks below every number)."""
    v = -values if minimise else values
    ok = ~np.isnan(v)
    if not ok[j]:
        return int(ok.sum()) + 1
    return int((ok & (v > v[j])).sum()) + 1


@dataclass
class FoldResult:
    """One fold's outcome: all the tables need of it, and what ``.partial/fold-*.json`` keeps."""

    fold: Fold
    choice: dict[str, Any]  # the chosen candidate's parameters
    choice_id: str
    n_candidates: int  # the grid, or what this fold's search tried
    train: np.ndarray  # (N_METRICS,) of the chosen candidate on the train window
    test: np.ndarray  # (N_METRICS,) of the chosen candidate on the test window
    test_rank: int
    series: list[np.ndarray]  # compute_metrics' nine daily series, test_start .. keep_end
    n_rebalances: int  # rebalance days in test_start .. keep_end

    def to_json(self) -> dict[str, Any]:
        return {"fold": asdict(self.fold), "choice": {k: list(v) if isinstance(v, tuple) else v
                                                       for k, v in self.choice.items()},
                "choice_id": self.choice_id, "n_candidates": self.n_candidates,
                "train": self.train.tolist(), "test": self.test.tolist(), "test_rank": self.test_rank,
                "series": [a.tolist() for a in self.series], "n_rebalances": self.n_rebalances}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "FoldResult":
        # Floats go through JSON by their shortest repr (NaN included): read back bit for bit.
        return cls(Fold(**d["fold"]), d["choice"], d["choice_id"], d["n_candidates"],
                   np.array(d["train"], dtype=np.float64), np.array(d["test"], dtype=np.float64),
                   d["test_rank"], [np.array(a, dtype=np.float64) for a in d["series"]], d["n_rebalances"])
