"""Strategy weights of a book: static on a window, or walk-forward from past returns only."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kernels.metrics import DAYS_PER_YEAR

from sweep.core.errors import SweepError
from sweep.engine.params import closest

WEIGHT_METHODS = ("equal", "inverse_vol", "sharpe")


def check_method(method: str, where: str = "--weights") -> None:
    """A one-line error unless ``method`` is one of ``WEIGHT_METHODS``."""
    if method not in WEIGHT_METHODS:
        raise SweepError(f"{where} {method!r} is not one of {', '.join(WEIGHT_METHODS)}"
                         f"{closest(str(method), WEIGHT_METHODS)}")


class NoWeights(ValueError):
    """A weighting method is undefined on the data given (the reason is the message)."""


def equal_weights(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def sharpe_weights(sharpes) -> np.ndarray:
    """Weights proportional to each positive Sharpe ratio; non-positive (or NaN) ones get 0."""
    s = np.asarray(sharpes, dtype=np.float64)
    pos = np.where(np.isfinite(s) & (s > 0.0), s, 0.0)
    total = pos.sum()
    if not total > 0.0:
        raise NoWeights("no strategy has a positive Sharpe ratio")
    return pos / total


def inverse_vol_weights(stds) -> np.ndarray:
    """Weights proportional to ``1 / std``; every std must be finite and positive."""
    sd = np.asarray(stds, dtype=np.float64)
    if not (np.isfinite(sd) & (sd > 0.0)).all():
        raise NoWeights("a strategy's daily returns have no variance (or fewer than 2 days)")
    inv = 1.0 / sd
    return inv / inv.sum()


def sharpe_ratios(R: np.ndarray) -> np.ndarray:
    """Per row: ``mean / std(ddof=1) * sqrt(365)``; NaN where std is 0 or undefined."""
    if R.shape[1] < 2:
        return np.full(R.shape[0], np.nan)
    sd = R.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0.0, R.mean(axis=1) / sd * math.sqrt(DAYS_PER_YEAR), np.nan)


def strategy_weights(R: np.ndarray, method: str) -> np.ndarray:
    """Weights of ``S`` strategies from their ``(S, m)`` daily returns; raises ``NoWeights``."""
    check_method(method)
    S = R.shape[0]
    if method == "equal":
        return equal_weights(S)
    if method == "inverse_vol":
        return inverse_vol_weights(R.std(axis=1, ddof=1) if R.shape[1] >= 2 else np.full(S, np.nan))
    return sharpe_weights(sharpe_ratios(R))


def static_weights(R: np.ndarray, method: str, names: list[str]) -> np.ndarray:
    """``strategy_weights`` with an undefined estimate turned into a user-facing error."""
    try:
        return strategy_weights(R, method)
    except NoWeights as exc:
        if method == "inverse_vol":
            sd = R.std(axis=1, ddof=1) if R.shape[1] >= 2 else np.full(len(names), np.nan)
            flat = [n for n, v in zip(names, sd) if not (np.isfinite(v) and v > 0)]
            raise SweepError(f"--weights inverse_vol: {', '.join(flat)} has no variance over the "
                             "window; choose --weights equal or drop it") from None
        sh = ", ".join(f"{n} {v:.2f}" for n, v in zip(names, sharpe_ratios(R)))
        raise SweepError(f"--weights {method}: {exc} over the window ({sh}); choose --weights equal "
                         "knowingly, or drop the losers") from None


@dataclass
class Period:
    start: int  # day offsets within the window, inclusive
    end: int
    weights: np.ndarray
    note: str = ""


def walk_forward_weights(R: np.ndarray, method: str, days: int) -> tuple[np.ndarray, list[Period]]:
    """Daily weights ``(n, S)``: period ``k`` covers days ``k*days .. (k+1)*days - 1`` and is
    weighted from days ``0 .. k*days - 1`` only; the first period (and any period whose
    estimate is undefined) holds equal weights."""
    S, n = R.shape
    W = np.empty((n, S))
    periods = []
    for lo in range(0, n, days):
        hi = min(lo + days, n) - 1
        if lo == 0:
            w, note = equal_weights(S), "no past returns: equal weights"
        else:
            try:
                w, note = strategy_weights(R[:, :lo], method), ""
            except NoWeights as exc:
                w, note = equal_weights(S), f"{exc}: equal weights"
        W[lo:hi + 1] = w
        periods.append(Period(lo, hi, w, note))
    return W, periods
