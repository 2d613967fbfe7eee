"""The pool every kind runs its chunks on.

Threads, not processes: the kernels release the GIL, so threads share the
read-only panels and the stacks of rankings without copying them (processes
would copy or map them and start slower). The standard library's pool is used
rather than joblib's threading backend: same threads, no import cost and no
polling loop between finished chunks.

At most ``2 * jobs`` chunks are in flight and a finished chunk's result is handed
to ``finish`` (which writes it to disk) and then dropped, so memory does not grow
with the number of chunks.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from sweep.run.progress import Progress

T = TypeVar("T")
R = TypeVar("R")


def default_jobs() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def split(items: Sequence[T], jobs: int, cap: int, floor: int = 1) -> list[Sequence[T]]:
    """``items`` in chunks: several per worker keep the pool busy to the end; ``cap`` bounds
    the work an interruption loses and keeps the progress bar moving."""
    size = int(min(cap, max(floor, -(-len(items) // (max(jobs, 1) * 4)))))
    return [items[i:i + size] for i in range(0, len(items), size)]


def run_chunks(chunks: Iterable[T], work: Callable[[T], R], finish: Callable[[T, R], int], *,
               jobs: int, total: int, done: int = 0, progress: bool | None = None,
               on_chunk: Callable[[int], None] | None = None, cluster: Any = None,
               key: Callable[[T], Any] | None = None) -> float:
    """Run ``work(chunk)`` on a pool of ``jobs`` threads, or on ``cluster`` (a started
    ``sweep.run.cluster.Cluster``; ``work`` must then pickle, and ``key(chunk)`` names a chunk);
    ``finish(chunk, result)`` in this thread as each one completes (it writes the result and
    returns how many units it held).

    ``total`` and ``done`` (units resumed from disk) drive the progress bar;
    ``on_chunk(n_finished)`` is called after each ``finish`` (a hook for progress and for
    tests that interrupt a run). Returns the seconds spent.
    """
    t0 = time.perf_counter()
    enabled = sys.stderr.isatty() if progress is None else bool(progress)
    if cluster is not None:
        results = cluster.map(work, chunks, key or (lambda c: c))
        bar = Progress(total, done, enabled, workers=cluster.workers)
    else:
        results = _on_threads(chunks, work, jobs)
        bar = Progress(total, done, enabled)
    finished = 0
    try:
        for chunk, result in results:
            k = finish(chunk, result)
            done += k
            finished += 1
            bar.advance(k, done)
            if on_chunk is not None:
                on_chunk(finished)
    finally:
        results.close()  # the pool or the cluster's tasks: nothing more is written
        bar.close()
    return time.perf_counter() - t0


def _on_threads(chunks: Iterable[T], work: Callable[[T], R], jobs: int) -> Iterator[tuple[T, R]]:
    """``(chunk, work(chunk))`` as each finishes on a pool of ``jobs`` threads, at most ``2 * jobs``
    in flight."""
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    running: dict[Future, Any] = {}
    it = iter(chunks)
    try:
        exhausted = False
        while True:
            while not exhausted and len(running) < 2 * max(1, jobs):
                try:
                    chunk = next(it)
                except StopIteration:
                    exhausted = True
                    break
                running[pool.submit(work, chunk)] = chunk
            if not running:
                break
            ready, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in ready:
                yield running.pop(future), future.result()
    finally:
        # On an interruption, queued chunks are dropped; running ones finish in the
        # background and are simply not written.
        pool.shutdown(wait=False, cancel_futures=True)
