"""A results folder as ``sweep report`` reads it: its manifest, its tables (each kind's report
module reads and checks its own, see ``sweep.report.sections``), the panel the study ran on
and a sentence on its coverage. Every unreadable file is a ``SweepError`` naming it."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sweep.core.errors import SweepError
from sweep.report.base import first_line, lower_is_better
from sweep.report.sections import kinds_with_reports, report_module
from sweep.results import data as results_data
from sweep.results.schema import check_schema


def read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise SweepError(f"{path}: unreadable ({first_line(exc)}); rerun the study with --force") from None
    if not isinstance(obj, dict):
        raise SweepError(f"{path}: unreadable (not a JSON object); rerun the study with --force")
    return obj



def read_parquet(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise SweepError(f"{path}: missing (the results folder is incomplete); rerun the study")
    try:
        return pl.read_parquet(path)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise SweepError(f"{path}: unreadable ({first_line(exc)}); rerun the study with --force") from None



def require(df: pl.DataFrame, path: Path, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SweepError(f"{path}: not a sweep results table (no column {', '.join(missing)}); rerun the study")


@dataclass
class Results:
    """A results folder as read: its manifest and tables (``tables`` keyed by file name)."""

    folder: Path
    manifest: dict[str, Any]
    kind: str
    name: str
    objective: str
    tables: dict[str, pl.DataFrame]
    summary: dict[str, Any] | None  # summary.json, or portfolio.json for a portfolio
    axes: list[str]  # the parameters the study searches ([grid] and [space] keys)
    study_table: dict[str, Any]  # the study text's [study] table

    @property
    def lower(self) -> bool:
        return lower_is_better(self.objective)

    @property
    def window(self) -> tuple[str, str]:
        w = self.manifest.get("evaluation_window") or {}
        return str(w.get("start", "?")), str(w.get("end", "?"))

    @property
    def params(self) -> list[str]:
        return list(self.manifest.get("parameters") or [])



def _manifest_without_file(folder: Path) -> dict[str, Any] | None:
    """A folder with no manifest.json: the first kind whose report module can stand one up."""
    for kind in kinds_with_reports():
        make = getattr(report_module(kind), "manifest_without_file", None)
        manifest = make(folder) if make is not None else None
        if manifest is not None:
            return manifest
    return None


def read_results(folder: str | Path) -> Results:
    """Read a results folder (or a file inside it); raise ``SweepError`` naming the bad file."""
    folder = Path(folder)
    if folder.suffix in (".parquet", ".json") and not folder.is_dir():
        folder = folder.parent
    if not folder.exists():
        raise SweepError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise SweepError(f"{folder}: not a results folder (a file; give the folder `sweep run` wrote)")
    mpath = folder / "manifest.json"
    if mpath.exists():
        manifest = read_json(mpath)
        check_schema(manifest, mpath)
    else:
        manifest = _manifest_without_file(folder)
        if manifest is None:
            raise SweepError(f"{folder}: not a results folder (no manifest.json; run a study into it first)")
    study = manifest.get("study")
    kind = study.get("kind") if isinstance(study, dict) else None
    if kind not in kinds_with_reports():
        raise SweepError(f"{mpath}: not a sweep manifest (study kind {kind!r}); rerun the study")
    objective = study.get("objective") or "sharpe"
    tables, summary = report_module(kind).read_tables(folder, objective)
    spath = folder / "summary.json"
    if summary is None and spath.exists():
        summary = read_json(spath)
    try:
        raw = tomllib.loads(study.get("text") or "")
    except tomllib.TOMLDecodeError:
        raw = {}
    axes = [k for t in ("grid", "space") for k in (raw.get(t) or {})]
    if not axes:  # an older manifest without the study text: every parameter column is a candidate
        axes = list(manifest.get("parameters") or [])
    return Results(folder=folder, manifest=manifest, kind=kind, name=str(study.get("name") or folder.name),
                   objective=objective, tables=tables, summary=summary, axes=axes,
                   study_table=raw.get("study") or {})


# --------------------------------------------------------------------------- the data



def load_study_panel(res: Results, data=None, funding=None):
    """The panel the study ran on, or a sentence saying why it cannot be had
    (``sweep.results.data.load_study_panel`` on this folder)."""
    return results_data.load_study_panel(res.manifest, res.folder, data, funding)


def coverage_sentence(res: Results, panel) -> str:
    """The panel's coverage in one sentence: symbols, dates, and how many series end early."""
    start, end = res.window
    d = res.manifest.get("data") or {}
    if panel is None:
        return (f"Data: {d.get('symbols', '?')} symbols, {d.get('first_date', '?')} .. {d.get('last_date', '?')}; "
                f"evaluated {start} .. {end} (the data file is not found from here, so the series that end "
                "early are not counted).")
    close = panel.close
    has = np.isfinite(close)
    listed = has.any(axis=0)
    last = np.where(listed, close.shape[0] - 1 - np.argmax(has[::-1], axis=0), -1)
    early = int((listed & (last < close.shape[0] - 1)).sum())
    return (f"Data: {int(listed.sum())} symbols with prices, {panel.dates[0]} .. {panel.dates[-1]} "
            f"({close.shape[0]:,} days); {early} of them end before the last day (delisted or no longer "
            f"reported); evaluated {start} .. {end}.")



def window_days(res: Results, panel) -> tuple[int, int]:
    start, end = res.window
    return panel.day_index(dt.date.fromisoformat(start), "start"), panel.day_index(dt.date.fromisoformat(end), "end")
