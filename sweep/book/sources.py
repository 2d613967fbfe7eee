"""The results folders a book is built from, and the chosen configuration of each factor.

The chosen configuration of a folder (grid or Optuna) is its best row by the
study's objective, per value of the ``factor`` column when there is one,
among the configurations that were not ruined; a factor chosen by two folders
is refused. Every folder must come from the same data, and the book is
evaluated over the intersection of their evaluation windows.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sweep.core.errors import SweepError
from sweep.core.paths import locate
from sweep.engine.params import PARAMS, resolve
from sweep.results.schema import read_manifest


@dataclass
class Source:
    """One results folder of a grid or Optuna study."""

    folder: Path
    manifest: dict[str, Any]
    trials: pl.DataFrame

    @property
    def name(self) -> str:
        return self.manifest.get("study", {}).get("name", self.folder.name)

    @property
    def kind(self) -> str:
        return self.manifest.get("study", {}).get("kind", "grid")

    @property
    def objective(self) -> str:
        return self.manifest.get("study", {}).get("objective", "sharpe")

    @property
    def fingerprint(self) -> str:
        return self.manifest["data"]["fingerprint"]

    @property
    def params(self) -> list[str]:
        return [c for c in self.manifest.get("parameters", []) if c in PARAMS and c in self.trials.columns]

    @property
    def start(self) -> dt.date:
        return dt.date.fromisoformat(self.manifest["evaluation_window"]["start"])

    @property
    def end(self) -> dt.date:
        return dt.date.fromisoformat(self.manifest["evaluation_window"]["end"])


@dataclass
class Choice:
    """The chosen configuration of one factor: where it comes from and what it is."""

    factor: str
    source: Source
    row: dict[str, Any]  # its row of trials.parquet
    params: dict[str, Any]  # fully resolved
    set_aside: int = 0  # ruined configurations of this factor that were not considered
    stats: dict[str, Any] | None = None  # its DSR and PBO among its factor's trials (sweep.book.legs)

    @property
    def config_id(self) -> str:
        return self.row["config_id"]

    @property
    def value(self) -> float:
        """The objective over the study's own window (as the study reported it)."""
        return float(self.row[self.source.objective])


def read_source(path: str | Path) -> Source:
    """A results folder (or its trials.parquet / manifest.json) of a grid or Optuna study."""
    path = Path(path)
    folder = path.parent if path.suffix in (".parquet", ".json") else path
    if not folder.is_dir():
        raise SweepError(f"{folder}: no such results folder")
    mpath = folder / "manifest.json"
    if not mpath.exists():
        raise SweepError(f"{folder}: no manifest.json (not a results folder, or its run did not finish)")
    manifest = read_manifest(folder)
    kind = manifest.get("study", {}).get("kind", "grid")
    if kind not in ("grid", "optuna"):
        raise SweepError(f"{folder}: a {kind} study has no single chosen configuration per factor; "
                         "pass the results of a grid or Optuna study")
    for key in ("data", "evaluation_window"):
        if key not in manifest:
            raise SweepError(f"{mpath}: no '{key}' entry; rerun the study with --force")
    tpath = folder / "trials.parquet"
    try:
        trials = pl.read_parquet(tpath)
    except (OSError, pl.exceptions.PolarsError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"{tpath}: unreadable ({first}); rerun the study with --force") from None
    src = Source(folder, manifest, trials)
    missing = [c for c in ("config_id", src.objective) if c not in trials.columns]
    if missing:
        raise SweepError(f"{tpath}: no column '{missing[0]}'; rerun the study with --force")
    return src


def _resolved_row(src: Source, row: dict[str, Any]) -> dict[str, Any]:
    return resolve({k: row[k] for k in src.params if row[k] is not None}, f"{src.folder}/trials.parquet")


def best_rows(src: Source) -> list[tuple[str, dict[str, Any], int]]:
    """``(factor, row, set_aside)`` of the best configuration of each factor of one folder, among
    the configurations that were not ruined (``set_aside`` counts the ruined ones)."""
    from sweep.stats.choose import best_index

    objective = src.objective
    trials = src.trials
    if "factor" in trials.columns:
        groups = [(g["factor"][0], g) for _, g in trials.group_by("factor", maintain_order=True)]
    else:
        groups = [(None, trials)]
    out = []
    for factor, group in groups:
        ruined = group["ruined"].cast(pl.Float64).fill_null(0.0).to_numpy()
        i = best_index(group[objective].cast(pl.Float64).fill_null(np.nan).to_numpy(), objective, ruined)
        what = f"{factor} configuration" if factor else "configuration"
        if i < 0 and (ruined > 0).any():
            raise SweepError(f"{src.folder}: every {what} with a finite {objective} was ruined (its NAV "
                             f"reached zero, SEMANTICS §8); a ruined leg cannot be traded: drop this folder")
        if i < 0:
            raise SweepError(f"{src.folder}: no {what} has a finite {objective}; drop this folder")
        row = group.row(i, named=True)
        out.append((factor or _resolved_row(src, row)["factor"], row, int((ruined > 0).sum())))
    return out


def choose(sources: list[Source]) -> list[Choice]:
    """The chosen configuration of each factor over all folders (in folder, then table, order)."""
    chosen: dict[str, Choice] = {}
    for src in sources:
        for factor, row, set_aside in best_rows(src):
            if factor in chosen:
                raise SweepError(f"{src.folder} and {chosen[factor].source.folder} both hold a {factor} "
                                 f"configuration; pass only one of them per factor")
            chosen[factor] = Choice(factor, src, row, _resolved_row(src, row), set_aside)
    return list(chosen.values())


def common_window(sources: list[Source]) -> tuple[dt.date, dt.date]:
    """The intersection of the folders' evaluation windows; refuses folders of different data."""
    first = sources[0]
    for src in sources[1:]:
        if src.fingerprint != first.fingerprint:
            raise SweepError(f"{src.folder} and {first.folder} were run on different data (fingerprint "
                             f"{src.fingerprint} != {first.fingerprint}); a portfolio needs one data set")
    start, end = max(s.start for s in sources), min(s.end for s in sources)
    if start > end:
        raise SweepError(f"the evaluation windows of {', '.join(str(s.folder) for s in sources)} do not "
                         f"overlap (latest start {start}, earliest end {end})")
    return start, end


def _locate(rel: str, src: Source) -> Path:
    """A data path as the study saw it (``sweep.core.paths``: from here, the study file's folder
    or its parent, the results folder's project, or the package's)."""
    return locate(rel, study=src.manifest.get("study", {}).get("path"), results=src.folder)


def load_data(sources: list[Source], data: str | Path | None = None, funding: str | Path | None = None):
    """The panel every folder was run on, checked against the manifests' fingerprint."""
    from sweep.data.panel import load_panel

    src = sources[0]
    path = Path(data) if data else _locate(src.manifest["data"]["path"], src)
    if not path.exists():
        raise SweepError(f"{src.folder}: the study's data {path} is not found; pass --data")
    if funding is None:
        try:
            rel = tomllib.loads(src.manifest["study"]["text"]).get("study", {}).get("funding")
        except (KeyError, tomllib.TOMLDecodeError):
            rel = None
        funding = _locate(rel, src) if rel else None
    panel = load_panel(path, funding)
    if panel.fingerprint != src.fingerprint:
        raise SweepError(f"{panel.source}: not the data {src.folder} was run on (fingerprint "
                         f"{panel.fingerprint} != {src.fingerprint}); pass --data (and --funding) "
                         "or rerun the studies")
    return panel


def select(results: list[str | Path]) -> tuple[list[Source], list[Choice], tuple[dt.date, dt.date]]:
    """Read the folders, choose each factor's configuration and find the common window
    (no data is read)."""
    if not results:
        raise SweepError("no results folder given")
    sources = [read_source(r) for r in results]
    seen: dict[Path, Path] = {}
    for s, r in zip(sources, results):
        key = s.folder.resolve()
        if key in seen:
            raise SweepError(f"{r}: the same results folder is given twice")
        seen[key] = s.folder
    window = common_window(sources)
    return sources, choose(sources), window
