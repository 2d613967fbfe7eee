"""The grid runner: result tables, determinism across --jobs, interruption and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep
from sweep.results import SCHEMA_VERSION

STUDY = """
[study]
name = "tiny"
objective = "sharpe"
data = "{data}"

[backtest]
fee_bps = 10
exclude = ["S003"]

[grid]
factor = ["volatility", "momentum"]
rebalance_days = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
window = [5, 10]
weighting = ["equal", "risk_parity"]
"""
N_CONFIGS = 2 * 16 * 2 * 2


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "panel.parquet"
    sweep.synth_panel(n_symbols=15, n_days=200, seed=5).write_parquet(path)
    return path


@pytest.fixture
def study_file(tmp_path, data_file):
    path = tmp_path / "tiny.toml"
    path.write_text(STUDY.format(data=data_file))
    return path


def _run(study_file, out, **kw):
    return sweep.run_study(sweep.load_study(study_file), out=out, progress=False, **kw)


def test_trials_table_matches_single_backtests(study_file, tmp_path, data_file):
    summary = _run(study_file, tmp_path / "out", jobs=2)
    trials = pl.read_parquet(tmp_path / "out" / "trials.parquet")
    assert summary.n_configs == N_CONFIGS == trials.height
    assert trials.columns[:6] == ["config_id", "factor", "rebalance_days", "window", "weighting", "fee_bps"]
    assert set(sweep.METRICS) <= set(trials.columns)
    assert (trials["schema_version"] == SCHEMA_VERSION).all()
    assert trials["config_id"].n_unique() == N_CONFIGS
    # Enumeration order: the last axis varies fastest.
    assert trials["weighting"].head(2).to_list() == ["equal", "risk_parity"]
    # A row equals the one-off backtest of its parameters on the shared evaluation window.
    panel = sweep.load_panel(data_file)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    start = manifest["evaluation_window"]["start"]
    assert start == str(panel.dates[30])  # W: risk_parity reads volatility(vol_window = 30)
    for row in trials.sample(6, seed=1).iter_rows(named=True):
        res = sweep.backtest(panel, start=start, factor=row["factor"], window=row["window"],
                             weighting=row["weighting"], rebalance_days=row["rebalance_days"],
                             fee_bps=10, exclude=["S003"])
        assert res.config_id == row["config_id"]
        for m in sweep.METRICS:
            assert res.metrics[m] == pytest.approx(row[m], rel=1e-12, abs=1e-15, nan_ok=True), m
    assert manifest["configurations"] == N_CONFIGS
    assert manifest["data"]["fingerprint"] == panel.fingerprint
    assert {"sweep", "numba", "polars", "numpy"} <= set(manifest["versions"])
    assert not (tmp_path / "out" / ".partial").exists()


def test_jobs_1_and_2_give_identical_tables(study_file, tmp_path):
    _run(study_file, tmp_path / "a", jobs=1)
    _run(study_file, tmp_path / "b", jobs=2)
    a = pl.read_parquet(tmp_path / "a" / "trials.parquet")
    b = pl.read_parquet(tmp_path / "b" / "trials.parquet")
    assert_frame_equal(a, b)  # exact: no tolerance


def test_interrupted_run_resumes_to_the_same_table(study_file, tmp_path):
    _run(study_file, tmp_path / "full", jobs=1)

    def stop_after_two(n_written):
        if n_written == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(study_file, tmp_path / "cut", jobs=1, on_chunk=stop_after_two)
    assert not (tmp_path / "cut" / "trials.parquet").exists()
    assert len(list((tmp_path / "cut" / ".partial").glob("chunk-*.parquet"))) == 2
    summary = _run(study_file, tmp_path / "cut", jobs=2)
    assert summary.n_resumed > 0 and summary.n_run + summary.n_resumed == N_CONFIGS
    assert_frame_equal(pl.read_parquet(tmp_path / "full" / "trials.parquet"),
                       pl.read_parquet(tmp_path / "cut" / "trials.parquet"))


def test_killed_process_resumes_to_the_same_table(study_file, tmp_path):
    """SIGKILL (no cleanup at all) after two chunks, then `sweep run` again."""
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os, signal, sweep
        def kill(n):
            if n == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        sweep.run_study(sweep.load_study({str(study_file)!r}), out={str(out)!r}, jobs=1,
                        progress=False, on_chunk=kill)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "trials.parquet").exists()
    assert not [f for f in (out / ".partial").iterdir() if ".tmp-" in f.name]
    rerun = subprocess.run([sys.executable, "-m", "sweep", "run", str(study_file), "--out", str(out), "--quiet"],
                           capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    _run(study_file, tmp_path / "full", jobs=1)
    assert_frame_equal(pl.read_parquet(tmp_path / "full" / "trials.parquet"),
                       pl.read_parquet(out / "trials.parquet"))


def test_changed_study_is_refused_unless_forced(study_file, tmp_path):
    out = tmp_path / "out"
    _run(study_file, out, jobs=1)
    before = (out / "trials.parquet").read_bytes()
    again = _run(study_file, out, jobs=1)  # same study, same data: nothing to do
    assert again.n_run == 0 and (out / "trials.parquet").read_bytes() == before
    study_file.write_text(study_file.read_text().replace("fee_bps = 10", "fee_bps = 20"))
    with pytest.raises(sweep.SweepError, match="different study"):
        _run(study_file, out, jobs=1)
    assert (out / "trials.parquet").read_bytes() == before
    _run(study_file, out, jobs=1, force=True)
    assert pl.read_parquet(out / "trials.parquet")["fee_bps"].unique().to_list() == [20.0]


def test_save_returns_matches_backtest_series(study_file, tmp_path, data_file):
    out = tmp_path / "out"
    _run(study_file, out, jobs=2, save_returns=True)
    trials = pl.read_parquet(out / "trials.parquet")
    rets = pl.read_parquet(out / "returns.parquet")
    assert rets.columns == ["config_id", "date", "ret"]
    n_days = rets.filter(pl.col("config_id") == trials["config_id"][0]).height
    assert rets.height == N_CONFIGS * n_days
    row = trials.row(37, named=True)
    panel = sweep.load_panel(data_file)
    res = sweep.backtest(panel, start=rets["date"].min(), factor=row["factor"], window=row["window"],
                         weighting=row["weighting"], rebalance_days=row["rebalance_days"],
                         fee_bps=10, exclude=["S003"])
    mine = rets.filter(pl.col("config_id") == row["config_id"]).sort("date")
    assert mine["date"].to_list() == res.returns["date"].to_list()
    # Same kernel, but compiled into two call sites: LLVM may round the last bit differently.
    np.testing.assert_allclose(mine["ret"].to_numpy(), res.returns["ret"].to_numpy(), rtol=1e-12, atol=1e-15)
    # The total return in the table is the compounded daily series.
    assert np.prod(1 + mine["ret"].to_numpy()) - 1 == pytest.approx(row["total_return"], rel=1e-12)


def test_show_prints_the_best_configuration(study_file, tmp_path):
    out = tmp_path / "out"
    _run(study_file, out, jobs=1)
    trials = pl.read_parquet(out / "trials.parquet")
    best = trials.sort("sharpe", descending=True, nulls_last=True).row(0, named=True)
    proc = subprocess.run([sys.executable, "-m", "sweep", "show", str(out), "--top", "3"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert best["config_id"][:6] in proc.stdout
    assert f"{best['sharpe']:.3f}" in proc.stdout
    by_vol = trials.sort("ann_vol").row(0, named=True)
    proc = subprocess.run([sys.executable, "-m", "sweep", "show", str(out), "--by", "ann_vol", "--top", "1"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert by_vol["config_id"][:6] in proc.stdout
