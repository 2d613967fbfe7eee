"""The one path resolver: where a path written in a study file (or a manifest) is found.

A relative path is looked up from these folders, in this order, and the first one
where it exists wins:

1. the current directory (a study run from the project root);
2. the study file's folder, then that folder's parent (a study in ``studies/``
   naming ``data/x.parquet`` of the project);
3. for a results folder ``<project>/results/<name>``: its grandparent, then its parent
   (a report or a portfolio read from elsewhere finds the data the study read);
4. the folder holding the ``sweep`` package (the embedded data set).

An absolute path is taken as it is. A path found nowhere is returned as written,
so the caller's error names it the way the user spelt it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

PROJECT_ROOT = Path(__file__).resolve().parents[2]

Want = Literal["any", "file", "dir"]


def anchors(study: str | Path | None = None, results: str | Path | None = None) -> list[Path]:
    """The folders of the documented order, for a study file and/or a results folder."""
    out = [Path(".")]
    if study is not None:
        folder = Path(study).parent
        out += [folder, folder.parent]
    if results is not None:
        results = Path(results)
        out += [results.parent.parent, results.parent]
    out.append(PROJECT_ROOT)
    return list(dict.fromkeys(out))  # once each, first place kept


def candidates(rel: str | Path, study: str | Path | None = None,
               results: str | Path | None = None) -> list[Path]:
    """Where ``rel`` may be, in the documented order."""
    rel = Path(rel)
    if rel.is_absolute():
        return [rel]
    return [rel if a == Path(".") else a / rel for a in anchors(study, results)]


def _fits(path: Path, want: Want) -> bool:
    return path.is_file() if want == "file" else path.is_dir() if want == "dir" else path.exists()


def locate(rel: str | Path, study: str | Path | None = None, results: str | Path | None = None,
           want: Want = "any") -> Path:
    """The first of ``candidates`` that exists (a file or folder as ``want`` says), else ``rel``."""
    return next((c for c in candidates(rel, study, results) if _fits(c, want)), Path(rel))


def find(rel: str | Path, study: str | Path | None = None, results: str | Path | None = None,
         want: Want = "any") -> Path | None:
    """Like ``locate``, but ``None`` when ``rel`` is found nowhere."""
    return next((c for c in candidates(rel, study, results) if _fits(c, want)), None)
