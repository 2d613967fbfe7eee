"""The one atomic writer: a reader sees the old file or the new one, never half of one, and
a file that was reported written survives a power cut.

Every write goes to a temporary file beside the target, is flushed to the disk
(``fsync``), renamed over the target, and the folder's entry is flushed too (a
rename is only durable once its directory is). A write that fails (a full disk, a
read-only folder) leaves the old file untouched, removes the temporary file and
raises ``SweepError`` with one line naming the file and the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from sweep.core.errors import SweepError


def temp_path(path: Path) -> Path:
    """A temporary name to write ``path`` under (hidden, beside it: same file system)."""
    path = Path(path)
    # Per process and per call: two threads writing one name never share a temporary file.
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (where the platform allows opening a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are journaled
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; nothing more can be done
    finally:
        os.close(fd)


class WriteError(SweepError, OSError):
    """A write the system refused (full disk, read-only folder): a ``SweepError`` (one line,
    exit 2) that is still an ``OSError`` for code that catches those."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def write_error(path: Path, exc: BaseException) -> WriteError:
    """One line for a failed write: the file, and the system's reason."""
    reason = getattr(exc, "strerror", None) or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return WriteError(f"cannot write {path}: {reason}")


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` durably.

    For writers that need a path of their own (a streaming Parquet writer)::

        with replacing(out / "trials.parquet") as tmp:
            write_somehow(tmp)
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except SweepError:
        raise
    except Exception as exc:
        if _is_io_error(exc):
            raise write_error(path, exc) from None
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _is_io_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return True
    # Polars and Arrow report a failed write as their own error carrying the OS's words.
    text = str(exc).lower()
    return type(exc).__module__.split(".")[0] in ("polars", "pyarrow") and (
        "os error" in text or "no space" in text or "permission denied" in text or "read-only" in text)


def write_with(path: str | Path, write: Callable[[Path], Any]) -> None:
    """``write(tmp)`` then replace ``path`` with it (see ``replacing``)."""
    with replacing(path) as tmp:
        write(tmp)


def write_bytes(data: bytes, path: str | Path) -> None:
    write_with(path, lambda tmp: tmp.write_bytes(data))


def write_text(text: str, path: str | Path) -> None:
    write_bytes(text.encode("utf-8"), path)


def write_json(obj: Any, path: str | Path) -> None:
    write_text(json.dumps(obj, indent=2, default=str) + "\n", path)


def write_parquet(df: Any, path: str | Path) -> None:
    """A ``polars.DataFrame`` as Parquet."""
    write_with(path, df.write_parquet)


def write_csv(df: Any, path: str | Path) -> None:
    """A ``polars.DataFrame`` as CSV."""
    write_with(path, df.write_csv)
