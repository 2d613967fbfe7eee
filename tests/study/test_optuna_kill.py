"""kill -9 of a seeded Optuna study, then the same command again: the table of an uninterrupted run.

The module docstring of ``sweep.study.optuna`` promises that a seeded study is
reproducible; these tests hold it to that across SIGKILL, with ``--jobs 2``.
Rows are compared in trial order; the trial numbers themselves may have gaps
where a killed process left a trial running (it is replaced, not renumbered).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep

STUDY = """
[study]
name = "killed_tpe"
kind = "optuna"
objective = "sharpe"
data = "{data}"

[backtest]
factor = "momentum"
q = 4

[space]
rebalance_days = {{low = 1, high = 10}}
window = {{low = 5, high = 40}}
weighting = ["equal", "risk_parity"]
fee_bps = {{low = 0.0, high = 30.0}}

[optuna]
n_trials = {n}
sampler = "{sampler}"
seed = 11
"""


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "panel.parquet"
    sweep.synth_panel(n_symbols=12, n_days=160, seed=3).write_parquet(path)
    return path


def write_study(tmp_path: Path, data_file: Path, n: int, sampler: str = "tpe") -> Path:
    path = tmp_path / f"{sampler}.toml"
    path.write_text(STUDY.format(data=data_file, n=n, sampler=sampler))
    return path


# What ``sweep run <study> --out <out> --jobs 2`` does, without the command line's other layers.
SCRIPT = "import sys, sweep; sweep.run_study(sweep.load_study(sys.argv[1]), out=sys.argv[2], jobs=2, progress=False)"


def command(path: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", SCRIPT, str(path), str(out)]


def told(journal: Path) -> int:
    """Trials whose metrics reached the journal (each is written once, just before its tell)."""
    try:
        return journal.read_bytes().count(b'"sweep_metrics"')
    except FileNotFoundError:
        return 0


def run_and_kill(path: Path, out: Path, after: int) -> None:
    """Start the command and SIGKILL it once ``after`` trials have metrics in the journal."""
    proc = subprocess.Popen(command(path, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = out / "optuna.journal"
    try:
        while told(journal) < after:
            try:
                proc.wait(timeout=0.005)  # a poll that returns at once if the run ended
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {after} trials: "
                                 f"{proc.stderr.read().decode()}")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def rows(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "trials.parquet").drop("trial_number")


def journal_states(out: Path) -> list[tuple[int, str, bool]]:
    """(number, state, abandoned) of every stored trial, as Optuna reads the journal."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(out / "optuna.journal")))
    study = optuna.load_study(study_name="killed_tpe", storage=storage)
    return [(t.number, t.state.name, bool(t.user_attrs.get("sweep_abandoned"))) for t in study.get_trials()]


def test_seeded_tpe_killed_twice_resumes_to_the_uninterrupted_table(tmp_path, data_file):
    n = 60
    path = write_study(tmp_path, data_file, n)
    full = tmp_path / "full"
    done = subprocess.run(command(path, full), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    cut = tmp_path / "cut"
    run_and_kill(path, cut, after=14)
    run_and_kill(path, cut, after=37)
    again = subprocess.run(command(path, cut), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr

    expected, got = rows(full), rows(cut)
    assert expected.height == n and expected["config_id"].n_unique() > n // 2
    assert_frame_equal(got, expected)
    # The kills did cut trials in flight: they were abandoned and replaced, which is
    # what this test is about (a kill between trials would prove less).
    states = journal_states(cut)
    abandoned = [k for k, _, a in states if a]
    assert abandoned
    assert all(s in ("COMPLETE", "FAIL") for _, s, _ in states)
    table = pl.read_parquet(cut / "trials.parquet")["trial_number"].to_list()
    assert table == sorted(table) and not set(table) & set(abandoned)
    assert len(table) + len(abandoned) == len(states)


def test_jobs_one_and_two_write_the_same_table(tmp_path, data_file):
    path = write_study(tmp_path, data_file, 40)
    one, two = tmp_path / "one", tmp_path / "two"
    sweep.run_study(sweep.load_study(path), out=one, jobs=1, progress=False)
    sweep.run_study(sweep.load_study(path), out=two, jobs=2, progress=False)
    assert_frame_equal(pl.read_parquet(one / "trials.parquet"), pl.read_parquet(two / "trials.parquet"))
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["configurations"] == 40
