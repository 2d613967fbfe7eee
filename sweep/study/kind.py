"""Dispatch to the module of each study kind: one module per kind, one place that knows them.

Each kind module offers ``validate(study)`` (raise ``SweepError`` for a bad
table, before any data is read) and ``run(study, *, data, funding, out, jobs,
force, progress, on_chunk) -> RunSummary``.
"""

from __future__ import annotations

import importlib

from sweep.study.file import Study

MODULES = {"optuna": "sweep.study.optuna", "walk_forward": "sweep.study.walk_forward",
           "monte_carlo": "sweep.study.monte_carlo", "portfolio": "sweep.book.portfolio"}


def module(kind: str):
    return importlib.import_module(MODULES[kind])


def validate(study: Study) -> None:
    module(study.kind).validate(study)
