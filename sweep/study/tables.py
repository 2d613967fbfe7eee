"""The tables a search writes (grid and Optuna alike): the trials table and ``summary.json``."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from sweep.core.errors import SweepError
from sweep.engine.params import config_id
from sweep.metrics import names as metric_names
from sweep.results.schema import SCHEMA_VERSION
from sweep.run.plan import N_BLOCKS
from sweep.stats.choose import best_index


def _column(name: str, values: list[Any]) -> list[Any]:
    if name == "exclude":
        return [list(v) for v in values]
    if any(isinstance(v, str) for v in values) and any(isinstance(v, (int, float)) for v in values):
        # SEMANTICS §11: forecast_scalar = [3.75, "auto"] is one column of strings ("3.75" reads back).
        return [v if v is None or isinstance(v, str) else str(v) for v in values]
    return values


def config_schema(study: Any, configs: list[dict[str, Any]]) -> dict[str, pl.DataType]:
    """The dtype of each parameter column, from the distinct values of every configuration:
    what polars infers from the whole column, so a table written chunk by chunk has the
    dtypes of the table built at once."""
    schema: dict[str, pl.DataType] = {"config_id": pl.String}
    for name in study.columns:
        distinct = {repr(p[name]): p[name] for p in configs}
        schema[name] = pl.Series(name, _column(name, list(distinct.values()))).dtype
    return schema


def config_frame(study: Any, configs: list[dict[str, Any]],
                 schema: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    """``config_id`` and the study's parameter columns of ``configs``."""
    cols: dict[str, Any] = {"config_id": [config_id(p) for p in configs]}
    for name in study.columns:
        cols[name] = _column(name, [p[name] for p in configs])
    return pl.DataFrame(cols, schema=schema)


def trials_table(study: Any, configs: list[dict[str, Any]], metrics: pl.DataFrame,
                 schema: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    """The persisted table: ``config_id``, the study's parameters, the §9 metrics, ``schema_version``."""
    df = pl.concat([config_frame(study, configs, schema), metrics.select(metric_names())], how="horizontal")
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
