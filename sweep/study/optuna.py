"""Optuna studies (``kind = "optuna"``): search a ``[space]`` of parameters instead of a grid.

Conventions. A trial is one configuration, ``{**[backtest], **suggested}``,
evaluated over the evaluation window the whole study shares (SEMANTICS §7:
``W`` is the largest window any trial can read, found from the space before
any trial runs). The objective is maximised, except ``ann_vol``,
``turnover`` and ``cost_paid``, which are minimised. A NaN objective is told
to Optuna as a failed trial (it is not a number a sampler can rank) and is
still a row of the table; so is a ruined book (SEMANTICS §8), whose ratios
describe a closed book, and which is never the reported best.

The Optuna storage is the source of truth. Every trial keeps its metrics as
the user attribute ``sweep_metrics``, so ``trials.parquet`` is rebuilt from
the storage alone at the end of every run, trials of other processes
included. The default storage is the journal file ``<out>/optuna.journal``;
``[optuna] storage`` may name another journal file or a database URL
(``sqlite:///``, ``postgresql://``, ``mysql://``), which makes the same
command a worker of a shared study.

Which trials count. A trial counts towards ``n_trials`` when it finished
with metrics, or while it runs (a worker is on it). Trial ``k`` is
*admitted* when fewer than ``n_trials`` trials numbered below ``k`` count.
Optuna numbers trials densely and atomically in every storage, so however
many processes share a study, the admitted trials are the first
``n_trials`` that count, and a run returns only once exactly ``n_trials``
have finished with metrics and none is running (it waits for other
workers' trials, and takes over from any that died). A worker that draws a
trial past the limit marks it ``sweep_surplus`` and tells it FAIL without
sampling it: it happens only when workers ask at the same moment near the
end, at most once per worker. A trial left running by a dead worker (on
this host its process is gone; on another host its label is older than
``STALE_AFTER``) is marked ``sweep_abandoned`` and FAIL by the next run
that looks, stops counting, and another trial takes its place. Neither
kind is in the table, so its ``trial_number`` has a gap there. Ctrl-C (or
any error) first finishes the trials already asked, which takes
milliseconds, so an interrupted run leaves none running.

``--force`` deletes the journal and the tables in the results folder, and
with a storage named in ``[optuna]``, the Optuna study of that name in it
(every worker's trials).

Reproducibility. Trials are asked in a fixed pipeline: trial ``k`` is asked
right after trial ``k - IN_FLIGHT`` is told, and each trial's sampler is
seeded from ``(seed, k's admitted index)``. Every trial of a single process
therefore sees the same history whatever ``--jobs``, and a seeded study
gives the same table for any ``--jobs``. A resumed search is a valid
continuation but, for a sampler that learns, not the uninterrupted one (the
first trials after the resume see no trial in flight); a random search
resumes to the very same table. Workers sharing a study see each other's
trials as they come, so a shared study is not reproducible; the per-index
seeds still keep two workers with the same seed from drawing the same
parameters.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import itertools
import json
import math
import os
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
import warnings
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from kernels.metrics import M_RUINED, METRICS

from sweep.stats.choose import best_index
from sweep.core.errors import SweepError
from sweep.core.io import write_json, write_parquet
from sweep.data.panel import Panel
from sweep.engine.params import LOWER_IS_BETTER, PARAMS, check_value, closest, resolve
from sweep.study.grid import (SCHEMA_VERSION, RunSummary, _load_json, _Progress, _versions, manifest_head, plan,
                      trials_table)
from sweep.study.file import Study

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc")
OPTUNA_KEYS = ("n_trials", "sampler", "seed", "storage")
RANGE_KEYS = ("low", "high", "step", "log")
# Packages a sampler needs beyond Optuna's own dependencies.
SAMPLER_NEEDS = {"cmaes": ("cmaes", "cmaes"), "gp": ("torch", "torch")}
URL_SCHEMES = ("sqlite", "postgresql", "mysql")
MAX_TRIALS = 1_000_000
MAX_SEED = 2**32 - 1

# Trials asked ahead of the oldest untold one. It fixes the history each trial
# sees (so the table does not depend on --jobs) and bounds the parallelism of
# one process; Optuna's own work per trial is serial Python and outweighs a
# backtest, so more trials in flight would not go faster.
IN_FLIGHT = 4
# A running trial older than this is taken for dead (a trial takes milliseconds
# to seconds); only a worker on another host needs it, a local one is checked by
# its process id.
STALE_AFTER = 600.0
# An unlabelled running trial older than this was cut off between Optuna's ask
# and the worker's label (module docstring); labelling takes milliseconds.
UNLABELLED_AFTER = 60.0
# Features and rankings the Evaluator keeps (about 16 bytes a cell per distinct
# ranking); past this a fresh Evaluator starts, so a search over many windows
# on a large panel does not grow without bound.
CACHE_BYTES = 1 << 30
# Corner configurations checked before a run (the product of the ends of each
# range and every string choice); beyond it the string choices that no
# cross-parameter rule reads are fixed at their first value (a trial that
# still turns out impossible stops the run with the same one-line error).
CORNER_LIMIT = 20_000

JOURNAL = "optuna.journal"
STATE = "optuna_state.json"
# Trial user attributes (and one study attribute) this module writes to the storage.
A_METRICS, A_WORKER = "sweep_metrics", "sweep_worker"
A_SURPLUS, A_ABANDONED = "sweep_surplus", "sweep_abandoned"
A_FINGERPRINT = "sweep_fingerprint"

_ACTIVE_SESSIONS: set[str] = set()  # runs in progress in this process


# ---- the study file ------------------------------------------------------------


@dataclass(frozen=True)
class Dim:
    """One searched parameter: a range (``int``/``float``) or a list of choices."""

    name: str
    kind: str  # "int", "float" or "choice"
    low: Any = None
    high: Any = None
    step: Any = None
    log: bool = False
    choices: tuple = ()

    def ends(self) -> list:
        """The values a cross-parameter rule can trip on: a range's ends, every string choice."""
        if self.kind != "choice":
            return sorted({self.low, self.high})
        if all(isinstance(v, (int, float)) for v in self.choices):
            return sorted({min(self.choices), max(self.choices)})
        return list(self.choices)

    def suggest(self, trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def describe(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "step": self.step, "log": self.log}

    def __str__(self) -> str:
        if self.kind == "choice":
            return f"{self.name} [{', '.join(map(str, self.choices))}]"
        extra = f" step {self.step}" if self.step is not None else " (log)" if self.log else ""
        return f"{self.name} {self.low}..{self.high}{extra}"


@dataclass(frozen=True)
class Options:
    n_trials: int
    sampler: str
    seed: int | None
    storage: str | None


def parse_space(study: Study) -> list[Dim]:
    """The ``[space]`` table, checked: every error names the file, ``[space]``, the key and the value."""
    path = study.path
    space = study.tables.get("space")
    if not space:
        raise SweepError(f"{path}: an optuna study needs a non-empty [space] table "
                         "(e.g. window = {low = 10, high = 120})")
    return [_dim(path, key, value, study.fixed) for key, value in space.items()]


def _dim(path: Path, key: str, value: Any, fixed: dict[str, Any]) -> Dim:
    where = f"{path}: [space] {key}"
    if key not in PARAMS:
        raise SweepError(f"{path}: [space] unknown parameter '{key}'{closest(key, PARAMS)}")
    if key in fixed:
        raise SweepError(f"{where} is also set in [backtest]; keep one")
    kind = PARAMS[key][0]
    if kind == "strlist":
        raise SweepError(f"{where} = {value!r}: a symbol list cannot be searched; set it in [backtest] "
                         "(or run a grid over it)")
    if isinstance(value, list):
        if not value:
            raise SweepError(f"{where} = [] is an empty list of choices")
        choices = tuple(check_value(key, v, f"{path}: [space]") for v in value)
        if len(set(map(repr, choices))) != len(choices):
            raise SweepError(f"{where} = {value!r} repeats a value")
        return Dim(key, "choice", choices=choices)
    if not isinstance(value, dict):
        raise SweepError(f"{where} = {value!r} must be a range {{low = .., high = ..}} or a list of choices")
    if kind not in ("int", "float"):
        raise SweepError(f"{where} = {value!r}: '{key}' takes a list of choices, not a range "
                         f"(e.g. {key} = [{', '.join(repr(c) for c in _examples(key))}])")
    for k in value:
        if k not in RANGE_KEYS:
            raise SweepError(f"{where}: unknown key '{k}' = {value[k]!r}{closest(k, RANGE_KEYS)} "
                             f"(a range takes {', '.join(RANGE_KEYS)})")
    for k in ("low", "high"):
        if k not in value:
            raise SweepError(f"{where} = {value!r} has no {k} (e.g. {key} = {{low = 10, high = 120}})")
    low = check_value(key, value["low"], f"{where}.low")
    high = check_value(key, value["high"], f"{where}.high")
    if low > high:
        raise SweepError(f"{where}: low = {low!r} is above high = {high!r}")
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise SweepError(f"{where}: log = {log!r} must be true or false")
    if log and low <= 0:
        raise SweepError(f"{where}: log = true needs low > 0, not low = {low!r}")
    step = value.get("step")
    if step is not None:
        if log:
            raise SweepError(f"{where}: step = {step!r} cannot be combined with log = true")
        if kind == "int":
            if isinstance(step, bool) or not isinstance(step, int) or step < 1:
                raise SweepError(f"{where}: step = {step!r} must be an integer >= 1")
            fits = (high - low) % step == 0
        else:
            if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0 \
                    or not math.isfinite(step):
                raise SweepError(f"{where}: step = {step!r} must be a number > 0")
            step = float(step)
            n = (high - low) / step
            fits = abs(n - round(n)) <= 1e-9 * max(1.0, n)
        if not fits:
            last = low + (high - low) // step * step
            raise SweepError(f"{where}: step = {step!r} does not fit: high - low = {high - low!r} is not "
                             f"a multiple of it (high = {last!r} would be)")
    return Dim(key, kind, low=low, high=high, step=step, log=log)


def _examples(key: str) -> tuple:
    from sweep.engine.params import CHOICES

    return CHOICES.get(key, ("...",))


def parse_options(study: Study) -> Options:
    """The ``[optuna]`` table, checked."""
    path = study.path
    table = study.tables.get("optuna")
    if table is None:
        raise SweepError(f"{path}: an optuna study needs an [optuna] table with n_trials")
    for key in table:
        if key not in OPTUNA_KEYS:
            raise SweepError(f"{path}: [optuna] unknown key '{key}' = {table[key]!r}"
                             f"{closest(key, OPTUNA_KEYS)}")
    if "n_trials" not in table:
        raise SweepError(f"{path}: [optuna] n_trials is required (how many trials the study runs in all)")
    n = table["n_trials"]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_TRIALS:
        raise SweepError(f"{path}: [optuna] n_trials = {n!r} must be an integer from 1 to {MAX_TRIALS:,}")
    sampler = table.get("sampler", "tpe")
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        hint = closest(sampler.lower(), SAMPLERS) if isinstance(sampler, str) else ""
        raise SweepError(f"{path}: [optuna] sampler = {sampler!r} is not one of {', '.join(SAMPLERS)}{hint}")
    if sampler in SAMPLER_NEEDS:
        module, package = SAMPLER_NEEDS[sampler]
        if importlib.util.find_spec(module) is None:
            raise SweepError(f"{path}: [optuna] sampler = {sampler!r} needs the '{package}' package, "
                             f"which is not installed (pip install {package})")
    seed = table.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        raise SweepError(f"{path}: [optuna] seed = {seed!r} must be an integer from 0 to {MAX_SEED}")
    storage = table.get("storage")
    if storage is not None:
        if not isinstance(storage, str) or not storage.strip():
            raise SweepError(f"{path}: [optuna] storage = {storage!r} must be a database URL or a file path")
        if "://" in storage:
            scheme = storage.split("://", 1)[0].lower()
            if scheme.split("+", 1)[0] not in URL_SCHEMES:
                raise SweepError(f"{path}: [optuna] storage = {storage!r}: '{scheme}://' is not a supported "
                                 f"database (sqlite:///, postgresql://, mysql://; or a journal file path)"
                                 f"{closest(scheme.split('+', 1)[0], URL_SCHEMES)}")
    return Options(n_trials=n, sampler=sampler, seed=seed, storage=storage)


def corners(study: Study, space: list[Dim]) -> list[dict[str, Any]]:
    """Every configuration at the ends of the space, resolved; an impossible one is refused.

    The rules that tie parameters together (a window below its factor's
    minimum, ``phase >= rebalance_days``) and the warm-up ``W`` are monotone in
    each number, so the ends of every range, crossed with every string choice,
    find any impossible combination and the largest window.
    """
    values = {d.name: d.ends() for d in space}
    if math.prod(len(v) for v in values.values()) > CORNER_LIMIT:
        for d in space:
            if d.kind == "choice" and d.name not in ("factor", "weighting") and len(values[d.name]) > 2:
                values[d.name] = values[d.name][:1]
    names = list(values)
    out = []
    for combo in itertools.product(*values.values()):
        raw = {**study.fixed, **dict(zip(names, combo))}
        try:
            out.append(resolve(raw, str(study.path), checked=True))
        except SweepError:
            at = ", ".join(f"{k} = {v!r}" for k, v in zip(names, combo))
            resolve(raw, f"{study.path}: [space] at {at}", checked=True)
    return out


def validate(study: Study) -> None:
    """Check ``[space]`` and ``[optuna]`` before any data is read (called by ``load_study``)."""
    space = parse_space(study)
    parse_options(study)
    corners(study, space)


# ---- preparing a run -------------------------------------------------------------


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
    panel, s, e = planned.panel, planned.s, planned.e
    return Prepared(study, space, options, panel, ends, s, e)


def describe(study: Study, data: str | Path | None = None,
             funding: str | Path | None = None) -> tuple[Prepared, list[str]]:
    """``sweep validate``'s lines for an optuna study (after data and before evaluation)."""
    p = prepare(study, data, funding)
    o = p.options
    storage = o.storage or f"journal file <out>/{JOURNAL} (out: results/{study.name} unless --out)"
    seed = f", seed {o.seed}" if o.seed is not None else ""
    direction = "minimised" if study.objective in LOWER_IS_BETTER else "maximised"
    return p, [
        f"space       {', '.join(map(str, p.space))}",
        f"trials      {o.n_trials} (sampler {o.sampler}{seed}; {study.objective} {direction})",
        f"storage     {storage}",
    ]


# ---- storage ---------------------------------------------------------------------


def _storage_target(options: Options, out: Path) -> tuple[str, str]:
    """``("journal", path)`` or ``("rdb", url)``."""
    if options.storage is None:
        return "journal", str(out / JOURNAL)
    if "://" in options.storage:
        return "rdb", options.storage
    return "journal", options.storage


def _open_storage(kind: str, target: str, where: str):
    import optuna

    try:
        if kind == "journal":
            from optuna.storages.journal import JournalFileBackend

            Path(target).parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(target))
        return optuna.storages.RDBStorage(target)
    except Exception as exc:  # a driver missing, a server refusing, a bad path: all one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"{where} = {target!r}: cannot open the storage ({first})") from None


# ---- which trials count ------------------------------------------------------------


def _counts(t) -> bool:
    """Whether a trial counts towards n_trials (module docstring)."""
    from optuna.trial import TrialState

    if t.state.is_finished():
        return A_METRICS in t.user_attrs
    return t.state == TrialState.RUNNING and A_SURPLUS not in t.user_attrs and A_ABANDONED not in t.user_attrs


def _ordered(trials: list) -> list:
    if trials and trials[-1].number != len(trials) - 1:
        trials = sorted(trials, key=lambda t: t.number)
    return trials


class _Ledger:
    """Counts the trials that count below a trial number, in time linear in the unfinished ones.

    Finished trials never change, so the prefix of finished trials is counted
    once and remembered.
    """

    def __init__(self):
        self.prefix = [0]  # prefix[j]: trials that count among numbers < j, for j <= low

    @property
    def low(self) -> int:
        return len(self.prefix) - 1

    def count(self, trials: list, below: int) -> int:
        trials = _ordered(trials)
        while self.low < len(trials) and trials[self.low].state.is_finished():
            self.prefix.append(self.prefix[-1] + _counts(trials[self.low]))
        if below <= self.low:
            return self.prefix[below]
        return self.prefix[-1] + sum(_counts(t) for t in trials[self.low:below])


def _proc_start(pid: int) -> str | None:
    """The start time of a process (Linux), so a reused process id is not taken for the original."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(worker: dict[str, Any]) -> bool:
    pid = worker.get("pid")
    if not isinstance(pid, int):
        return False
    if os.path.exists("/proc/self/stat"):
        return _proc_start(pid) == worker.get("proc_start")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


def _is_stale(t, host: str, now: float) -> bool:
    w = t.user_attrs.get(A_WORKER)
    if not isinstance(w, dict):
        # Asked but not labelled: a live worker labels its trial within milliseconds
        # of asking, so an old unlabelled trial was cut off between the two.
        started = t.datetime_start or dt.datetime.now()
        return (dt.datetime.now() - started).total_seconds() > UNLABELLED_AFTER
    if w.get("host") == host:
        if not _alive(w):
            return True
        if w.get("pid") == os.getpid() and w.get("session") not in _ACTIVE_SESSIONS:
            return True  # an earlier run of this process, interrupted
    return now - float(w.get("time", now)) > STALE_AFTER


def _abandon(storage, ostudy, number: int) -> None:
    """Mark a running trial FAIL and ``sweep_abandoned``: it never finished and does not count."""
    from optuna.trial import TrialState

    try:
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(ostudy.study_name), number)
        storage.set_trial_user_attr(trial_id, A_ABANDONED, True)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except (RuntimeError, ValueError):
        pass  # another worker finished or reaped it first


def _reap(storage, ostudy, ledger: _Ledger) -> int:
    """Mark the trials left running by dead workers as abandoned; how many were."""
    from optuna.trial import TrialState

    trials = _ordered(ostudy.get_trials(deepcopy=False))
    ledger.count(trials, 0)  # advance the finished prefix: only later trials can be running
    host, now, n = socket.gethostname(), time.time(), 0
    for t in trials[ledger.low:]:
        if t.state == TrialState.RUNNING and _is_stale(t, host, now):
            _abandon(storage, ostudy, t.number)
            n += 1
    return n


# ---- samplers --------------------------------------------------------------------


def _trial_seed(seed: int | None, index: int) -> int | None:
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _make_sampler(name: str, seed: int | None, index: int):
    import optuna.samplers as S

    s = _trial_seed(seed, index)
    if name == "tpe":
        # Constant liar: trials in flight count as bad, so parallel trials spread out.
        return S.TPESampler(seed=s, constant_liar=True)
    if name == "random":
        return S.RandomSampler(seed=s)
    if name == "cmaes":
        return S.CmaEsSampler(seed=s, warn_independent_sampling=False)
    if name == "gp":
        return S.GPSampler(seed=s, warn_independent_sampling=False)
    # QMC draws point k of one sequence: its scrambling seed is the study's, not the trial's.
    return S.QMCSampler(seed=seed, independent_sampler=S.RandomSampler(seed=s),
                        warn_independent_sampling=False, warn_asynchronous_seeding=False)


_SAMPLER_CLASS = None


def _per_trial_sampler(name: str, seed: int | None, ledger: _Ledger):
    """A sampler that builds a fresh inner sampler per trial, seeded from the trial's admitted index.

    Optuna's samplers keep their history in the storage, not in the object,
    so a fresh one per trial samples as a long-lived one would, while its seed
    depends on the trial instead of on how many trials this process asked.
    The index is also what decides admission, so it is kept per trial number.
    """
    global _SAMPLER_CLASS
    if _SAMPLER_CLASS is None:
        from optuna.samplers import BaseSampler

        class PerTrialSampler(BaseSampler):
            def __init__(self, name, seed, ledger):
                self.name, self.seed, self.ledger = name, seed, ledger
                self.inner: dict[int, Any] = {}
                self.index: dict[int, int] = {}

            def before_trial(self, study, trial):
                k = trial.number
                self.index[k] = self.ledger.count(study.get_trials(deepcopy=False), k)
                self.inner[k] = _make_sampler(self.name, self.seed, self.index[k])
                self.inner[k].before_trial(study, trial)

            def infer_relative_search_space(self, study, trial):
                return self.inner[trial.number].infer_relative_search_space(study, trial)

            def sample_relative(self, study, trial, search_space):
                return self.inner[trial.number].sample_relative(study, trial, search_space)

            def sample_independent(self, study, trial, param_name, param_distribution):
                return self.inner[trial.number].sample_independent(study, trial, param_name, param_distribution)

            def after_trial(self, study, trial, state, values):
                inner = self.inner.pop(trial.number, None)
                self.index.pop(trial.number, None)
                if inner is not None:
                    inner.after_trial(study, trial, state, values)

            def forget(self, number):
                self.inner.pop(number, None)
                self.index.pop(number, None)

            def reseed_rng(self):
                pass  # seeds come from the trial index, never from the process

        _SAMPLER_CLASS = PerTrialSampler
    return _SAMPLER_CLASS(name, seed, ledger)


# ---- the results folder ------------------------------------------------------------


def _claim(out: Path, fp: str, force: bool, journal: Path | None) -> None:
    """Refuse a folder holding another study's results unless ``force``; with it, clear them."""
    if out.exists() and not out.is_dir():
        raise SweepError(f"--out {out} is a file, not a folder")
    state, manifest = out / STATE, out / "manifest.json"
    theirs = [p for p in (state, manifest) if p.exists() and _load_json(p).get("fingerprint") != fp]
    if theirs and not force:
        raise SweepError(f"{out} holds results of a different study, data set or evaluation window "
                         f"({theirs[0].name}); use --force to replace them or --out for another folder")
    if force:
        for name in ("trials.parquet", "manifest.json", "returns.parquet", STATE):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / ".partial", ignore_errors=True)
        if journal is not None:
            for f in (journal, journal.with_name(journal.name + ".lock")):
                f.unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"cannot create {out}: {exc.strerror}") from None


def _open_study(p: Prepared, storage, sampler, direction: str, force: bool, shown: str):
    import optuna

    name = p.study.name
    if force:
        try:
            optuna.delete_study(study_name=name, storage=storage)
        except KeyError:
            pass  # nothing to delete
    ostudy = optuna.create_study(storage=storage, study_name=name, direction=direction, sampler=sampler,
                                 load_if_exists=True)
    theirs = ostudy.user_attrs.get(A_FINGERPRINT)
    if theirs is None:
        ostudy.set_user_attr(A_FINGERPRINT, p.fingerprint)
    elif theirs != p.fingerprint:
        raise SweepError(f"{shown}: the Optuna study '{name}' holds trials of a different study, data set "
                         "or evaluation window; use --force to delete it, or rename the study")
    if ostudy.direction.name.lower() != direction:
        raise SweepError(f"{shown}: the Optuna study '{name}' is set to {ostudy.direction.name.lower()}, "
                         f"not {direction}; use --force to delete it, or rename the study")
    return ostudy


# ---- the table ---------------------------------------------------------------------


def table(p: Prepared, trials: list) -> pl.DataFrame:
    """The persisted table, from the storage's trials alone: the grid's schema plus ``trial_number``.

    Rows are the trials that finished with metrics, in trial-number order.
    """
    rows = sorted((t for t in trials if t.state.is_finished() and A_METRICS in t.user_attrs),
                  key=lambda t: t.number)
    where = f"{p.study.path}: [space]"
    configs = [resolve({**p.study.fixed, **t.params}, where, checked=True) for t in rows]
    metrics = pl.DataFrame(
        {"idx": np.arange(len(rows), dtype=np.int64),
         **{m: np.array([_num(t.user_attrs[A_METRICS].get(m)) for t in rows], dtype=np.float64)
            for m in METRICS}})
    df = trials_table(_Columns(p.columns), configs, metrics)
    return df.with_columns(pl.Series("trial_number", [t.number for t in rows], dtype=pl.Int64))


@dataclass
class _Columns:
    columns: list[str]  # what trials_table reads of a study


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _metrics_attr(row: np.ndarray) -> dict[str, float | None]:
    # JSON has no NaN: a missing value is null, so any storage round-trips it.
    return {m: None if math.isnan(v) else float(v) for m, v in zip(METRICS, row)}


# ---- the run -----------------------------------------------------------------------


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
    kind, target = _storage_target(opts, out)
    shown = f"{study.path}: [optuna] storage" if opts.storage else str(out / JOURNAL)
    default_journal = out / JOURNAL if opts.storage is None else None
    fp = p.fingerprint
    _claim(out, fp, force, default_journal)
    direction = "minimize" if study.objective in LOWER_IS_BETTER else "maximize"

    session = uuid.uuid4().hex
    _ACTIVE_SESSIONS.add(session)
    pool = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = _open_storage(kind, target, shown)
            ledger = _Ledger()
            sampler = _per_trial_sampler(opts.sampler, opts.seed, ledger)
            ostudy = _open_study(p, storage, sampler, direction, force, shown)
            write_json({"fingerprint": fp, "study": str(study.path), "storage": target}, out / STATE)
            _reap(storage, ostudy, ledger)
            n_before = ledger.count(ostudy.get_trials(deepcopy=False), sys.maxsize)

            from sweep.engine.workspace import Evaluator

            evaluator = Evaluator(p.panel, jobs)
            # Compile (or load Numba's cache) here, before the workers start.
            evaluator.run([p.corners[0]], p.s, p.s)
            pool = _Pool(jobs)
            search = _Search(p, storage, ostudy, sampler, ledger, evaluator, pool, session, progress,
                             on_chunk, n_before)
            t_run = time.perf_counter()
            search.run()
            compute_time = time.perf_counter() - t_run
            trials = ostudy.get_trials(deepcopy=False)
    finally:
        _ACTIVE_SESSIONS.discard(session)
        if pool is not None:
            pool.shutdown()

    df = table(p, trials)
    write_parquet(df, out / "trials.parquet")
    write_json(_summary(p, df), out / "summary.json")
    wall = time.perf_counter() - t0
    summary = RunSummary(out, df.height, search.n_run, df.height - search.n_run, wall, compute_time,
                         p.start, p.end)
    write_json(_manifest(p, fp, summary, df, ostudy, direction, target), out / "manifest.json")
    return summary


def _summary(p: Prepared, df: pl.DataFrame) -> dict:
    """The overfitting statistics over the distinct configurations the search tried
    (TPE proposes some twice; a repeat is not another independent try)."""
    from sweep.engine.workspace import Evaluator
    from sweep.study.grid import N_BLOCKS, study_summary

    where = f"{p.study.path}: [space]"
    first = df.unique("config_id", keep="first", maintain_order=True)
    configs = [resolve({k: (tuple(v) if isinstance(v, list) else v) for k, v in row.items() if k in p.columns},
                       where) for row in first.select(p.columns).iter_rows(named=True)]
    metrics, _, (sums, sumsq) = Evaluator(p.panel).run_blocks(configs, p.s, p.e, N_BLOCKS)
    return study_summary(p.study, p.panel, configs, p.s, p.e, metrics, sums, sumsq, p.columns)


class _Pool:
    """A thread pool (the kernels release the GIL) that drops queued work on shutdown."""

    def __init__(self, jobs: int):
        from concurrent.futures import ThreadPoolExecutor

        self.executor = ThreadPoolExecutor(max_workers=jobs)

    def submit(self, fn, *args):
        return self.executor.submit(fn, *args)

    def shutdown(self):
        self.executor.shutdown(wait=False, cancel_futures=True)


class _Search:
    """The ask/tell loop of one process: one thread talks to Optuna, the pool runs backtests."""

    def __init__(self, p: Prepared, storage, ostudy, sampler, ledger: _Ledger, evaluator, pool: _Pool,
                 session: str, progress: bool | None, on_chunk, n_before: int):
        self.storage = storage
        self.p, self.ostudy, self.sampler, self.ledger = p, ostudy, sampler, ledger
        self.evaluator, self.pool, self.on_chunk = evaluator, pool, on_chunk
        self.n_trials = p.options.n_trials
        self.objective = METRICS.index(p.study.objective)
        self.worker = {"host": socket.gethostname(), "pid": os.getpid(),
                       "proc_start": _proc_start(os.getpid()), "session": session}
        self.inflight: deque = deque()
        self.stop = threading.Event()
        T, N = p.panel.shape
        self.cached: set = set()  # ranking keys the current evaluator holds
        self.max_cached = max(16, CACHE_BYTES // (16 * T * N))
        self.n_run = 0
        self.n_before = n_before
        enabled = sys.stderr.isatty() if progress is None else progress
        self.bar = _Progress(self.n_trials, min(n_before, self.n_trials), enabled)

    def counted(self) -> int:
        return self.ledger.count(self.ostudy.get_trials(deepcopy=False), sys.maxsize)

    def run(self) -> None:
        try:
            with _deferred_interrupt(self.stop):
                self._loop()
        except BaseException:
            self._drain()
            raise
        finally:
            self.bar.close()

    def _loop(self) -> None:
        may_ask = True
        while True:
            if self.stop.is_set():
                raise KeyboardInterrupt  # Ctrl-C, taken here, between two Optuna calls
            if len(self.inflight) >= IN_FLIGHT:
                self._finish()
                continue
            if may_ask and self.counted() < self.n_trials:
                may_ask = self._ask()
                continue
            if self.inflight:
                self._finish()
                continue
            # Nothing of ours left: wait for other workers' trials, and take over
            # from any that died.
            _reap(self.storage, self.ostudy, self.ledger)
            trials = _ordered(self.ostudy.get_trials(deepcopy=False))
            if self.ledger.count(trials, sys.maxsize) < self.n_trials:
                may_ask = True
                continue
            if not any(not t.state.is_finished() and _counts(t) for t in trials[self.ledger.low:]):
                return
            time.sleep(0.05)

    def _ask(self) -> bool:
        """Ask one trial; False when it was past the limit (another worker took the last place)."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        trial = self.ostudy.ask()
        index = self.sampler.index.get(trial.number, sys.maxsize)
        if index >= self.n_trials:
            trial.set_user_attr(A_SURPLUS, True)
            self.ostudy.tell(trial, state=TrialState.FAIL)
            return False
        try:
            trial.set_user_attr(A_WORKER, {**self.worker, "time": time.time()})
        except UpdateFinishedTrialError:
            # Taken for dead by another worker (clocks far apart): it does not count; ask again.
            self.sampler.forget(trial.number)
            return True
        try:
            params = {d.name: d.suggest(trial) for d in self.p.space}
            config = resolve({**self.p.study.fixed, **params}, f"{self.p.study.path}: [space]", checked=True)
            self.evaluator.workspace.check(config, f"{self.p.study.path}: [space]")
        except BaseException:
            self.sampler.forget(trial.number)
            _abandon(self.storage, self.ostudy, trial.number)
            raise
        self.inflight.append((trial, self.pool.submit(self._evaluate, self._evaluator_for(config), config)))
        return True

    def _evaluator_for(self, config: dict[str, Any]):
        from sweep.engine.workspace import Evaluator, ranking_key

        key = ranking_key(config)
        if key not in self.cached:
            if len(self.cached) >= self.max_cached:
                # Trials in flight keep the old one until they finish.
                self.evaluator = Evaluator(self.p.panel, self.evaluator.jobs)
                self.cached.clear()
            self.cached.add(key)
        return self.evaluator

    def _evaluate(self, evaluator, config: dict[str, Any]) -> np.ndarray:
        metrics, _ = evaluator.run([config], self.p.s, self.p.e)
        return metrics[0]

    def _finish(self, report: bool = True) -> None:
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        trial, future = self.inflight[0]
        row = future.result()  # if this fails, the trial stays in flight for _drain
        self.inflight.popleft()
        value = float(row[self.objective])
        try:
            trial.set_user_attr(A_METRICS, _metrics_attr(row))
            # A ruined book's ratios describe a closed book (SEMANTICS §8): a sampler told
            # them would climb towards ruin, so it is a failed trial, kept as a row.
            if math.isnan(value) or row[M_RUINED] > 0:
                self.ostudy.tell(trial, state=TrialState.FAIL)
            else:
                self.ostudy.tell(trial, value)
        except (UpdateFinishedTrialError, ValueError):
            if self.ostudy.get_trials(deepcopy=False)[trial.number].state == TrialState.RUNNING:
                raise
            # Another worker took it for dead and marked it abandoned: it does not
            # count, and the loop asks another trial in its place.
            self.sampler.forget(trial.number)
            return
        self.n_run += 1
        self.bar.advance(1, self.n_before + self.n_run)
        if report and self.on_chunk is not None:
            self.on_chunk(self.n_run)

    def _drain(self) -> None:
        """On an interruption or an error, finish the trials already asked (milliseconds each), so
        none is lost and the trial numbers stay dense; abandon them if they cannot finish."""
        while self.inflight:
            try:
                self._finish(report=False)
            except BaseException:
                for t, fut in self.inflight:
                    fut.cancel()
                    self.sampler.forget(t.number)
                    _abandon(self.storage, self.ostudy, t.number)
                self.inflight.clear()


@contextmanager
def _deferred_interrupt(flag: threading.Event):
    """Turn the first Ctrl-C into ``flag`` (the loop stops cleanly at its next step); a second
    one interrupts at once. Only in the main thread, and only over Python's own handler."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _manifest(p: Prepared, fp: str, summary: RunSummary, df: pl.DataFrame, ostudy, direction: str,
              storage: str) -> dict[str, Any]:
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
        **manifest_head(study, panel, fp, summary.start, summary.end, p.e - p.s + 1),
        "optuna": {"n_trials": p.options.n_trials, "sampler": p.options.sampler, "seed": p.options.seed,
                   "storage": storage, "study_name": ostudy.study_name, "direction": direction,
                   "in_flight": IN_FLIGHT, "space": {d.name: d.describe() for d in p.space}},
        "n_trials": p.options.n_trials,
        "configurations": summary.n_configs,
        "configurations_run": summary.n_run,
        "configurations_resumed": summary.n_resumed,
        "wall_time_s": round(summary.wall_time, 4),
        "compute_time_s": round(summary.compute_time, 4),
        "trials_per_second": round(summary.configs_per_second, 1) if summary.n_run else None,
        "configs_per_second": round(summary.configs_per_second, 1) if summary.n_run else None,
        "best": best,
        "n_ruined": int((df["ruined"] > 0).sum()),
        "versions": {**_versions(), "optuna": optuna.__version__},
        "created": _now(),
        "factors": sorted(set(df["factor"].to_list())) if "factor" in df.columns
        else sorted({c["factor"] for c in p.corners}),
        "parameters": p.columns,
    }


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


__all__ = ["Dim", "Options", "Prepared", "corners", "describe", "parse_options", "parse_space", "prepare",
           "run", "table", "validate"]
