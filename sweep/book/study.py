"""A study of ``kind = "portfolio"``: a ``[portfolio]`` table naming ``results``, ``weights``
and ``walk_forward_days``; ``sweep run`` writes the book and a manifest to ``results/<name>/``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sweep.core.errors import SweepError
from sweep.core.io import write_json
from sweep.core.paths import locate
from sweep.engine.params import closest
from sweep.results import SCHEMA_VERSION, versions
from sweep.run.summary import RunSummary
from sweep.study.kind import StudyKind, register
from sweep.book.combine import build_portfolio, write_portfolio
from sweep.book.sources import select
from sweep.book.weights import check_method

PORTFOLIO_KEYS = ("results", "weights", "walk_forward_days")


def _table(study) -> dict[str, Any]:
    return study.raw.get("portfolio", {})


def validate(study) -> None:
    """A ``kind = "portfolio"`` study: ``[portfolio] results = [...]``, ``weights``,
    ``walk_forward_days``; nothing else (no [backtest], no [grid])."""
    where = f"{study.path}: [portfolio]"
    table = _table(study)
    if study.fixed or study.axes:
        raise SweepError(f"{study.path}: a portfolio study takes its configurations from its results "
                         "folders; remove [backtest] and [grid]")
    for key in table:
        if key not in PORTFOLIO_KEYS:
            raise SweepError(f"{where} unknown key '{key}'{closest(key, PORTFOLIO_KEYS)}")
    res = table.get("results")
    if not isinstance(res, list) or not res or not all(isinstance(r, str) and r for r in res):
        raise SweepError(f"{where} results must be a non-empty list of results folders")
    w = table.get("weights", "equal")
    check_method(w, f"{where} weights =")
    d = table.get("walk_forward_days")
    if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 2):
        raise SweepError(f"{where} walk_forward_days = {d!r} must be an integer of at least 2")


def describe(study) -> list[str]:
    """``sweep validate`` of a portfolio study: what it would combine (no backtest runs)."""
    table = _table(study)
    sources, choices, (start, end) = select([_study_folder(r, study) for r in table["results"]])
    lines = [f"results     {len(sources)} folders: " + ", ".join(s.name for s in sources),
             "strategies  " + ", ".join(f"{c.factor} ({c.source.objective} {c.value:.3f})" for c in choices),
             f"weights     {table.get('weights', 'equal')}" + (f", walk-forward every {table['walk_forward_days']} days"
                                                         if table.get("walk_forward_days") else ""),
             f"evaluation  {start} .. {end} ({(end - start).days + 1} days, the folders' common window)"]
    return lines


def _study_folder(rel: str, study) -> Path:
    return locate(rel, study=study.path)


def run(study, *, data=None, funding=None, out=None, jobs: int = 1, force: bool = False,
        progress: bool | None = None, on_chunk=None):
    """``sweep run`` of a portfolio study: ``results/<name>/`` gets portfolio.json,
    portfolio_returns.parquet and manifest.json."""
    validate(study)
    t0 = time.perf_counter()
    table = _table(study)
    results = [_study_folder(r, study) for r in table["results"]]
    pf = build_portfolio(results, table.get("weights", "equal"), table.get("walk_forward_days"),
                         data if data is not None else study.data, funding)
    out = Path(out) if out is not None else Path("results") / study.name
    write_portfolio(pf, out)
    wall = time.perf_counter() - t0
    summary = RunSummary(out, len(pf.names), len(pf.names), 0, wall, wall, pf.start, pf.end)
    src = pf.choices[0].source
    write_json({"schema_version": SCHEMA_VERSION,
                "study": {"name": study.name, "kind": study.kind, "objective": study.objective,
                          "path": str(study.path), "fingerprint": study.fingerprint(), "text": study.text},
                "data": {"path": src.manifest["data"]["path"], "fingerprint": src.fingerprint},
                "evaluation_window": {"start": str(pf.start), "end": str(pf.end), "days": len(pf.sleeves.dates)},
                "results": [str(r) for r in results], "factors": pf.names, "parameters": [],
                "configurations": len(pf.names), "wall_time_s": round(wall, 4), "versions": versions(),
                "created": pf.created}, out / "manifest.json")
    if on_chunk is not None:
        on_chunk(1)
    return summary


class PortfolioKind(StudyKind):
    """``kind = "portfolio"`` in the study-kind registry (registered on import of ``sweep.book``)."""

    name = "portfolio"
    tables = ("portfolio.json", "portfolio_returns.parquet")
    reads = frozenset({"portfolio"})
    counts = "strategies"
    show = "sweep.cli.kind_portfolio:show"
    report = "sweep.report.portfolio:section"

    def validate(self, study) -> None:
        validate(study)

    def describe(self, study, *, data=None, funding=None) -> list[str]:
        return describe(study)

    def run(self, study, *, max_configs: int | None = None, save_returns: bool = False, **options):
        # A book reruns one configuration per factor: no table to bound, no daily returns to keep.
        return run(study, **options)


KIND = register(PortfolioKind())
