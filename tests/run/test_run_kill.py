"""kill -9 of a Monte Carlo and of a walk-forward run once its first chunk is on disk, then the
same command again: the tables equal those of an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep

MONTE_CARLO = """
[study]
name = "mc"
kind = "monte_carlo"
data = "{data}"

[backtest]
factor = "momentum"
window = 10

[grid]
rebalance_days = [1, 5]

[monte_carlo]
method = "block_bootstrap"
n_samples = 8
seed = 3
block_days = 5
"""

WALK_FORWARD = """
[study]
name = "wf"
kind = "walk_forward"
data = "{data}"

[backtest]
factor = "volatility"

[grid]
window = [5, 10]
rebalance_days = [1, 7]

[walk_forward]
train_days = 40
test_days = 20
"""


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "panel.parquet"
    sweep.synth_panel(n_symbols=12, n_days=220, seed=4).write_parquet(path)
    return path


def _kill_after_first_chunk(path, out):
    """Run in a child that SIGKILLs itself once the first chunk file has landed."""
    script = textwrap.dedent(f"""
        import os, signal, sweep
        def kill(n):
            os.kill(os.getpid(), signal.SIGKILL)
        sweep.run_study(sweep.load_study({str(path)!r}), out={str(out)!r}, jobs=1, progress=False,
                        on_chunk=kill)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _rerun(path, out):
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(path), "--out", str(out), "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("text, chunk, tables", [
    (MONTE_CARLO, "chunk-*.parquet", ("samples.parquet", "summary.parquet")),
    (WALK_FORWARD, "fold-*.json", ("folds.parquet", "oos_returns.parquet")),
])
def test_killed_run_resumes_to_the_uninterrupted_tables(tmp_path, data_file, text, chunk, tables):
    path = tmp_path / "study.toml"
    path.write_text(text.format(data=data_file))
    ref = tmp_path / "ref"
    full = sweep.run_study(sweep.load_study(path), out=ref, jobs=2, progress=False)
    out = tmp_path / "cut"
    _kill_after_first_chunk(path, out)
    kept = list((out / ".partial").glob(chunk))
    assert kept, "the first chunk reached the disk before the kill"
    assert not (out / "manifest.json").exists() and not (out / tables[0]).exists()
    _rerun(path, out)
    for name in tables:
        assert_frame_equal(pl.read_parquet(out / name), pl.read_parquet(ref / name))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fingerprint"] == json.loads((ref / "manifest.json").read_text())["fingerprint"]
    # Work was resumed, not redone: the chunks kept before the kill count as resumed.
    if text is MONTE_CARLO:
        assert 0 < manifest["backtests_resumed"] < full.n_configs
        assert manifest["backtests_run"] + manifest["backtests_resumed"] == full.n_configs
    else:
        assert 0 < manifest["configurations_resumed"] < full.n_configs
        assert json.loads((out / "summary.json").read_text()) == json.loads((ref / "summary.json").read_text())
    assert not (out / ".partial").exists() and not (out / ".lock").exists()
