"""Grid studies (the default kind): every configuration of ``[grid]`` x ``[backtest]``.

Configurations run in chunks on the shared pool (``sweep.run.pool``). A chunk is a
range ``[a, b)`` of the grid's order and everything about it is built from the grid's
axes in the worker (``sweep.engine.space.ConfigSpace``: kernel rows, parameter columns,
ids hashed in bulk), so no list of configurations exists and memory does not grow with
their number. Each finished chunk's rows are written to ``<out>/.partial/`` before it
counts as done, so a rerun of the same study on the same data skips the chunks found
there (after kill -9 at any point) and assembles the table an uninterrupted run gives.
Chunk boundaries depend on the number of configurations only (not on ``--jobs``); the
final ``trials.parquet`` is streamed from the chunk files in order, in row groups of
``ROW_GROUP`` rows (``pyarrow.parquet.ParquetWriter``), and ``summary.json`` is computed from them a
chunk at a time (``sweep.study.tables.streamed_summary``).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from sweep.core.errors import SweepError
from sweep.core.io import replacing
from sweep.engine.workspace import Compiled, Workspace, compile_configs, kernel_panels, run_metrics
from sweep.metrics import names as metric_names
from sweep.results import ResultsFolder, manifest_head
from sweep.results.schema import SCHEMA_VERSION
from sweep.run.manifest import run_manifest
from sweep.run.plan import N_BLOCKS, Plan, plan
from sweep.run.cluster import open_cluster
from sweep.run.pool import default_jobs, run_chunks
from sweep.run.summary import RunSummary
from sweep.study.kind import StudyKind, register, run_study, window_lines, data_line
from sweep.study.tables import streamed_summary, study_summary, trials_table

BLOCK_COLUMNS = [f"_block_sum_{b}" for b in range(N_BLOCKS)] + [f"_block_sumsq_{b}" for b in range(N_BLOCKS)]
TABLES = ("trials.parquet", "summary.json")
OPTIONAL = ("returns.parquet",)  # with save_returns


def chunk_size(n: int) -> int:
    """Configurations per chunk: a function of the count alone, so a resumed run (whatever
    its ``--jobs``) meets the same boundaries. Small enough for a live progress bar and little
    lost work on interruption, large enough that scheduling costs nothing next to the kernels:
    a chunk costs 2-3 ms of table building and writing whatever its size, so chunks of 60
    configurations halved the rate of the 3,840-configuration benchmark (python
    benchmarks/bench_sweep.py), and eight chunks of 480 restored it."""
    return int(min(2048, max(32, -(-n // 8))))


def _warm_up(comp: Compiled, panels: tuple, s: int, e: int) -> None:
    run_metrics(panels, comp, slice(0, 1), s, e, np.empty((0, 0)),
                (np.empty((1, N_BLOCKS)), np.empty((1, N_BLOCKS))))


def _chunk_frame(params: pl.DataFrame, idx: np.ndarray, metrics: np.ndarray, sums: np.ndarray,
                 sumsq: np.ndarray) -> pl.DataFrame:
    """A finished chunk: its rows of the table (``trials_table``'s columns), then ``idx`` and the
    block moments the summary reads."""
    blocks = np.hstack([sums, sumsq])
    rows = trials_table(None, None, pl.DataFrame({m: metrics[:, j] for j, m in enumerate(metric_names())}),
                        params=params)
    return rows.with_columns(pl.Series("idx", idx),
                             *[pl.Series(c, blocks[:, j]) for j, c in enumerate(BLOCK_COLUMNS)])


def _returns_frame(ids: pl.Series, rets: np.ndarray) -> pl.DataFrame:
    C, n = rets.shape
    return pl.DataFrame({"config_id": ids.gather(np.repeat(np.arange(C), n)),
                         "day": np.tile(np.arange(n, dtype=np.int32), C), "ret": rets.ravel()})


@dataclass
class GridChunks:
    """A chunk ``[a, b)`` of the grid's order to its rows: everything a chunk needs is built from the
    grid's axes where it runs (a pool thread, or a cluster worker, to which this object goes once)."""

    space: Any  # sweep.engine.space.ConfigSpace
    comp: Compiled  # one row per structural combination, with the stacks the kernels read
    panels: tuple
    columns: list[str]
    schema: Any
    s: int
    e: int
    save_returns: bool

    def __call__(self, span: tuple[int, int]) -> tuple[pl.DataFrame, np.ndarray]:
        a, b = span
        ip, fp = self.space.encode(a, b, self.comp.ip, self.comp.fp)
        n = self.e - self.s + 1
        rets = np.empty((b - a, n)) if self.save_returns else np.empty((0, 0))
        sums, sumsq = np.empty((b - a, N_BLOCKS)), np.empty((b - a, N_BLOCKS))
        metrics = run_metrics(self.panels, replace(self.comp, ip=ip, fp=fp), slice(None), self.s, self.e, rets,
                              (sums, sumsq))
        params = self.space.frame(a, b, self.columns, self.schema)
        return _chunk_frame(params, np.arange(a, b, dtype=np.int64), metrics, sums, sumsq), rets


ROW_GROUP = 65_536  # rows per row group of the final tables (several chunks, when chunks are small)


def _stream(parts: list[Path], path: Path, build: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    """``build(part)`` of each part file, in order, appended to one Parquet file (schema and
    metadata written once) in row groups of at least ``ROW_GROUP`` rows: a row group per
    2,048-row chunk gave ten million rows 4,883 row groups, whose footer metadata the writer
    holds until it closes. Memory: one row group."""
    with replacing(path) as tmp:
        writer = None
        pending: list[pl.DataFrame] = []
        rows = 0

        def flush() -> None:
            nonlocal writer, rows
            table = pl.concat(pending).to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=max(ROW_GROUP, table.num_rows))
            pending.clear()
            rows = 0

        try:
            for part in parts:
                pending.append(build(pl.read_parquet(part)))
                rows += pending[-1].height
                if rows >= ROW_GROUP:
                    flush()
            if pending:
                flush()
        finally:
            if writer is not None:
                writer.close()


def _assemble(pl_: Plan, folder: ResultsFolder, save_returns: bool) -> None:
    """Stream the chunk files into the staged ``trials.parquet`` (and ``returns.parquet``), after
    checking that the chunks hold every configuration exactly once."""
    n = len(pl_.configs)
    parts = folder.chunks()
    # Each chunk file holds configurations first .. first + rows - 1 (its name gives first, its
    # footer the rows): they cover 0 .. n - 1 exactly once when each starts where the last ended.
    covered = 0
    for part in parts:
        if int(part.stem.rsplit("-", 1)[1]) != covered:
            break
        covered += pq.ParquetFile(part).metadata.num_rows
    if covered != n:
        raise SweepError(f"{folder.partial}: the finished chunks do not cover every configuration; "
                         "rerun with --force")
    drop = ["idx", *BLOCK_COLUMNS]
    _stream(parts, folder.stage_path("trials.parquet"), lambda chunk: chunk.drop(drop))
    if save_returns:
        dates = pl.Series("date", pl_.panel.dates[pl_.s:pl_.e + 1])
        _stream(folder.chunks("returns"), folder.stage_path("returns.parquet"),
                lambda chunk: chunk.select("config_id", dates.gather(chunk["day"]), "ret"))


def grid_summary(pl_: Plan, parts: list[Path]) -> dict[str, Any]:
    """``summary.json`` of a grid, read from its chunk files a chunk at a time."""
    return streamed_summary(pl_.study, pl_.panel, pl_.configs, pl_.s, pl_.e, parts, BLOCK_COLUMNS)


class GridKind(StudyKind):
    name = "grid"
    tables = TABLES
    clusters = True
    reads = frozenset({"grid"})
    show = "sweep.cli.kind_search:show"
    report = "sweep.report.search:section"

    def describe(self, study: Any, *, data=None, funding=None) -> list[str]:
        p = plan(study, data, funding)
        axes = " = " + " x ".join("every phase" if v == "all" else f"{len(v)} {k}"
                                  for k, v in study.axes.items()) if study.axes else ""
        return [data_line(p.panel), f"configs     {len(p.configs)}{axes}", *window_lines(study, p)]

    def run(self, study: Any, *, data=None, funding=None, out=None, jobs: int = 1, force: bool = False,
            progress: bool | None = None, on_chunk: Callable[[int], None] | None = None,
            max_configs: int | None = None, save_returns: bool = False, cluster: str | None = None) -> RunSummary:
        t0 = time.perf_counter()
        study.check_size(max_configs)
        pl_ = plan(study, data, funding)
        configs, s, e = pl_.configs, pl_.s, pl_.e
        jobs = max(1, jobs or default_jobs())
        folder = ResultsFolder(Path(out) if out is not None else Path("results") / study.name,
                               TABLES, OPTIONAL)
        fp_ = pl_.fingerprint(bool(save_returns))
        if folder.complete(fp_, force):
            return RunSummary(folder.path, len(configs), 0, len(configs), time.perf_counter() - t0, 0.0,
                              pl_.start, pl_.end)
        # Everything that can fail on the input happens before the first file is written.
        space = pl_.configs
        ws = Workspace(pl_.panel)
        comp = compile_configs(ws, space.reps, jobs)  # one row per structural combination
        del ws  # the stacks hold what the kernels read; drop the caches' copies
        columns = study.columns
        schema = space.column_schema(columns)
        panels = kernel_panels(pl_.panel)
        # Compiled (or loaded from Numba's cache) here before any worker starts, so no two
        # threads or processes compile or write the cache at once; a cluster's workers copy it.
        _warm_up(comp, panels, s, e)
        resources = ExitStack()
        # The cluster is reached before the first file is written: an unreachable one writes nothing.
        where = resources.enter_context(open_cluster(cluster))
        with resources, folder.claim():
            if folder.begin(fp_, study.path, force):
                return RunSummary(folder.path, len(configs), 0, len(configs), time.perf_counter() - t0, 0.0,
                                  pl_.start, pl_.end)
            size = chunk_size(len(configs))
            done = {int(f.stem.split("-")[1]) for f in folder.chunks()}
            pending = ((a, min(a + size, len(configs))) for a in range(0, len(configs), size) if a not in done)
            n_done = sum(min(a + size, len(configs)) - a for a in done)

            work = GridChunks(space, comp, panels, columns, schema, s, e, save_returns)

            def finish(span: tuple[int, int], result) -> int:
                frame, rets = result
                if save_returns:
                    folder.write_chunk(_returns_frame(frame["config_id"], rets), span[0], "returns")
                # The rows are written last: their file's presence is what marks the chunk done.
                folder.write_chunk(frame, span[0])
                return frame.height

            compute_time = 0.0
            if n_done < len(configs):
                compute_time = run_chunks(pending, work, finish, jobs=jobs, total=len(configs), done=n_done,
                                          progress=progress, on_chunk=on_chunk, cluster=where)
            resources.close()  # the cluster, if any: nothing more runs there
            comp = work = None  # the stacks of rankings are not needed past the backtests
            _assemble(pl_, folder, save_returns)
            folder.put("summary.json", grid_summary(pl_, folder.chunks()))
            summary = RunSummary(folder.path, len(configs), len(configs) - n_done, n_done,
                                 time.perf_counter() - t0, compute_time, pl_.start, pl_.end)
            folder.commit(run_manifest(pl_, fp_, summary))
        return summary


KIND = register(GridKind())

__all__ = ["BLOCK_COLUMNS", "GridKind", "KIND", "N_BLOCKS", "Plan", "RunSummary", "SCHEMA_VERSION",
           "chunk_size", "default_jobs", "grid_summary", "manifest_head", "plan", "run_manifest", "run_study",
           "streamed_summary", "study_summary", "trials_table"]
