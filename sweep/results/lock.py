"""The claim on a results folder: one ``sweep run`` writes a folder at a time.

``<folder>/.lock`` names the process that holds it (PID, host, start time). The claim
itself is an advisory ``flock`` on that file, which the system releases when the
process ends however it ends (``kill -9`` included): a lock file left by a dead
process is simply taken over, and two runs can never both hold one. Where ``flock``
does not exist (Windows), the claim falls back to the PID named in the file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sys
from pathlib import Path

from sweep.core.errors import SweepError
from sweep.core.io import write_error

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


def _holder(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _refusal(folder: Path, holder: dict) -> SweepError:
    who = f"process {holder.get('pid', '?')} on {holder.get('host', '?')}"
    since = f", since {holder['started']}" if holder.get("started") else ""
    cmd = f" ({holder['command']})" if holder.get("command") else ""
    return SweepError(f"{folder} is being written by another sweep run: {who}{since}{cmd}; "
                      "wait for it to finish or use --out for another folder")


class FolderLock:
    """Hold ``<folder>/.lock`` while a run writes the folder (a context manager)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "FolderLock":
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(self.folder, exc) from None
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise write_error(self.path, exc) from None
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    raise _refusal(self.folder, _holder(self.path)) from None
                # The holder before us may have removed the file between our open and our
                # lock: then we hold a lock on a name nobody sees; start again.
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
            else:
                holder = _holder(self.path)
                if holder and holder.get("pid") != os.getpid() and _alive(holder.get("pid")):
                    os.close(fd)
                    raise _refusal(self.folder, holder)
            break
        self.fd = fd
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(sys.argv[:3])}
        try:
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps(me) + "\n").encode())
            os.fsync(fd)
        except OSError as exc:
            self.release()
            raise write_error(self.path, exc) from None
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        # Removed while still held, so a process waiting on the old file sees it is gone.
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)  # closing releases the flock
        self.fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
