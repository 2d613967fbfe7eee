"""Study kinds: one base class and one registry, the only place that knows which kinds exist.

A kind says what a study of it reads from the study file (``reads``), what it writes
(``tables``, main table first), how to check it before any data is read
(``validate``), what ``sweep validate`` prints about it (``describe``) and how to run
it (``run``). The command line and the report learn the kinds from here and find a
kind's ``show`` and ``report`` sections through their dotted paths
(``"module.path:function"``), so this layer never imports theirs.

Built-in kinds are registered when ``sweep.study`` is imported (grid, optuna,
walk_forward, monte_carlo) and ``sweep.book`` (portfolio), by name (``LazyKind``,
``ModuleKind``): a kind's module is imported when a study of it is first checked or run.
A kind of one's own::

    from sweep.study.kind import StudyKind, register

    class Mine(StudyKind):
        name, tables, reads = "mine", ("mine.parquet",), frozenset({"mine"})
        def run(self, study, **options): ...

    register(Mine())
"""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import Any, Callable

from sweep.core.errors import SweepError
from sweep.run.pool import default_jobs


# A grid of more configurations than this is refused before it starts: memory is not the
# limit (configurations are generated a chunk at a time), hours of computing and the table's
# size on disk are; ``sweep run --max-configs N`` raises it.
MAX_CONFIGS = 100_000_000

class StudyKind:
    """A kind of study. Subclasses set the class attributes and override ``run``."""

    name: str = ""
    # Files of the results folder, the main one (what ``sweep run`` points to) first.
    tables: tuple[str, ...] = ()
    # Tables of the study file this kind reads besides [study] and [backtest]; any other
    # is refused rather than silently ignored.
    reads: frozenset[str] = frozenset()
    # What a run counts, in ``sweep run``'s closing line ("configurations", "backtests").
    counts: str = "configurations"
    # "module.path:function" of the ``sweep show`` and report sections of this kind.
    show: str = ""
    report: str = ""
    # Whether ``run`` takes ``cluster`` (an address for ``sweep.run.cluster.Cluster``).
    clusters: bool = False

    @property
    def main_table(self) -> str:
        return self.tables[0]

    def validate(self, study: Any) -> None:
        """Raise ``SweepError`` for a bad kind table, before any data is read."""

    def describe(self, study: Any, *, data: str | Path | None = None,
                 funding: str | Path | None = None) -> list[str]:
        """``sweep validate``'s lines under "valid <kind> study" (may read the data)."""
        return []

    def run(self, study: Any, *, data: str | Path | None = None, funding: str | Path | None = None,
            out: str | Path | None = None, jobs: int = 1, force: bool = False,
            progress: bool | None = None, on_chunk: Callable[[int], None] | None = None,
            max_configs: int | None = None, save_returns: bool = False) -> Any:
        """Run the study and write ``tables`` into ``out``; returns a ``RunSummary``."""
        raise NotImplementedError(f"study kind {self.name!r} does not run")

    def __repr__(self) -> str:
        return f"<study kind {self.name}>"


class ModuleKind(StudyKind):
    """A kind whose ``validate``, ``describe`` and ``run`` are functions of a module, found by
    its dotted path when first needed (a higher layer, such as ``sweep.book``, registers
    its kind without this layer importing it)."""

    def __init__(self, name: str, module: str, tables: tuple[str, ...], reads: frozenset[str] | set[str],
                 *, show: str = "", report: str = "", counts: str = "configurations"):
        self.name, self.module, self.tables, self.reads = name, module, tuple(tables), frozenset(reads)
        self.show, self.report, self.counts = show, report, counts

    def _mod(self):
        return importlib.import_module(self.module)

    def validate(self, study: Any) -> None:
        self._mod().validate(study)

    def describe(self, study: Any, *, data=None, funding=None) -> list[str]:
        fn = getattr(self._mod(), "describe", None)
        if fn is None:
            return []
        try:
            got = fn(study, data=data, funding=funding)
        except TypeError:  # a describe that reads no data
            got = fn(study)
        if isinstance(got, tuple):  # (plan, lines): frame the lines with the data and window
            p, lines = got
            return [data_line(p.panel), *lines, *window_lines(study, p)]
        return list(got)

    def run(self, study: Any, *, max_configs: int | None = None, save_returns: bool = False,
            **options: Any) -> Any:
        return self._mod().run(study, **options)


class LazyKind(StudyKind):
    """A kind known by name before its module is imported: what the registry lists (tables,
    reads, show, report, counts) is given here, and ``validate``, ``describe`` and ``run`` are
    those of the module's ``KIND``, imported on first use. Importing the module registers
    its own ``KIND`` in this one's place (same name, same position), so a command that never
    checks or runs a study of this kind never imports its module (``sweep --help``, ``sweep
    show``, a grid's ``sweep run`` without Monte Carlo's or walk-forward's imports)."""

    def __init__(self, name: str, module: str, tables: tuple[str, ...], reads: frozenset[str] | set[str],
                 *, show: str = "", report: str = "", counts: str = "configurations"):
        self.name, self.module, self.tables, self.reads = name, module, tuple(tables), frozenset(reads)
        self.show, self.report, self.counts = show, report, counts

    def kind(self) -> StudyKind:
        """The module's own ``KIND`` (importing the module on first use)."""
        return importlib.import_module(self.module).KIND

    def validate(self, study: Any) -> None:
        self.kind().validate(study)

    def describe(self, study: Any, **options: Any) -> list[str]:
        return self.kind().describe(study, **options)

    def run(self, study: Any, **options: Any) -> Any:
        return self.kind().run(study, **options)

    @property
    def clusters(self) -> bool:  # type: ignore[override]
        return self.kind().clusters


def data_line(panel: Any) -> str:
    T, N = panel.shape
    return f"data        {panel.source} ({T} days x {N} symbols, {panel.dates[0]} .. {panel.dates[-1]})"


def window_lines(study: Any, p: Any) -> list[str]:
    return [f"evaluation  {p.start} .. {p.end} ({p.e - p.s + 1} days)", f"objective   {study.objective}"]


_KINDS: dict[str, StudyKind] = {}


def register(kind: StudyKind) -> StudyKind:
    """Add (or replace) a kind; returns it, so a module can write ``KIND = register(Mine())``."""
    if not kind.name or not kind.tables:
        raise ValueError(f"{kind!r}: a study kind needs a name and at least one table")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (a test's throwaway one); unknown names are ignored."""
    _KINDS.pop(name, None)


def get(name: str, where: str = "") -> StudyKind:
    """The kind called ``name``; an unknown one is one line (``where``, e.g. "file: [study] kind",
    naming the place) listing the known kinds."""
    try:
        return _KINDS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_KINDS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        what = where if where else "study kind"
        raise SweepError(f"{what} = {name!r} is not one of {', '.join(_KINDS)}{hint}") from None


def names() -> tuple[str, ...]:
    """The registered kinds, in registration order (built-in ones first)."""
    return tuple(_KINDS)


def study_tables() -> frozenset[str]:
    """Every kind table a study file may hold (the union of what the kinds read)."""
    return frozenset().union(*(k.reads for k in _KINDS.values()))



def run_study(study: Any, *, data: str | Path | None = None, funding: str | Path | None = None,
              out: str | Path | None = None, jobs: int | None = None, force: bool = False,
              save_returns: bool = False, progress: bool | None = None,
              on_chunk: Callable[[int], None] | None = None, max_configs: int | None = None,
              cluster: str | None = None) -> Any:
    """Run a study of any kind and write its tables into ``out`` (``results/<name>`` by default).

    A grid of more than ``max_configs`` configurations (``MAX_CONFIGS``
    unless given) is refused before anything is built. ``on_chunk(n_written)`` is called
    after each chunk reaches the disk (a hook for progress and for tests that interrupt a run).
    ``cluster`` (else ``[study] cluster``): run the chunks on a Dask cluster, ``"local:N"`` or
    ``"tcp://HOST:PORT"`` (``sweep.run.cluster``); the tables are those of a local run.
    """
    spec = get(study.kind, f"{study.path}: [study] kind")
    study.check_size(max_configs)
    extra: dict[str, Any] = {}
    where = "--cluster" if cluster is not None else f"{study.path}: [study] cluster"
    cluster = cluster if cluster is not None else getattr(study, "cluster", None)
    if cluster is not None:
        from sweep.run.cluster import parse_address

        extra["cluster"] = parse_address(cluster, where)
        if not spec.clusters:
            raise SweepError(f"{where}: a study of kind '{study.kind}' does not run on a cluster (grids, Monte "
                             "Carlo and walk-forward studies do; Optuna searches share a database storage "
                             "instead: one `sweep run` per machine)")
    return spec.run(study, data=data, funding=funding, out=out, jobs=max(1, jobs or default_jobs()),
                    force=force, progress=progress, on_chunk=on_chunk, max_configs=max_configs,
                    save_returns=save_returns, **extra)
