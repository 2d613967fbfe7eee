"""Monte Carlo studies (``kind = "monte_carlo"``): how much of a result is luck.

Every configuration of the study's ``[grid]`` (the ``[backtest]`` parameters
alone when there is no grid: one configuration) runs on every *sample*; a
sample is one of three kinds of perturbation, chosen by ``[monte_carlo]
method``:

* ``block_bootstrap`` (``n_samples``, ``seed``, ``block_days``): a stationary
  bootstrap (Politis & Romano 1994) of whole days. Sample day 0 is the data's
  day 0 (it has no return); sample days ``1 .. e`` are drawn from the source
  days ``1 .. e`` (``e``: the evaluation end, so no day after it is ever used):
  a block starts at a uniform random day, and each following day starts a new
  block with probability ``1 / block_days``, else takes the source day after
  the previous one (wrapping from ``e`` to 1). Every symbol takes the same
  source day, so the cross-section of a day stays together. Closes are rebuilt
  by compounding the resampled simple returns from each symbol's first close
  (``kernels.bootstrap.rebuild_close`` states the rule for missing values: a
  symbol missing on the source day is missing on the sample day, and a source
  day without a measurable return is left unpriced rather than given an
  invented one). ``volume``, ``market_cap`` and ``funding_rate`` take the
  values of the same source days; ``open``, ``high`` and ``low`` are dropped
  (no feature reads them). Features and rankings are recomputed on the sample
  panel, and every configuration is evaluated over the study's window.
* ``phase``: every configuration at every rebalance phase ``0 .. k - 1``
  (``k`` its ``rebalance_days``) on the data itself. A sample is a phase, so
  ``n_samples`` and ``seed`` are refused (they could not change anything), as
  is a ``phase`` in ``[backtest]`` or ``[grid]`` (it is what the method varies).
* ``subperiod`` (``n_samples``, ``seed``, ``subperiod_days``): ``n_samples``
  windows of ``subperiod_days`` days, their first day uniform among those that
  keep the window inside the evaluation window; every configuration starts
  flat on the window's first day (features still read the days before it).

Sample ``k``'s random numbers come from ``numpy.random.default_rng([seed, k])``,
never from a worker, so results do not depend on ``--jobs``. Samples run on a
thread pool (the kernels release the GIL); each finished chunk of samples is
kept in ``<out>/.partial/`` so an interrupted run resumes, as a grid does.

Outputs in ``<out>``: ``samples.parquet`` (one row per sample and
configuration), ``summary.parquet`` (one row per configuration: statistics of
the study's objective over its samples) and ``manifest.json``.

Summary statistics (``mean``, ``median``, ``q05``, ``q95``: numpy's linear
quantiles) are over a configuration's non-NaN objective values;
``p_positive`` counts NaN as not positive; ``p_best`` is the probability that
the configuration is the best of a sample (highest objective, lowest for
``ann_vol``, ``turnover`` and ``cost_paid``), ties split evenly and NaN never
best, and neither is a book ruined in that sample (``p_ruined`` is the share
of samples in which it was ruined). For ``phase``, configurations with different ``rebalance_days`` share
no sample, so ``p_best`` is the exact probability of being the best when each
configuration's phase is drawn independently and uniformly.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from kernels.metrics import METRICS

from sweep.core.errors import SweepError
from sweep.data.panel import Panel
from sweep.engine.params import MAX_INT, closest
from sweep.metrics import lower_is_better
from sweep.engine.workspace import Evaluator
from sweep.results import SCHEMA_VERSION, ResultsFolder
from sweep.run.manifest import run_manifest
from sweep.run.plan import plan
from sweep.run.cluster import open_cluster
from sweep.run.pool import default_jobs, run_chunks, split
from sweep.run.summary import RunSummary
from sweep.study.file import Study, load_code
from sweep.study.kind import StudyKind, data_line, register, window_lines
from sweep.study.resampling import bootstrap_days, resample_panel, sample_rng, subperiod_window
from sweep.study.tables import config_frame

METHODS: dict[str, tuple[str, ...]] = {
    "block_bootstrap": ("n_samples", "seed", "block_days"),
    "phase": (),
    "subperiod": ("n_samples", "seed", "subperiod_days"),
}
KEYS = ("method", "n_samples", "seed", "block_days", "subperiod_days")
MINIMUM = {"n_samples": 1, "seed": 0, "block_days": 1, "subperiod_days": 2}
# Metrics where less is better; p_best ranks them the other way (as `sweep show` does).


@dataclass(frozen=True)
class Spec:
    """A validated ``[monte_carlo]`` table."""

    method: str
    n_samples: int | None  # None for phase
    seed: int | None  # None for phase
    block_days: int | None = None
    subperiod_days: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def spec(study: Study) -> Spec:
    """Parse and check ``[monte_carlo]``; every problem is one line naming the file and key."""
    where = f"{study.path}: [monte_carlo]"
    table = study.tables.get("monte_carlo")
    if table is None:
        raise SweepError(f"{study.path}: a monte_carlo study needs a [monte_carlo] table "
                         f"with method = one of {', '.join(METHODS)}")
    for key, value in table.items():
        if key not in KEYS:
            raise SweepError(f"{where} unknown key {key} = {value!r}{closest(key, KEYS)}")
    if "method" not in table:
        raise SweepError(f"{where} method is missing: one of {', '.join(METHODS)}")
    method = table["method"]
    if not isinstance(method, str) or method not in METHODS:
        hint = closest(method, METHODS) if isinstance(method, str) else ""
        raise SweepError(f"{where} method = {method!r} is not one of {', '.join(METHODS)}{hint}")
    allowed = METHODS[method]
    for key, value in table.items():
        if key != "method" and key not in allowed:
            why = (" (a sample is a rebalance phase: every configuration runs at each of its "
                   "rebalance_days phases)" if method == "phase" else "")
            raise SweepError(f"{where} {key} = {value!r} does not apply to method '{method}'{why}")
    values: dict[str, int] = {}
    for key in allowed:
        if key not in table:
            if key == "seed":
                values[key] = 0
                continue
            raise SweepError(f"{where} {key} is missing: method '{method}' needs it "
                             f"(an integer >= {MINIMUM[key]})")
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise SweepError(f"{where} {key} = {value!r} must be an integer")
        if value < MINIMUM[key]:
            raise SweepError(f"{where} {key} = {value!r} is below the minimum {MINIMUM[key]}")
        # A block longer than the data is simply one block; other counts this large are typos.
        if key in ("n_samples", "subperiod_days") and value > MAX_INT:
            raise SweepError(f"{where} {key} = {value!r} is above the maximum {MAX_INT:,}")
        values[key] = value
    if method == "phase":
        for table_name, params in (("[backtest]", study.fixed), ("[grid]", study.axes)):
            if "phase" in params:
                raise SweepError(f"{study.path}: {table_name} phase = {params['phase']!r} cannot be set "
                                 "in a study of [monte_carlo] method = 'phase', which runs every phase")
        return Spec(method, None, None)
    return Spec(method, values["n_samples"], values["seed"],
                values.get("block_days"), values.get("subperiod_days"))


def validate(study: Study) -> None:
    """Refuse a bad ``[monte_carlo]`` table before any data is read (called by ``load_study``)."""
    spec(study)


# --------------------------------------------------------------------------- summary


def best_shares(values: np.ndarray, lower_is_better: bool = False) -> np.ndarray:
    """``(S, C)`` objective values -> each configuration's share of being the best, per sample.

    Ties split evenly; NaN is never best; a sample with no finite value has no best.
    """
    v = -values if lower_is_better else values
    finite = ~np.isnan(v)
    top = np.max(np.where(finite, v, -np.inf), axis=1, keepdims=True)
    win = finite & (v == top)
    count = win.sum(axis=1, keepdims=True)
    return np.where(win, 1.0 / np.maximum(count, 1), 0.0)


def p_best_independent(groups: list[np.ndarray], lower_is_better: bool = False) -> np.ndarray:
    """P(configuration c is the best) when each draws one of its values, uniformly and independently.

    Ties split evenly (a tie with ``m`` others wins ``1 / (m + 1)``), NaN is
    never best. Exact: for each value ``x`` of ``c``, the others' counts of
    worse and equal values form a polynomial whose coefficient ``m`` is the
    probability that exactly ``m`` others tie at ``x`` and the rest are worse.
    """
    sign = -1.0 if lower_is_better else 1.0
    vals = [sign * np.asarray(g, dtype=np.float64) for g in groups]
    out = np.zeros(len(vals))
    for c, vc in enumerate(vals):
        total = 0.0
        for x in vc[~np.isnan(vc)]:
            poly = np.array([1.0])
            for j, vj in enumerate(vals):
                if j == c:
                    continue
                below = (np.isnan(vj) | (vj < x)).mean()
                equal = (vj == x).mean()
                poly = np.convolve(poly, [below, equal])
            total += float(np.sum(poly / np.arange(1, len(poly) + 1)))
        out[c] = total / len(vc)
    return out


def summary_table(study: Study, configs: list[dict[str, Any]], samples: pl.DataFrame,
                  method: str, schema_version: int) -> pl.DataFrame:
    """One row per configuration: statistics of the study's objective over its samples."""
    obj = study.objective
    lower = lower_is_better(obj)
    idx = samples["idx"].to_numpy()
    values = samples[obj].to_numpy().astype(np.float64)
    ruined = samples["ruined"].to_numpy().astype(np.float64) > 0
    # A book ruined in a sample is never that sample's best (SEMANTICS §8): its
    # ratios describe a closed book. Its value still counts in the quantiles.
    contest = np.where(ruined, np.nan, values)
    C = len(configs)
    groups = [values[idx == c] for c in range(C)]
    if method == "phase":
        p_best = p_best_independent([contest[idx == c] for c in range(C)], lower)
    else:
        S = samples["sample"].n_unique()
        grid = np.full((S, C), np.nan)
        grid[samples["sample"].to_numpy() - samples["sample"].min(), idx] = contest
        p_best = best_shares(grid, lower).mean(axis=0)
    stats: dict[str, list[float]] = {k: [] for k in ("mean", "median", "q05", "q95", "p_positive")}
    for g in groups:
        f = g[~np.isnan(g)]
        has = len(f) > 0
        stats["mean"].append(float(np.mean(f)) if has else np.nan)
        stats["median"].append(float(np.median(f)) if has else np.nan)
        stats["q05"].append(float(np.quantile(f, 0.05)) if has else np.nan)
        stats["q95"].append(float(np.quantile(f, 0.95)) if has else np.nan)
        stats["p_positive"].append(float(np.mean(g > 0)) if len(g) else np.nan)
    table = config_frame(study, configs).with_columns(
        pl.lit(obj).alias("objective"),
        *[pl.Series(k, v, dtype=pl.Float64) for k, v in stats.items()],
        pl.Series("p_best", p_best, dtype=pl.Float64),
        pl.Series("p_ruined", [float(ruined[idx == c].mean()) if (idx == c).any() else np.nan for c in range(C)],
                  dtype=pl.Float64),
        pl.Series("n_samples", [len(g) for g in groups], dtype=pl.Int64),
        pl.lit(schema_version, dtype=pl.Int32).alias("schema_version"),
    )
    return table


# --------------------------------------------------------------------------- run


@dataclass
class Samples:
    """Sample indices to the rows of their backtests (``_chunk_frame``): what a pool thread or a
    cluster worker runs. Picklable, so a cluster's workers each receive it once: the panel,
    the configurations and, for ``phase`` and ``subperiod``, the prepared evaluator (features
    and rankings computed once, only read afterwards)."""

    sp: Spec
    study: Study
    panel: Panel
    configs: list[dict[str, Any]]
    s: int
    e: int
    ev: Evaluator | None = None  # phase, subperiod: shared by every sample
    label: str = ""

    def setup(self) -> None:
        """On a cluster worker: the researcher's factor code (a bootstrap sample computes features)."""
        load_code(self.study)

    def unit(self, k: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int] | None]:
        """Sample ``k``: the configurations it ran, their metrics and its window (subperiod)."""
        sp, configs = self.sp, self.configs
        if sp.method == "block_bootstrap":
            days = bootstrap_days(self.e + 1, sp.block_days, sample_rng(sp.seed, k))
            sample = resample_panel(self.panel, days, f"{self.label} (block bootstrap sample {k})")
            metrics, _ = Evaluator(sample).run(configs, self.s, self.e)
            return np.arange(len(configs), dtype=np.int64), metrics, None
        if sp.method == "subperiod":
            a, b = subperiod_window(self.s, self.e, sp.subperiod_days, sample_rng(sp.seed, k))
            return np.arange(len(configs), dtype=np.int64), self.ev.run(configs, a, b)[0], (a, b)
        # phase: sample k runs, at phase k, every configuration with rebalance_days > k.
        idx = np.flatnonzero(np.array([p["rebalance_days"] for p in configs], dtype=np.int64) > k)
        return idx, self.ev.run([{**configs[c], "phase": k} for c in idx], self.s, self.e)[0], None

    def __call__(self, units: list[int]) -> pl.DataFrame:
        return _chunk_frame([(k, *self.unit(k)) for k in units])


@dataclass
class _Job:
    """What a method runs: ``units`` sample indices, each producing rows of metrics."""

    units: list[int]
    rows: int  # backtests in all
    work: Samples
    chunk_cap: int


def _job(sp: Spec, study: Study, panel: Panel, configs: list[dict[str, Any]], s: int, e: int,
         jobs: int) -> _Job:
    C = len(configs)
    if sp.method == "block_bootstrap":
        panel.simple_returns  # noqa: B018  (once, before the threads read it)
        # Loads every kernel a sample uses (features, rankings, recursion) before
        # the pool starts, so no two threads compile or read Numba's cache at once.
        Evaluator(panel, jobs).run(configs, s, s)
        resample_panel(panel, np.arange(min(3, e + 1)))
        work = Samples(sp, study, panel, configs, s, e, label=Path(panel.source).name)
        return _Job(list(range(sp.n_samples)), C * sp.n_samples, work, 16)

    # One evaluator for every sample: features and rankings are computed once
    # (in parallel) and only read afterwards, so the threads share them.
    ev = Evaluator(panel, jobs)
    work = Samples(sp, study, panel, configs, s, e, ev)
    if sp.method == "subperiod":
        L = sp.subperiod_days
        if L > e - s + 1:
            raise SweepError(f"{study.path}: [monte_carlo] subperiod_days = {L} is longer than the "
                             f"evaluation window ({e - s + 1} days, {panel.dates[s]} .. {panel.dates[e]})")
        ev.prepare(configs)
        ev.run(configs[:1], s, s)
        return _Job(list(range(sp.n_samples)), C * sp.n_samples, work, 64)

    ks = np.array([p["rebalance_days"] for p in configs], dtype=np.int64)
    ev.prepare(configs)
    ev.run(configs[:1], s, s)
    return _Job(list(range(int(ks.max()))), int(ks.sum()), work, 8)


def _fingerprint(study: Study, panel: Panel, s: int, e: int, schema_version: int) -> str:
    key = json.dumps([schema_version, "monte_carlo", study.fingerprint(), panel.fingerprint, s, e])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _chunk_frame(results: list[tuple[int, np.ndarray, np.ndarray, tuple[int, int] | None]]) -> pl.DataFrame:
    sample = np.concatenate([np.full(len(idx), k, dtype=np.int64) for k, idx, _, _ in results])
    idx = np.concatenate([r[1] for r in results])
    metrics = np.concatenate([r[2] for r in results])
    cols: dict[str, Any] = {"sample": sample, "idx": idx}
    if results[0][3] is not None:
        cols["s"] = np.concatenate([np.full(len(r[1]), r[3][0], dtype=np.int64) for r in results])
        cols["e"] = np.concatenate([np.full(len(r[1]), r[3][1], dtype=np.int64) for r in results])
    cols.update({m: metrics[:, j] for j, m in enumerate(METRICS)})
    return pl.DataFrame(cols)


def samples_table(study: Study, configs: list[dict[str, Any]], raw: pl.DataFrame, panel: Panel,
                  method: str, schema_version: int) -> pl.DataFrame:
    """The persisted rows: ``sample``, ``config_id``, the study's parameters, (``phase`` |
    ``start``, ``end``), every §9 metric, ``schema_version``; sorted by sample, then configuration."""
    raw = raw.sort("sample", "idx")
    idx = raw["idx"].to_numpy()
    params = config_frame(study, configs)[idx]
    extra: list[pl.Series] = []
    if method == "phase":
        extra.append(pl.Series("phase", raw["sample"].to_numpy(), dtype=pl.Int64))
    if "s" in raw.columns:
        extra.append(pl.Series("start", panel.dates[raw["s"].to_numpy()]))
        extra.append(pl.Series("end", panel.dates[raw["e"].to_numpy()]))
    table = pl.concat([raw.select("sample"), params, pl.DataFrame(extra), raw.select(METRICS)],
                      how="horizontal")
    return table.with_columns(pl.col("n_rebalances").cast(pl.Int64),
                              pl.lit(schema_version, dtype=pl.Int32).alias("schema_version"))


TABLES = ("samples.parquet", "summary.parquet")


def run(study: Study, *, data=None, funding=None, out=None, jobs: int | None = None, force: bool = False,
        progress: bool | None = None, on_chunk: Callable[[int], None] | None = None, cluster: str | None = None,
        **_: Any) -> RunSummary:
    """Run a Monte Carlo study and write ``samples.parquet``, ``summary.parquet``, ``manifest.json``.

    Returns a ``RunSummary`` whose ``n_configs`` counts backtests (configurations
    x samples; for ``phase``, the sum of every configuration's ``rebalance_days``).
    ``on_chunk(n_written)`` is called after each chunk of samples reaches the disk.
    """
    t0 = time.perf_counter()
    sp = spec(study)
    pl_ = plan(study, data, funding)
    panel, configs, s, e = pl_.panel, pl_.configs, pl_.s, pl_.e
    jobs = max(1, jobs or default_jobs())
    folder = ResultsFolder(Path(out) if out is not None else Path("results") / study.name, TABLES)
    fp = _fingerprint(study, panel, s, e, SCHEMA_VERSION)
    if folder.complete(fp, force):
        rows = folder.scan("samples.parquet").select(pl.len()).collect().item()
        return RunSummary(folder.path, rows, 0, rows, time.perf_counter() - t0, 0.0, pl_.start, pl_.end)
    # Everything that can fail on the input happens before the first file is written.
    job = _job(sp, study, panel, configs, s, e, jobs)
    resources = ExitStack()
    # The cluster is reached before the first file is written: an unreachable one writes nothing.
    where = resources.enter_context(open_cluster(cluster))
    with resources, folder.claim():
        if folder.begin(fp, study.path, force):
            return RunSummary(folder.path, job.rows, 0, job.rows, time.perf_counter() - t0, 0.0,
                              pl_.start, pl_.end)
        old = [pl.read_parquet(f) for f in folder.chunks()]
        done = set(pl.concat(old)["sample"].unique().to_list()) if old else set()
        pending = [k for k in job.units if k not in done]
        n_resumed = sum(len(f) for f in old)
        del old  # read back from disk at the end, with this run's chunks

        def finish(units: list[int], frame: pl.DataFrame) -> int:
            # The chunk counts as done once its file is on disk (resume reads these).
            folder.write_chunk(frame, units[0])
            return frame.height

        compute_time = 0.0
        if pending:
            compute_time = run_chunks(split(pending, jobs, job.chunk_cap), job.work, finish, jobs=jobs,
                                      total=job.rows, done=n_resumed, progress=progress, on_chunk=on_chunk,
                                      cluster=where, key=lambda units: units[0])
        resources.close()  # the cluster, if any: nothing more runs there
        raw = pl.concat([pl.read_parquet(f) for f in folder.chunks()])
        if raw.height != job.rows or raw.select(pl.struct("sample", "idx").n_unique()).item() != job.rows:
            raise SweepError(f"{folder.partial}: the finished chunks do not cover every sample; "
                             "rerun with --force")
        folder.put("samples.parquet", samples_table(study, configs, raw, panel, sp.method, SCHEMA_VERSION))
        folder.put("summary.parquet", summary_table(study, configs, raw.sort("sample", "idx"), sp.method,
                                                    SCHEMA_VERSION))
        n_run = job.rows - n_resumed
        summary = RunSummary(folder.path, job.rows, n_run, n_resumed, time.perf_counter() - t0, compute_time,
                             pl_.start, pl_.end)
        doc = run_manifest(pl_, fp, summary)
        for key in ("configurations_run", "configurations_resumed", "configs_per_second"):
            doc.pop(key, None)
        doc.update({
            "configurations": len(configs),
            "method": sp.method,
            "n_samples": len(job.units),
            "seed": sp.seed,
            "monte_carlo": sp.as_dict(),
            "backtests": job.rows,
            "backtests_run": n_run,
            "backtests_resumed": n_resumed,
            "backtests_per_second": round(n_run / compute_time, 1) if n_run and compute_time > 0 else None,
        })
        folder.commit(doc)
    return summary


class MonteCarloKind(StudyKind):
    name = "monte_carlo"
    tables = TABLES
    clusters = True
    reads = frozenset({"monte_carlo", "grid"})
    counts = "backtests"
    show = "sweep.cli.kind_monte_carlo:show"
    report = "sweep.report.monte_carlo:section"

    def validate(self, study: Study) -> None:
        spec(study)

    def describe(self, study: Study, *, data=None, funding=None) -> list[str]:
        sp = spec(study)
        p = plan(study, data, funding)
        samples = ("every rebalance phase of each configuration" if sp.method == "phase"
                   else f"{sp.n_samples} {sp.method.replace('_', ' ')} samples, seed {sp.seed}")
        return [data_line(p.panel), f"configs     {len(p.configs)}", f"samples     {samples}",
                *window_lines(study, p)]

    def run(self, study: Study, **options: Any) -> RunSummary:
        return run(study, **options)


KIND = register(MonteCarloKind())

__all__ = ["METHODS", "Spec", "bootstrap_days", "best_shares", "p_best_independent", "resample_panel",
           "run", "sample_rng", "samples_table", "spec", "subperiod_window", "summary_table", "validate"]
