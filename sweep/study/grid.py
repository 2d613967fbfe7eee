"""Grid studies (the default kind): every configuration of ``[grid]`` x ``[backtest]``.

Configurations run in chunks on the shared pool (``sweep.run.pool``); each finished
chunk is written to ``<out>/.partial/`` before it counts as done, so a rerun of the
same study on the same data skips the chunks found there and assembles the table
an uninterrupted run gives. Chunk boundaries depend on the number of configurations
only (not on ``--jobs``), so every chunk file holds a contiguous range and the final
``trials.parquet`` is streamed from them in order, one chunk in memory at a time.

Memory: the rows are never all held at once; what grows with the count is the list of
resolved configurations and the summary's inputs (the metrics and the block moments
of every configuration, about 400 bytes each), which is why a study over
``sweep.study.file.MAX_CONFIGS`` configurations is refused unless ``--max-configs``
raises the limit.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from sweep.core.errors import SweepError
from sweep.core.io import replacing
from sweep.engine.params import config_id
from sweep.engine.workspace import Compiled, Workspace, compile_configs, kernel_panels, run_metrics
from sweep.metrics import names as metric_names
from sweep.results import ResultsFolder, manifest_head
from sweep.results.schema import SCHEMA_VERSION
from sweep.run.manifest import run_manifest
from sweep.run.plan import N_BLOCKS, Plan, plan
from sweep.run.pool import default_jobs, run_chunks
from sweep.run.summary import RunSummary
from sweep.study.kind import StudyKind, register, run_study, window_lines, data_line
from sweep.study.tables import config_schema, study_summary, trials_table

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
    # Compile (or load from Numba's cache) in this thread before the pool starts,
    # so no two workers compile or write the cache at once.
    run_metrics(panels, comp, slice(0, 1), s, e, np.empty((0, 0)),
                (np.empty((1, N_BLOCKS)), np.empty((1, N_BLOCKS))))


def _chunk_frame(idx: np.ndarray, metrics: np.ndarray, sums: np.ndarray, sumsq: np.ndarray) -> pl.DataFrame:
    blocks = np.hstack([sums, sumsq])
    return pl.DataFrame({"idx": idx, **{m: metrics[:, j] for j, m in enumerate(metric_names())},
                         **{c: blocks[:, j] for j, c in enumerate(BLOCK_COLUMNS)}})


def _returns_frame(idx: np.ndarray, rets: np.ndarray) -> pl.DataFrame:
    C, n = rets.shape
    return pl.DataFrame({"idx": np.repeat(idx, n).astype(np.int64),
                         "day": np.tile(np.arange(n, dtype=np.int32), C), "ret": rets.ravel()})


def _stream(parts: list[Path], path: Path, build: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    """``build(part)`` of each part file, in order, appended as row groups of one Parquet file."""
    with replacing(path) as tmp:
        writer = None
        try:
            for part in parts:
                table = build(pl.read_parquet(part)).to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()


def _assemble(pl_: Plan, folder: ResultsFolder, save_returns: bool) -> pl.DataFrame:
    """Stream the chunk files into the staged ``trials.parquet`` (and ``returns.parquet``);
    returns what the summary reads (metrics and block moments, no parameters)."""
    configs, study = pl_.configs, pl_.study
    parts = folder.chunks()
    seen = pl.scan_parquet(parts).select("idx").collect()["idx"] if parts else pl.Series("idx", [], pl.Int64)
    if seen.len() != len(configs) or not (seen == pl.int_range(0, len(configs), eager=True)).all():
        raise SweepError(f"{folder.partial}: the finished chunks do not cover every configuration; "
                         "rerun with --force")
    schema = config_schema(study, configs)

    def trials(chunk: pl.DataFrame) -> pl.DataFrame:
        idx = chunk["idx"].to_numpy()
        return trials_table(study, configs[idx[0]:idx[-1] + 1], chunk, schema)

    _stream(parts, folder.stage_path("trials.parquet"), trials)
    if save_returns:
        dates = pl.Series("date", pl_.panel.dates[pl_.s:pl_.e + 1])

        def returns(chunk: pl.DataFrame) -> pl.DataFrame:
            ids = pl.Series("config_id", [config_id(configs[i]) for i in chunk["idx"].unique(maintain_order=True)])
            first = int(chunk["idx"][0])
            return pl.DataFrame({"config_id": ids.gather(chunk["idx"] - first),
                                 "date": dates.gather(chunk["day"]), "ret": chunk["ret"]})

        _stream(folder.chunks("returns"), folder.stage_path("returns.parquet"), returns)
    return pl.scan_parquet(parts).select([*metric_names(), *BLOCK_COLUMNS]).collect()


def grid_summary(pl_: Plan, metrics: pl.DataFrame) -> dict[str, Any]:
    """``summary.json`` of a grid, from the block moments the kernels kept per chunk."""
    blocks = metrics.select(BLOCK_COLUMNS).to_numpy()
    return study_summary(pl_.study, pl_.panel, pl_.configs, pl_.s, pl_.e,
                         metrics.select(metric_names()).to_numpy(), blocks[:, :N_BLOCKS], blocks[:, N_BLOCKS:])


class GridKind(StudyKind):
    name = "grid"
    tables = TABLES
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
            max_configs: int | None = None, save_returns: bool = False) -> RunSummary:
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
        ws = Workspace(pl_.panel)
        comp = compile_configs(ws, configs, jobs)
        del ws  # the stacks hold what the kernels read; drop the caches' copies
        with folder.claim():
            if folder.begin(fp_, study.path, force):
                return RunSummary(folder.path, len(configs), 0, len(configs), time.perf_counter() - t0, 0.0,
                                  pl_.start, pl_.end)
            size = chunk_size(len(configs))
            done = {int(f.stem.split("-")[1]) for f in folder.chunks()}
            pending = [(a, min(a + size, len(configs))) for a in range(0, len(configs), size) if a not in done]
            n_done = len(configs) - sum(b - a for a, b in pending)
            panels = kernel_panels(pl_.panel)
            n = e - s + 1

            def work(span: tuple[int, int]):
                idx = np.arange(*span, dtype=np.int64)
                rets = np.empty((len(idx), n)) if save_returns else np.empty((0, 0))
                sums, sumsq = np.empty((len(idx), N_BLOCKS)), np.empty((len(idx), N_BLOCKS))
                metrics = run_metrics(panels, comp, idx, s, e, rets, (sums, sumsq))  # kernel + extra metrics
                return idx, metrics, sums, sumsq, rets

            def finish(span: tuple[int, int], result) -> int:
                idx, metrics, sums, sumsq, rets = result
                if save_returns:
                    folder.write_chunk(_returns_frame(idx, rets), span[0], "returns")
                # The metrics file is written last: its presence is what marks the chunk done.
                folder.write_chunk(_chunk_frame(idx, metrics, sums, sumsq), span[0])
                return len(idx)

            compute_time = 0.0
            if pending:
                _warm_up(comp, panels, s, e)
                compute_time = run_chunks(pending, work, finish, jobs=jobs, total=len(configs), done=n_done,
                                          progress=progress, on_chunk=on_chunk)
            comp = None  # the stacks of rankings are not needed past the backtests
            metrics = _assemble(pl_, folder, save_returns)
            folder.put("summary.json", grid_summary(pl_, metrics))
            summary = RunSummary(folder.path, len(configs), len(configs) - n_done, n_done,
                                 time.perf_counter() - t0, compute_time, pl_.start, pl_.end)
            folder.commit(run_manifest(pl_, fp_, summary))
        return summary


KIND = register(GridKind())

__all__ = ["BLOCK_COLUMNS", "GridKind", "KIND", "N_BLOCKS", "Plan", "RunSummary", "SCHEMA_VERSION",
           "chunk_size", "default_jobs", "grid_summary", "manifest_head", "plan", "run_manifest", "run_study",
           "study_summary", "trials_table"]
