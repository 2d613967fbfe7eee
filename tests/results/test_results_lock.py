"""Two `sweep run` of one study into one folder at once: the second is refused naming the
first's process; a lock left by a dead process is taken over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep
from sweep.results import FolderLock

STUDY = """
[study]
name = "locked"
data = "{data}"

[backtest]
factor = "momentum"

[grid]
window = [5, 10, 20]
rebalance_days = {days}
"""


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "panel.parquet"
    sweep.synth_panel(n_symbols=10, n_days=150, seed=2).write_parquet(path)
    return path


@pytest.fixture
def study_file(tmp_path, data_file):
    path = tmp_path / "locked.toml"
    path.write_text(STUDY.format(data=data_file, days=list(range(1, 31))))  # 90 configurations: 3 chunks
    return path


def test_a_second_run_is_refused_naming_the_running_process(tmp_path, study_file):
    out = tmp_path / "out"
    # The first run stops after its first chunk and waits for a line on stdin: it holds the folder.
    script = textwrap.dedent(f"""
        import sys, sweep
        def pause(n):
            if n == 1:
                print("chunk", flush=True)
                sys.stdin.readline()
        sweep.run_study(sweep.load_study({str(study_file)!r}), out={str(out)!r}, jobs=1, progress=False,
                        on_chunk=pause)
    """)
    first = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "chunk"
        holder = json.loads((out / ".lock").read_text())
        assert holder["pid"] == first.pid
        second = subprocess.run([sys.executable, "-m", "sweep", "run", str(study_file), "--out", str(out)],
                                capture_output=True, text=True)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"process {first.pid}" in lines[0] and "being written" in lines[0]
        # The refused run touched nothing: the first one's chunk is still there.
        assert list((out / ".partial").glob("chunk-*.parquet"))
    finally:
        first.communicate("go\n", timeout=120)
    assert first.returncode == 0
    assert (out / "manifest.json").exists() and not (out / ".lock").exists()
    ref = tmp_path / "ref"
    sweep.run_study(sweep.load_study(study_file), out=ref, progress=False)
    assert_frame_equal(pl.read_parquet(out / "trials.parquet"), pl.read_parquet(ref / "trials.parquet"))


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(proc.stdout)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    return pid


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path, study_file):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lock").write_text(json.dumps({"pid": _dead_pid(), "host": "here", "started": "earlier"}))
    summary = sweep.run_study(sweep.load_study(study_file), out=out, progress=False)
    assert summary.n_run == 90
    assert pl.read_parquet(out / "trials.parquet").height == 90
    assert not (out / ".lock").exists()


def test_a_held_lock_refuses_in_process_too(tmp_path, study_file):
    out = tmp_path / "out"
    with FolderLock(out):
        with pytest.raises(sweep.SweepError, match=f"process {os.getpid()} on "):
            sweep.run_study(sweep.load_study(study_file), out=out, progress=False)
    # Released: the same call now runs.
    assert sweep.run_study(sweep.load_study(study_file), out=out, progress=False).n_run == 90
