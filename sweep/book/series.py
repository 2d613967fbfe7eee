"""The sleeves' daily series (each chosen configuration rerun over the common window) and the
book's series and metrics under daily strategy weights."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from kernels.metrics import METRICS, N_METRICS, SERIES, compute_metrics

from sweep.core.errors import SweepError
from sweep.book.sources import Choice


@dataclass
class Sleeves:
    """The chosen configurations rerun over one window: ``(S, n)`` daily series."""

    names: list[str]
    dates: np.ndarray  # datetime64[D], (n,)
    R: np.ndarray  # net returns
    R_pre: np.ndarray
    tau: np.ndarray
    cost: np.ndarray
    fund: np.ndarray
    holdings: np.ndarray  # (S, n, N): weights after each day's step 4
    rebalance: np.ndarray  # (S, n) bool
    metrics: list[dict[str, float]]


def rebalance_days_mask(p: dict[str, Any], n: int) -> np.ndarray:
    """SEMANTICS §7's schedule on a window of ``n`` days: ``(d - phase) mod k == 0``."""
    d = np.arange(n)
    return (d - p["phase"]) % p["rebalance_days"] == 0


def rerun(panel, choices: list[Choice], start: dt.date, end: dt.date) -> Sleeves:
    """Each chosen configuration, flat on ``start``, over ``start .. end``."""
    from sweep.engine.backtest import backtest

    series: dict[str, list[np.ndarray]] = {k: [] for k in ("ret", "ret_pre_cost", "turnover", "cost", "funding")}
    holdings, rebalance, metrics = [], [], []
    for c in choices:
        res = backtest(panel, start=start, end=end, return_weights=True, **c.params)
        for k in series:
            series[k].append(res.returns[k].to_numpy())
        holdings.append(res.weights.drop("date").to_numpy())
        rebalance.append(rebalance_days_mask(c.params, res.returns.height))
        metrics.append(res.metrics)
    dates = panel.dates[panel.day_index(start, "start"):panel.day_index(end, "end") + 1]
    for c, m, r in zip(choices, metrics, series["ret"]):
        if m["ruined"] > 0:  # not ruined on its study's window, but on this one
            raise SweepError(f"{c.factor} ({c.config_id} of {c.source.folder}) is ruined on "
                             f"{dates[int(np.argmax(r == -1.0))]} over the common window {start} .. {end} "
                             "(its NAV reached zero, SEMANTICS §8); a ruined leg cannot be traded")
    return Sleeves([c.factor for c in choices], dates, *(np.array(series[k]) for k in series),
                   np.array(holdings), np.array(rebalance), metrics)


def correlation(R: np.ndarray) -> np.ndarray:
    """Pearson correlation of the rows; NaN rows and columns for a row without variance."""
    d = R - R.mean(axis=1, keepdims=True)
    ss = np.sqrt((d * d).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (d @ d.T) / np.outer(ss, ss)
    c[~np.isfinite(c)] = np.nan
    ok = ss > 0
    c[ok, ok] = 1.0
    return c


def book_series(sl: Sleeves, W: np.ndarray) -> dict[str, np.ndarray]:
    """The book's daily series under daily weights ``W`` ``(n, S)`` (see the module docstring)."""
    def mix(x: np.ndarray) -> np.ndarray:
        return np.einsum("ts,st->t", W, x)

    # The holdings at the close of t are the mix that earns day t + 1.
    W_hold = np.vstack([W[1:], W[-1:]])
    H = np.einsum("ts,stn->tn", W_hold, sl.holdings)
    return {"ret": mix(sl.R), "ret_pre_cost": mix(sl.R_pre), "turnover": mix(sl.tau), "cost": mix(sl.cost),
            "funding": mix(sl.fund), "n_long": (H > 0).sum(axis=1).astype(np.float64),
            "n_short": (H < 0).sum(axis=1).astype(np.float64), "net": H.sum(axis=1),
            "gross": np.abs(H).sum(axis=1), "n_rebalances": float(sl.rebalance.any(axis=0).sum())}


def book_metrics(b: dict[str, np.ndarray]) -> dict[str, float]:
    """SEMANTICS §9 of the book, by the engine's own ``compute_metrics``."""
    out = np.empty(N_METRICS)
    compute_metrics(np.stack([np.asarray(b[k], dtype=np.float64) for k in SERIES]), b["n_rebalances"], out)
    return {m: float(v) for m, v in zip(METRICS, out)}


def bankruptcies(names: list[str], R: np.ndarray, dates: np.ndarray) -> list[str]:
    """A warning per series whose NAV ``prod(1 + R)`` reaches 0 or below: after that day its
    returns are those of a negative-NAV book (the recursion does not stop it), not of a
    tradable one, and the constant mix would re-fund it every day."""
    out = []
    for name, r in zip(names, R):
        V = np.cumprod(1.0 + r)
        if (V <= 0).any():
            t = int(np.argmax(V <= 0))
            out.append(f"{name}: NAV falls to {V[t]:.3g} on {dates[t]} (daily return {r[t]:.1%}); "
                       "its later returns and its metrics are not those of a tradable book")
    return out
