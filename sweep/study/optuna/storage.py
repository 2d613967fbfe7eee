"""Where an Optuna study's trials live: the journal file in the results folder, or a named storage."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sweep.core.errors import SweepError
from sweep.study.optuna.space import Options

try:
    import fcntl
except ImportError:  # Windows: Optuna's own lock file
    fcntl = None  # type: ignore[assignment]

JOURNAL = "optuna.journal"
# The journal's lock is an flock on this file (see ``journal_lock``).
FLOCK_SUFFIX = ".flock"
A_FINGERPRINT = "sweep_fingerprint"  # a study attribute: what the trials' numbers mean


def storage_target(options: Options, out: Path) -> tuple[str, str]:
    """``("journal", path)`` or ``("rdb", url)``."""
    if options.storage is None:
        return "journal", str(out / JOURNAL)
    if "://" in options.storage:
        return "rdb", options.storage
    return "journal", options.storage


def journal_files(journal: str | Path) -> list[Path]:
    """The journal and its lock files (what ``--force`` deletes with it)."""
    journal = Path(journal)
    return [journal, journal.with_name(journal.name + ".lock"), journal.with_name(journal.name + FLOCK_SUFFIX)]


class FlockLock:
    """The journal's lock (what Optuna's ``JournalFileBackend`` calls: ``acquire``, ``release``):
    an ``flock`` on ``<journal>.flock`` around each append.

    Optuna's default lock is a file that a process removes when it is done: a
    process killed while appending (kill -9 lands there often, each append
    waits for an fsync) leaves it behind, and every later run waits Optuna's
    30-second grace period before taking it over. The system releases an
    flock when its process ends, however it ends.
    """

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return True

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)  # closing releases the flock


def journal_lock(journal: str) -> FlockLock | None:
    """The lock of ``journal``; None (Optuna's own) where flock does not exist."""
    return FlockLock(journal + FLOCK_SUFFIX) if fcntl is not None else None


def open_storage(kind: str, target: str, where: str):
    import optuna

    try:
        if kind == "journal":
            from optuna.storages.journal import JournalFileBackend

            Path(target).parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(target, lock_obj=journal_lock(target)))
        return optuna.storages.RDBStorage(target)
    except Exception as exc:  # a driver missing, a server refusing, a bad path: all one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"{where} = {target!r}: cannot open the storage ({first})") from None


def open_study(name: str, fingerprint: str, storage, sampler, direction: str, force: bool, shown: str) -> Any:
    """The Optuna study ``name`` (created if new); one of another study, data set, window or
    direction is refused unless ``force`` deletes it first."""
    import optuna

    if force:
        try:
            optuna.delete_study(study_name=name, storage=storage)
        except KeyError:
            pass  # nothing to delete
    ostudy = optuna.create_study(storage=storage, study_name=name, direction=direction, sampler=sampler,
                                 load_if_exists=True)
    theirs = ostudy.user_attrs.get(A_FINGERPRINT)
    if theirs is None:
        ostudy.set_user_attr(A_FINGERPRINT, fingerprint)
    elif theirs != fingerprint:
        raise SweepError(f"{shown}: the Optuna study '{name}' holds trials of a different study, data set "
                         "or evaluation window; use --force to delete it, or rename the study")
    if ostudy.direction.name.lower() != direction:
        raise SweepError(f"{shown}: the Optuna study '{name}' is set to {ostudy.direction.name.lower()}, "
                         f"not {direction}; use --force to delete it, or rename the study")
    return ostudy
