"""Runs on a Dask cluster: ``--cluster local:N`` (a LocalCluster sweep starts) and a real
``dask scheduler`` with two ``dask worker`` processes on 127.0.0.1 (tests/daskserver.py).

The tables of a cluster run are those of a local run, bit for bit; a worker killed with
SIGKILL mid-run loses nothing; whatever ``local:N`` starts listens on 127.0.0.1 only and is
gone after Ctrl-C and after the parent is killed; a cluster that cannot be reached is one
line, exit 2, nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep
from sweep.cli.main import main
from sweep.core.errors import SweepError

pytest.importorskip("distributed", reason="the cluster extra (dask[distributed]) is not installed")
psutil = pytest.importorskip("psutil", reason="psutil comes with dask[distributed]")

from daskserver import dask_server, wait_until  # noqa: E402,F401  (a fixture)

HEAD = """
[study]
name = "{name}"
kind = "{kind}"
data = "{data}"

[backtest]
fee_bps = 5
"""
STUDIES = {
    "grid": """
[grid]
factor = ["volatility", "momentum"]
window = [5, 10, 20]
rebalance_days = [1, 2, 3, 5]
phase = "all"
buffer = [0.0, 0.1]
""",
    "monte_carlo": """
[grid]
factor = ["volatility", "momentum"]
window = [5, 10]
rebalance_days = [1, 3]

[monte_carlo]
method = "block_bootstrap"
n_samples = 12
block_days = 15
seed = 3
""",
    "walk_forward": """
[grid]
factor = ["volatility", "momentum"]
window = [5, 10]
rebalance_days = [1, 2, 4]

[walk_forward]
train_days = 60
test_days = 20
""",
}
TABLES = {"grid": ["trials.parquet"], "monte_carlo": ["samples.parquet", "summary.parquet"],
          "walk_forward": ["folds.parquet", "oos_returns.parquet"]}
JSONS = {"grid": ["summary.json"], "monte_carlo": [], "walk_forward": ["summary.json"]}


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster")
    data = tmp / "panel.parquet"
    sweep.synth_panel(n_symbols=12, n_days=220, seed=11).write_parquet(data)
    paths = {}
    for kind, body in STUDIES.items():
        paths[kind] = tmp / f"{kind}.toml"
        paths[kind].write_text(HEAD.format(name=kind, kind=kind, data=data) + body)
    return paths


@pytest.fixture(scope="module")
def local_runs(studies, tmp_path_factory):
    """Each study run on this machine's threads: the tables every cluster run must equal."""
    tmp = tmp_path_factory.mktemp("local")
    return {kind: sweep.run_study(sweep.load_study(path), out=tmp / kind, jobs=2, progress=False).out
            for kind, path in studies.items()}


def assert_same_tables(kind: str, got: Path, want: Path) -> None:
    for table in TABLES[kind]:
        assert_frame_equal(pl.read_parquet(got / table), pl.read_parquet(want / table), check_exact=True)
    for doc in JSONS[kind]:
        assert json.loads((got / doc).read_text()) == json.loads((want / doc).read_text())
    assert not (got / ".partial").exists()


@pytest.mark.parametrize("kind", list(STUDIES))
def test_local_cluster_writes_the_local_tables(kind, studies, local_runs, tmp_path):
    summary = sweep.run_study(sweep.load_study(studies[kind]), out=tmp_path / "c", cluster="local:2",
                              progress=False)
    assert summary.n_run > 0
    assert_same_tables(kind, tmp_path / "c", local_runs[kind])


def test_scheduler_and_workers_write_the_local_tables(dask_server, studies, local_runs, tmp_path):
    study = studies["grid"].read_text().replace('kind = "grid"', f'kind = "grid"\ncluster = "{dask_server.address}"')
    path = tmp_path / "grid.toml"
    path.write_text(study)
    sweep.run_study(sweep.load_study(path), out=tmp_path / "c", progress=False)  # [study] cluster
    assert_same_tables("grid", tmp_path / "c", local_runs["grid"])


@pytest.mark.parametrize("kind", ["grid", "walk_forward"])
def test_a_worker_killed_mid_run_loses_nothing(kind, dask_server, studies, local_runs, tmp_path, monkeypatch):
    import sweep.study.grid as grid

    monkeypatch.setattr(grid, "chunk_size", lambda n: 7)  # many chunks: some are on the killed worker
    dask_server.wait(2)  # a worker killed by an earlier test has been restarted by its nanny
    before = dask_server.worker_pids()
    killed: list[int] = []

    def kill_one(n_finished: int) -> None:
        if n_finished == 1:
            os.kill(before[0], signal.SIGKILL)
            killed.append(before[0])

    sweep.run_study(sweep.load_study(studies[kind]), out=tmp_path / "c", progress=False, on_chunk=kill_one,
                    cluster=dask_server.address)
    assert killed  # the run went on after one of its two workers died
    # The streamed summary's sums follow the chunks, so the reference has the same chunks.
    sweep.run_study(sweep.load_study(studies[kind]), out=tmp_path / "local", progress=False)
    assert_same_tables(kind, tmp_path / "c", tmp_path / "local")


def test_an_unreachable_cluster_is_one_line_and_writes_nothing(studies, tmp_path, capsys):
    from daskserver import free_port

    out = tmp_path / "out"
    for address in (f"tcp://127.0.0.1:{free_port()}", "tcp://no-such-host.invalid:8786"):
        code = main(["run", str(studies["grid"]), "--out", str(out), "--cluster", address])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and address in err[0] and "cannot reach" in err[0], err
        assert not out.exists()


@pytest.mark.parametrize("value, message", [("local:0", "local:N"), ("http://x:1", "tcp://HOST:PORT"),
                                            ("7", "local:N")])
def test_a_bad_cluster_address_is_refused(value, message, studies, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(studies["grid"].read_text().replace('kind = "grid"', f'kind = "grid"\ncluster = "{value}"'))
    with pytest.raises(SweepError, match=message) as info:
        sweep.load_study(path)
    assert "[study] cluster" in str(info.value)


def test_where_it_runs_is_not_what_the_study_means(studies, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(studies["grid"].read_text().replace('kind = "grid"', 'kind = "grid"\ncluster = "local:3"'))
    assert sweep.load_study(path).fingerprint() == sweep.load_study(studies["grid"]).fingerprint()


def test_a_kind_that_does_not_run_on_a_cluster_says_so(tmp_path, studies):
    path = tmp_path / "o.toml"
    data = sweep.load_study(studies["grid"]).data
    path.write_text(f'[study]\nname = "o"\nkind = "optuna"\ndata = "{data}"\n\n[space]\nwindow = [5, 20]\n\n'
                    '[optuna]\nn_trials = 3\n')
    with pytest.raises(SweepError, match="does not run on a cluster"):
        sweep.run_study(sweep.load_study(path), out=tmp_path / "out", cluster="local:2", progress=False)
    assert not (tmp_path / "out").exists()


# Child: a `sweep run --cluster local:2`; at its first finished chunk it records the processes it
# started (and where they listen), then is interrupted (SIGINT, as Ctrl-C) or killed (SIGKILL).
CHILD = textwrap.dedent("""
    import json, os, signal, sys
    import psutil
    import sweep.study.grid as grid
    from sweep.cli.main import main
    from sweep.run import progress

    study, out, record, how = sys.argv[1:5]
    grid.chunk_size = lambda n: 7
    advance = progress.Progress.advance

    def first_chunk(self, k, done):
        if how == "none":
            return advance(self, k, done)
        me = psutil.Process()
        kids = me.children(recursive=True)
        listening = [c.laddr.ip for p in [me, *kids] for c in p.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        with open(record, "w") as f:
            json.dump({"pids": [p.pid for p in kids], "listening": listening}, f)
        os.kill(os.getpid(), signal.SIGINT if how == "int" else signal.SIGKILL)
        progress.Progress.advance = advance
        return advance(self, k, done)

    progress.Progress.advance = first_chunk
    sys.exit(main(["run", study, "--out", out, "--cluster", "local:2"]))
""")


@pytest.mark.parametrize("how", ["int", "kill"])
def test_local_cluster_listens_on_loopback_and_is_stopped_on_ctrl_c_and_kill(how, studies, tmp_path):
    record = tmp_path / "record.json"
    child = subprocess.run([sys.executable, "-c", CHILD, str(studies["grid"]), str(tmp_path / "out"),
                            str(record), how], capture_output=True, text=True, timeout=300)
    assert child.returncode == (130 if how == "int" else -signal.SIGKILL), child.stderr
    seen = json.loads(record.read_text())
    assert len(seen["pids"]) >= 2  # the two worker processes at least
    assert seen["listening"] and set(seen["listening"]) == {"127.0.0.1"}, seen["listening"]

    def gone() -> bool:
        return not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in seen["pids"])

    wait_until(gone, 60, "the cluster's processes to end")
    if how == "int":  # one line, as a local run says it: no trace of Dask's or joblib's shutdown
        lines = child.stderr.strip().splitlines()
        assert len(lines) == 1 and "interrupted" in lines[0], child.stderr


def test_a_parent_killed_mid_run_resumes_from_its_chunks(studies, tmp_path, monkeypatch):
    from sweep.study import grid

    out = tmp_path / "out"
    args = [sys.executable, "-c", CHILD, str(studies["grid"]), str(out), str(tmp_path / "r.json")]
    killed = subprocess.run([*args, "kill"], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    kept = sum(pl.read_parquet(p).height for p in (out / ".partial").glob("chunk-*.parquet"))
    assert kept  # the chunks finished before the kill are on disk
    again = subprocess.run([*args, "none"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{kept} resumed" in again.stdout
    monkeypatch.setattr(grid, "chunk_size", lambda n: 7)  # the child's chunks
    sweep.run_study(sweep.load_study(studies["grid"]), out=tmp_path / "local", progress=False)
    assert_same_tables("grid", out, tmp_path / "local")


def test_without_the_cluster_extra_a_cluster_run_is_one_line(studies, tmp_path):
    # distributed made unimportable in a fresh process, as on an install without sweep[cluster].
    code = textwrap.dedent("""
        import sys
        sys.modules["distributed"] = None
        from sweep.cli.main import main
        sys.exit(main(["run", sys.argv[1], "--out", sys.argv[2], "--cluster", "local:2"]))
    """)
    out = tmp_path / "out"
    child = subprocess.run([sys.executable, "-c", code, str(studies["grid"]), str(out)], capture_output=True,
                           text=True, timeout=120)
    lines = child.stderr.strip().splitlines()
    assert child.returncode == 2 and len(lines) == 1 and "pip install 'sweep[cluster]'" in lines[0], child.stderr
    assert not out.exists()
