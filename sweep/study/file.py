"""Study files (TOML): parse, validate every configuration, enumerate the grid."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from sweep.core.errors import SweepError
from sweep.engine.params import PARAMS, check_value, closest, sync_user_params
from sweep.engine.space import ConfigSpace
from sweep.factors import load as factor_code
from sweep.metrics import names as metric_names
from sweep.study import kind as kinds
from sweep.run.cluster import parse_address
from sweep.study.kind import MAX_CONFIGS

STUDY_KEYS = ("name", "kind", "objective", "data", "funding", "start", "end", "description", "cluster")
# The tables every study may hold; each kind adds the ones it reads (``StudyKind.reads``),
# and a table no kind of the study reads is refused rather than silently ignored.
COMMON_TABLES = ("study", "backtest")



@dataclass
class Study:
    """A parsed, validated study: fixed parameters and grid axes."""

    path: Path
    text: str
    name: str
    kind: str
    objective: str
    data: str | None
    funding: str | None
    start: dt.date | None
    end: dt.date | None
    fixed: dict[str, Any]
    axes: dict[str, list[Any]]
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    # The kind-specific tables ([space], [optuna], [walk_forward], [monte_carlo], ...)
    # as read; each kind validates its own (``sweep.study.kind``).
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The researcher's code the study runs: user factor name -> where it comes from and the
    # sha256 of its file (``sweep.factors.load.Code``); part of the fingerprint.
    code: dict[str, Any] = field(default_factory=dict)
    # Where the chunks run: None (this machine's threads), "local:N" or "tcp://HOST:PORT" (a
    # Dask cluster; ``sweep run --cluster`` overrides). Not part of the study's meaning.
    cluster: str | None = None

    @property
    def n_configs(self) -> int:
        """Configurations of the grid, counted without enumerating them."""
        n = 1
        for key, values in self.axes.items():
            if key == "phase" and values == "all":
                continue
            if key == "rebalance_days" and self.every_phase:
                continue  # each value k brings k phases: counted below
            n *= len(values)
        if self.every_phase:
            ks = self.axes.get("rebalance_days") or [self.fixed.get("rebalance_days", 1)]
            n *= sum(ks)
        return n

    def check_size(self, max_configs: int | None = None) -> None:
        """Refuse a grid of more than ``max_configs`` (default ``MAX_CONFIGS``) configurations,
        before any is built."""
        limit = MAX_CONFIGS if max_configs is None else max_configs
        n = self.n_configs
        if n > limit:
            raise SweepError(f"{self.path}: [grid] has {n:,} configurations, more than the limit of {limit:,} "
                             f"(hours of backtests at ~10,000 a second, a table of ~{n * 150 / 1e9:,.0f} GB); narrow the grid, "
                             f"or raise the limit with --max-configs {n}")

    @property
    def every_phase(self) -> bool:
        """``phase = "all"`` in [grid]: every phase ``0 .. k-1`` of each rebalance period."""
        return self.axes.get("phase") == "all"

    @property
    def columns(self) -> list[str]:
        """Parameter columns of the result table: the axes, then the fixed parameters."""
        return list(self.axes) + [k for k in self.fixed if k not in self.axes]

    def raw_configs(self) -> Iterator[dict[str, Any]]:
        """Configurations in the fixed order of the grid (last axis fastest)."""
        axes = {k: v for k, v in self.axes.items() if not (k == "phase" and v == "all")}
        names = list(axes)
        for combo in itertools.product(*axes.values()):
            config = {**self.fixed, **dict(zip(names, combo))}
            if self.every_phase:
                for phase in range(config.get("rebalance_days", 1)):
                    yield {**config, "phase": phase}
            else:
                yield config

    def space(self) -> ConfigSpace:
        """The grid's configurations, resolved and generated on demand (never listed whole); an
        impossible combination is refused with its values."""
        return ConfigSpace(self.fixed, self.axes, str(self.path))

    def resolved_configs(self) -> list[dict[str, Any]]:
        """Every configuration resolved, as a list (for small grids; a run uses ``space``)."""
        return list(self.space())

    def fingerprint(self) -> str:
        """Hash of what the study means (its parsed content, not its whitespace, and the
        sha256 of every factor file it runs: a changed file is a changed study)."""
        meaning: Any = self.raw
        if "cluster" in self.raw.get("study", {}):  # where it runs changes no number
            meaning = {**self.raw, "study": {k: v for k, v in self.raw["study"].items() if k != "cluster"}}
        if self.code:
            meaning = [meaning, {name: c.sha256 for name, c in sorted(self.code.items())}]
        text = json.dumps(meaning, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def code_notices(self) -> list[str]:
        """One line per file (or module) of user factor code a run of this study executes."""
        return factor_code.notices(self.code.values())

    def code_record(self) -> dict[str, Any]:
        """What the manifest keeps of that code: factor -> origin, target, path, sha256."""
        return {name: c.record() for name, c in self.code.items()}


_LOADED: set[str] = set()  # fingerprints of the studies whose code this process has loaded


def load_code(study: Study) -> None:
    """Register the researcher's factor code ``study`` runs in a process that did not read its
    study file (a cluster worker); once per process. The file must be the one the study was
    started with (the same path, on a shared folder, and the same sha256)."""
    if not study.code or study.fingerprint() in _LOADED:
        return
    for named in factor_code.factor_specs(study.raw):
        found = factor_code.resolve(named, study.path.parent, f"{study.path}: factor")
        mine = study.code.get(found.name) if found is not None else None
        if mine is not None and found.sha256 != mine.sha256:
            raise SweepError(f"{found.path}: differs on this worker from the file the study was started with "
                             "(a worker must read the same factor file, on a shared folder)")
    sync_user_params()
    _LOADED.add(study.fingerprint())


def _date(value: Any, where: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise SweepError(f"{where} = {value!r} is not a date (YYYY-MM-DD)")


def load_study(path: str | Path) -> Study:
    """Read and validate a study file; every problem names the file and the key.

    >>> study = load_study("studies/volatility_rebalance.toml")
    >>> study.n_configs
    240
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise SweepError(f"{path}: cannot read the study file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8: a stray byte is the file's fault, not a crash
        raise SweepError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                         f"{exc.start}); a study file is UTF-8 TOML") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise SweepError(f"{path}: not valid TOML: nested too deeply") from None
    known = (*COMMON_TABLES, "grid", *sorted(kinds.study_tables() - {"grid"}))
    for table, value in raw.items():
        if table not in known:
            raise SweepError(f"{path}: unknown table [{table}]{closest(table, known)}")
        if not isinstance(value, dict):
            raise SweepError(f"{path}: '{table}' must be a table [{table}]")
    head = raw.get("study", {})
    for key in head:
        if key not in STUDY_KEYS:
            raise SweepError(f"{path}: unknown key [study] {key}{closest(key, STUDY_KEYS)}")
    kind = head.get("kind", "grid")
    spec = kinds.get(kind, f"{path}: [study] kind")
    for table in raw:
        if table not in COMMON_TABLES and table not in spec.reads:
            raise SweepError(f"{path}: [{table}] does not apply to a study of kind '{kind}'")
    objective = head.get("objective", "sharpe")
    if objective not in metric_names():
        raise SweepError(f"{path}: [study] objective = {objective!r} is not a metric"
                         f"{closest(str(objective), metric_names())}")
    for key in ("name", "data", "funding", "description"):
        if key in head and (not isinstance(head[key], str) or not head[key]):
            raise SweepError(f"{path}: [study] {key} must be a non-empty string")
    name = head.get("name", path.stem)
    if "/" in name or name.startswith("."):
        raise SweepError(f"{path}: [study] name = {name!r} must be a plain folder name")

    # A user factor ("file.py:func", "package.module:func", an entry point) is registered, and
    # its parameters added, before any parameter is checked: they may name them.
    code = {}
    for named in factor_code.factor_specs(raw):
        found = factor_code.resolve(named, path.parent, f"{path}: factor")
        if found is not None:
            code[found.name] = found
    if code:
        sync_user_params()
    fixed = {}
    for key, value in raw.get("backtest", {}).items():
        fixed[key] = check_value(key, value, f"{path}: [backtest]")
    axes: dict[str, list[Any]] = {}
    for key, values in raw.get("grid", {}).items():
        where = f"{path}: [grid] {key}"
        if key not in PARAMS:
            raise SweepError(f"{path}: [grid] unknown parameter '{key}'{closest(key, PARAMS)}")
        if key in fixed:
            raise SweepError(f"{where} is also set in [backtest]; keep one")
        if key == "phase" and values == "all":
            axes[key] = "all"  # expanded per rebalance period by raw_configs
            continue
        if not isinstance(values, list):
            raise SweepError(f"{where} must be a list of values (an axis)")
        if not values:
            raise SweepError(f"{where} is an empty axis")
        if key == "exclude" and not all(isinstance(v, list) for v in values):
            raise SweepError(f"{where} must be a list of symbol lists, e.g. [[], [\"USDT\"]]")
        axes[key] = [check_value(key, v, f"{path}: [grid]") for v in values]
        if len(set(map(repr, axes[key]))) != len(axes[key]):
            raise SweepError(f"{where} repeats a value")
    study = Study(path=path, text=text, name=name, kind=kind, objective=objective,
                  data=head.get("data"), funding=head.get("funding"),
                  start=_date(head.get("start"), f"{path}: [study] start"),
                  end=_date(head.get("end"), f"{path}: [study] end"),
                  fixed=fixed, axes=axes, description=head.get("description", ""), raw=raw,
                  tables={t: v for t, v in raw.items() if t not in (*COMMON_TABLES, "grid")}, code=code,
                  cluster=parse_address(head["cluster"], f"{path}: [study] cluster") if "cluster" in head else None)
    if study.start and study.end and study.start > study.end:
        raise SweepError(f"{path}: [study] start = {study.start} is after end = {study.end}")
    spec.validate(study)
    return study
