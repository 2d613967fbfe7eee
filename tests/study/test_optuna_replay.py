"""A process killed at each awkward point of a trial's life, then the same run again: the
uninterrupted table, row for row in trial order (sweep.study.optuna.trials: replays).

Each kill is placed exactly, by a hook in the killed process, where a kill from
outside lands only by chance: between a trial's metrics and its tell, between a
new trial's label and its ask, between two of its parameters, and inside the
next run's reaping (the replay enqueued, the dead trial not yet abandoned).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep

STUDY = """
[study]
name = "replayed"
kind = "optuna"
objective = "sharpe"
data = "{data}"

[backtest]
factor = "momentum"

[space]
rebalance_days = {{low = 1, high = 10}}
window = {{low = 5, high = 40}}
weighting = ["equal", "risk_parity"]

[optuna]
n_trials = 24
sampler = "tpe"
seed = 5
"""

# Hooks run in the killed process; K is the trial number (or the label) the kill waits for.
HOOKS = {
    "after_metrics": """
        from optuna.trial import Trial
        orig = Trial.set_user_attr
        def hook(self, key, value):
            orig(self, key, value)
            if key == "sweep_metrics" and self.number == K:
                die()
        Trial.set_user_attr = hook
    """,
    "after_label": """
        from optuna.study import Study
        orig = Study.enqueue_trial
        seen = []
        def hook(self, params, *a, **kw):
            orig(self, params, *a, **kw)
            if not params:
                seen.append(1)
                if len(seen) == K:
                    die()
        Study.enqueue_trial = hook
    """,
    "between_parameters": """
        from optuna.trial import Trial
        orig = Trial.suggest_categorical
        def hook(self, name, choices):
            if self.number == K:
                die()
            return orig(self, name, choices)
        Trial.suggest_categorical = hook
    """,
}

SCRIPT = """
import os, signal, sys
import sweep
def die():
    os.kill(os.getpid(), signal.SIGKILL)
K = int(sys.argv[3])
{hook}
sweep.run_study(sweep.load_study(sys.argv[1]), out=sys.argv[2], jobs=2, progress=False)
"""


@pytest.fixture(scope="module")
def study_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    sweep.synth_panel(n_symbols=12, n_days=160, seed=4).write_parquet(root / "panel.parquet")
    path = root / "study.toml"
    path.write_text(STUDY.format(data=root / "panel.parquet"))
    return path


@pytest.fixture(scope="module")
def uninterrupted(study_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    sweep.run_study(sweep.load_study(study_file), out=out, jobs=2, progress=False)
    return pl.read_parquet(out / "trials.parquet").drop("trial_number")


def killed(study_file: Path, out: Path, hook: str, k: int) -> None:
    script = SCRIPT.format(hook=textwrap.dedent(HOOKS[hook]))
    proc = subprocess.run([sys.executable, "-c", script, str(study_file), str(out), str(k)],
                          capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def stored(out: Path) -> list:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(out / "optuna.journal")))
    return optuna.load_study(study_name="replayed", storage=storage).get_trials()


@pytest.mark.parametrize("hook, k", [("after_metrics", 13), ("after_label", 15), ("between_parameters", 14)])
def test_killed_at_each_point_resumes_to_the_uninterrupted_table(study_file, uninterrupted, tmp_path, hook, k):
    out = tmp_path / "out"
    killed(study_file, out, hook, k)
    left = stored(out)
    assert any(t.state.name in ("RUNNING", "WAITING") for t in left)  # the kill cut a trial's life
    sweep.run_study(sweep.load_study(study_file), out=out, jobs=2, progress=False)
    assert_frame_equal(pl.read_parquet(out / "trials.parquet").drop("trial_number"), uninterrupted)
    trials = stored(out)
    assert all(t.state.is_finished() for t in trials)
    replays = [t for t in trials if "sweep_replays" in t.user_attrs]
    by_number = {t.number: t for t in trials}
    for r in replays:  # each replay carries its dead trial's parameters, and that one is abandoned
        dead = by_number[r.user_attrs["sweep_replays"]]
        assert dead.user_attrs.get("sweep_abandoned") and dead.params == r.params
    if hook == "after_metrics":
        # Its metrics reached the journal but its tell did not: not a row, replayed.
        dead = by_number[k]
        assert "sweep_metrics" in dead.user_attrs and dead.user_attrs.get("sweep_abandoned")
        assert k in {r.user_attrs["sweep_replays"] for r in replays}
    if hook == "between_parameters":
        # Half-drawn: not replayed, drawn afresh from the same history.
        assert k not in {r.user_attrs["sweep_replays"] for r in replays}
        assert by_number[k].user_attrs.get("sweep_abandoned")


def test_killed_while_reaping_does_not_replay_twice(study_file, uninterrupted, tmp_path):
    out = tmp_path / "out"
    killed(study_file, out, "after_metrics", 13)
    # The next run dies after enqueuing the first replay, before abandoning the dead trial.
    hook = """
        from sweep.study.optuna import trials
        def abandon(*a, **kw):
            die()
        trials.abandon = abandon
    """
    HOOKS["in_reap"] = hook
    try:
        killed(study_file, out, "in_reap", 0)
    finally:
        del HOOKS["in_reap"]
    assert sum("sweep_replays" in t.user_attrs for t in stored(out)) == 1
    sweep.run_study(sweep.load_study(study_file), out=out, jobs=2, progress=False)
    assert_frame_equal(pl.read_parquet(out / "trials.parquet").drop("trial_number"), uninterrupted)
    replayed = [t.user_attrs["sweep_replays"] for t in stored(out) if "sweep_replays" in t.user_attrs]
    assert len(replayed) == len(set(replayed))
