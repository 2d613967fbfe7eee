"""The ask/tell loop of one process: one thread talks to Optuna, a pool of threads runs the backtests."""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np

from kernels.metrics import M_RUINED, METRICS
from sweep.engine.params import resolve
from sweep.run.progress import Progress
from sweep.study.optuna.storage import Heartbeat
from sweep.study.optuna.trials import (
    A_METRICS,
    A_SURPLUS,
    A_WORKER,
    HEARTBEAT,
    Ledger,
    abandon,
    counts,
    ordered,
    reap,
    release_labels,
)

# Trials asked ahead of the oldest untold one. It fixes the history each trial
# sees (so the table does not depend on --jobs) and bounds the parallelism of
# one process; Optuna's own work per trial is serial Python and outweighs a
# backtest, so more trials in flight would not go faster.
IN_FLIGHT = 4
# Features and rankings the Evaluator keeps (about 16 bytes a cell per distinct
# ranking); past this a fresh Evaluator starts, so a search over many windows
# on a large panel does not grow without bound.
CACHE_BYTES = 1 << 30


def metrics_attr(row: np.ndarray) -> dict[str, float | None]:
    # JSON has no NaN: a missing value is null, so any storage round-trips it.
    return {m: None if math.isnan(v) else float(v) for m, v in zip(METRICS, row)}


class Pool:
    """A thread pool (the kernels release the GIL) that drops queued work on shutdown."""

    def __init__(self, jobs: int):
        from concurrent.futures import ThreadPoolExecutor

        self.executor = ThreadPoolExecutor(max_workers=jobs)

    def submit(self, fn, *args):
        return self.executor.submit(fn, *args)

    def shutdown(self):
        self.executor.shutdown(wait=False, cancel_futures=True)


class Search:
    """The ask/tell loop of one process: one thread talks to Optuna, the pool runs backtests."""

    def __init__(self, p: Any, storage, ostudy, sampler, ledger: Ledger, evaluator, pool: Pool,
                 worker: dict[str, Any], progress: bool | None, on_chunk: Callable[[int], None] | None,
                 n_before: int, heartbeat: Heartbeat | None = None):
        self.storage = storage
        self.heartbeat = heartbeat if heartbeat is not None else Heartbeat(storage, None)
        self.next_reap = time.monotonic() + (self.heartbeat.interval or 0)
        self.p, self.ostudy, self.sampler, self.ledger = p, ostudy, sampler, ledger
        self.evaluator, self.pool, self.on_chunk = evaluator, pool, on_chunk
        self.n_trials = p.options.n_trials
        self.names = [d.name for d in p.space]
        self.objective = METRICS.index(p.study.objective)
        self.worker = worker
        self.inflight: deque = deque()
        self.stop = threading.Event()
        T, N = p.panel.shape
        self.cached: set = set()  # ranking keys the current evaluator holds
        self.max_cached = max(16, CACHE_BYTES // (16 * T * N))
        self.n_run = 0
        self.n_before = n_before
        enabled = sys.stderr.isatty() if progress is None else progress
        self.bar = Progress(self.n_trials, min(n_before, self.n_trials), enabled)

    def label(self) -> dict[str, Any]:
        return {**self.worker, "time": time.time()}

    def counted(self) -> int:
        return self.ledger.count(self.ostudy.get_trials(deepcopy=False), sys.maxsize)

    def run(self) -> None:
        try:
            with deferred_interrupt(self.stop):
                self._loop()
        except BaseException:
            self._drain()
            raise
        finally:
            self.bar.close()

    def _loop(self) -> None:
        may_ask = True
        while True:
            if self.stop.is_set():
                raise KeyboardInterrupt  # Ctrl-C, taken here, between two Optuna calls
            if len(self.inflight) >= IN_FLIGHT:
                self._finish()
                continue
            if may_ask and self.counted() < self.n_trials:
                if self.heartbeat.enabled and time.monotonic() >= self.next_reap:
                    # Another worker's trial whose heartbeat stopped is failed and retried within
                    # about grace_period + heartbeat_interval of its death, not only at the end.
                    reap(self.storage, self.ostudy, self.ledger, self.names, self.label())
                    self.next_reap = time.monotonic() + self.heartbeat.interval
                may_ask = self._ask()
                continue
            if self.inflight:
                self._finish()
                continue
            # Nothing of ours left: wait for other workers' trials, and take over
            # from any that died.
            reap(self.storage, self.ostudy, self.ledger, self.names, self.label())
            trials = ordered(self.ostudy.get_trials(deepcopy=False))
            if self.ledger.count(trials, sys.maxsize) < self.n_trials:
                may_ask = True
                continue
            if not any(not t.state.is_finished() and counts(t) for t in trials[self.ledger.low:]):
                release_labels(self.storage, self.ostudy, self.worker)
                return
            time.sleep(0.05)

    def _ask(self) -> bool:
        """Ask one trial; False when it was past the limit (another worker took the last place)."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState
        from optuna.trial import TrialState as S

        if not self.ostudy.get_trials(deepcopy=False, states=(S.WAITING,)):
            # The trial exists labelled, so a kill right after the ask leaves a trial
            # that a later run knows for dead (sweep.study.optuna.trials).
            self.ostudy.enqueue_trial({}, user_attrs={A_WORKER: self.label()})
        trial = self.ostudy.ask()  # a replay first, if any: the oldest waiting trial
        index = self.sampler.index.get(trial.number, sys.maxsize)
        if index >= self.n_trials:
            trial.set_user_attr(A_SURPLUS, True)
            self.ostudy.tell(trial, state=TrialState.FAIL)
            return False
        label = self.label()
        if self.heartbeat.enabled:
            # Its first heartbeat before the label says it beats (sweep.study.optuna.trials.is_stale).
            self.heartbeat.beat(trial._trial_id)
            label[HEARTBEAT] = True
        try:
            trial.set_user_attr(A_WORKER, label)
        except UpdateFinishedTrialError:
            # Taken for dead by another worker (clocks far apart, or its heartbeat late): it does
            # not count; ask again.
            self.heartbeat.done(trial._trial_id)
            self.sampler.forget(trial.number)
            return True
        try:
            params = {d.name: d.suggest(trial) for d in self.p.space}
            config = resolve({**self.p.study.fixed, **params}, f"{self.p.study.path}: [space]", checked=True)
            self.evaluator.workspace.check(config, f"{self.p.study.path}: [space]")
        except BaseException:
            self.sampler.forget(trial.number)
            abandon(self.storage, self.ostudy, trial.number)
            self.heartbeat.done(trial._trial_id)
            raise
        self.inflight.append((trial, self.pool.submit(self._evaluate, self._evaluator_for(config), config)))
        return True

    def _evaluator_for(self, config: dict[str, Any]):
        from sweep.engine.workspace import Evaluator, ranking_key

        key = ranking_key(config)
        if key not in self.cached:
            if len(self.cached) >= self.max_cached:
                # Trials in flight keep the old one until they finish.
                self.evaluator = Evaluator(self.p.panel, self.evaluator.jobs)
                self.cached.clear()
            self.cached.add(key)
        return self.evaluator

    def _evaluate(self, evaluator, config: dict[str, Any]) -> np.ndarray:
        metrics, _ = evaluator.run([config], self.p.s, self.p.e)
        return metrics[0]

    def _finish(self, report: bool = True) -> None:
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        trial, future = self.inflight[0]
        row = future.result()  # if this fails, the trial stays in flight for _drain
        self.inflight.popleft()
        value = float(row[self.objective])
        try:
            trial.set_user_attr(A_METRICS, metrics_attr(row))
            # A ruined book's ratios describe a closed book (SEMANTICS §8): a sampler told
            # them would climb towards ruin, so it is a failed trial, kept as a row.
            if math.isnan(value) or row[M_RUINED] > 0:
                self.ostudy.tell(trial, state=TrialState.FAIL)
            else:
                self.ostudy.tell(trial, value)
        except (UpdateFinishedTrialError, ValueError):
            if self.ostudy.get_trials(deepcopy=False)[trial.number].state == TrialState.RUNNING:
                raise
            # Another worker took it for dead and marked it abandoned: it does not
            # count, and the loop asks another trial in its place.
            self.heartbeat.done(trial._trial_id)
            self.sampler.forget(trial.number)
            return
        self.heartbeat.done(trial._trial_id)
        self.n_run += 1
        self.bar.advance(1, self.n_before + self.n_run)
        if report and self.on_chunk is not None:
            self.on_chunk(self.n_run)

    def _drain(self) -> None:
        """On an interruption or an error, finish the trials already asked (milliseconds each), so
        none is lost and the trial numbers stay dense; abandon them if they cannot finish."""
        while self.inflight:
            try:
                self._finish(report=False)
            except BaseException:
                for t, fut in self.inflight:
                    fut.cancel()
                    self.sampler.forget(t.number)
                    abandon(self.storage, self.ostudy, t.number)
                    self.heartbeat.done(t._trial_id)
                self.inflight.clear()


@contextmanager
def deferred_interrupt(flag: threading.Event):
    """Turn the first Ctrl-C into ``flag`` (the loop stops cleanly at its next step); a second
    one interrupts at once. Only in the main thread, and only over Python's own handler."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
