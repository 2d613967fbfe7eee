"""Dispatch to the module of each study kind: one module per kind, one place that knows them.

Each kind module offers ``validate(study)`` (raise ``SweepError`` for a bad
table, before any data is read) and ``run(study, *, data, funding, out, jobs,
force, progress, on_chunk) -> RunSummary``.
"""

from __future__ import annotations

import importlib

from ._study import Study

MODULES = {"optuna": "._optuna", "walk_forward": "._walkforward", "monte_carlo": "._montecarlo",
           "portfolio": "._portfolio"}


def module(kind: str):
    return importlib.import_module(MODULES[kind], __package__)


def validate(study: Study) -> None:
    module(study.kind).validate(study)
