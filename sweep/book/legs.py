"""What a reader of ``sweep portfolio`` and ``sweep export`` needs to know of each leg.

A leg is the best configuration of one factor in a results folder. Its Sharpe
was found by a search, so it is deflated by the search that found it: the
DSR and the PBO here are those of the leg's own factor's trials in its folder
(an all-factors grid's pooled statistics judge the best of all factors, not
this leg). The trials are rerun over the folder's own evaluation window with
the per-block moments the PBO needs (a fraction of a second per hundred
configurations), since a trials table keeps one row of metrics per
configuration and no daily returns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from kernels.metrics import METRICS

from sweep.core.errors import SweepError
from sweep.engine.params import PARAMS, resolve
from sweep.stats.verdict import DSR_BAR

N_BLOCKS = 16  # as the grid's summary.json (an even count: CSCV splits the blocks in halves)


def leg_trials(trials: pl.DataFrame, factor: str | None) -> pl.DataFrame:
    """The rows of one factor (the whole table when it has no ``factor`` column), one per configuration."""
    group = trials.filter(pl.col("factor") == factor) if factor is not None and "factor" in trials.columns \
        else trials
    return group.unique("config_id", keep="first", maintain_order=True)


def leg_statistics(panel, trials: pl.DataFrame, factor: str | None, params: list[str], chosen: dict[str, Any],
                   start: str, end: str, where: str) -> dict[str, Any]:
    """``{"dsr", "pbo", "n_trials"}`` of ``chosen`` deflated by its factor's own trials over ``start .. end``."""
    from sweep.engine.workspace import Evaluator
    from sweep.stats.overfit import overfitting_summary

    group = leg_trials(trials, factor)
    configs = [resolve({k: r[k] for k in params if k in PARAMS and r.get(k) is not None}, where)
               for r in group.iter_rows(named=True)]
    s, e = panel.day_index(start, "start"), panel.day_index(end, "end")
    if e - s + 1 < N_BLOCKS:
        return {"dsr": None, "pbo": None, "n_trials": len(configs)}
    ev = Evaluator(panel)
    metrics, _, (sums, sumsq) = ev.run_blocks(configs, s, e, N_BLOCKS)
    _, rets = ev.run([chosen], s, e, returns=True)
    n = e - s + 1
    counts = np.array([n // N_BLOCKS + (1 if b < n % N_BLOCKS else 0) for b in range(N_BLOCKS)], dtype=np.int64)
    try:
        o = overfitting_summary(rets[0], metrics[:, METRICS.index("sharpe")], sums, sumsq, counts)
    except SweepError:  # one configuration, or too few days: nothing to deflate by
        return {"dsr": None, "pbo": None, "n_trials": len(configs)}
    pbo = o["pbo"].get("pbo") if isinstance(o.get("pbo"), dict) else None
    return {"dsr": o["dsr"], "pbo": pbo, "n_trials": len(configs)}


def leg_warning(name: str, stats: dict[str, Any]) -> str | None:
    """A warning when the leg's deflated Sharpe is below the usual bar, else ``None``."""
    dsr = stats.get("dsr")
    if dsr is None:
        return f"{name}: no deflated Sharpe (too few configurations or days to deflate by)"
    if dsr < DSR_BAR:
        pbo = stats.get("pbo")
        return (f"{name}: deflated Sharpe {dsr:.3f} < {DSR_BAR} after {stats['n_trials']} trials of its factor"
                + (f" (PBO {pbo:.2f})" if pbo is not None else "")
                + ": its Sharpe may be the luck of the search")
    return None
