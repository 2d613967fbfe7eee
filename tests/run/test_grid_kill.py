"""kill -9 of a streamed grid run at points drawn at random (after any finished chunk, in the
middle of streaming the chunks into the table) and at the points where a run is most fragile
(writing its state file or its first chunk, each rename of the commit, while the summary is
computed), then the same run again: the folder holds the table and summary of an
uninterrupted run, and the chunks finished before the kill were not computed again."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep

STUDY = """
[study]
name = "killed"
data = "{data}"

[backtest]
fee_bps = 5

[grid]
factor = ["volatility", "momentum"]
window = [5, 10]
rebalance_days = [1, 2, 3, 4]
phase = "all"
buffer = [0.0, 0.1]
"""

# Child: chunks of 7 configurations (many chunk files); dies with SIGKILL at the point named.
CHILD = textwrap.dedent("""
    import os, signal, sys
    import pyarrow.parquet as pq
    import sweep, sweep.study.grid as grid
    from sweep.results import folder as results_folder

    study, out, point, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    grid.chunk_size = lambda n: 7
    grid.ROW_GROUP = 10  # several row groups in the final table, so a kill can land between two

    def die(*_):
        os.kill(os.getpid(), signal.SIGKILL)

    def after(n_calls, fn):
        calls = [0]
        def wrapped(*args, **kwargs):
            calls[0] += 1
            if calls[0] == n_calls:
                die()
            return fn(*args, **kwargs)
        return wrapped

    on_chunk = None
    if point == "chunk":
        on_chunk = lambda n: die() if n == k else None
    elif point == "stream":
        pq.ParquetWriter.write_table = after(k, pq.ParquetWriter.write_table)
    elif point == "rename":  # the k-th atomic rename of the run: state.json, then the chunks
        results_folder.os.replace = after(k, results_folder.os.replace)
    elif point == "commit":  # the k-th rename of the commit: the staged manifest, then the tables
        commit = results_folder.ResultsFolder.commit
        def killing_commit(self, manifest):
            results_folder.os.replace = after(k, results_folder.os.replace)
            return commit(self, manifest)
        results_folder.ResultsFolder.commit = killing_commit
    elif point == "summary":
        grid.grid_summary = after(1, grid.grid_summary)
    summary = sweep.run_study(sweep.load_study(study), out=out, jobs=2, progress=False, on_chunk=on_chunk)
    print(summary.n_run, summary.n_resumed)
""")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grid-kill")
    data = tmp / "panel.parquet"
    sweep.synth_panel(n_symbols=10, n_days=150, seed=21).write_parquet(data)
    study = tmp / "study.toml"
    study.write_text(STUDY.format(data=data))
    ref = tmp / "ref"
    _child(study, ref, "none", 0)
    return study, ref


def _child(study, out, point: str, k: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, str(study), str(out), point, str(k)],
                          capture_output=True, text=True)


RNG = np.random.default_rng(20261206)
POINTS = ([("chunk", int(k)) for k in RNG.integers(1, 12, size=3)]
          + [("stream", int(k)) for k in RNG.integers(1, 12, size=2)]
          + [("rename", 1), ("rename", 2), ("commit", 1), ("commit", 2), ("commit", 3), ("summary", 1)])


@pytest.mark.parametrize("point, k", POINTS)
def test_a_run_killed_anywhere_resumes_to_the_uninterrupted_table(tmp_path, reference, point, k):
    study, ref = reference
    n = sweep.load_study(study).n_configs
    out = tmp_path / "cut"
    killed = _child(study, out, point, k)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    parts = sorted((out / ".partial").glob("chunk-*.parquet"))
    kept = sum(pl.read_parquet(p, columns=["idx"]).height for p in parts)
    again = _child(study, out, "none", 0)
    assert again.returncode == 0, again.stderr
    n_run, n_resumed = map(int, again.stdout.split())
    if point == "chunk":  # exactly the chunks on disk were skipped
        assert len(parts) >= k and n_resumed == kept and n_run == n - kept
    if point == "commit":  # the commit was finished, nothing computed
        assert n_run == 0
    assert_frame_equal(pl.read_parquet(out / "trials.parquet"), pl.read_parquet(ref / "trials.parquet"))
    assert json.loads((out / "summary.json").read_text()) == json.loads((ref / "summary.json").read_text())
    assert not (out / ".partial").exists() and not (out / ".lock").exists()
