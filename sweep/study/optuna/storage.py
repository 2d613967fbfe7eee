"""Where an Optuna study's trials live: the journal file in the results folder, or a named storage
(a database URL: sqlite, PostgreSQL, MySQL), and the heartbeat of a database storage's running trials."""

from __future__ import annotations

import importlib.util
import os
import re
import threading
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


# A database that does not answer within this many seconds is unreachable (PostgreSQL, MySQL).
CONNECT_TIMEOUT = 10
# Attempts at creating Optuna's tables and the study: processes starting together on a fresh
# database collide there (one gets a unique violation, the other's transaction won), and the
# next attempt finds what the winner created.
CREATE_ATTEMPTS = 5


def shown_url(url: str) -> str:
    """A database URL as written in messages and the manifest: its password masked."""
    if "://" not in url:
        return url
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:
        return url
    return parsed.render_as_string(hide_password=True) if parsed.password else url


def driver_url(url: str, where: str) -> str:
    """The URL handed to SQLAlchemy.

    SQLAlchemy reads ``postgresql://`` as ``postgresql+psycopg2://``. psycopg 3 (what
    ``pip install 'sweep[cluster]'`` brings) is the maintained driver: where psycopg2 is not
    installed, ``postgresql://`` means ``postgresql+psycopg://``. A driver that is not installed
    is one line naming the package.
    """
    scheme, rest = url.split("://", 1)
    dialect, _, driver = scheme.lower().partition("+")
    if dialect == "postgresql" and not driver:
        if importlib.util.find_spec("psycopg2") is not None:
            return url
        if importlib.util.find_spec("psycopg") is not None:
            return f"postgresql+psycopg://{rest}"
        raise SweepError(f"{where} = {shown_url(url)!r}: no PostgreSQL driver is installed "
                         "(pip install 'sweep[cluster]', or pip install 'psycopg[binary]')")
    if dialect == "mysql" and not driver:  # SQLAlchemy's default is mysqlclient (MySQLdb)
        if importlib.util.find_spec("MySQLdb") is not None:
            return url
        if importlib.util.find_spec("pymysql") is not None:
            return f"mysql+pymysql://{rest}"
        raise SweepError(f"{where} = {shown_url(url)!r}: no MySQL driver is installed (pip install pymysql)")
    module = {"psycopg": "psycopg", "psycopg2": "psycopg2", "pymysql": "pymysql", "mysqldb": "MySQLdb"}.get(driver)
    if module is not None and importlib.util.find_spec(module) is None:
        hint = " (pip install 'sweep[cluster]', or pip install 'psycopg[binary]')" if driver == "psycopg" else \
            " (or write postgresql+psycopg:// to use psycopg 3)" if driver == "psycopg2" else ""
        raise SweepError(f"{where} = {shown_url(url)!r}: the database driver '{driver}' is not installed{hint}")
    return url


def _first_line(exc: BaseException) -> str:
    """The first line of an error, without SQLAlchemy's ``(driver.ErrorClass)`` in front."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return re.sub(r"^\([\w.]+\)\s*", "", first) or type(exc).__name__


def _racing(exc: BaseException) -> bool:
    """Whether ``exc`` is another process creating the same tables or study at the same moment."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    return isinstance(exc, (IntegrityError, ProgrammingError))


def open_storage(kind: str, target: str, where: str, interval: int | None = None, grace: int | None = None):
    """The Optuna storage: a journal file, or a database (connected now: an unreachable one is one
    line before anything is written). ``interval``/``grace``: a database's heartbeat (seconds)."""
    import optuna

    try:
        if kind == "journal":
            from optuna.storages.journal import JournalFileBackend

            Path(target).parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(target, lock_obj=journal_lock(target)))
    except Exception as exc:  # a bad path, a folder not writable: one line
        raise SweepError(f"{where} = {target!r}: cannot open the storage ({_first_line(exc)})") from None
    url = driver_url(target, where)
    kwargs: dict[str, Any] = {}
    dialect = url.split("://", 1)[0].split("+", 1)[0].lower()
    if dialect in ("postgresql", "mysql") and "connect_timeout" not in url:
        kwargs["engine_kwargs"] = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}}
    for attempt in range(CREATE_ATTEMPTS):
        try:
            # No heartbeat_stale_trial_callback: the retry of a dead trial is sweep's replay
            # (sweep.study.optuna.trials.reap; why, in the package docstring).
            return optuna.storages.RDBStorage(url, heartbeat_interval=interval, grace_period=grace, **kwargs)
        except Exception as exc:  # a server refusing, a database missing, bad credentials: one line
            if _racing(exc) and attempt + 1 < CREATE_ATTEMPTS:
                continue  # another process created Optuna's tables first: they exist now
            raise SweepError(f"{where} = {shown_url(target)!r}: cannot open the storage "
                             f"({_first_line(exc)})") from None
    raise AssertionError("unreachable")


def open_study(name: str, fingerprint: str, storage, sampler, direction: str, force: bool, shown: str) -> Any:
    """The Optuna study ``name`` (created if new, also by several processes at once); one of another
    study, data set, window or direction is refused unless ``force`` deletes it first."""
    import optuna

    if force:
        try:
            optuna.delete_study(study_name=name, storage=storage)
        except KeyError:
            pass  # nothing to delete
    for attempt in range(CREATE_ATTEMPTS):
        try:
            # load_if_exists: a study another process created first is loaded (Optuna turns the
            # unique violation of its name into DuplicatedStudyError, and loads it).
            ostudy = optuna.create_study(storage=storage, study_name=name, direction=direction, sampler=sampler,
                                         load_if_exists=True)
            break
        except Exception as exc:
            if not (_racing(exc) and attempt + 1 < CREATE_ATTEMPTS):
                raise
    theirs = ostudy.user_attrs.get(A_FINGERPRINT)
    if theirs is None:
        ostudy.set_user_attr(A_FINGERPRINT, fingerprint)
        # Two processes that created the study together both found no fingerprint: the last
        # one written stands, and whoever wrote the other learns it here.
        theirs = ostudy.user_attrs.get(A_FINGERPRINT)  # read from the storage again
    if theirs != fingerprint:
        raise SweepError(f"{shown}: the Optuna study '{name}' holds trials of a different study, data set "
                         "or evaluation window; use --force to delete it, or rename the study")
    if ostudy.direction.name.lower() != direction:
        raise SweepError(f"{shown}: the Optuna study '{name}' is set to {ostudy.direction.name.lower()}, "
                         f"not {direction}; use --force to delete it, or rename the study")
    return ostudy


def heartbeat_interval(storage) -> int | None:
    """The heartbeat interval a storage was opened with; None where it has no heartbeat (a journal
    file, or a database storage opened without one). Optuna's public ``get_heartbeat_interval``."""
    get = getattr(storage, "get_heartbeat_interval", None)
    return get() if get is not None else None


class Heartbeat:
    """The heartbeat of this process's running trials in a database storage (Optuna's
    ``record_heartbeat``): the first is written by ``beat`` when the trial is asked, then a daemon
    thread refreshes every trial still running every ``interval`` seconds, until ``done``.

    Optuna beats only inside ``study.optimize``; sweep asks and tells, so it beats itself. A worker
    killed, frozen or cut off from the database stops beating, and another one takes its trials for
    dead ``grace_period`` seconds after their last heartbeat, by the database's clock
    (``sweep.study.optuna.trials.reap``). A no-op for a storage without heartbeat (a journal file).
    Use it as a context manager: the thread stops on every way out.
    """

    def __init__(self, storage, interval: int | None):
        self.storage = storage
        self.enabled = interval is not None and heartbeat_interval(storage) is not None
        self.interval = interval
        self.trials: set[int] = set()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.failures = 0

    def __enter__(self) -> Heartbeat:
        if self.enabled:
            self.thread = threading.Thread(target=self._run, name="sweep-heartbeat", daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=CONNECT_TIMEOUT)

    def beat(self, trial_id: int) -> None:
        """Record a new trial's first heartbeat (before it is labelled as beating) and keep it beating."""
        if self.enabled:
            self.storage.record_heartbeat(trial_id)
            with self.lock:
                self.trials.add(trial_id)

    def done(self, trial_id: int) -> None:
        with self.lock:
            self.trials.discard(trial_id)

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.lock:
                running = sorted(self.trials)
            for trial_id in running:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:
                    # The database is away: the next beat tries again. A worker that cannot beat for
                    # grace_period loses its trials to another (its tells are then refused, see search).
                    self.failures += 1
