"""One backtest, with its daily series: the library entry point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from kernels.metrics import (METRICS, N_METRICS, N_SERIES, S_COST, S_FUNDING, S_RET, S_RET_PRE, S_TURNOVER,
                             compute_metrics)
from kernels.portfolio import I_FEAT, I_RANK, I_VOL, simulate

from sweep.engine.workspace import Workspace, compile_configs, kernel_panels
from sweep.metrics import extra as extra_metrics
from sweep.core.errors import SweepError
from sweep.data.panel import Panel
from sweep.engine.params import config_id, resolve, warmup_days


def evaluation_window(panel: Panel, warmup: int, start=None, end=None,
                      where: str = "backtest()") -> tuple[int, int]:
    """Day indices ``(s, e)`` of SEMANTICS §7: ``s = W`` unless ``start`` is given.

    ``where`` names the source of ``start``/``end`` in errors (a study file's table).
    """
    T = panel.shape[0]
    e = panel.day_index(end, f"{where} end") if end is not None else T - 1
    s = panel.day_index(start, f"{where} start") if start is not None else warmup
    if s >= T:
        raise SweepError(
            f"{panel.source}: {T} days of data are too short for the warm-up of {warmup} days "
            f"(the longest window); at least {warmup + 1} days are needed")
    if s > e:
        raise SweepError(f"{where}: the evaluation window is empty: start {panel.dates[s]} is after "
                         f"end {panel.dates[e]}")
    return s, e


@dataclass(frozen=True)
class Result:
    """A backtest's outcome.

    ``metrics`` maps every SEMANTICS §9 name to its value; ``returns`` has one
    row per evaluated day (``date``, ``ret`` net of costs, ``ret_pre_cost``,
    ``turnover``, ``cost``, ``funding``), and ``metrics`` adds each registered extra
    metric (``sweep.metrics.register``) after them; ``weights`` (when asked for) has a
    ``date`` column and one column per symbol, the weights after the day's
    rebalance.
    """

    params: dict[str, Any]
    config_id: str
    metrics: dict[str, float]
    returns: pl.DataFrame
    weights: pl.DataFrame | None = None


def backtest(panel: Panel, *, start=None, end=None, return_weights: bool = False, **params: Any) -> Result:
    """Backtest one configuration on ``panel`` (SEMANTICS §5-§9).

    Parameters are those of ``sweep.PARAMETERS``; each factor's defaults are
    those of SEMANTICS §4. ``start``/``end`` (dates) override the evaluation
    window, which otherwise starts at this configuration's own warm-up.

    >>> import sweep
    >>> panel = sweep.synth(n_symbols=20, n_days=400, seed=1)
    >>> res = sweep.backtest(panel, factor="volatility", window=30, rebalance_days=7)
    >>> res.returns.height  # days 30 .. 399: the 30-day window is complete on day 30
    370
    >>> res.metrics["n_rebalances"]  # days 30, 37, ..., 394
    53
    """
    p = resolve(params, "backtest()")
    ws = Workspace(panel)
    ws.check(p, "backtest()")
    s, e = evaluation_window(panel, warmup_days(p), start, end)
    comp = compile_configs(ws, [p])
    T, N = panel.shape
    n = e - s + 1
    series = np.empty((N_SERIES, n))
    weights = np.empty((n, N)) if return_weights else np.empty((0, 0))
    ip, fp = comp.ip[0], comp.fp[0]
    ivol = comp.ivol_stack[ip[I_VOL]] if ip[I_VOL] >= 0 else np.empty((0, 0))
    feature = comp.feature_stack[ip[I_FEAT]] if ip[I_FEAT] >= 0 else np.empty((0, 0))
    ranking = (comp.order_stack[ip[I_RANK]], comp.count_stack[ip[I_RANK]], ivol, feature)
    n_reb = simulate(kernel_panels(panel), ranking, ip, fp, s, e, series, weights)
    out = np.empty(N_METRICS)
    compute_metrics(series, n_reb, out)
    dates = panel.dates[s:e + 1]
    returns = pl.DataFrame({"date": dates, "ret": series[S_RET], "ret_pre_cost": series[S_RET_PRE],
                            "turnover": series[S_TURNOVER], "cost": series[S_COST], "funding": series[S_FUNDING]})
    wdf = None
    if return_weights:
        wdf = pl.DataFrame({"date": dates, **{sym: weights[:, j] for j, sym in enumerate(panel.symbols)}})
    metrics = {name: float(v) for name, v in zip(METRICS, out)}
    metrics["n_rebalances"] = int(out[METRICS.index("n_rebalances")])
    for m in extra_metrics():
        metrics[m.name] = float(m.fn(series[S_RET].copy()))
    return Result(params=p, config_id=config_id(p), metrics=metrics, returns=returns, weights=wdf)
