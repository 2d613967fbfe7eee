"""summary.json of a grid (the overfitting statistics) and `sweep show --best-per`."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import sweep
from kernels.cscv import block_moments
from sweep.stats.best_per import best_per, stationary_indices
from sweep.stats.overfit import overfitting_summary

STUDY = """
[study]
name = "per_factor"
objective = "sharpe"
data = "{data}"

[backtest]
fee_bps = 10
window = 10

[grid]
factor = ["volatility", "momentum"]
rebalance_days = [1, 2, 3, 5]
phase = "all"
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("summary")
    data = tmp / "panel.parquet"
    sweep.synth_panel(n_symbols=15, n_days=300, seed=9).write_parquet(data)
    study = tmp / "per_factor.toml"
    study.write_text(STUDY.format(data=data))
    sweep.run_study(sweep.load_study(study), out=tmp / "out", jobs=2, progress=False, save_returns=True)
    return tmp / "out"


def test_every_phase_expands_per_rebalance_period(run):
    trials = pl.read_parquet(run / "trials.parquet")
    assert trials.height == 2 * (1 + 2 + 3 + 5)
    for k in (1, 2, 3, 5):
        phases = trials.filter((pl.col("factor") == "momentum") & (pl.col("rebalance_days") == k))["phase"]
        assert sorted(phases.to_list()) == list(range(k))


def test_summary_equals_statistics_of_the_saved_returns(run):
    """The runner's in-kernel block moments and best series give what the saved returns give."""
    trials = pl.read_parquet(run / "trials.parquet")
    rets = pl.read_parquet(run / "returns.parquet")
    ids = trials["config_id"].to_list()
    matrix = np.vstack([rets.filter(pl.col("config_id") == i).sort("date")["ret"].to_numpy() for i in ids])
    sums, sumsq, counts = block_moments(matrix, 16)
    best = int(np.nanargmax(trials["sharpe"].to_numpy()))
    expected = overfitting_summary(matrix[best], trials["sharpe"].to_numpy(), sums, sumsq, counts)
    got = json.loads((run / "summary.json").read_text())
    assert got["best"]["config_id"] == ids[best]
    for key in ("dsr", "psr", "expected_max_sharpe", "min_backtest_years", "skewness", "kurtosis"):
        assert got["overfitting"][key] == pytest.approx(expected[key], rel=1e-9), key
    assert got["overfitting"]["pbo"]["pbo"] == pytest.approx(expected["pbo"]["pbo"], abs=1e-12)


def test_best_per_factor(run):
    trials = pl.read_parquet(run / "trials.parquet")
    table = best_per(run, "factor")
    assert table["factor"].to_list() == ["volatility", "momentum"]
    for row in table.iter_rows(named=True):
        group = trials.filter(pl.col("factor") == row["factor"])
        assert row["sharpe"] == pytest.approx(group["sharpe"].max())
        assert row["n_configs"] == group.height
        best_k = group.sort("sharpe", descending=True)["rebalance_days"][0]
        runner = group.filter(pl.col("rebalance_days") != best_k).sort("sharpe", descending=True).row(0, named=True)
        assert row["runner_up_sharpe"] == pytest.approx(runner["sharpe"])
        assert row["runner_up_rebalance_days"] == runner["rebalance_days"]
        # The interval is of a difference the point estimate sits in more often than not.
        assert row["diff_q05"] < row["diff_q95"]
        assert 0.0 <= row["dsr"] <= 1.0


def test_stationary_bootstrap_indices():
    rng = np.random.default_rng(1)
    idx = stationary_indices(500, 200, 20.0, rng)
    assert idx.shape == (200, 500) and idx.min() >= 0 and idx.max() < 500
    # A block continues with the next day (wrapping); new blocks start at rate 1/20.
    follows = idx[:, 1:] == (idx[:, :-1] + 1) % 500
    assert 1.0 / (1.0 - follows.mean()) == pytest.approx(20.0, rel=0.1)
    whole = stationary_indices(50, 3, 1e12, np.random.default_rng(2))
    for row in whole:  # one block: a rotation of the days
        assert np.array_equal(row, (np.arange(50) + row[0]) % 50)


def test_show_best_per_prints_every_factor(run):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "sweep", "show", str(run), "--best-per", "factor"],
                          capture_output=True, text=True, env={"COLUMNS": "250", "PATH": ""})
    assert proc.returncode == 0, proc.stderr
    assert "volatility" in proc.stdout and "momentum" in proc.stdout
    assert "Deflated Sharpe ratio" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "sweep", "show", str(run), "--best-per", "weighting"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "weighting" in bad.stderr and "Traceback" not in bad.stderr
