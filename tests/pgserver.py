"""A throwaway PostgreSQL server for the tests: ``initdb`` and ``pg_ctl`` in a temporary folder,
listening on 127.0.0.1 on a free port, stopped at the end of the session (and at exit).

``initdb`` and ``postgres`` refuse to run as root: as root they run as the ``postgres`` user
(Debian's package creates it), through ``runuser``, in a folder that user owns. Where no
server binaries exist, or they cannot be run, the fixtures skip with the reason.

Fixtures (import them into a test module: ``from pgserver import postgres_url, postgres_db``):

* ``postgres_url`` (session): ``postgresql+psycopg://sweep@127.0.0.1:PORT/sweep``;
* ``postgres_db``: the URL of a database created empty for the test (``new_database``).

The tests' server trades durability for speed (``fsync = off``): it lives for one test session.
``Server(fast=False)`` keeps PostgreSQL's defaults (what a benchmark should measure).
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

USER = "sweep"  # the server's superuser, trusted on 127.0.0.1 (initdb -A trust)
DB = "sweep"
INSTALL = "apt-get install postgresql"


class Unavailable(Exception):
    """No server can be started here (the reason is the message)."""


def bindir() -> Path:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres``: ``pg_config --bindir``, Debian's
    ``/usr/lib/postgresql/<version>/bin`` (the newest) or ``PATH``."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.name.split(".")])
    candidates += [Path(p) for p in reversed(versions)]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(os.path.realpath(initdb)).parent)
    for c in candidates:
        if all((c / b).is_file() for b in ("initdb", "pg_ctl", "postgres")):
            return c
    raise Unavailable(f"PostgreSQL server not installed (no initdb, pg_ctl, postgres): {INSTALL}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One PostgreSQL server in a temporary folder; ``start`` it, ``stop`` it (idempotent)."""

    def __init__(self, fast: bool = True):
        self.fast = fast  # fsync and synchronous commit off: a test server; False: the defaults
        self.bin = bindir()
        self.root = Path(tempfile.mkdtemp(prefix="sweep-pg-"))
        self.data, self.sock, self.log = self.root / "data", self.root / "sock", self.root / "server.log"
        self.port: int | None = None
        self.as_user: list[str] = []
        self.running = False
        if os.geteuid() == 0:
            # initdb and postgres refuse root: run them as Debian's postgres user, which must own the folder.
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                self.cleanup()
                raise Unavailable("running as root and there is no 'postgres' user to run the PostgreSQL "
                                  f"server as: {INSTALL}") from None
            runuser = shutil.which("runuser")
            if runuser is None:
                self.cleanup()
                raise Unavailable("running as root and 'runuser' is missing (util-linux): cannot start "
                                  "PostgreSQL as the 'postgres' user")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.as_user = [runuser, "-u", "postgres", "--"]
        self.sock.mkdir()
        if self.as_user:
            shutil.chown(self.sock, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=timeout,
                              cwd=self.root)

    def start(self) -> None:
        try:
            done = self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", USER,
                             "-E", "UTF8", "--locale=C", "--no-sync")
        except (OSError, subprocess.SubprocessError) as exc:
            raise Unavailable(f"initdb cannot run: {exc}") from None
        if done.returncode != 0:
            raise Unavailable(f"initdb failed: {(done.stderr or done.stdout).strip()[-400:]}")
        for _ in range(3):  # the free port may be taken between the probe and the server's bind
            self.port = free_port()
            opts = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c max_connections=100"
            if self.fast:
                opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            done = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts,
                             "-w", "-t", "60", "start", timeout=90)
            if done.returncode == 0:
                self.running = True
                atexit.register(self.stop)
                return
        log = self.log.read_text(errors="replace")[-400:] if self.log.exists() else done.stderr
        raise Unavailable(f"pg_ctl start failed: {log.strip()}")

    def url(self, db: str = DB) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database; its URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.running:
            self.running = False
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except (OSError, subprocess.SubprocessError):
                pass
        self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


_SERVER: Server | None = None


def server() -> Server:
    """The session's server, started on first use (``Unavailable`` where it cannot be)."""
    global _SERVER
    if _SERVER is None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise Unavailable("psycopg is not installed: pip install 'psycopg[binary]'") from None
        s = Server()
        try:
            s.start()
        except BaseException:
            s.stop()
            raise
        s.create_database(DB)
        _SERVER = s
    return _SERVER


def new_database() -> str:
    """The URL of a new, empty database on the session's server."""
    return server().create_database()


@pytest.fixture(scope="session")
def postgres_url():
    """``postgresql+psycopg://sweep@127.0.0.1:PORT/sweep`` of a throwaway server (skips where none runs)."""
    try:
        s = server()
    except Unavailable as exc:
        pytest.skip(str(exc))
    yield s.url()
    global _SERVER
    s.stop()
    _SERVER = None


@pytest.fixture
def postgres_db(postgres_url):
    """The URL of a database created empty for this test."""
    return new_database()
