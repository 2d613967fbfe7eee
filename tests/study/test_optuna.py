"""Optuna studies: the trials table, reproducibility, resuming, shared storage and bad study files."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep
from sweep.cli.main import main as cli_main
from sweep.results.schema import SCHEMA_VERSION
from sweep.study import optuna as _optuna

ROOT = Path(__file__).resolve().parents[2]

STUDY = """
[study]
name = "tiny_optuna"
kind = "optuna"
objective = "{objective}"
data = "{data}"

[backtest]
factor = "volatility"
fee_bps = 10
exclude = ["S003"]

[space]
{space}

[optuna]
n_trials = {n}
sampler = "{sampler}"
seed = {seed}
{extra}
"""
SPACE = """rebalance_days = {low = 1, high = 12}
window = {low = 5, high = 20}
weighting = ["equal", "risk_parity"]"""


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "panel.parquet"
    sweep.synth_panel(n_symbols=15, n_days=200, seed=5).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def panel(data_file):
    return sweep.load_panel(data_file)


def write_study(tmp_path, data_file, *, n=20, sampler="tpe", seed=0, objective="sharpe", space=SPACE,
                extra="", name="tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(STUDY.format(data=data_file, n=n, sampler=sampler, seed=seed, objective=objective,
                                 space=space, extra=extra))
    return path


def run(path, out, **kw):
    return sweep.run_study(sweep.load_study(path), out=out, progress=False, **kw)


def storage_trials(out, name="tiny_optuna"):
    """The trials as Optuna itself reads them from the journal (no sweep code involved)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(out / "optuna.journal")))
    return optuna.load_study(study_name=name, storage=storage)


def finished_with_metrics(ostudy):
    return [t for t in ostudy.get_trials() if t.state.is_finished() and "sweep_metrics" in t.user_attrs]


# ---- the table -------------------------------------------------------------------


def test_trials_match_single_backtests_and_the_storage(tmp_path, data_file, panel):
    out = tmp_path / "out"
    summary = run(write_study(tmp_path, data_file, n=20), out, jobs=2)
    trials = pl.read_parquet(out / "trials.parquet")
    assert summary.n_configs == summary.n_run == trials.height == 20
    assert trials.columns == ["config_id", "rebalance_days", "window", "weighting", "factor", "fee_bps",
                              "exclude", *sweep.METRICS, "schema_version", "trial_number"]
    assert trials["trial_number"].to_list() == list(range(20))
    assert (trials["schema_version"] == SCHEMA_VERSION).all()
    manifest = json.loads((out / "manifest.json").read_text())
    # W = 30: risk_parity can be chosen and reads volatility(vol_window = 30) > window's high 20.
    start = manifest["evaluation_window"]["start"]
    assert start == str(panel.dates[30])
    assert manifest["n_trials"] == 20 and manifest["optuna"]["storage"] == str(out / "optuna.journal")
    assert manifest["data"]["fingerprint"] == panel.fingerprint
    for row in trials.iter_rows(named=True):
        res = sweep.backtest(panel, start=start, factor="volatility", window=row["window"],
                             weighting=row["weighting"], rebalance_days=row["rebalance_days"],
                             fee_bps=10, exclude=["S003"])
        assert res.config_id == row["config_id"]
        for m in sweep.METRICS:
            assert res.metrics[m] == pytest.approx(row[m], rel=1e-12, abs=1e-12, nan_ok=True), m
    # The journal alone holds everything: what Optuna reads back is the table.
    ostudy = storage_trials(out)
    assert ostudy.direction.name == "MAXIMIZE"
    by_number = {t.number: t for t in ostudy.get_trials()}
    assert sorted(by_number) == list(range(20))
    for row in trials.iter_rows(named=True):
        t = by_number[row["trial_number"]]
        assert t.params == {k: row[k] for k in ("rebalance_days", "window", "weighting")}
        assert t.value == row["sharpe"]
        assert t.user_attrs["sweep_metrics"]["turnover"] == row["turnover"]
    prepared = _optuna.prepare(sweep.load_study(tmp_path / "tiny.toml"))
    assert_frame_equal(_optuna.table(prepared, ostudy.get_trials()), trials)


def test_nan_objective_is_a_failed_trial_but_a_row(tmp_path, data_file, panel):
    # q above the 13 tradable symbols leaves every bucket empty: flat, Sharpe NaN.
    space = "q = {low = 2, high = 30}\nwindow = [5, 10, 20]"
    out = tmp_path / "out"
    run(write_study(tmp_path, data_file, n=16, sampler="random", space=space), out, jobs=1)
    trials = pl.read_parquet(out / "trials.parquet")
    assert trials.height == 16
    # equal weighting only: W is the window's largest choice.
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["evaluation_window"]["start"] == str(panel.dates[20])
    nan_rows = trials.filter(pl.col("sharpe").is_nan())
    assert 0 < nan_rows.height < 16
    assert (nan_rows["q"] > 13).all() and (nan_rows["n_rebalances"] > 0).all()
    by_number = {t.number: t for t in storage_trials(out).get_trials()}
    for row in trials.iter_rows(named=True):
        t = by_number[row["trial_number"]]
        if math.isnan(row["sharpe"]):
            assert t.state.name == "FAIL" and t.value is None
            assert t.user_attrs["sweep_metrics"]["sharpe"] is None
        else:
            assert t.state.name == "COMPLETE" and t.value == row["sharpe"]


def test_lower_is_better_objective_is_minimised(tmp_path, data_file):
    out = tmp_path / "out"
    run(write_study(tmp_path, data_file, n=12, sampler="random", objective="ann_vol"), out, jobs=1)
    trials = pl.read_parquet(out / "trials.parquet")
    ostudy = storage_trials(out)
    assert ostudy.direction.name == "MINIMIZE"
    assert ostudy.best_value == trials["ann_vol"].min()
    assert json.loads((out / "manifest.json").read_text())["best"]["value"] == trials["ann_vol"].min()


# ---- reproducibility -------------------------------------------------------------


def test_seeded_run_is_reproducible_whatever_jobs(tmp_path, data_file):
    # 24 trials: past TPE's 10 random start-up trials, so the model's choices are compared too.
    path = write_study(tmp_path, data_file, n=24)
    run(path, tmp_path / "a", jobs=1)
    run(path, tmp_path / "b", jobs=1)
    run(path, tmp_path / "c", jobs=2)
    a = pl.read_parquet(tmp_path / "a" / "trials.parquet")
    assert_frame_equal(a, pl.read_parquet(tmp_path / "b" / "trials.parquet"))
    assert_frame_equal(a, pl.read_parquet(tmp_path / "c" / "trials.parquet"))
    other = write_study(tmp_path, data_file, n=24, seed=1, name="other.toml")
    run(other, tmp_path / "d", jobs=1)
    d = pl.read_parquet(tmp_path / "d" / "trials.parquet")
    assert d["config_id"].to_list() != a["config_id"].to_list()


# ---- interruption ------------------------------------------------------------------


def _stop_after(k):
    def hook(n):
        if n == k:
            raise KeyboardInterrupt
    return hook


def test_interrupted_run_resumes_with_no_lost_or_repeated_trial(tmp_path, data_file):
    path = write_study(tmp_path, data_file, n=20)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        run(path, out, jobs=2, on_chunk=_stop_after(7))
    assert not (out / "trials.parquet").exists()
    before = storage_trials(out).get_trials()
    # The trials already asked were finished, not left running.
    assert 7 <= len(before) < 20 and all(t.state.is_finished() for t in before)
    summary = run(path, out, jobs=2)
    assert summary.n_run == 20 - len(before) and summary.n_resumed == len(before)
    trials = pl.read_parquet(out / "trials.parquet")
    assert trials["trial_number"].to_list() == list(range(20))
    stored = storage_trials(out).get_trials()
    assert [t.number for t in stored] == list(range(20))
    assert all(t.state.name in ("COMPLETE", "FAIL") and "sweep_metrics" in t.user_attrs for t in stored)
    assert sum(t.state.name == "COMPLETE" for t in stored) == trials["sharpe"].is_not_nan().sum()
    # Nothing left to do: a third run adds no trial.
    again = run(path, out, jobs=1)
    assert again.n_run == 0 and len(storage_trials(out).get_trials()) == 20


def test_resumed_random_search_is_the_uninterrupted_one(tmp_path, data_file):
    # Seeds come from the trial's index, not from the process: a resumed random
    # search draws what an uninterrupted one draws.
    path = write_study(tmp_path, data_file, n=15, sampler="random")
    run(path, tmp_path / "full", jobs=1)
    with pytest.raises(KeyboardInterrupt):
        run(path, tmp_path / "cut", jobs=1, on_chunk=_stop_after(4))
    run(path, tmp_path / "cut", jobs=1)
    assert_frame_equal(pl.read_parquet(tmp_path / "full" / "trials.parquet"),
                       pl.read_parquet(tmp_path / "cut" / "trials.parquet"))


def test_ctrl_c_stops_between_trials_and_leaves_none_running(tmp_path, data_file):
    """A real SIGINT (as Ctrl-C sends) after the 5th trial: the run finishes what it asked and stops."""
    path = write_study(tmp_path, data_file, n=18)
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import os, signal, sweep
        def interrupt(n):
            if n == 5:
                os.kill(os.getpid(), signal.SIGINT)
        sweep.run_study(sweep.load_study({str(path)!r}), out={str(out)!r}, jobs=1, progress=False,
                        on_chunk=interrupt)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGINT and "KeyboardInterrupt" in proc.stderr, proc.stderr
    stored = storage_trials(out).get_trials()
    # The 5 told, and the 3 in flight finished rather than abandoned.
    assert [t.number for t in stored] == list(range(8))
    assert all(t.state.is_finished() and "sweep_metrics" in t.user_attrs for t in stored)
    run(path, out, jobs=1)
    assert pl.read_parquet(out / "trials.parquet")["trial_number"].to_list() == list(range(18))


def test_killed_process_resumes_and_its_running_trials_do_not_count(tmp_path, data_file):
    """SIGKILL right after the 5th trial is told: the trials in flight stay RUNNING in the journal."""
    path = write_study(tmp_path, data_file, n=18)
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os, signal, sweep
        def kill(n):
            if n == 5:
                os.kill(os.getpid(), signal.SIGKILL)
        sweep.run_study(sweep.load_study({str(path)!r}), out={str(out)!r}, jobs=1, progress=False,
                        on_chunk=kill)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = storage_trials(out).get_trials()
    running = {t.number for t in left if t.state.name == "RUNNING"}
    assert running == {5, 6, 7}  # asked IN_FLIGHT - 1 = 3 ahead of the last told trial
    rerun = subprocess.run([sys.executable, "-m", "sweep", "run", str(path), "--out", str(out), "--quiet"],
                           capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    stored = storage_trials(out).get_trials()
    abandoned = {t.number for t in stored if t.state.name == "FAIL" and t.user_attrs.get("sweep_abandoned")}
    assert abandoned == running
    assert not any(t.state.name == "RUNNING" for t in stored)
    trials = pl.read_parquet(out / "trials.parquet")
    assert trials.height == 18 and trials["trial_number"].n_unique() == 18
    # Every trial is in the table or was abandoned, never both, never twice.
    assert sorted(trials["trial_number"].to_list() + sorted(abandoned)) == list(range(len(stored)))
    assert len(finished_with_metrics(storage_trials(out))) == 18


# ---- several processes, other storages -------------------------------------------------


def test_two_processes_share_one_journal(tmp_path, data_file):
    """Two workers on one study and one journal finish exactly n_trials between them.

    Guarantee: exactly n_trials trials finish with metrics (the table's rows);
    besides them a worker may draw one trial past the limit, and retire one
    label of its own that the other's ask raced past, each told FAIL with
    ``sweep_surplus`` and no parameters.
    """
    n = 120
    path = write_study(tmp_path, data_file, n=n, sampler="random")
    out = tmp_path / "shared"
    go = tmp_path / "go"
    script = textwrap.dedent("""
        import sys, time, pathlib, sweep
        study = sweep.load_study(sys.argv[1])
        pathlib.Path(sys.argv[3]).touch()
        deadline = time.time() + 60
        while not pathlib.Path(sys.argv[4]).exists() and time.time() < deadline:
            time.sleep(0.01)
        sweep.run_study(study, out=sys.argv[2], jobs=1, progress=False)
    """)
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(out), str(r), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in ready]
    deadline = time.time() + 60
    while not all(r.exists() for r in ready) and time.time() < deadline:
        time.sleep(0.01)
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    ostudy = storage_trials(out)
    stored = ostudy.get_trials()
    done = finished_with_metrics(ostudy)
    surplus = [t for t in stored if t.user_attrs.get("sweep_surplus")]
    assert len(done) == n
    assert len(surplus) <= 2 * len(procs) and all(t.state.name == "FAIL" and not t.params for t in surplus)
    assert len(stored) == n + len(surplus)
    workers = {t.user_attrs["sweep_worker"]["pid"] for t in done}
    assert workers == {p.pid for p in procs}  # both took part
    trials = pl.read_parquet(out / "trials.parquet")
    assert trials.height == n
    assert sorted(trials["trial_number"].to_list()) == sorted(t.number for t in done)
    # Per-index seeds: the two workers did not draw the same sequence.
    assert trials["config_id"].n_unique() > n // 2


def test_sqlite_storage_and_raising_n_trials_continues(tmp_path, data_file):
    import optuna

    db = tmp_path / "shared.db"
    path = write_study(tmp_path, data_file, n=6, sampler="random", extra=f'storage = "sqlite:///{db}"')
    out = tmp_path / "out"
    run(path, out, jobs=1)
    assert not (out / "optuna.journal").exists()
    ostudy = optuna.load_study(study_name="tiny_optuna", storage=f"sqlite:///{db}")
    assert len(ostudy.get_trials()) == 6
    path.write_text(path.read_text().replace("n_trials = 6", "n_trials = 9"))
    summary = run(path, out, jobs=1)
    assert summary.n_run == 3 and summary.n_resumed == 6
    assert pl.read_parquet(out / "trials.parquet")["trial_number"].to_list() == list(range(9))
    assert json.loads((out / "manifest.json").read_text())["optuna"]["storage"] == f"sqlite:///{db}"


def test_changed_study_is_refused_unless_forced(tmp_path, data_file):
    path = write_study(tmp_path, data_file, n=5, sampler="random")
    out = tmp_path / "out"
    run(path, out, jobs=1)
    before = (out / "trials.parquet").read_bytes()
    path.write_text(path.read_text().replace("fee_bps = 10", "fee_bps = 20"))
    with pytest.raises(sweep.SweepError, match="different study"):
        run(path, out, jobs=1)
    assert (out / "trials.parquet").read_bytes() == before
    run(path, out, jobs=1, force=True)
    trials = pl.read_parquet(out / "trials.parquet")
    assert trials["fee_bps"].unique().to_list() == [20.0]
    assert trials["trial_number"].to_list() == list(range(5))  # a new journal, not the old one continued
    assert len(storage_trials(out).get_trials()) == 5


# ---- bad study files ------------------------------------------------------------------

W, R = "window = {low = 5, high = 20}", "rebalance_days = {low = 1, high = 12}"
G = 'weighting = ["equal", "risk_parity"]'
BAD = [
    # (replace this, with this, words the one-line error must contain)
    (W, "windw = {low = 5, high = 20}", ["[space]", "windw", "did you mean 'window'"]),
    (W, "window = {low = 50, high = 20}", ["[space] window", "low = 50", "high = 20"]),
    (W, "window = {low = 5, high = 20, step = 4}", ["[space] window", "step = 4", "does not fit"]),
    (W, "window = {low = 5, high = 20, stpe = 5}", ["[space] window", "stpe", "did you mean 'step'"]),
    (W, "window = {low = 5.5, high = 20}", ["[space] window.low", "5.5", "integer"]),
    (W, "window = {low = 1, high = 20}", ["[space]", "window = 1", "below the minimum 2"]),
    (W, "window = {high = 20}", ["[space] window", "no low"]),
    (W, "window = 20", ["[space] window = 20", "range"]),
    (R, "rebalance_days = {low = 0, high = 12}",
     ["[space] rebalance_days.low", "rebalance_days = 0", "below the minimum 1"]),
    (R, R + "\nphase = {low = 0, high = 3}", ["[space]", "phase = 3", "rebalance_days = 1"]),
    (R, R + "\nbuffer = {low = 0.0, high = 0.5, log = true}", ["[space] buffer", "log", "low = 0.0"]),
    (R, R + "\nfee_bps = {low = 0, high = 20}", ["[space] fee_bps", "[backtest]"]),
    (G, "weighting = []", ["[space] weighting", "empty"]),
    (G, 'weighting = ["equal", "risk_parit"]',
     ["[space]", "weighting = 'risk_parit'", "did you mean 'risk_parity'"]),
    (G, "weighting = {low = 1, high = 2}", ["[space] weighting", "list of choices"]),
    ('sampler = "tpe"', 'sampler = "tpee"', ["[optuna]", "sampler = 'tpee'", "did you mean 'tpe'"]),
    ("n_trials = 5", "n_trials = 0", ["[optuna]", "n_trials = 0"]),
    ("n_trials = 5", "n_trial = 5", ["[optuna]", "n_trial", "did you mean 'n_trials'"]),
    ("seed = 0", 'seed = "zero"', ["[optuna]", "seed = 'zero'"]),
    ("seed = 0", 'seed = 0\nstorage = "redis://localhost"', ["[optuna]", "storage = 'redis://localhost'"]),
]


@pytest.mark.parametrize("old,new,words", BAD, ids=[b[1].split("\n")[-1][:40] for b in BAD])
def test_bad_space_and_optuna_values_are_one_line_errors(tmp_path, data_file, capsys, old, new, words):
    path = write_study(tmp_path, data_file, n=5)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    assert cli_main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1, captured.err
    assert str(path) in lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_bad_values_through_the_command_line(tmp_path, data_file):
    for old, new in [("window = {low = 5, high = 20}", "window = {low = 50, high = 20}"),
                     ('sampler = "tpe"', 'sampler = "tpee"')]:
        path = write_study(tmp_path, data_file, n=5)
        path.write_text(path.read_text().replace(old, new))
        proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(path), "--out", str(tmp_path / "o")],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 2 and proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1 and str(path) in proc.stderr, proc.stderr


def test_missing_tables_are_refused(tmp_path, data_file):
    path = write_study(tmp_path, data_file, n=5)
    text = path.read_text()
    path.write_text(text[:text.index("[optuna]")])
    with pytest.raises(sweep.SweepError, match=r"\[optuna\] table with n_trials"):
        sweep.load_study(path)
    path.write_text(text.replace("[space]\n" + SPACE, ""))
    with pytest.raises(sweep.SweepError, match=r"non-empty \[space\]"):
        sweep.load_study(path)


# ---- the shipped study ----------------------------------------------------------------


def test_shipped_study_is_valid(monkeypatch):
    monkeypatch.chdir(ROOT)
    study = sweep.load_study("studies/volatility_optuna.toml")
    space = _optuna.parse_space(study)
    assert [str(d) for d in space] == ["rebalance_days 1..30", "window 10..120", "weighting [equal, risk_parity]"]
    assert _optuna.parse_options(study) == _optuna.Options(n_trials=200, sampler="tpe", seed=0, storage=None)
    assert study.fixed["exclude"] == ("USDT", "USDC", "BUSD", "DAI", "FRAX", "WBTC", "STETH", "AMPL")
    prepared = _optuna.prepare(study)
    assert prepared.s == 120  # W: the window's high, above risk parity's vol_window 30
    proc = subprocess.run([sys.executable, "-m", "sweep", "validate", "studies/volatility_optuna.toml"],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "window 10..120" in proc.stdout and f"evaluation  {prepared.start} .. " in proc.stdout
