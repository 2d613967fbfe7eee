"""``sweep show`` of a portfolio (a ``sweep portfolio`` folder or a portfolio study's), the
end of its ``sweep run`` (both printed by ``sweep.book.summary``), and the check that its
legs ran first: the kind registry's ``show`` of the portfolio kind."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

from sweep.book import summary
from sweep.core.errors import SweepError
from sweep.core.paths import find
from sweep.study.kind import get as get_kind


def show(folder: Path, args) -> int:
    """``sweep show`` of a portfolio folder: its summary, from ``portfolio.json``."""
    return summary.show(folder)


def ending(study, folder: Path, data: str | None) -> tuple[list[str], list[str]]:
    """The end of ``sweep run``: the book in one line, and its warnings."""
    return summary.ending(study, folder, data)


def check(study) -> None:
    """Each results folder of a portfolio study exists, finished and is of this schema; a
    missing one is refused with the study to run first."""
    from sweep.results.schema import read_manifest

    for rel in study.raw.get("portfolio", {}).get("results") or []:
        folder = find(rel, study=study.path, want="dir")
        if folder is None or not (folder / "manifest.json").exists():
            state = "does not exist" if folder is None else "holds no finished run"
            raise SweepError(f"{study.path}: [portfolio] results {rel!r} {state}; {leg_hint(rel, study)}")
        read_manifest(folder)  # refuses another schema with the command that reruns it


def _writes_trials(kind: str) -> bool:
    """A study a portfolio can take a leg from: its main table is a trials table."""
    try:
        return get_kind(kind).main_table == "trials.parquet"
    except SweepError:
        return False


def leg_hint(rel: str, study) -> str:
    """Which study writes the results folder ``rel``: the grid or Optuna study named after it."""
    name = Path(rel).name
    folders = dict.fromkeys([study.path.parent, study.path.parent.parent / "studies", Path("studies")])
    for d in folders:
        for path in sorted(d.glob("*.toml")) if d.is_dir() else []:
            try:
                head = tomllib.loads(path.read_text(encoding="utf-8")).get("study", {})
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
            if head.get("name") == name and _writes_trials(head.get("kind", "grid")):
                out = "" if Path(rel) == Path("results") / name else f" --out {shlex.quote(rel)}"
                return f"run it first: sweep run {shlex.quote(str(path))}{out}"
    return f"run the grid or Optuna study that writes it first (sweep run STUDY --out {shlex.quote(rel)})"
