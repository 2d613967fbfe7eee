"""Optuna studies on a real PostgreSQL server (tests/pgserver.py starts a throwaway one):
several `sweep run` processes on one study, a study created by processes starting together,
a worker killed or frozen mid-trial (the heartbeat), an unreachable database, the heartbeat keys.

No mocks: the workers are separate processes and the database is PostgreSQL. A trial is made
slow, where a test needs one running, by a hook in the worker's own process that holds its
backtest until the test creates a file.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from pgserver import new_database, postgres_db, postgres_url  # noqa: F401  (fixtures)

import sweep
from sweep.cli.main import main as cli_main

STUDY = """
[study]
name = "{name}"
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
n_trials = {n}
sampler = "random"
seed = 3
storage = "{url}"
{extra}
"""
SPACE = ("rebalance_days", "window", "weighting")
DEADLINE = 90.0  # seconds any wait below may take before the test fails


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "panel.parquet"
    sweep.synth_panel(n_symbols=12, n_days=160, seed=3).write_parquet(path)
    return path


def write_study(tmp_path: Path, data_file: Path, url: str, n: int, extra: str = "", name: str = "pg") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(STUDY.format(name=name, data=data_file, n=n, url=url, extra=extra))
    return path


_STORAGES: dict = {}


def storage(url: str):
    """An Optuna storage of ``url`` (one per database for the test process); create it before
    the workers start, so that it does not race them to create Optuna's tables."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url not in _STORAGES:
        _STORAGES[url] = optuna.storages.RDBStorage(url)
    return _STORAGES[url]


def stored(url: str, name: str = "pg"):
    """The study's trials as Optuna reads them from the database (no sweep code involved)."""
    import optuna

    return optuna.load_study(study_name=name, storage=storage(url)).get_trials()


def rows(trials) -> list:
    """The trials that finished with metrics and were not abandoned: the table's rows."""
    return [t for t in trials if t.state.is_finished() and "sweep_metrics" in t.user_attrs
            and not t.user_attrs.get("sweep_abandoned")]


def wait_for(proc: subprocess.Popen, done, what: str) -> None:
    """Poll ``done()`` until it holds; the worker ending first, or the deadline, fails the test."""
    deadline = time.monotonic() + DEADLINE
    while not done():
        try:
            proc.wait(timeout=0.02)  # a poll that returns at once if the worker ended
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {DEADLINE:.0f} s") from None
            continue
        raise AssertionError(f"the worker ended (exit {proc.returncode}) before {what}: {proc.stderr.read()}")


# A worker (`sweep run` without the command line's other layers) whose backtests wait until
# the file argv[3] exists: its first trial stays RUNNING, and the next IN_FLIGHT - 1 are asked
# behind it, until the test releases them.
HELD = textwrap.dedent("""
    import pathlib, sys, time, sweep
    from sweep.study.optuna import search
    release = pathlib.Path(sys.argv[3])
    evaluate = search.Search._evaluate
    def held(self, evaluator, config):
        while not release.exists():
            time.sleep(0.01)
        return evaluate(self, evaluator, config)
    search.Search._evaluate = held
    sweep.run_study(sweep.load_study(sys.argv[1]), out=sys.argv[2], jobs=1, progress=False)
""")


def start_held(study: Path, out: Path, release: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HELD, str(study), str(out), str(release)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def held_trials(url: str) -> list:
    """The running trials whose worker writes their heartbeat and which drew every parameter."""
    try:
        trials = stored(url)
    except KeyError:  # the study is not created yet
        return []
    return [t for t in trials if t.state.name == "RUNNING" and set(SPACE) <= t.params.keys()
            and (t.user_attrs.get("sweep_worker") or {}).get("heartbeat")]


def sweep_run(study: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweep", "run", str(study), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=DEADLINE)


def check_replayed(url: str, dead: list, n: int) -> list:
    """The dead trials are FAIL and abandoned, each replayed once with its parameters; exactly
    ``n`` rows, none running. The stored trials."""
    trials = stored(url)
    by_number = {t.number: t for t in trials}
    assert not [t.number for t in trials if not t.state.is_finished()]
    for d in dead:
        t = by_number[d.number]
        assert t.state.name == "FAIL" and t.user_attrs.get("sweep_abandoned"), (t.number, t.state)
        replays = [r for r in trials if r.user_attrs.get("sweep_replays") == d.number]
        assert len(replays) == 1, (d.number, [r.number for r in replays])
        assert replays[0].params == d.params and replays[0].number > d.number
        assert replays[0] in rows(trials)
    assert len(rows(trials)) == n
    return trials


def check_table(out: Path, trials: list, n: int) -> None:
    table = pl.read_parquet(out / "trials.parquet")
    assert table.height == n
    assert sorted(table["trial_number"].to_list()) == sorted(t.number for t in rows(trials))


# ---- several processes on one study ----------------------------------------------------------

# Started by start_together: waits until the test creates argv[2], then runs its body; the
# processes open the study at the same moment.
BARRIER = textwrap.dedent("""
    import pathlib, sys, time
    ready, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    ready.touch()
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    sys.argv[1:] = sys.argv[3:]
""")
# `sweep run` through its command line's main.
SWEEP = "from sweep.cli.main import main\nsys.exit(main(sys.argv[1:]))\n"


def start_together(tmp_path: Path, body: str, argvs: list[list[str]]) -> list[subprocess.Popen]:
    """One process per argument list, running ``body`` once all have started."""
    go = tmp_path / f"go-{time.monotonic_ns()}"
    ready = [tmp_path / f"ready-{go.name}-{i}" for i in range(len(argvs))]
    # Imports first (the slow part), so the barrier lines up the work itself.
    script = ("import alembic, optuna, optuna.storages._rdb.storage, sqlalchemy, sweep.study.optuna.storage, "
              "sweep.cli.main\n" + BARRIER + body)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(r), str(go), *a], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r, a in zip(ready, argvs)]
    for p in procs:
        wait_for(p, lambda: all(r.exists() for r in ready), "all processes ready")
    go.touch()
    return procs


def test_two_sweep_runs_on_one_postgres_study_finish_exactly_n_trials(tmp_path, data_file, postgres_db):
    n = 40
    # postgresql:// without a driver: psycopg 3 where psycopg2 is not installed (storage.driver_url).
    url = postgres_db.replace("postgresql+psycopg://", "postgresql://")
    study = write_study(tmp_path, data_file, url, n)
    outs = [tmp_path / "a", tmp_path / "b"]
    procs = start_together(tmp_path, SWEEP, [["run", str(study), "--out", str(o), "--quiet"] for o in outs])
    for p in procs:
        _, err = p.communicate(timeout=DEADLINE)
        assert p.returncode == 0, err
    trials = stored(postgres_db)
    done = rows(trials)
    surplus = [t for t in trials if t.user_attrs.get("sweep_surplus")]
    # Past the n rows, only surplus: per worker, its last ask past the limit and a label of its
    # own another worker's ask raced past (sweep.study.optuna.trials.release_labels).
    others = [(t.number, t.state.name, t.user_attrs) for t in trials if t not in done and t not in surplus]
    assert len(done) == n and not others and len(surplus) <= 2 * len(procs)
    assert all(t.state.name == "FAIL" and "sweep_metrics" not in t.user_attrs for t in surplus)
    assert all(t.state.is_finished() for t in trials)
    assert {t.user_attrs["sweep_worker"]["pid"] for t in done} == {p.pid for p in procs}  # both took part
    assert all(t.user_attrs["sweep_worker"].get("heartbeat") for t in done)
    for out in outs:  # each worker's table is the whole study's
        check_table(out, trials, n)
    manifest = json.loads((outs[0] / "manifest.json").read_text())
    assert manifest["optuna"]["storage"] == url and manifest["optuna"]["heartbeat_interval"] == 10
    assert manifest["optuna"]["grace_period"] == 30


# For each database of argv[2:], when the test creates <argv[1]>-<round>: open the storage and
# the study as `sweep run` does (the same functions), nothing else, and print the study's id.
OPEN = textwrap.dedent("""
    import pathlib, sys, time, warnings
    warnings.simplefilter("ignore")
    from sweep.study.optuna.storage import open_storage, open_study
    for i, url in enumerate(sys.argv[2:]):
        go = pathlib.Path(f"{sys.argv[1]}-{i}")
        deadline = time.monotonic() + 60
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        storage = open_storage("rdb", url, "storage", 10, 30)
        study = open_study("raced", "f" * 16, storage, None, "maximize", False, "storage")
        print(study._study_id, flush=True)
""")


def test_processes_creating_one_study_on_a_fresh_database_all_succeed(tmp_path, postgres_url):
    """Optuna creates its tables and the study on first use: processes doing it at the same
    moment collide in PostgreSQL (a unique violation in one of two, often: without the retry
    of storage.open_storage this test fails nearly always); each must get the one study.
    Three processes, four rounds, each on a fresh database."""
    n, rounds = 3, 4
    urls = [new_database() for _ in range(rounds)]
    go = tmp_path / "go"
    procs = start_together(tmp_path, OPEN, [[str(go), *urls]] * n)
    lines: list[list[str]] = [[] for _ in range(n)]
    for i in range(rounds):
        Path(f"{go}-{i}").touch()  # the processes are waiting, or about to (each prints a line a round)
        for p, got in zip(procs, lines):
            wait_line = p.stdout.readline()
            assert wait_line, p.communicate(timeout=DEADLINE)[1]
            got.append(wait_line.strip())
    for p in procs:
        _, err = p.communicate(timeout=DEADLINE)
        assert p.returncode == 0, err
    assert all(got == lines[0] for got in lines)  # the same study, in every database
    import psycopg

    for url in urls:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            assert conn.execute("SELECT study_name FROM studies").fetchall() == [("raced",)]


# ---- a worker killed, a worker frozen ----------------------------------------------------------


def test_killed_worker_running_trials_are_failed_and_retried_once(tmp_path, data_file, postgres_db):
    n = 12
    study = write_study(tmp_path, data_file, postgres_db, n, "heartbeat_interval = 1\ngrace_period = 2")
    release = tmp_path / "release"  # never created: the killed worker's trials never finish
    storage(postgres_db)
    worker = start_held(study, tmp_path / "killed", release)
    try:
        wait_for(worker, lambda: len(held_trials(postgres_db)) == 4, "4 trials running")
        dead = held_trials(postgres_db)
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait()
        worker.stderr.close()
    assert worker.returncode == -signal.SIGKILL
    out = tmp_path / "out"
    done = sweep_run(study, out)
    assert done.returncode == 0, done.stderr
    trials = check_replayed(postgres_db, dead, n)
    check_table(out, trials, n)
    # The replays came first, in the order of the trials they replace.
    replays = sorted((t for t in trials if "sweep_replays" in t.user_attrs), key=lambda t: t.number)
    assert [t.user_attrs["sweep_replays"] for t in replays] == [d.number for d in dead]


def test_frozen_worker_loses_its_trials_after_the_grace_period(tmp_path, data_file, postgres_db):
    """A worker that stops (SIGSTOP: as a machine cut off from the database) is alive to its
    host, so only the heartbeat tells it is gone: its trials are failed once their heartbeat is
    older than grace_period, and retried. Woken up, it finds them taken and ends cleanly."""
    n = 12
    study = write_study(tmp_path, data_file, postgres_db, n, "heartbeat_interval = 1\ngrace_period = 2")
    release = tmp_path / "release"
    storage(postgres_db)
    frozen = start_held(study, tmp_path / "frozen", release)
    try:
        wait_for(frozen, lambda: len(held_trials(postgres_db)) == 4, "4 trials running")
        dead = held_trials(postgres_db)
        frozen.send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        out = tmp_path / "out"
        done = sweep_run(study, out)
        took = time.monotonic() - t0
        assert done.returncode == 0, done.stderr
        trials = check_replayed(postgres_db, dead, n)
        check_table(out, trials, n)
        assert took < DEADLINE
        frozen.send_signal(signal.SIGCONT)
        release.touch()
        _, err = frozen.communicate(timeout=DEADLINE)
        assert frozen.returncode == 0, err
    finally:
        if frozen.poll() is None:
            frozen.send_signal(signal.SIGKILL)
            frozen.wait()
    # Its late results were refused: still exactly n rows, and its own table is the study's.
    after = stored(postgres_db)
    assert len(rows(after)) == n and len(after) == len(trials)
    check_table(tmp_path / "frozen", after, n)


# ---- an unreachable database, the heartbeat keys ----------------------------------------------


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens on it once closed


def test_unreachable_database_is_one_line_and_nothing_written(tmp_path, data_file, capsys):
    url = f"postgresql+psycopg://sweep:s3cret@127.0.0.1:{closed_port()}/nowhere"
    study = write_study(tmp_path, data_file, url, 5)
    out = tmp_path / "out"
    assert cli_main(["run", str(study), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and captured.out == "", captured.err
    assert str(study) in lines[0] and "[optuna] storage" in lines[0] and "cannot open the storage" in lines[0]
    assert "s3cret" not in lines[0] and "***" in lines[0]  # the password is not shown
    assert not out.exists()
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(study), "--out", str(out)],
                          capture_output=True, text=True, timeout=DEADLINE)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists()


BAD_KEYS = [
    # (the [optuna] lines added, words the one-line error must contain)
    ("heartbeat_interval = 0", ["heartbeat_interval = 0", "whole number of seconds"]),
    ("heartbeat_interval = 1.5", ["heartbeat_interval = 1.5", "whole number of seconds"]),
    ('heartbeat_interval = "10"', ["heartbeat_interval = '10'", "whole number of seconds"]),
    ("heartbeat_interval = true", ["heartbeat_interval = True"]),
    ("grace_period = -3", ["grace_period = -3", "whole number of seconds"]),
    ("heartbeat_interval = 5\ngrace_period = 5", ["grace_period = 5", "above heartbeat_interval = 5"]),
    ("grace_period = 8", ["grace_period = 8", "above heartbeat_interval = 10"]),
    ("heartbeat_intervall = 5", ["heartbeat_intervall", "did you mean 'heartbeat_interval'"]),
]


@pytest.mark.parametrize("extra,words", BAD_KEYS, ids=[b[0].replace("\n", "; ") for b in BAD_KEYS])
def test_bad_heartbeat_keys_are_one_line_errors(tmp_path, data_file, capsys, extra, words):
    study = write_study(tmp_path, data_file, "postgresql+psycopg://sweep@127.0.0.1:1/db", 5, extra)
    assert cli_main(["run", str(study), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and captured.out == "", captured.err
    for w in [str(study), "[optuna]", *words]:
        assert w in lines[0], (w, lines[0])
    assert not (tmp_path / "out").exists()


def test_heartbeat_keys_need_a_database_and_have_defaults(tmp_path, data_file, capsys):
    from sweep.study.optuna import parse_options

    journal = write_study(tmp_path, data_file, "shared.journal", 5, "grace_period = 60", name="journal")
    assert cli_main(["run", str(journal), "--out", str(tmp_path / "out")]) == 2
    line = capsys.readouterr().err.strip()
    assert "grace_period = 60 applies to a database storage" in line and "\n" not in line
    defaults = parse_options(sweep.load_study(write_study(tmp_path, data_file, "sqlite:///x.db", 5)))
    assert (defaults.heartbeat_interval, defaults.grace_period) == (10, 30)
    given = parse_options(sweep.load_study(write_study(tmp_path, data_file, "sqlite:///x.db", 5,
                                                       "heartbeat_interval = 4")))
    assert (given.heartbeat_interval, given.grace_period) == (4, 12)
    journal.write_text(journal.read_text().replace("grace_period = 60", ""))
    assert parse_options(sweep.load_study(journal)).heartbeat_interval is None
