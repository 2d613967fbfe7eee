"""A results folder: the one object that writes one and reads one back.

Writing (every kind that runs chunks: grid, Monte Carlo, walk-forward)::

    folder = ResultsFolder(out, kind.tables)
    if folder.complete(fp, force):            # this very run is already there
        return ...
    with folder.claim():                      # <out>/.lock: one writer at a time
        folder.begin(fp, study.path, force)   # <out>/.partial/, resumable
        for ...: folder.write_chunk(frame, first_index)
        folder.put("trials.parquet", table)   # staged, not yet visible
        folder.commit(manifest)               # tables swapped in, manifest.json last

Layout while a run is under way: ``.partial/state.json`` (the run's fingerprint),
``.partial/chunk-<first>.parquet`` (finished chunks: a chunk counts once its file
is there), ``.partial/staged/`` (the finished tables, until the commit).

Nothing of a previous complete run is touched before the new tables are all written
and flushed: a full disk or a read-only folder fails while staging, and the old
``manifest.json`` and tables stay as they were. The commit then removes the old
manifest (so no reader pairs it with new tables), renames each staged table into
place and writes the manifest last. A commit cut short (kill -9 in those few
renames) is finished by the next run of the same study.

Reading (``sweep show``, ``report``, ``compare``, ``portfolio``)::

    folder = ResultsFolder(path)
    folder.manifest()          # refused when of another schema
    folder.table("trials.parquet"), folder.table("summary.json")
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import polars as pl

from sweep.core.errors import SweepError
from sweep.core.io import fsync_dir, write_error, write_json, write_parquet
from sweep.results.lock import LOCK_NAME, FolderLock
from sweep.results.meta import read_json
from sweep.results.schema import SCHEMA_VERSION, check_schema, read_manifest

MANIFEST = "manifest.json"


class ResultsFolder:
    def __init__(self, path: str | Path, tables: tuple[str, ...] = (), optional: tuple[str, ...] = ()):
        self.path = Path(path)
        self.tables = tuple(tables)  # what a complete run of this kind holds
        self.optional = tuple(optional)  # what some runs add (an earlier run's copy is removed)
        self.partial = self.path / ".partial"
        self.staged = self.partial / "staged"
        self._lock: FolderLock | None = None

    def __repr__(self) -> str:
        return f"ResultsFolder({str(self.path)!r})"

    # ---- reading --------------------------------------------------------------------------

    def manifest(self, required: bool = True) -> dict[str, Any]:
        """``manifest.json``; ``{}`` when absent and not ``required``; another schema refused."""
        return read_manifest(self.path, required)

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def table(self, name: str, columns: list[str] | None = None) -> Any:
        """A table of the folder: a ``polars.DataFrame`` for Parquet, a dict for JSON; an
        unreadable one is one line naming it."""
        path = self.path / name
        if not path.is_file():
            raise SweepError(f"{path}: missing (run the study first, or check the folder)")
        try:
            if path.suffix == ".json":
                obj = read_json_strict(path)
                return obj
            return pl.read_parquet(path, columns=columns)
        except (OSError, ValueError, RecursionError, pl.exceptions.PolarsError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SweepError(f"{path}: unreadable ({first}); rerun the study with --force") from None

    def scan(self, name: str) -> pl.LazyFrame:
        """A Parquet table read lazily (for tables too large to hold); its footer is read now, so an
        unreadable file is one line naming it here rather than an error at the first query."""
        path = self.path / name
        if not path.is_file():
            raise SweepError(f"{path}: missing (run the study first, or check the folder)")
        try:
            pl.read_parquet_schema(path)
        except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SweepError(f"{path}: unreadable ({first}); rerun the study with --force") from None
        return pl.scan_parquet(path)

    # ---- writing --------------------------------------------------------------------------

    def complete(self, fingerprint: str, force: bool) -> bool:
        """True when the folder holds this very run (its manifest and every table); another
        study's results are refused unless ``force``. Reads only: fine on a read-only folder."""
        if self.path.exists() and not self.path.is_dir():
            raise SweepError(f"--out {self.path} is a file, not a folder")
        mpath = self.path / MANIFEST
        if not mpath.exists() or force:
            return False
        old = read_json(mpath)
        if old.get("fingerprint") == fingerprint and all(self.has(t) for t in self.tables):
            return True
        if old.get("schema_version") not in (None, SCHEMA_VERSION):
            check_schema(old, mpath)  # says which version wrote it and how to rerun
        raise SweepError(f"{self.path} holds results of a different study, data set or evaluation window; "
                         "use --force to replace them or --out for another folder")

    @contextlib.contextmanager
    def claim(self) -> Iterator["ResultsFolder"]:
        """Hold ``<folder>/.lock`` for the duration; a second writer is refused naming the first."""
        lock = FolderLock(self.path).acquire()
        self._lock = lock
        try:
            yield self
        finally:
            self._lock = None
            lock.release()

    def begin(self, fingerprint: str, study: str | Path, force: bool) -> bool:
        """Make ``.partial/`` ready for this run (keeping a matching interrupted run's chunks).

        Returns True when an interrupted commit of this very run was found and finished:
        nothing is left to compute.
        """
        state = read_json(self.partial / "state.json") if self.partial.exists() else {}
        if self.partial.exists() and state.get("fingerprint") != fingerprint:
            # A run stopped before it recorded its fingerprint left nothing worth keeping (at most
            # the hidden temporary file of its state: kill -9 while writing it).
            if not force and (state or any(p.is_file() and not p.name.startswith(".")
                                           for p in self.partial.rglob("*"))):
                raise SweepError(f"{self.partial} holds an unfinished run of a different study or data set; "
                                 "use --force to discard it")
            shutil.rmtree(self.partial)
        elif (self.staged / MANIFEST).exists() and read_json(self.staged / MANIFEST).get("fingerprint") == fingerprint:
            self._swap()
            return True
        try:
            self.partial.mkdir(parents=True, exist_ok=True)
            if state.get("fingerprint") != fingerprint:
                write_json({"fingerprint": fingerprint, "study": str(study)}, self.partial / "state.json")
            self.staged.mkdir(exist_ok=True)
        except OSError as exc:
            raise write_error(self.partial, exc) from None
        return False

    def chunk_path(self, first: int, prefix: str = "chunk", ext: str = "parquet") -> Path:
        return self.partial / f"{prefix}-{int(first):09d}.{ext}"

    def chunks(self, prefix: str = "chunk", ext: str = "parquet") -> list[Path]:
        """The finished chunks, in the order of their first index."""
        # By number, not by name: past 10^9 configurations the zero-padded names stop sorting.
        return sorted(self.partial.glob(f"{prefix}-*.{ext}"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))

    def write_chunk(self, frame: pl.DataFrame, first: int, prefix: str = "chunk") -> Path:
        """A finished chunk, atomically: once the file is there, the chunk is done."""
        path = self.chunk_path(first, prefix)
        write_parquet(frame, path)
        return path

    def stage_path(self, name: str) -> Path:
        """Where table ``name`` is staged (for a writer that streams to a path)."""
        return self.staged / name

    def put(self, name: str, obj: Any) -> None:
        """Stage a table: a ``polars.DataFrame`` as Parquet, anything else as JSON."""
        path = self.stage_path(name)
        if isinstance(obj, pl.DataFrame):
            write_parquet(obj, path)
        else:
            write_json(obj, path)

    def commit(self, manifest: dict[str, Any]) -> None:
        """Swap the staged tables in and write ``manifest.json`` last; remove ``.partial/``."""
        missing = [t for t in self.tables if not (self.staged / t).exists() and t != MANIFEST]
        if missing:
            raise SweepError(f"{self.staged}: {', '.join(missing)} not written; rerun with --force")
        write_json(manifest, self.staged / MANIFEST)
        names = {p.name for p in self.staged.iterdir()}
        try:
            # From here on the old manifest must not describe what the folder holds.
            (self.path / MANIFEST).unlink(missing_ok=True)
            for t in self.tables + self.optional:  # tables of an earlier run that this one does not write
                if t not in names:
                    (self.path / t).unlink(missing_ok=True)
        except OSError as exc:
            raise write_error(self.path, exc) from None
        self._swap()

    def _swap(self) -> None:
        """Move the staged tables into place, the manifest last (also what finishes a commit
        that was cut short: it moves whatever is still staged)."""
        staged = [p for p in sorted(self.staged.iterdir()) if p.name != MANIFEST and not p.name.startswith(".")]
        try:
            (self.path / MANIFEST).unlink(missing_ok=True)
            for p in staged:
                os.replace(p, self.path / p.name)
            fsync_dir(self.path)
            os.replace(self.staged / MANIFEST, self.path / MANIFEST)
            fsync_dir(self.path)
        except OSError as exc:
            raise write_error(self.path, exc) from None
        shutil.rmtree(self.partial, ignore_errors=True)


def read_json_strict(path: Path) -> Any:
    """JSON of a finished table: an unreadable file is an error (unlike ``read_json``)."""
    import json

    return json.loads(Path(path).read_text(encoding="utf-8"))


__all__ = ["LOCK_NAME", "MANIFEST", "ResultsFolder"]
