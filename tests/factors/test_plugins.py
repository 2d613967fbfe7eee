"""A researcher's own factor and metric, registered from a test module, run by a grid study.

The factor is momentum negated, computed with numpy (not the kernels): with its
default long side flipped to "low" it must hold the books of momentum (long
"high"), day for day. The metric is the median daily net return, which the
trials table must report for every configuration as numpy's median of that
configuration's own ``sweep.backtest`` series.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import sweep
from sweep import factors, metrics

STUDY = """
[study]
name = "plugins"
objective = "sharpe"
data = "{data}"

[backtest]
fee_bps = 10

[grid]
factor = ["momentum", "neg_momentum"]
window = [5, 12]
rebalance_days = [1, 3]
weighting = ["equal", "risk_parity"]
"""


def neg_momentum(panel, window):
    """``-sum`` of the last ``window`` log returns; NaN unless all ``window`` are present."""
    logret = np.log(panel.close[1:] / panel.close[:-1])
    logret = np.vstack([np.full((1, logret.shape[1]), np.nan), logret])
    out = np.full(logret.shape, np.nan)
    out[window - 1:] = -sliding_window_view(logret, window, axis=0).sum(axis=-1)
    return out


@pytest.fixture(scope="module")
def plugins():
    factors.register(factors.Factor("neg_momentum", neg_momentum, window=30, long="low"))
    metrics.register("median_ret", np.median, direction="max", label="median daily return", percent=True)
    yield
    # Later tests must see the built-in registries only.
    factors.unregister("neg_momentum")
    metrics.unregister("median_ret")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "panel.parquet"
    sweep.synth_panel(n_symbols=16, n_days=220, seed=11).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def trials(plugins, data_file, tmp_path_factory):
    study_file = tmp_path_factory.mktemp("study") / "plugins.toml"
    study_file.write_text(STUDY.format(data=data_file))
    out = tmp_path_factory.mktemp("out")
    sweep.run_study(sweep.load_study(study_file), out=out, progress=False, jobs=2)
    table = pl.read_parquet(out / "trials.parquet")
    # Every configuration of a grid shares the study's evaluation window (SEMANTICS §7).
    window = json.loads((out / "manifest.json").read_text())["evaluation_window"]
    return table.with_columns(pl.lit(window["start"]).alias("start"), pl.lit(window["end"]).alias("end"))


def _params(row: dict) -> dict:
    return {k: row[k] for k in ("factor", "window", "rebalance_days", "weighting", "start", "end")} | {"fee_bps": 10.0}


def test_registered_names_are_public(plugins):
    assert "neg_momentum" in sweep.FACTORS and "neg_momentum" in factors.names()
    assert metrics.names()[-1] == "median_ret" and not metrics.lower_is_better("median_ret")
    assert sweep.PARAMETERS["factor"][0] == "choice"


def test_feature_equals_negated_momentum(plugins):
    panel = sweep.synth(n_symbols=8, n_days=60, seed=2)
    mine = factors.compute(panel, factors.get("neg_momentum").cache_key({"window": 7}))
    theirs = factors.compute(panel, factors.get("momentum").cache_key({"window": 7}))
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(theirs))
    np.testing.assert_allclose(mine, -theirs, rtol=1e-12, atol=1e-15)


def test_factor_books_equal_momentum_flipped(trials, data_file):
    panel = sweep.load_panel(data_file)
    mine = trials.filter(pl.col("factor") == "neg_momentum")
    assert mine.height == 8
    for row in mine.iter_rows(named=True):
        p = _params(row)
        ours = sweep.backtest(panel, **p)
        assert ours.params["long"] == "low"  # the factor's own default side
        ref = sweep.backtest(panel, **(p | {"factor": "momentum", "long": "high"}))
        np.testing.assert_allclose(ours.returns["ret"].to_numpy(), ref.returns["ret"].to_numpy(),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.returns["turnover"].to_numpy(), ref.returns["turnover"].to_numpy(),
                                   rtol=1e-9, atol=1e-12)
        # The table's row is the backtest's.
        for m in ("sharpe", "total_return", "turnover", "n_rebalances"):
            assert row[m] == pytest.approx(ours.metrics[m], rel=1e-9, abs=1e-12), m


def test_metric_column_is_numpy_median(trials, data_file):
    panel = sweep.load_panel(data_file)
    assert "median_ret" in trials.columns and trials.height == 16
    for row in trials.iter_rows(named=True):
        ret = sweep.backtest(panel, **_params(row)).returns["ret"].to_numpy()
        assert row["median_ret"] == pytest.approx(float(np.median(ret)), rel=1e-12, abs=1e-15)
    assert trials["median_ret"].n_unique() > 4  # distinct books, not one value broadcast


def test_metric_in_backtest_result(plugins):
    res = sweep.backtest(sweep.synth(n_symbols=10, n_days=120, seed=3), factor="neg_momentum", window=9)
    assert res.metrics["median_ret"] == float(np.median(res.returns["ret"].to_numpy()))
