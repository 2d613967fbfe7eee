"""The study file's side of an Optuna study: ``[space]`` and ``[optuna]``, checked before any data is read."""

from __future__ import annotations

import importlib.util
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from sweep.core.errors import SweepError
from sweep.engine.params import CHOICES, PARAMS, check_value, closest, resolve
from sweep.study.file import Study

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc")
OPTUNA_KEYS = ("n_trials", "sampler", "seed", "storage", "heartbeat_interval", "grace_period")
RANGE_KEYS = ("low", "high", "step", "log")
# Packages a sampler needs beyond Optuna's own dependencies.
SAMPLER_NEEDS = {"cmaes": ("cmaes", "cmaes"), "gp": ("torch", "torch")}
URL_SCHEMES = ("sqlite", "postgresql", "mysql")
MAX_TRIALS = 1_000_000
MAX_SEED = 2**32 - 1
# A database storage's heartbeat (sweep.study.optuna.storage.Heartbeat): each worker records, every
# HEARTBEAT_INTERVAL seconds, that its running trials are alive; a running trial whose last heartbeat
# is older than the grace period (GRACE_FACTOR intervals by default: one late or missed beat is not a
# death) is its dead worker's, and is failed and replayed. A heartbeat is two small statements per
# running trial (at most IN_FLIGHT per worker), about 1 ms on PostgreSQL: every 10 s it is nothing
# beside a trial's own ~75 statements, while a dead worker delays the end of a search by 30 s at most
# (Optuna's example, 60 s and 120 s, would hold it two minutes for nothing a trial here needs).
HEARTBEAT_INTERVAL = 10
GRACE_FACTOR = 3
MAX_HEARTBEAT = 86_400  # seconds, for both keys
# Corner configurations checked before a run (the product of the ends of each
# range and every string choice); beyond it the string choices that no
# cross-parameter rule reads are fixed at their first value (a trial that
# still turns out impossible stops the run with the same one-line error).
CORNER_LIMIT = 20_000


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
    # Seconds; None with a journal file, which has no heartbeat (a database URL always has one).
    heartbeat_interval: int | None = None
    grace_period: int | None = None


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
    interval, grace = _heartbeat(path, table, storage is not None and "://" in storage)
    return Options(n_trials=n, sampler=sampler, seed=seed, storage=storage, heartbeat_interval=interval,
                   grace_period=grace)


def _heartbeat(path: Path, table: dict[str, Any], database: bool) -> tuple[int | None, int | None]:
    """``heartbeat_interval`` and ``grace_period`` (seconds), checked; (None, None) for a journal file."""
    given = [k for k in ("heartbeat_interval", "grace_period") if k in table]
    if not database:
        if given:
            raise SweepError(f"{path}: [optuna] {given[0]} = {table[given[0]]!r} applies to a database storage "
                             "(storage = \"postgresql+psycopg://user@host/db\"); a journal file has no heartbeat")
        return None, None
    for k in given:
        v = table[k]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_HEARTBEAT:
            raise SweepError(f"{path}: [optuna] {k} = {v!r} must be a whole number of seconds from 1 to "
                             f"{MAX_HEARTBEAT:,}")
    interval = table.get("heartbeat_interval", HEARTBEAT_INTERVAL)
    grace = table.get("grace_period", GRACE_FACTOR * interval)
    if grace <= interval:
        raise SweepError(f"{path}: [optuna] grace_period = {grace!r} must be above heartbeat_interval = "
                         f"{interval!r} (a live trial's heartbeat is that many seconds old just before the next)")
    return interval, grace


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


class Search(NamedTuple):
    space: list[Dim]
    options: Options
    corners: list[dict[str, Any]]


def parse_search(study: Study) -> Search:
    """``[space]``, ``[optuna]`` and the corners of the space, checked (each error one line)."""
    space = parse_space(study)
    options = parse_options(study)
    return Search(space, options, corners(study, space))


def validate(study: Study) -> None:
    """Check ``[space]`` and ``[optuna]`` before any data is read (called by ``load_study``)."""
    space = parse_space(study)
    parse_options(study)
    corners(study, space)
