"""Chunks of a run on a Dask cluster: ``--cluster local:N`` or ``--cluster tcp://HOST:8786``.

The process-parallel path goes through joblib's API with its Dask backend: the
task state (a kind's picklable ``work`` object: panels, stacks of rankings, the
configuration space) is scattered to every worker once (``scatter=[work]``,
broadcast), each chunk is a ``delayed`` call on it, and results come back as they
finish (``return_as="generator_unordered"``) to be written by the parent, which
keeps the results folder exactly as a local run does. joblib was measured
against Dask's futures used directly (``benchmarks/bench_cluster.py``: per-task
cost on ``local:2``) and costs no more, so its API is the one used.

What a worker does before its first chunk (``sweep.run.worker.SweepWorker``, a plugin,
so workers that join later or replace a dead one get it too): one thread per
process for Numba, OpenMP and Polars, and its own Numba cache directory, seeded
with a copy of this machine's cache, because two processes filling one cache can
load each other's machine code. The parent warms the cache before the cluster
starts, so local workers load rather than compile.

A worker killed mid-run loses nothing: Dask recomputes its chunks on the others
(the scattered state is on every worker), and ``Cluster.map`` yields each chunk
once and checks that every chunk came back. Whatever ``local:N`` starts (the
scheduler, its workers, the dashboard) listens on 127.0.0.1 only and is closed
when the ``with`` block ends, however it ends.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
import re
import socket
from typing import Any, Callable, Iterable, Iterator

from sweep.core.errors import SweepError

CONNECT_TIMEOUT = 10.0  # seconds to reach a scheduler before the run is refused
LOCAL = re.compile(r"local:(\d+)")
REMOTE = re.compile(r"(tcp|tls)://[^\s/:]+:\d+")


def parse_address(text: Any, where: str) -> str:
    """``local:N`` (N >= 1) or ``tcp://HOST:PORT`` (``tls://`` too); a one-line error otherwise."""
    if isinstance(text, str):
        m = LOCAL.fullmatch(text.strip())
        if m and int(m.group(1)) >= 1:
            return text.strip()
        if REMOTE.fullmatch(text.strip()):
            return text.strip()
    raise SweepError(f"{where} = {text!r}: a cluster is 'local:N' (N worker processes on this machine) "
                     "or a scheduler's address 'tcp://HOST:PORT'")


def _call(work: Callable[[Any], Any], key: Any, chunk: Any) -> tuple[Any, Any]:
    """One chunk on a worker; returns its key with the result (results arrive in any order)."""
    setup = getattr(work, "setup", None)
    if setup is not None:
        setup()  # the task's own once-per-process preparation (the researcher's factor code)
    return key, work(chunk)


def _probe(address: str) -> None:
    """Fail at once on an address nothing listens at (Dask's client retries until its timeout)."""
    host, port = address.split("://", 1)[1].rsplit(":", 1)
    with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
        pass


# Dask logs each recomputed task and closed connection, and Tornado each future a closing
# client still tracked (after Ctrl-C, say); a run's own lines say what matters (a refused
# address, a chunk lost for good), so these are quiet while a cluster is open.
QUIET = ("distributed", "tornado", "asyncio")


def _quiet() -> dict[str, int]:
    """Silence Dask's and Tornado's loggers; their levels before, to restore."""
    levels = {}
    for name in QUIET:
        logger = logging.getLogger(name)
        levels[name] = logger.level
        logger.setLevel(logging.CRITICAL + 1)
    return levels


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Cluster:
    """A Dask cluster for one run: ``with Cluster("local:2", where) as c: c.map(work, chunks)``."""

    def __init__(self, address: str, where: str = "--cluster"):
        self.address = parse_address(address, where)
        self.where = where
        self.client = None
        self.local = None

    def __enter__(self) -> "Cluster":
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise SweepError(f"{self.where} = {self.address!r}: running on a cluster needs Dask's distributed "
                             "scheduler: pip install 'sweep[cluster]'") from None

        from sweep.run.worker import WORKER_ENV, SweepWorker

        self.levels = _quiet()
        try:
            m = LOCAL.fullmatch(self.address)
            if m:
                self.local = LocalCluster(n_workers=int(m.group(1)), threads_per_worker=1, processes=True,
                                          host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                          worker_dashboard_address=None, env=dict(WORKER_ENV),
                                          silence_logs=logging.CRITICAL)
                self.client = Client(self.local, set_as_default=False)
            else:
                _probe(self.address)
                self.client = Client(self.address, timeout=CONNECT_TIMEOUT, set_as_default=False)
            self.client.register_plugin(SweepWorker())
        except BaseException as exc:
            self.__exit__(None, None, None)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise SweepError(f"{self.where} = {self.address!r}: cannot reach the cluster "
                             f"({_first_line(exc)})") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        client, local, self.client, self.local = self.client, self.local, None, None
        if client is not None:
            try:
                client.close(timeout=5)
            except Exception:
                pass
        if local is not None:
            try:
                local.close(timeout=5)
            except Exception:
                pass
        for name, level in getattr(self, "levels", {}).items():
            logging.getLogger(name).setLevel(level)

    def workers(self) -> int:
        """Worker processes connected now."""
        try:
            return len(self.client.scheduler_info(n_workers=-1)["workers"])
        except Exception:
            return 0

    def map(self, work: Callable[[Any], Any], chunks: Iterable[Any],
            key: Callable[[Any], Any] = lambda c: c) -> Iterator[tuple[Any, Any]]:
        """``(chunk, work(chunk))`` for every chunk, in the order they finish, each exactly once.

        ``work`` goes to every worker once (scattered); at most twice as many chunks as
        worker threads are in flight. A chunk whose worker dies is recomputed by Dask; a
        duplicate result is dropped, and a chunk that never came back is an error.
        """
        from joblib import Parallel, delayed, parallel_config

        sent: dict[Any, Any] = {}
        seen: set = set()

        def tasks():
            for chunk in chunks:
                k = key(chunk)
                sent[k] = chunk
                yield delayed(_call)(work, k, chunk)

        try:
            with warnings.catch_warnings(), parallel_config(backend="dask", client=self.client, scatter=[work],
                                                            wait_for_workers_timeout=CONNECT_TIMEOUT):
                # joblib's note, on an interruption, that finished results went unused: the
                # chunks already written are what a rerun resumes from.
                warnings.filterwarnings("ignore", message=".*tasks have been successfully executed",
                                        category=UserWarning)
                results = Parallel(n_jobs=-1, return_as="generator_unordered", batch_size=1,
                                   pre_dispatch="2*n_jobs")(tasks())
                try:
                    for k, result in results:
                        if k in seen:
                            continue
                        seen.add(k)
                        yield sent[k], result
                finally:
                    results.close()  # here, so joblib's note on unused results is filtered
        except (SweepError, KeyboardInterrupt, GeneratorExit):
            raise
        except Exception as exc:
            raise SweepError(f"{self.where} = {self.address!r}: the cluster failed the run "
                             f"({type(exc).__name__}: {_first_line(exc)}); rerun to resume") from None
        missing = set(sent) - seen
        if missing:
            raise SweepError(f"{self.where} = {self.address!r}: {len(missing)} chunk(s) never came back; "
                             "rerun to resume")


def open_cluster(address: str | None, where: str = "--cluster") -> contextlib.AbstractContextManager:
    """``Cluster(address)``, or a context giving None (the local thread pool) when ``address`` is None."""
    return contextlib.nullcontext(None) if address is None else Cluster(address, where)


__all__ = ["CONNECT_TIMEOUT", "Cluster", "open_cluster", "parse_address"]
