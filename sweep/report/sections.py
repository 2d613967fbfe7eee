"""Where a study kind's report section lives: the kind registry (``sweep.study.kind``) names
it as ``"module.path:function"``, resolved here with importlib, so no list of kinds is kept
in the report or the command line.

A kind's report module offers, beside the section function ``section(rep, *, data,
funding, monte_carlo)`` the registry names:

* ``CHARTS``: the chart names it can draw, in page order (file names without ".png");
* ``read_tables(folder, objective) -> (tables, summary or None)``: its tables, read and
  checked (``summary.json`` is read by the caller when ``None``);
* optionally ``counts(res) -> str``: the provenance line of what was run, and
  ``manifest_without_file(folder) -> dict | None``: the manifest of a folder of this kind
  that has no ``manifest.json`` (a ``sweep portfolio`` folder).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import sweep.book  # noqa: F401  (registers the portfolio kind)
from sweep.core.errors import SweepError
from sweep.study.kind import get, names


def resolve(spec: str, what: str = "") -> Any:
    """The object ``"module.path:name"`` names."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise SweepError(f"{what or 'section'} {spec!r}: expected 'module.path:function'")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise SweepError(f"{what or 'section'} {spec!r} cannot be loaded ({exc})") from None


def report_section(kind: str):
    """The report section function of study kind ``kind``."""
    spec = get(kind).report
    if not spec:
        raise SweepError(f"study kind {kind!r} has no report section")
    return resolve(spec, f"study kind {kind!r}: report")


def report_module(kind: str) -> ModuleType:
    """The module holding the report section of ``kind`` (its ``CHARTS``, ``read_tables``, ...)."""
    return importlib.import_module(report_section(kind).__module__)


def kinds_with_reports() -> list[str]:
    return [k for k in names() if get(k).report]


class _Charts:
    """``CHARTS[kind]``: the charts a kind's report can have, read from its report module."""

    def __getitem__(self, kind: str) -> tuple[str, ...]:
        return tuple(report_module(kind).CHARTS)

    def __contains__(self, kind: object) -> bool:
        return isinstance(kind, str) and kind in kinds_with_reports()

    def __iter__(self):
        return iter(kinds_with_reports())

    def keys(self):
        return kinds_with_reports()


CHARTS = _Charts()
