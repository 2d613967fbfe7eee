"""The tables a search writes (grid and Optuna alike): the trials table and ``summary.json``."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from sweep.core.errors import SweepError
from sweep.engine.params import config_id
from sweep.engine.space import table_values
from sweep.metrics import names as metric_names
from sweep.results.schema import SCHEMA_VERSION
from sweep.run.plan import N_BLOCKS
from sweep.stats.choose import best_index, minimises


def config_schema(study: Any, configs: list[dict[str, Any]]) -> dict[str, pl.DataType]:
    """The dtype of each parameter column, from the distinct values of every configuration:
    what polars infers from the whole column, so a table written chunk by chunk has the
    dtypes of the table built at once."""
    schema: dict[str, pl.DataType] = {"config_id": pl.String}
    for name in study.columns:
        distinct = {repr(p[name]): p[name] for p in configs}
        schema[name] = pl.Series(name, table_values(name, list(distinct.values()))).dtype
    return schema


def config_frame(study: Any, configs: list[dict[str, Any]],
                 schema: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    """``config_id`` and the study's parameter columns of ``configs``."""
    cols: dict[str, Any] = {"config_id": [config_id(p) for p in configs]}
    for name in study.columns:
        cols[name] = table_values(name, [p[name] for p in configs])
    return pl.DataFrame(cols, schema=schema)


def trials_table(study: Any, configs: list[dict[str, Any]] | None, metrics: pl.DataFrame,
                 schema: dict[str, pl.DataType] | None = None, params: pl.DataFrame | None = None) -> pl.DataFrame:
    """The persisted table: ``config_id``, the study's parameters, the §9 metrics, ``schema_version``.

    The first columns come from ``params`` when given (a grid builds them in bulk,
    ``sweep.engine.space.ConfigSpace.frame``), else from ``configs``."""
    if params is None:
        params = config_frame(study, configs, schema)
    df = pl.concat([params, metrics.select(metric_names())], how="horizontal")
    return df.with_columns(pl.col("n_rebalances").cast(pl.Int64),
                           pl.lit(SCHEMA_VERSION, dtype=pl.Int32).alias("schema_version"))


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def study_summary(study: Any, panel: Any, configs: list[dict[str, Any]], s: int, e: int,
                  metrics: np.ndarray, sums: np.ndarray, sumsq: np.ndarray,
                  columns: list[str] | None = None) -> dict[str, Any]:
    """``summary.json``: the best configuration and the overfitting statistics of a search
    (PSR, DSR, expected maximum Sharpe, minimum backtest length, PBO by CSCV).

    ``metrics`` ``(C, M)`` (columns as ``sweep.metrics.names()``) and the per-block moments
    ``(C, N_BLOCKS)`` of the ``C`` distinct configurations tried (N in the deflation is ``C``).
    """
    from sweep.engine.workspace import Evaluator
    from sweep.stats.overfit import overfitting_summary

    names = metric_names()
    objective = study.objective
    values = metrics[:, names.index(objective)]
    ruined = metrics[:, names.index("ruined")]
    best = best_index(values, objective, ruined)
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "objective": objective,
                           "n_configurations": len(configs)}
    out["n_ruined"] = int((ruined > 0).sum())
    if best < 0:
        out["note"] = f"no configuration that was not ruined has a finite {objective}"
        return out
    p = configs[best]
    out["best"] = {"config_id": config_id(p), **{k: _jsonable(p[k]) for k in (columns or study.columns)},
                   objective: float(values[best])}
    _, rets = Evaluator(panel).run([p], s, e, returns=True)
    n = e - s + 1
    counts = np.array([n // N_BLOCKS + (1 if b < n % N_BLOCKS else 0) for b in range(N_BLOCKS)], dtype=np.int64)
    try:
        out["overfitting"] = overfitting_summary(rets[0], metrics[:, names.index("sharpe")],
                                                 np.ascontiguousarray(sums), np.ascontiguousarray(sumsq), counts)
    except SweepError as exc:  # too few configurations or days for the statistics
        out["note"] = str(exc)
    return out


class _Best:
    """The best configuration not ruined, kept while chunks stream by (first on ties, as
    ``best_index`` over the whole table)."""

    def __init__(self, objective: str):
        self.objective, self.index, self.value = objective, -1, np.nan
        self.sign = -1.0 if minimises(objective) else 1.0

    def update(self, values: np.ndarray, ruined: np.ndarray, index: np.ndarray) -> None:
        """``values`` and ``ruined`` of configurations ``index`` (ascending, after those seen)."""
        j = best_index(values, self.objective, ruined)
        if j >= 0 and (self.index < 0 or self.sign * values[j] > self.sign * self.value):
            self.index, self.value = int(index[j]), float(values[j])


def _combine_var(acc: tuple[int, float, float], x: np.ndarray) -> tuple[int, float, float]:
    """Count, mean and sum of squared deviations of everything seen, updated with ``x``
    (Chan et al.'s pairwise update: as exact as one pass over the whole column)."""
    n, mean, m2 = acc
    k = len(x)
    if k == 0:
        return acc
    mx = float(x.mean())
    m2x = float(((x - mx) ** 2).sum())
    tot = n + k
    delta = mx - mean
    return tot, mean + delta * k / tot, m2 + m2x + delta * delta * n * k / tot


def streamed_summary(study: Any, panel: Any, space: Any, s: int, e: int, parts: list[Any],
                     block_columns: list[str], periods_per_year: float = 365) -> dict[str, Any]:
    """``summary.json`` of a grid from its chunk files, one chunk in memory at a time: the best
    configuration not ruined, the best per factor, and the overfitting statistics (DSR from the
    count and variance of the Sharpe ratios, PBO by CSCV over the chunks' block moments,
    ``sweep.stats.overfit.pbo_chunks``)."""
    from sweep.engine.workspace import Evaluator
    from sweep.stats.overfit import overfitting_from_trials, pbo_chunks

    objective = study.objective
    have = pl.read_parquet_schema(parts[0]) if parts else {}
    need = [c for c in dict.fromkeys([objective, "ruined", "sharpe", "factor", "idx"]) if c in have]
    best = _Best(objective)
    per_factor: dict[str, _Best] = {}
    n_ruined = 0
    var_acc = (0, 0.0, 0.0)
    root = np.sqrt(periods_per_year)
    for part in parts:
        chunk = pl.read_parquet(part, columns=need)
        values, ruined = chunk[objective].to_numpy(), chunk["ruined"].to_numpy()
        index = chunk["idx"].to_numpy()
        best.update(values, ruined, index)
        n_ruined += int((ruined > 0).sum())
        sharpe = chunk["sharpe"].to_numpy()
        var_acc = _combine_var(var_acc, sharpe[np.isfinite(sharpe)] / root)
        if "factor" not in chunk.columns:  # one factor, from [backtest] or the default
            per_factor.setdefault(space.reps[0]["factor"], _Best(objective)).update(values, ruined, index)
            continue
        for (factor,), rows in chunk.with_row_index("_row").group_by("factor", maintain_order=True):
            r = rows["_row"].to_numpy()
            per_factor.setdefault(factor, _Best(objective)).update(values[r], ruined[r], index[r])
    n = len(space)
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "objective": objective, "n_configurations": n,
                           "n_ruined": n_ruined}
    if best.index < 0:
        out["note"] = f"no configuration that was not ruined has a finite {objective}"
        return out
    p = space[best.index]
    out["best"] = {"config_id": config_id(p), **{k: _jsonable(p[k]) for k in study.columns},
                   objective: best.value}
    out["best_per_factor"] = {f: {"config_id": config_id(space[b.index]), objective: b.value}
                              for f, b in sorted(per_factor.items()) if b.index >= 0}
    _, rets = Evaluator(panel).run([p], s, e, returns=True)
    days = e - s + 1
    counts = np.array([days // N_BLOCKS + (1 if b < days % N_BLOCKS else 0) for b in range(N_BLOCKS)],
                      dtype=np.int64)
    half = len(block_columns) // 2

    def blocks():
        for part in parts:
            m = pl.read_parquet(part, columns=block_columns).to_numpy()
            yield np.ascontiguousarray(m[:, :half]), np.ascontiguousarray(m[:, half:])

    n_finite, _, m2 = var_acc
    var_sr = m2 / (n_finite - 1) if n_finite >= 2 else float("nan")
    try:
        result = pbo_chunks(blocks, counts, n)
        out["overfitting"] = overfitting_from_trials(rets[0], n, n_finite, var_sr, result, periods_per_year)
    except SweepError as exc:  # too few configurations or days for the statistics
        out["note"] = str(exc)
    return out
