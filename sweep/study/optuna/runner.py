"""Preparing and running an Optuna study: the data, the shared evaluation window, the results folder."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep.core.errors import SweepError
from sweep.core.io import write_error, write_json, write_parquet
from sweep.data.panel import Panel
from sweep.metrics import lower_is_better
from sweep.results import read_json
from sweep.results.schema import SCHEMA_VERSION
from sweep.run.plan import plan
from sweep.run.summary import RunSummary
from sweep.study.file import Study
from sweep.study.optuna.samplers import per_trial_sampler
from sweep.study.optuna.search import IN_FLIGHT, Pool, Search
from sweep.study.optuna.space import Dim, Options, corners, parse_options, parse_space
from sweep.study.optuna.storage import (
    JOURNAL,
    Heartbeat,
    journal_files,
    open_storage,
    open_study,
    shown_url,
    storage_target,
)
from sweep.study.optuna.tables import manifest, summary, table
from sweep.study.optuna.trials import ACTIVE_SESSIONS, Ledger, reap, worker_label

STATE = "optuna_state.json"


@dataclass
class Prepared:
    study: Study
    space: list[Dim]
    options: Options
    panel: Panel
    corners: list[dict[str, Any]]
    s: int
    e: int

    @property
    def start(self):
        return self.panel.dates[self.s].item()

    @property
    def end(self):
        return self.panel.dates[self.e].item()

    @property
    def columns(self) -> list[str]:
        """Parameter columns of the table: the space, then ``[backtest]``."""
        return [d.name for d in self.space] + list(self.study.fixed)

    @property
    def fingerprint(self) -> str:
        # [optuna] is left out: more trials, another sampler or seed continue the
        # same search; what a trial's numbers mean does not change.
        tables = {k: v for k, v in self.study.raw.items() if k != "optuna"}
        key = json.dumps([SCHEMA_VERSION, "optuna", tables, self.panel.fingerprint, self.s, self.e],
                         sort_keys=True, default=str)
        return hashlib.sha256(key.encode()).hexdigest()[:16]


def prepare(study: Study, data: str | Path | None = None, funding: str | Path | None = None) -> Prepared:
    """Load the data, check the space against it and fix the shared evaluation window.

    The corners of the space bound the warm-up and need every column any trial can.
    """
    space, options = parse_space(study), parse_options(study)
    ends = corners(study, space)
    planned = plan(study, data, funding, configs=ends)
    return Prepared(study, space, options, planned.panel, ends, planned.s, planned.e)


def direction(study: Study) -> str:
    return "minimize" if lower_is_better(study.objective) else "maximize"


def describe(study: Study, data: str | Path | None = None,
             funding: str | Path | None = None) -> tuple[Prepared, list[str]]:
    """``sweep validate``'s lines for an optuna study (after data and before evaluation)."""
    p = prepare(study, data, funding)
    o = p.options
    storage = shown_url(o.storage) if o.storage else \
        f"journal file <out>/{JOURNAL} (out: results/{study.name} unless --out)"
    if o.heartbeat_interval is not None:
        storage += f" (heartbeat every {o.heartbeat_interval} s, a trial silent {o.grace_period} s is retried)"
    seed = f", seed {o.seed}" if o.seed is not None else ""
    way = "minimised" if direction(study) == "minimize" else "maximised"
    return p, [
        f"space       {', '.join(map(str, p.space))}",
        f"trials      {o.n_trials} (sampler {o.sampler}{seed}; {study.objective} {way})",
        f"storage     {storage}",
    ]


def claim(out: Path, fp: str, force: bool, journal: Path | None) -> None:
    """Refuse a folder holding another study's results unless ``force``; with it, clear them."""
    if out.exists() and not out.is_dir():
        raise SweepError(f"--out {out} is a file, not a folder")
    state, mpath = out / STATE, out / "manifest.json"
    theirs = [p for p in (state, mpath) if p.exists() and read_json(p).get("fingerprint") != fp]
    if theirs and not force:
        raise SweepError(f"{out} holds results of a different study, data set or evaluation window "
                         f"({theirs[0].name}); use --force to replace them or --out for another folder")
    try:
        if force:
            for name in ("trials.parquet", "manifest.json", "returns.parquet", STATE):
                (out / name).unlink(missing_ok=True)
            shutil.rmtree(out / ".partial", ignore_errors=True)
            if journal is not None:
                for f in journal_files(journal):
                    f.unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out, exc) from None


def run(study: Study, *, data: str | Path | None = None, funding: str | Path | None = None,
        out: str | Path | None = None, jobs: int = 1, force: bool = False, progress: bool | None = None,
        on_chunk: Callable[[int], None] | None = None) -> RunSummary:
    """Run (or continue) an Optuna study until ``n_trials`` trials have finished in its storage.

    ``on_chunk(n)`` is called after each trial this call finishes, ``n``
    counting them. ``jobs`` threads evaluate the trials in flight.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    p = prepare(study, data, funding)
    opts = p.options
    jobs = max(1, int(jobs))
    out = Path(out) if out is not None else Path("results") / study.name
    kind, target = storage_target(opts, out)
    shown = f"{study.path}: [optuna] storage" if opts.storage else str(out / JOURNAL)
    fp = p.fingerprint
    way = direction(study)

    session = uuid.uuid4().hex
    worker = worker_label(session)
    names = [d.name for d in p.space]
    ACTIVE_SESSIONS.add(session)
    pool = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # sweep asks and tells, and beats itself (storage.Heartbeat), which Optuna's ask warns about.
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
            if kind == "rdb":
                # Connected before the results folder is touched: an unreachable database is one
                # line and nothing written.
                storage = open_storage(kind, target, shown, opts.heartbeat_interval, opts.grace_period)
                claim(out, fp, force, None)
            else:
                claim(out, fp, force, out / JOURNAL if opts.storage is None else None)
                storage = open_storage(kind, target, shown)
            ledger = Ledger()
            sampler = per_trial_sampler(opts.sampler, opts.seed,
                                        lambda s, k: ledger.count(s.get_trials(deepcopy=False), k))
            ostudy = open_study(study.name, fp, storage, sampler, way, force, shown)
            write_json({"fingerprint": fp, "study": str(study.path), "storage": shown_url(target)}, out / STATE)
            reap(storage, ostudy, ledger, names, {**worker, "time": time.time()})
            n_before = ledger.count(ostudy.get_trials(deepcopy=False), sys.maxsize)

            from sweep.engine.workspace import Evaluator

            evaluator = Evaluator(p.panel, jobs)
            # Compile (or load Numba's cache) here, before the workers start.
            evaluator.run([p.corners[0]], p.s, p.s)
            pool = Pool(jobs)
            with Heartbeat(storage, opts.heartbeat_interval) as heartbeat:
                search = Search(p, storage, ostudy, sampler, ledger, evaluator, pool, worker, progress,
                                on_chunk, n_before, heartbeat)
                t_run = time.perf_counter()
                search.run()
                compute_time = time.perf_counter() - t_run
            trials = ostudy.get_trials(deepcopy=False)
    finally:
        ACTIVE_SESSIONS.discard(session)
        if pool is not None:
            pool.shutdown()

    df = table(p, trials)
    write_parquet(df, out / "trials.parquet")
    write_json(summary(p, df), out / "summary.json")
    wall = time.perf_counter() - t0
    result = RunSummary(out, df.height, search.n_run, df.height - search.n_run, wall, compute_time,
                        p.start, p.end)
    write_json(manifest(p, fp, result, df, ostudy, way, shown_url(target), IN_FLIGHT), out / "manifest.json")
    return result
