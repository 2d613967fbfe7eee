"""Run a grid study: schedule chunks of configurations on a thread pool, keep every
finished chunk on disk, and assemble the result tables.

The kernels release the GIL, so threads share the read-only panels and the
stacks of rankings without copying them (processes would copy or map them and
start slower); nothing per configuration is kept beyond its row of metrics
(and, with ``save_returns``, its daily returns). The standard library's pool
is used rather than joblib's threading backend: same threads, no import cost
and no polling loop between finished chunks.

Interruption: each finished chunk is written to ``<out>/.partial/`` (temporary
file, then rename) before it counts as done; a rerun of the same study on the
same data skips the chunks found there, so the assembled table is the one an
uninterrupted run gives.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from kernels.batch import run_batch
from kernels.metrics import METRICS

from sweep import __version__
from sweep.engine.backtest import evaluation_window
from sweep.engine.workspace import Compiled, Workspace, compile_configs, kernel_panels
from sweep.core.errors import SweepError
from sweep.core.io import write_json, write_parquet
from sweep.data.panel import Panel, load_panel
from sweep.results.schema import SCHEMA_VERSION, check_schema
from sweep.stats.choose import best_index
from sweep.engine.params import config_id, warmup_days
from sweep.study.file import Study

N_BLOCKS = 16  # blocks of the evaluation window for the PBO's cross-validation
DEFAULT_DATA = Path("data") / "crypto_daily.parquet"


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def data_path(study: Study, data: str | Path | None) -> Path:
    """The data a study reads: ``--data``, else ``[study] data``, else the embedded set.

    A relative ``[study] data`` is looked up from the current directory first,
    then from the study file's folder and its parent (so a study runs from the
    project root or from ``studies/``).
    """
    if data is not None:
        return Path(data)
    rel = Path(study.data) if study.data else DEFAULT_DATA
    if rel.is_absolute():
        return rel
    candidates = [rel, study.path.parent / rel, study.path.parent.parent / rel,
                  Path(__file__).resolve().parents[2] / rel]
    return next((c for c in candidates if c.exists()), rel)


def funding_path(study: Study, funding: str | Path | None) -> Path | None:
    if funding is not None:
        return Path(funding)
    if not study.funding:
        return None
    rel = Path(study.funding)
    candidates = [rel, study.path.parent / rel, study.path.parent.parent / rel]
    return next((c for c in candidates if c.exists()), rel)


@dataclass
class Plan:
    """Everything about a study run that is known before any backtest runs."""

    study: Study
    panel: Panel
    configs: list[dict[str, Any]]
    s: int
    e: int

    @property
    def start(self) -> dt.date:
        return self.panel.dates[self.s].item()

    @property
    def end(self) -> dt.date:
        return self.panel.dates[self.e].item()

    def fingerprint(self, save_returns: bool) -> str:
        key = json.dumps([SCHEMA_VERSION, self.study.fingerprint(), self.panel.fingerprint,
                          self.s, self.e, bool(save_returns)])
        return hashlib.sha256(key.encode()).hexdigest()[:16]


def _start_numba() -> None:
    # Numba's first call initialises its compiler target (~0.4 s, mostly Python);
    # Polars reads the data meanwhile without the GIL, so the two overlap.
    from kernels.returns import simple_returns

    simple_returns(np.ones((2, 1)))


def plan(study: Study, data: str | Path | None = None, funding: str | Path | None = None,
         configs: list[dict[str, Any]] | None = None) -> Plan:
    """Load the data and check every configuration against it (``sweep validate``).

    ``configs`` replaces the grid's configurations (a search passes the corners
    of its space: they bound the warm-up and need the same columns).
    """
    with ThreadPoolExecutor(1) as pool:
        warming = pool.submit(_start_numba)
        panel = load_panel(data_path(study, data), funding_path(study, funding))
        configs = study.resolved_configs() if configs is None else configs
        warming.result()
    ws = Workspace(panel)
    seen = set()
    for p in configs:
        needs = (p["factor"], p["top_by_market_cap"] > 0, p["market"], p["market_symbol"])
        if needs not in seen:
            seen.add(needs)
            ws.check(p, str(study.path))
    warmup = max(warmup_days(p) for p in configs)
    s, e = evaluation_window(panel, warmup, study.start, study.end, f"{study.path}: [study]")
    return Plan(study, panel, configs, s, e)


@dataclass
class RunSummary:
    out: Path
    n_configs: int
    n_run: int  # configurations computed by this invocation
    n_resumed: int  # configurations found done on disk
    wall_time: float
    compute_time: float
    start: dt.date
    end: dt.date

    @property
    def configs_per_second(self) -> float:
        return self.n_run / self.compute_time if self.compute_time > 0 else float("nan")


def _warm_up(comp: Compiled, q: np.ndarray, funding: np.ndarray, s: int, e: int) -> None:
    # Compile (or load from Numba's cache) in this thread before the pool starts,
    # so no two workers compile or write the cache at once.
    run_batch(q, funding, *comp.stacks(), comp.ip[:1], comp.fp[:1], s, e, np.empty((0, 0)),
              np.empty((1, N_BLOCKS)), np.empty((1, N_BLOCKS)))


def _chunks(pending: np.ndarray, jobs: int) -> list[np.ndarray]:
    # Small enough for a live progress bar and little lost work on interruption,
    # large enough that scheduling costs nothing next to the kernels.
    size = int(min(1024, max(32, -(-len(pending) // (jobs * 4)))))
    return [pending[i:i + size] for i in range(0, len(pending), size)]


class _Progress:
    """Progress on stderr: a rich bar on a terminal; elsewhere (a pipe, a CI log) one line
    each time the work passes another tenth, so a log gets at most ten; nothing when
    ``enabled`` is false."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.bar = None
        self.tenth = None  # pipe mode: the last tenth of ``total`` reported
        self.total = total
        self.t0 = time.perf_counter()
        self.done0 = done
        if enabled and total > done and not sys.stderr.isatty():
            self.tenth = 10 * done // total
        elif enabled and total > done:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("[bold]running"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                transient=True, console=_stderr_console())
            self.task = self.bar.add_task("run", total=total, completed=done, rate="")
            self.bar.start()

    def advance(self, k: int, done: int) -> None:
        rate = (done - self.done0) / max(time.perf_counter() - self.t0, 1e-9)
        if self.bar is not None:
            self.bar.update(self.task, advance=k, rate=f"{rate:,.0f} configs/s")
        elif self.tenth is not None and 10 * done // self.total > self.tenth:
            self.tenth = 10 * done // self.total
            print(f"running: {100 * done // self.total} % ({done:,} of {self.total:,}, {rate:,.0f}/s, "
                  f"{time.perf_counter() - self.t0:.1f} s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def _read_done(partial: Path) -> set[int]:
    done: set[int] = set()
    for f in sorted(partial.glob("chunk-*.parquet")):
        done.update(pl.read_parquet(f, columns=["idx"])["idx"].to_list())
    return done


def run_study(study: Study, *, data: str | Path | None = None, funding: str | Path | None = None,
              out: str | Path | None = None, jobs: int | None = None, force: bool = False,
              save_returns: bool = False, progress: bool | None = None,
              on_chunk: Callable[[int], None] | None = None) -> RunSummary:
    """Run a study and write its result tables.

    Grid studies run here; the other kinds in their own modules (``sweep.study.kind``).
    ``on_chunk(n_written)`` is called after each chunk reaches the disk (a hook
    for progress reporting and for tests that interrupt a run).
    """
    if study.kind != "grid":
        from sweep.study.kind import module

        return module(study.kind).run(study, data=data, funding=funding, out=out,
                                      jobs=max(1, jobs or default_jobs()), force=force,
                                      progress=progress, on_chunk=on_chunk)
    t0 = time.perf_counter()
    pl_ = plan(study, data, funding)
    panel, configs, s, e = pl_.panel, pl_.configs, pl_.s, pl_.e
    jobs = max(1, jobs or default_jobs())
    out = Path(out) if out is not None else Path("results") / study.name
    fp_ = pl_.fingerprint(save_returns)
    partial = out / ".partial"
    manifest_path = out / "manifest.json"
    if _already_complete(out, fp_, force):
        return RunSummary(out, len(configs), 0, len(configs), time.perf_counter() - t0, 0.0,
                          pl_.start, pl_.end)
    # Everything that can fail on the input happens before the first file is written.
    ws = Workspace(panel)
    comp = compile_configs(ws, configs, jobs)
    del ws  # the stacks hold what the kernels read; drop the caches' copies
    if force:
        manifest_path.unlink(missing_ok=True)
    try:
        partial.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"cannot create {partial}: {exc.strerror}") from None
    write_json({"fingerprint": fp_, "study": str(study.path)}, partial / "state.json")

    done = _read_done(partial)
    pending = np.array([c for c in range(len(configs)) if c not in done], dtype=np.int64)
    q, fund = kernel_panels(panel)
    n = e - s + 1

    def work(idx: np.ndarray):
        rets = np.empty((len(idx), n)) if save_returns else np.empty((0, 0))
        sums, sumsq = np.empty((len(idx), N_BLOCKS)), np.empty((len(idx), N_BLOCKS))
        metrics = run_batch(q, fund, *comp.stacks(), comp.ip[idx], comp.fp[idx], s, e, rets, sums, sumsq)
        return idx, (metrics, sums, sumsq), rets

    t_run = time.perf_counter()
    fresh: list[pl.DataFrame] = []  # this invocation's chunks, kept to skip re-reading them
    if len(pending):
        _warm_up(comp, q, fund, s, e)
        bar = _Progress(len(configs), len(done), sys.stderr.isatty() if progress is None else progress)
        written = 0
        finished = len(done)
        pool = ThreadPoolExecutor(max_workers=jobs)
        try:
            futures = [pool.submit(work, idx) for idx in _chunks(pending, jobs)]
            for future in as_completed(futures):
                idx, metrics, rets = future.result()
                fresh.append(_write_chunk(partial, idx, metrics, rets, save_returns))
                written += 1
                finished += len(idx)
                bar.advance(len(idx), finished)
                if on_chunk is not None:
                    on_chunk(written)
        finally:
            # On an interruption, queued chunks are dropped; running ones finish
            # in the background and are simply not written.
            pool.shutdown(wait=False, cancel_futures=True)
            bar.close()
    compute_time = time.perf_counter() - t_run

    metrics = _finalize(pl_, out, partial, save_returns, fresh, done)
    write_json(grid_summary(pl_, metrics), out / "summary.json")
    wall = time.perf_counter() - t0
    summary = RunSummary(out, len(configs), len(pending), len(done), wall, compute_time, pl_.start, pl_.end)
    manifest = _manifest(pl_, fp_, summary)
    write_json(manifest, manifest_path)
    shutil.rmtree(partial, ignore_errors=True)
    return summary


def _already_complete(out: Path, fp_: str, force: bool, tables: tuple[str, ...] = ("trials.parquet",)) -> bool:
    """True when ``out`` holds this very run (its manifest and ``tables``); refuse another
    study's files unless ``force``."""
    if out.exists() and not out.is_dir():
        raise SweepError(f"--out {out} is a file, not a folder")
    manifest_path, partial = out / "manifest.json", out / ".partial"
    if manifest_path.exists() and not force:
        old = _load_json(manifest_path)
        if old.get("fingerprint") == fp_ and all((out / t).exists() for t in tables):
            return True
        if old.get("schema_version") not in (None, SCHEMA_VERSION):
            check_schema(old, manifest_path)  # says which version wrote it and how to rerun
        raise SweepError(f"{out} holds results of a different study, data set or evaluation window; "
                         "use --force to replace them or --out for another folder")
    if partial.exists() and _load_json(partial / "state.json").get("fingerprint") != fp_:
        if not force:
            raise SweepError(f"{partial} holds an unfinished run of a different study or data set; "
                             "use --force to discard it")
        shutil.rmtree(partial)
    return False


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


BLOCK_COLUMNS = [f"_block_sum_{b}" for b in range(N_BLOCKS)] + [f"_block_sumsq_{b}" for b in range(N_BLOCKS)]


def _write_chunk(partial: Path, idx: np.ndarray, results: tuple[np.ndarray, np.ndarray, np.ndarray],
                 rets: np.ndarray, save_returns: bool) -> pl.DataFrame:
    name = f"{int(idx[0]):09d}"
    if save_returns:
        C, n = rets.shape
        write_parquet(pl.DataFrame({"idx": np.repeat(idx, n).astype(np.int64),
                                    "day": np.tile(np.arange(n, dtype=np.int32), C),
                                    "ret": rets.ravel()}), partial / f"returns-{name}.parquet")
    metrics, sums, sumsq = results
    blocks = np.hstack([sums, sumsq])
    df = pl.DataFrame({"idx": idx, **{m: metrics[:, j] for j, m in enumerate(METRICS)},
                       **{c: blocks[:, j] for j, c in enumerate(BLOCK_COLUMNS)}})
    # The metrics file is written last: its presence is what marks the chunk done.
    write_parquet(df, partial / f"chunk-{name}.parquet")
    return df


def trials_table(study: Study, configs: list[dict[str, Any]], metrics: pl.DataFrame) -> pl.DataFrame:
    """The persisted table: ``config_id``, the study's parameters, the §9 metrics, ``schema_version``."""
    cols: dict[str, Any] = {"config_id": [config_id(p) for p in configs]}
    for name in study.columns:
        values = [p[name] for p in configs]
        cols[name] = [list(v) for v in values] if name == "exclude" else values
    df = pl.DataFrame(cols)
    df = pl.concat([df, metrics.select(METRICS)], how="horizontal")
    return df.with_columns(pl.col("n_rebalances").cast(pl.Int64),
                           pl.lit(SCHEMA_VERSION, dtype=pl.Int32).alias("schema_version"))


def _finalize(pl_: Plan, out: Path, partial: Path, save_returns: bool, fresh: list[pl.DataFrame],
              done: set[int]) -> pl.DataFrame:
    parts = list(fresh)
    if done:  # chunks of an earlier, interrupted invocation
        parts += [pl.read_parquet(f) for f in sorted(partial.glob("chunk-*.parquet"))
                  if int(f.stem.split("-")[1]) in done]
    metrics = pl.concat(parts).sort("idx") if parts else None
    if metrics is None or metrics.height != len(pl_.configs) or metrics["idx"].n_unique() != len(pl_.configs):
        raise SweepError(f"{partial}: the finished chunks do not cover every configuration; "
                         "rerun with --force")
    write_parquet(trials_table(pl_.study, pl_.configs, metrics), out / "trials.parquet")
    if save_returns:
        ids = pl.Series("config_id", [config_id(p) for p in pl_.configs])
        dates = pl.Series("date", pl_.panel.dates[pl_.s:pl_.e + 1])
        rets = pl.concat([pl.read_parquet(f) for f in sorted(partial.glob("returns-*.parquet"))])
        rets = rets.sort("idx", "day")
        table = pl.DataFrame({"config_id": ids.gather(rets["idx"]), "date": dates.gather(rets["day"]),
                              "ret": rets["ret"]})
        write_parquet(table, out / "returns.parquet")
    return metrics


def grid_summary(pl_: Plan, metrics: pl.DataFrame) -> dict[str, Any]:
    """``summary.json`` of a grid, from the block moments the kernels kept per chunk."""
    blocks = metrics.select(BLOCK_COLUMNS).to_numpy()
    return study_summary(pl_.study, pl_.panel, pl_.configs, pl_.s, pl_.e,
                         metrics.select(METRICS).to_numpy(), blocks[:, :N_BLOCKS], blocks[:, N_BLOCKS:])


def study_summary(study: Study, panel: Panel, configs: list[dict[str, Any]], s: int, e: int,
                  metrics: np.ndarray, sums: np.ndarray, sumsq: np.ndarray,
                  columns: list[str] | None = None) -> dict[str, Any]:
    """``summary.json``: the best configuration and the overfitting statistics of a search
    (PSR, DSR, expected maximum Sharpe, minimum backtest length, PBO by CSCV).

    ``metrics`` ``(C, N_METRICS)`` and the per-block moments ``(C, N_BLOCKS)`` of the
    ``C`` distinct configurations tried (N in the deflation is ``C``).
    """
    from sweep.engine.workspace import Evaluator
    from sweep.stats.overfit import overfitting_summary

    objective = study.objective
    values = metrics[:, METRICS.index(objective)]
    ruined = metrics[:, METRICS.index("ruined")]
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
        out["overfitting"] = overfitting_summary(rets[0], metrics[:, METRICS.index("sharpe")],
                                                 np.ascontiguousarray(sums), np.ascontiguousarray(sumsq), counts)
    except SweepError as exc:  # too few configurations or days for the statistics
        out["note"] = str(exc)
    return out


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _versions() -> dict[str, str]:
    import numba

    return {"sweep": __version__, "numba": numba.__version__, "polars": pl.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def manifest_head(study: Study, panel: Panel, fp_: str, start, end, days: int) -> dict[str, Any]:
    """What every kind's manifest.json opens with: the study, the data and the window."""
    return {
        "schema_version": SCHEMA_VERSION,
        "fingerprint": fp_,
        "study": {"name": study.name, "kind": study.kind, "objective": study.objective,
                  "path": str(study.path), "fingerprint": study.fingerprint(), "text": study.text},
        "data": {"path": panel.source, "fingerprint": panel.fingerprint,
                 "days": int(panel.shape[0]), "symbols": int(panel.shape[1]),
                 "first_date": str(panel.dates[0]), "last_date": str(panel.dates[-1]),
                 "columns": sorted(panel.fields)},
        "evaluation_window": {"start": str(start), "end": str(end), "days": days},
    }


def _manifest(pl_: Plan, fp_: str, summary: RunSummary) -> dict[str, Any]:
    return {
        **manifest_head(pl_.study, pl_.panel, fp_, summary.start, summary.end, pl_.e - pl_.s + 1),
        "configurations": summary.n_configs,
        "configurations_run": summary.n_run,
        "configurations_resumed": summary.n_resumed,
        "wall_time_s": round(summary.wall_time, 4),
        "compute_time_s": round(summary.compute_time, 4),
        "configs_per_second": round(summary.configs_per_second, 1) if summary.n_run else None,
        "versions": _versions(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "factors": sorted({p["factor"] for p in pl_.configs}),
        "parameters": pl_.study.columns,
    }
