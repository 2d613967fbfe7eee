"""Which trials of the storage count, which were left by a dead worker, and their replays.

A trial left running by a dead worker is *abandoned* (FAIL, ``sweep_abandoned``):
it never counts and is not a row. When it had drawn all its parameters, a
*replay* takes its place: a trial enqueued with the same parameters (marked
``sweep_replays`` = the dead trial's number), which the next ask takes before
any new trial. So the trials in flight at a kill are run again in the order
they were asked, and every later trial sees the history it sees in an
uninterrupted run (see the package docstring).

New trials are asked through a *label* first: a waiting trial enqueued with
the worker's label and no parameters, which Optuna's ask then starts. A trial
is thus labelled from the moment it exists, and a worker killed between the
ask and anything else leaves a trial any later run recognises as dead.

Which running trial is dead. On this machine (same host name and boot), one
whose process is gone (its process id and start time), at once. Elsewhere, in
a database storage, one whose Optuna heartbeat is older than ``grace_period``
by the database's clock (``sweep.study.optuna.storage.Heartbeat``): a worker
labels a trial as beating (``heartbeat`` in its label) only after writing its
first heartbeat, so a trial labelled but not beating was cut off in between,
and is dead once its label is older than ``UNLABELLED_AFTER`` (or
``grace_period``, if longer). In a journal file (Optuna's has no heartbeat),
one whose label is older than ``STALE_AFTER``.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

A_METRICS, A_WORKER = "sweep_metrics", "sweep_worker"
A_SURPLUS, A_ABANDONED, A_REPLAYS = "sweep_surplus", "sweep_abandoned", "sweep_replays"
HEARTBEAT = "heartbeat"  # in a trial's label: its worker writes its heartbeat (a database storage)

# A running trial older than this is taken for dead (a trial takes milliseconds
# to seconds); only a journal's worker on another host needs it, a local one is
# checked by its process id, a database's by its heartbeat.
STALE_AFTER = 600.0
# An unlabelled running trial older than this was cut off between Optuna's ask
# and the worker's label (only a worker that raced another for a waiting label
# asks unlabelled); labelling takes milliseconds.
UNLABELLED_AFTER = 60.0

ACTIVE_SESSIONS: set[str] = set()  # runs in progress in this process


def counts(t) -> bool:
    """Whether a trial counts towards n_trials (package docstring)."""
    from optuna.trial import TrialState

    a = t.user_attrs
    if A_ABANDONED in a:
        # A worker killed between storing a trial's metrics and telling it leaves
        # both behind; the replay is the trial that counts.
        return False
    if t.state.is_finished():
        return A_METRICS in a
    return t.state == TrialState.RUNNING and A_SURPLUS not in a


def is_row(t) -> bool:
    """Whether a trial is a row of the table: it finished with metrics and counts."""
    return t.state.is_finished() and counts(t)


def ordered(trials: list) -> list:
    if trials and trials[-1].number != len(trials) - 1:
        trials = sorted(trials, key=lambda t: t.number)
    return trials


class Ledger:
    """Counts the trials that count below a trial number, in time linear in the unfinished ones.

    Finished trials never change, so the prefix of finished trials is counted
    once and remembered.
    """

    def __init__(self):
        self.prefix = [0]  # prefix[j]: trials that count among numbers < j, for j <= low

    @property
    def low(self) -> int:
        return len(self.prefix) - 1

    def count(self, trials: list, below: int) -> int:
        trials = ordered(trials)
        while self.low < len(trials) and trials[self.low].state.is_finished():
            self.prefix.append(self.prefix[-1] + counts(trials[self.low]))
        if below <= self.low:
            return self.prefix[below]
        return self.prefix[-1] + sum(counts(t) for t in trials[self.low:below])


def proc_start(pid: int) -> str | None:
    """The start time of a process (Linux), so a reused process id is not taken for the original."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def boot_id() -> str | None:
    """This boot of this machine (Linux): two machines given the same host name still differ here."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


BOOT = boot_id()


def worker_label(session: str) -> dict[str, Any]:
    """Who is on a trial: host (and its boot), process (and its start time) and run; ``time`` is
    added when labelling, ``heartbeat`` once the trial's heartbeat is written."""
    return {"host": socket.gethostname(), "boot": BOOT, "pid": os.getpid(), "proc_start": proc_start(os.getpid()),
            "session": session}


def same_machine(w: dict[str, Any], host: str) -> bool:
    """Whether the worker of label ``w`` runs on this machine (so its process can be looked up)."""
    return w.get("host") == host and w.get("boot", BOOT) == BOOT


def alive(worker: dict[str, Any]) -> bool:
    pid = worker.get("pid")
    if not isinstance(pid, int):
        return False
    if os.path.exists("/proc/self/stat"):
        return proc_start(pid) == worker.get("proc_start")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


class Beats(NamedTuple):
    """What a database storage's heartbeat says: the running trials (ids) whose heartbeat is older
    than the grace period, and the grace period (seconds)."""

    stale: frozenset[int]
    grace: float


def beats(storage, ostudy) -> Beats | None:
    """The heartbeat's verdict, read now (one query); None for a storage without heartbeat.

    What ``optuna.storages.fail_stale_trials`` reads before it fails the trials and calls back;
    sweep fails them itself, in its own order (``reap``).
    """
    get = getattr(storage, "get_heartbeat_interval", None)
    interval = get() if get is not None else None
    if interval is None:
        return None
    grace = getattr(storage, "grace_period", None) or 2 * interval
    study_id = storage.get_study_id_from_name(ostudy.study_name)
    return Beats(frozenset(storage._get_stale_trial_ids(study_id)), float(grace))


def is_stale(t, host: str, now: float, hb: Beats | None = None) -> bool:
    w = t.user_attrs.get(A_WORKER)
    if not isinstance(w, dict):
        # Asked but not labelled: a live worker labels its trial within milliseconds
        # of asking, so an old unlabelled trial was cut off between the two.
        started = t.datetime_start or dt.datetime.now()
        return (dt.datetime.now() - started).total_seconds() > UNLABELLED_AFTER
    if same_machine(w, host):
        if not alive(w):
            return True
        if w.get("pid") == os.getpid() and w.get("session") not in ACTIVE_SESSIONS:
            return True  # an earlier run of this process, interrupted
    if hb is not None:
        if w.get(HEARTBEAT):
            return t._trial_id in hb.stale
        # Not beating yet: cut off between its ask and its first heartbeat (milliseconds apart),
        # or a waiting label whose worker never asked it.
        return now - float(w.get("time", now)) > max(UNLABELLED_AFTER, hb.grace)
    return now - float(w.get("time", now)) > STALE_AFTER


def abandon(storage, ostudy, number: int) -> None:
    """Mark a running (or waiting) trial FAIL and ``sweep_abandoned``: it never finished and does not count."""
    from optuna.trial import TrialState

    try:
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(ostudy.study_name), number)
        storage.set_trial_user_attr(trial_id, A_ABANDONED, True)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except (RuntimeError, ValueError):
        pass  # another worker finished or reaped it first


def release_labels(storage, ostudy, worker: dict[str, Any]) -> int:
    """Retire this run's labels still waiting when it stops asking; how many.

    Two workers that label at once can each ask the other's label (Optuna's ask
    takes the oldest waiting trial it read, and falls back to a new trial when
    another worker took it first), so a label can outlive its worker's ask. In
    mid-run a later ask takes it; at the end nobody would, and the study would
    keep a WAITING trial. It is taken (so no ask takes it meanwhile) and told
    FAIL as surplus: a place asked past the limit, like a last ask that lost
    its race.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    n, study_id = 0, storage.get_study_id_from_name(ostudy.study_name)
    for t in ostudy.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        w = t.user_attrs.get(A_WORKER)
        if not (is_label(t) and isinstance(w, dict) and w.get("pid") == worker.get("pid")
                and w.get("session") == worker.get("session")):
            continue
        try:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            if not storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                continue  # asked by another worker after all
            storage.set_trial_user_attr(trial_id, A_SURPLUS, True)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except (UpdateFinishedTrialError, RuntimeError, ValueError):
            continue  # reaped by another worker
        n += 1
    return n


def is_label(t) -> bool:
    """A waiting trial enqueued to label a new trial (no parameters of its own, not a replay)."""
    return not t.system_attrs.get("fixed_params") and A_REPLAYS not in t.user_attrs


def reap(storage, ostudy, ledger: Ledger, space: Iterable[str], label: dict[str, Any]) -> int:
    """Abandon the trials left running by dead workers, replaying those that drew every
    parameter in ``space`` (in trial order); drop their left-over labels. How many were reaped."""
    from optuna.trial import TrialState

    hb = beats(storage, ostudy)  # before the trials: a trial beating since is not taken for dead
    trials = ordered(ostudy.get_trials(deepcopy=False))
    ledger.count(trials, 0)  # advance the finished prefix: only later trials can be running
    host, now, n = socket.gethostname(), time.time(), 0
    names = set(space)
    # A replay has a higher number than the trial it replays, which is not finished.
    replayed = {t.user_attrs.get(A_REPLAYS) for t in trials[ledger.low:]}
    for t in trials[ledger.low:]:
        if t.state == TrialState.RUNNING and is_stale(t, host, now, hb):
            if names <= t.params.keys() and A_SURPLUS not in t.user_attrs and t.number not in replayed:
                # Enqueued before the original is abandoned: a kill in between leaves the
                # original running, to be abandoned (and not replayed twice) by the next run.
                ostudy.enqueue_trial(t.params, user_attrs={A_REPLAYS: t.number, A_WORKER: label})
            abandon(storage, ostudy, t.number)
            n += 1
        elif t.state == TrialState.WAITING and is_label(t) and is_stale(t, host, now, hb):
            # A label whose worker died before starting it would be started before the
            # replays enqueued after it.
            abandon(storage, ostudy, t.number)
    return n
