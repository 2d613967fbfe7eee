"""A label left waiting when its worker stops asking (two workers labelling at once can each ask
the other's): the worker retires its own, and only its own, as surplus."""

from __future__ import annotations

import optuna
import pytest

from sweep.study.optuna.trials import A_REPLAYS, A_SURPLUS, A_WORKER, counts, release_labels

ME = {"host": "h", "pid": 11, "session": "s1", "time": 1.0}


@pytest.fixture
def study():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    return storage, optuna.create_study(storage=storage, study_name="labels")


def test_a_worker_retires_its_own_waiting_labels_and_no_other_trial(study):
    storage, ostudy = study
    ostudy.enqueue_trial({}, user_attrs={A_WORKER: ME})  # 0: asked by another worker's race
    ostudy.enqueue_trial({}, user_attrs={A_WORKER: {**ME, "session": "s0"}})  # 1: an earlier run of this pid
    ostudy.enqueue_trial({}, user_attrs={A_WORKER: {**ME, "pid": 12}})  # 2: another worker's
    ostudy.enqueue_trial({"x": 1}, user_attrs={A_WORKER: ME, A_REPLAYS: 0})  # 3: a replay, not a label
    ostudy.enqueue_trial({}, user_attrs={A_WORKER: ME})  # 4: mine
    taken = ostudy.ask()  # the oldest waiting trial: what another worker's ask takes
    assert taken.number == 0

    assert release_labels(storage, ostudy, ME) == 1
    trials = ostudy.get_trials(deepcopy=False)
    state = {t.number: t.state.name for t in trials}
    assert state == {0: "RUNNING", 1: "WAITING", 2: "WAITING", 3: "WAITING", 4: "FAIL"}
    assert trials[4].user_attrs[A_SURPLUS] is True and not counts(trials[4])
    assert release_labels(storage, ostudy, ME) == 0  # nothing of mine waits any more
