"""What an Optuna study writes: ``trials.parquet`` (rebuilt from the storage alone), ``summary.json``
and ``manifest.json``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from kernels.metrics import METRICS
from sweep.engine.params import resolve
from sweep.results import manifest_head, versions
from sweep.results.schema import SCHEMA_VERSION
from sweep.run.plan import N_BLOCKS
from sweep.run.summary import RunSummary
from sweep.stats.choose import best_index
from sweep.study.optuna.trials import A_METRICS, is_row
from sweep.study.tables import config_frame, study_summary

TABLES = ("trials.parquet", "summary.json")


@dataclass
class Columns:
    columns: list[str]  # what config_frame reads of a study


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def table(p: Any, trials: list) -> pl.DataFrame:
    """The persisted table, from the storage's trials alone: the grid's schema plus ``trial_number``.

    ``p`` is a ``Prepared``. Rows are the trials that finished with metrics (and were not
    abandoned), in trial-number order.
    """
    rows = sorted((t for t in trials if is_row(t)), key=lambda t: t.number)
    where = f"{p.study.path}: [space]"
    configs = [resolve({**p.study.fixed, **t.params}, where, checked=True) for t in rows]
    metrics = pl.DataFrame(
        {m: np.array([_num(t.user_attrs[A_METRICS].get(m)) for t in rows], dtype=np.float64) for m in METRICS})
    df = pl.concat([config_frame(Columns(p.columns), configs), metrics], how="horizontal")
    return df.with_columns(pl.col("n_rebalances").cast(pl.Int64),
                           pl.lit(SCHEMA_VERSION, dtype=pl.Int32).alias("schema_version"),
                           pl.Series("trial_number", [t.number for t in rows], dtype=pl.Int64))


def summary(p: Any, df: pl.DataFrame) -> dict:
    """The overfitting statistics over the distinct configurations the search tried
    (TPE proposes some twice; a repeat is not another independent try)."""
    from sweep.engine.workspace import Evaluator

    where = f"{p.study.path}: [space]"
    first = df.unique("config_id", keep="first", maintain_order=True)
    configs = [resolve({k: (tuple(v) if isinstance(v, list) else v) for k, v in row.items() if k in p.columns},
                       where) for row in first.select(p.columns).iter_rows(named=True)]
    metrics, _, (sums, sumsq) = Evaluator(p.panel).run_blocks(configs, p.s, p.e, N_BLOCKS)
    return study_summary(p.study, p.panel, configs, p.s, p.e, metrics, sums, sumsq, p.columns)


def manifest(p: Any, fp: str, run: RunSummary, df: pl.DataFrame, ostudy, direction: str,
             storage: str, in_flight: int) -> dict[str, Any]:
    import optuna

    study, panel = p.study, p.panel
    best = None
    i = best_index(df[study.objective].cast(pl.Float64).fill_null(np.nan).to_numpy(), study.objective,
                   df["ruined"].cast(pl.Float64).fill_null(0.0).to_numpy())
    if i >= 0:
        row = df.row(i, named=True)
        best = {"trial_number": row["trial_number"], "config_id": row["config_id"],
                "value": row[study.objective], "params": {d.name: row[d.name] for d in p.space}}
    return {
        **manifest_head(study, panel, fp, run.start, run.end, p.e - p.s + 1),
        "optuna": {"n_trials": p.options.n_trials, "sampler": p.options.sampler, "seed": p.options.seed,
                   "storage": storage, "study_name": ostudy.study_name, "direction": direction,
                   "in_flight": in_flight, "space": {d.name: d.describe() for d in p.space},
                   **({"heartbeat_interval": p.options.heartbeat_interval, "grace_period": p.options.grace_period}
                      if p.options.heartbeat_interval is not None else {})},
        "n_trials": p.options.n_trials,
        "configurations": run.n_configs,
        "configurations_run": run.n_run,
        "configurations_resumed": run.n_resumed,
        "wall_time_s": round(run.wall_time, 4),
        "compute_time_s": round(run.compute_time, 4),
        "trials_per_second": round(run.configs_per_second, 1) if run.n_run else None,
        "configs_per_second": round(run.configs_per_second, 1) if run.n_run else None,
        "best": best,
        "n_ruined": int((df["ruined"] > 0).sum()),
        "versions": {**versions(), "optuna": optuna.__version__},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "factors": sorted(set(df["factor"].to_list())) if "factor" in df.columns
        else sorted({c["factor"] for c in p.corners}),
        "parameters": p.columns,
    }
