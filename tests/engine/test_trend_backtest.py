"""Trend rules (SEMANTICS §11): the fast path against tests/reference_trend.py, to 1e-9.

ewmac and breakout on a generated panel with gaps, listings, delistings, funding,
volumes and market caps, over every parameter of §11.1 (fixed and "auto"
scalar, cap, vol_floor 0 and > 0, idm, vol_target, max_leverage on and off,
long_only), with the buffer, costs, funding on and off, hold, phase, the
universe filters and the regime of §5; then no lookahead, the published
scalars, the warm-up and the errors.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, assert_close
from reference_trend import BREAKOUT_SCALARS, EWMAC_SCALARS, reference_trend_backtest

import sweep
from sweep.core.errors import SweepError
from sweep.engine.params import resolve, warmup_days
from sweep.engine.workspace import Evaluator, feature_key
from sweep.factors import trend

SPEEDS = {"ewmac": {"fast": 4}, "breakout": {"window": 10}}  # published: 7.5 and 0.60 (smooth 2)
BASE = {"rebalance_days": 2, "fee_bps": 10.0, "slippage_bps": 5.0}

# Each case is one change (or a few that meet) over BASE; every one runs for both factors.
CASES = {
    "published scalar": {},
    "auto scalar": {"forecast_scalar": "auto", "scalar_min_periods": 15},
    "given scalar, other speed": {"fast": 3, "slow": 10, "window": 12, "smooth": 5, "forecast_scalar": 6.0},
    "fractional spans": {"fast": 2.5, "slow": 11.5, "vol_span": 12.5, "window": 9, "smooth": 3,
                         "forecast_scalar": 8.0},
    "cap binds": {"forecast_cap": 4.0},
    "no vol floor": {"vol_floor": 0.0},
    "high vol floor": {"vol_floor": 0.6},
    "idm and vol target": {"idm": 1.7, "vol_target": 0.35},
    "no leverage cap": {"max_leverage": "none", "idm": 6.0},
    "leverage cap binds": {"max_leverage": 0.25},
    "long only": {"long_only": True},
    "buffer": {"buffer": 0.1},
    "buffer, no costs, constant hold": {"buffer": 0.1, "fee_bps": 0.0, "slippage_bps": 0.0, "hold": "constant"},
    "no funding": {"funding": False},
    "phase": {"rebalance_days": 3, "phase": 1, "buffer": 0.1},
    "vol span": {"vol_span": 10.0, "vol_min_periods": 5},
    "universe": {"exclude": ["S001", "S004"], "top_by_market_cap": 8, "forecast_scalar": "auto",
                 "scalar_min_periods": 10},
    "liquidity": {"min_volume": "median", "volume_window": 10, "exclude": ["S003"], "forecast_scalar": "auto",
                  "scalar_min_periods": 10},
    "bear regime": {"regime": "bear", "regime_fast": 5, "regime_slow": 20, "market": "equal_weight",
                    "long_only": True, "max_leverage": 0.5},
    "bull regime, auto": {"regime": "bull", "regime_fast": 3, "regime_slow": 12, "market_symbol": "S000",
                          "forecast_scalar": "auto", "scalar_min_periods": 12, "buffer": 0.1},
}


@pytest.fixture(scope="module")
def panel():
    p = sweep.synth(n_symbols=12, n_days=300, seed=7)
    c = np.isfinite(p.close)
    restarts = (c[1:] & ~c[:-1]).sum() - (~c[0]).sum()  # runs starting after a gap, beyond the listings
    assert restarts > 0 and not c[0].all() and not c[-1].all(), "needs gaps, listings, delistings"
    return p


def _params(panel, factor, case):
    p = {"factor": factor, **BASE, **SPEEDS[factor], **CASES[case]}
    if factor == "ewmac":
        p = {k: v for k, v in p.items() if k not in ("window", "smooth")}
    else:
        p = {k: v for k, v in p.items() if k not in ("fast", "slow")}
    if p.get("min_volume") == "median":
        p["min_volume"] = float(np.nanmedian(panel.fields["volume"]))
    return p


def _reference(panel, resolved, s, e):
    rp = dict(resolved)
    rp["exclude"] = list(resolved["exclude"])
    rp["top_by_market_cap"] = resolved["top_by_market_cap"] or None
    rp["max_leverage"] = resolved["max_leverage"] or None  # the engine stores "none" as 0
    f = panel.fields
    return reference_trend_backtest(panel.dates, list(panel.symbols), panel.close, f.get("market_cap"),
                                    f.get("funding_rate"), rp, s, e, volume=f.get("volume"))


def _agree(fast, ref, case):
    for name, value in ref["metrics"].items():
        assert_close(fast.metrics[name], value, f"{name} of {case}")
    np.testing.assert_allclose(fast.returns["ret"].to_numpy(), ref["R"], rtol=1e-9, atol=1e-12, err_msg=case)
    np.testing.assert_allclose(fast.returns["ret_pre_cost"].to_numpy(), ref["R_pre"], rtol=1e-9, atol=1e-12,
                               err_msg=case)
    np.testing.assert_allclose(fast.weights.drop("date").to_numpy(), ref["weights"], rtol=1e-9, atol=1e-12,
                               err_msg=case)


@pytest.mark.parametrize("factor", list(SPEEDS))
@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_matches_reference(panel, factor, case):
    params = _params(panel, factor, case)
    fast = sweep.backtest(panel, return_weights=True, **params)  # default start: W of §11.9
    T = panel.shape[0]
    s = T - fast.returns.height
    assert s == warmup_days(fast.params)
    ref = _reference(panel, fast.params, s, T - 1)
    _agree(fast, ref, f"{factor}: {case}")
    assert fast.metrics["avg_gross_exposure"] > 0.01, "the agreement would be hollow without positions"
    # The case's parameter does reach the numbers (checked on the reference's own arrays).
    rp = fast.params
    targets = [w for w in ref["target"].values() if np.abs(w).sum() > 0]
    if case == "cap binds":
        assert np.nanmax(np.abs(ref["f"])) == rp["forecast_cap"]
    if case == "high vol floor":
        assert (ref["sigma"] == 0.6 / math.sqrt(365)).sum() > 100
    if case == "leverage cap binds":
        assert any(abs(np.abs(w).sum() - 0.25) < 1e-12 for w in targets)
    if case == "no leverage cap":
        assert max(np.abs(w).sum() for w in targets) > 2.0
    if rp["long_only"]:
        assert fast.metrics["avg_short"] == 0.0 and min(w.min() for w in targets) == 0.0
    if rp["forecast_scalar"] == "auto":
        first = int(np.argmax(np.isfinite(ref["scalar"])))
        assert first == s  # no scalar before W: never backfilled
    if case.startswith("bear"):
        assert 0 < len(targets) < len(ref["target"]), "the regime must both hold and not hold"


def test_trend_arrays_are_shared_across_a_study(panel):
    """EWMAs, volatilities and breakout ranges: one kernel call per distinct span / window."""
    fresh = sweep.synth(n_symbols=6, n_days=200, seed=3)
    ev = Evaluator(fresh)
    configs = [resolve({"factor": "ewmac", "fast": f, "buffer": b, "vol_floor": v})
               for f in (2, 8) for b in (0.0, 0.1) for v in (0.0, 0.05)]
    configs += [resolve({"factor": "breakout", "window": 10, "idm": i}) for i in (1.0, 2.0)]
    ev.run(configs, 70, 199)
    keys = trend.cache_keys(fresh)
    assert sorted(k[1] for k in keys if k[0] == "ewma") == [2.0, 8.0, 32.0]  # 2/8 and 8/32 share EWMA_8
    assert [k for k in keys if k[0] == "sigma_raw"] == [("sigma_raw", 35.0, 10)]
    assert [k for k in keys if k[0] == "breakout_b"] == [("breakout_b", 10)]
    assert sorted(k[1:] for k in keys if k[0] == "sigma") == [(35.0, 10, 0.0), (35.0, 10, 0.05)]


@pytest.mark.parametrize("params", [
    {"factor": "ewmac", "fast": 4},
    {"factor": "ewmac", "fast": 4, "forecast_scalar": "auto", "scalar_min_periods": 20, "regime": "bear",
     "regime_fast": 5, "regime_slow": 20, "market": "equal_weight", "buffer": 0.1},
    {"factor": "breakout", "window": 10},
    {"factor": "breakout", "window": 10, "forecast_scalar": "auto", "scalar_min_periods": 20,
     "min_volume": 1e6, "volume_window": 5, "long_only": True},
])
def test_no_lookahead(panel, params):
    """Changing every value after day t leaves forecasts, weights and returns up to t bit-identical."""
    params = {**params, "rebalance_days": 1, "fee_bps": 10.0}
    base = sweep.backtest(panel, return_weights=True, **params)
    T = panel.shape[0]
    s = T - base.returns.height
    key = feature_key(base.params)
    rf = sweep.factors.compute(panel, key)
    rng = np.random.default_rng(11)
    for t in (s + 3, 150, T - 2):
        fields = {name: arr.copy() for name, arr in panel.fields.items()}
        for arr in fields.values():
            future = arr[t + 1:]
            future[:] = np.where(np.isfinite(future), np.abs(future) * rng.lognormal(0, 0.5, future.shape), future)
        close = fields.pop("close")
        changed = sweep.panel_from_arrays(panel.dates, panel.symbols, close, **fields)
        alt = sweep.backtest(changed, return_weights=True, **params)
        d = t - s + 1
        assert np.array_equal(base.weights.drop("date").to_numpy()[:d], alt.weights.drop("date").to_numpy()[:d])
        assert np.array_equal(base.returns["ret"].to_numpy()[:d], alt.returns["ret"].to_numpy()[:d])
        if np.abs(base.weights.drop("date").to_numpy()[d - 1]).sum() > 0:  # ... and the future does reach later days
            assert not np.array_equal(base.returns["ret"].to_numpy()[d:], alt.returns["ret"].to_numpy()[d:])
        alt_rf = sweep.factors.compute(changed, key)
        np.testing.assert_array_equal(rf[:t + 1], alt_rf[:t + 1])


def test_published_scalars():
    for (fast, slow), value in EWMAC_SCALARS.items():
        assert resolve({"factor": "ewmac", "fast": fast, "slow": slow})["forecast_scalar"] == value
        assert resolve({"factor": "ewmac", "fast": fast})["forecast_scalar"] == value  # slow = 4 * fast
        assert resolve({"factor": "ewmac", "fast": float(fast)})["forecast_scalar"] == value
    for window, value in BREAKOUT_SCALARS.items():
        assert resolve({"factor": "breakout", "window": window})["forecast_scalar"] == value
        assert resolve({"factor": "breakout", "window": window})["smooth"] == window // 4
    p = resolve({"factor": "ewmac"})
    assert (p["fast"], p["slow"], p["forecast_scalar"]) == (16.0, 64.0, 3.75)
    p = resolve({"factor": "breakout"})
    assert (p["window"], p["smooth"], p["forecast_scalar"]) == (80, 20, 0.73)
    assert resolve({"factor": "breakout", "window": 2, "forecast_scalar": 1})["smooth"] == 1  # max(floor(2/4), 1)
    # A given scalar wins; "auto" stays "auto".
    assert resolve({"factor": "ewmac", "forecast_scalar": 5})["forecast_scalar"] == 5.0
    assert resolve({"factor": "ewmac", "fast": 5, "forecast_scalar": "auto"})["forecast_scalar"] == "auto"
    assert resolve({"factor": "breakout", "window": 80, "smooth": 10, "forecast_scalar": 0.5})["forecast_scalar"] == 0.5


@pytest.mark.parametrize("params,needle", [
    ({"factor": "ewmac", "fast": 16, "slow": 50}, "ewmac fast = 16, slow = 50 has no published forecast scalar"),
    ({"factor": "ewmac", "fast": 5}, "ewmac fast = 5, slow = 20 has no published forecast scalar"),
    ({"factor": "breakout", "window": 80, "smooth": 10}, "breakout window = 80, smooth = 10 has no published"),
    ({"factor": "breakout", "window": 30}, "breakout window = 30, smooth = 7 has no published"),
    ({"factor": "ewmac", "fast": 8, "slow": 8}, "1 <= fast < slow"),
    ({"factor": "ewmac", "fast": 0.5, "slow": 8}, "fast = 0.5 is below the minimum 1"),
    ({"factor": "breakout", "window": 10, "smooth": 10, "forecast_scalar": 1.0}, "1 <= smooth < window"),
    ({"factor": "breakout", "window": 1}, "window = 1 is below the minimum 2"),
    ({"factor": "ewmac", "forecast_scalar": -1}, 'forecast_scalar = -1 must be a positive number, "auto" or "published"'),
    ({"factor": "ewmac", "forecast_scalar": "automatic"}, "forecast_scalar = 'automatic' must be"),
    ({"factor": "ewmac", "max_leverage": "unlimited"}, 'max_leverage = \'unlimited\' must be a number >= 0 or "none"'),
    ({"factor": "ewmac", "vol_min_periods": 1}, "vol_min_periods = 1 is below the minimum 2"),
    ({"factor": "ewmac", "idm": 0}, "idm = 0.0 must be positive"),
    ({"factor": "ewmac", "long_only": 1}, "long_only = 1 must be true or false"),
])
def test_bad_trend_parameters_are_one_line(params, needle):
    with pytest.raises(SweepError) as exc:
        resolve(params, "study.toml: [backtest]")
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_max_leverage_none_is_stored_as_zero():
    assert resolve({"factor": "ewmac", "max_leverage": "none"})["max_leverage"] == 0.0
    assert resolve({"factor": "ewmac", "max_leverage": None})["max_leverage"] == 0.0
    assert resolve({"factor": "ewmac"})["max_leverage"] == 2.0


def test_warmup_days():
    assert warmup_days(resolve({"factor": "ewmac"})) == 64
    assert warmup_days(resolve({"factor": "breakout"})) == 100
    assert warmup_days(resolve({"factor": "ewmac", "fast": 2})) == 10  # vol_min_periods > slow = 8
    assert warmup_days(resolve({"factor": "ewmac", "fast": 2.5, "slow": 9.5, "forecast_scalar": 1.0})) == 10
    assert warmup_days(resolve({"factor": "ewmac", "fast": 4, "slow": 16.5, "forecast_scalar": 1.0})) == 17
    assert warmup_days(resolve({"factor": "ewmac", "forecast_scalar": "auto"})) == 64 + 499
    assert warmup_days(resolve({"factor": "breakout", "forecast_scalar": "auto", "scalar_min_periods": 30})) == 129
    # Risk parity's vol_window is not read by a trend rule; the regime's slow average is.
    assert warmup_days(resolve({"factor": "ewmac", "fast": 2, "weighting": "risk_parity", "vol_window": 90})) == 10
    assert warmup_days(resolve({"factor": "ewmac", "regime": "bear"})) == 200


def test_first_forecast_of_a_symbol_listed_on_day_zero_is_day_w(panel):
    for params in ({"factor": "ewmac", "fast": 4}, {"factor": "breakout", "window": 10}):
        p = resolve(params)
        rf = sweep.factors.compute(panel, feature_key(p))
        listed = np.isfinite(panel.close[: warmup_days(p) + 1]).all(axis=0)
        assert listed.any()
        first = np.argmax(np.isfinite(rf[:, listed]), axis=0)
        assert (first == warmup_days(p)).all()


def test_speed_without_published_scalar_exits_2(tmp_path):
    study = tmp_path / "trend.toml"
    study.write_text(f'[study]\ndata = "{ROOT / "data" / "crypto_daily.parquet"}"\n\n'
                     '[backtest]\nfactor = "ewmac"\n\n[grid]\nfast = [4, 5]\n')
    out = subprocess.run([sys.executable, "-m", "sweep", "validate", str(study)], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and out.stdout == ""
    assert str(study) in lines[0] and "fast=5" in lines[0] and "no published forecast scalar" in lines[0]


def test_ewmac_buffer_study_validates_and_runs(tmp_path):
    study = sweep.load_study(ROOT / "studies" / "ewmac_buffer.toml")
    assert study.axes["fast"] == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0] and study.axes["buffer"] == [0.0, 0.1]
    configs = study.resolved_configs()
    assert {(p["fast"], p["slow"]) for p in configs} == set(EWMAC_SCALARS)
    # A reduced copy (two speeds, a year of data) runs through the study runner.
    text = (ROOT / "studies" / "ewmac_buffer.toml").read_text()
    text = text.replace("fast = [2, 4, 8, 16, 32, 64]", "fast = [2, 4]")
    text = text.replace(f'data = "{study.data}"', f'data = "{ROOT / study.data}"\nend = "2018-06-30"')
    small = tmp_path / "ewmac_small.toml"
    small.write_text(text)
    res = sweep.run_study(sweep.load_study(small), out=tmp_path / "out", jobs=1, progress=False)
    import polars as pl

    trials = pl.read_parquet(next((tmp_path / "out").rglob("trials.parquet")))
    assert trials.height == 4 and {"sharpe", "sharpe_pre_cost", "fast", "buffer"} <= set(trials.columns)
    assert (trials["sharpe_pre_cost"] >= trials["sharpe"]).all()  # costs only cost
    assert res is not None


def test_a_grid_mixing_auto_and_numbers_writes_one_string_column(tmp_path):
    import polars as pl

    study = tmp_path / "mixed.toml"
    study.write_text(f'[study]\ndata = "{ROOT / "data" / "crypto_daily.parquet"}"\nend = "2018-03-31"\n\n'
                     '[backtest]\nfactor = "ewmac"\nfast = 4\nscalar_min_periods = 60\n\n'
                     '[grid]\nforecast_scalar = [7.5, "auto"]\nmax_leverage = ["none", 0.5]\n')
    sweep.run_study(sweep.load_study(study), out=tmp_path / "out", jobs=1, progress=False)
    trials = pl.read_parquet(tmp_path / "out" / "trials.parquet")
    assert trials["forecast_scalar"].to_list() == ["7.5", "7.5", "auto", "auto"]
    assert trials["max_leverage"].to_list() == [0.0, 0.5, 0.0, 0.5]
    # A row read back resolves to the configuration that was run.
    row = trials.row(0, named=True)
    p = resolve({"factor": "ewmac", "fast": 4, "scalar_min_periods": 60, "forecast_scalar": row["forecast_scalar"],
                 "max_leverage": row["max_leverage"]})
    assert p["forecast_scalar"] == 7.5 and sweep.engine.params.config_id(p) == row["config_id"]
