"""A real Dask scheduler with two worker processes on 127.0.0.1, started by the tests themselves
(``dask scheduler`` and ``dask worker``, as a researcher starts them on their machines), and
stopped however the tests end. No mock: the scheduler unpickles the graphs and the workers run
the kernels."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

START_TIMEOUT = 60.0  # seconds for the scheduler and both workers to come up on a loaded machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DaskServer:
    """``dask scheduler`` on a free 127.0.0.1 port and ``n_workers`` ``dask worker`` processes
    (each a nanny with one worker process of one thread)."""

    def __init__(self, folder: Path, n_workers: int = 2):
        self.folder = folder
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        log = open(folder / "dask.log", "ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-dashboard"], stdout=log, stderr=log, env=env, start_new_session=True))
        for i in range(n_workers):
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--nthreads", "1",
                 "--nworkers", "1", "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}"],
                stdout=log, stderr=log, env=env, start_new_session=True))
        atexit.register(self.stop)
        self.wait(n_workers)

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=START_TIMEOUT, set_as_default=False)

    def wait(self, n: int) -> None:
        with self.client() as c:
            c.wait_for_workers(n, timeout=START_TIMEOUT)

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the nannies), as the scheduler reports them."""
        with self.client() as c:
            return sorted(c.run(os.getpid).values())

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)  # the nanny's worker process with it
                except ProcessLookupError:
                    pass
        for p in self.procs:
            p.wait()
        self.procs = []


@pytest.fixture(scope="module")
def dask_server(tmp_path_factory):
    pytest.importorskip("distributed", reason="the cluster extra (dask[distributed]) is not installed")
    server = DaskServer(tmp_path_factory.mktemp("dask"))
    try:
        yield server
    finally:
        server.stop()


def wait_until(predicate, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds (no fixed sleeps: the deadline only bounds a failure)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
