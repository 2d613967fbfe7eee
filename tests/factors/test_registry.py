"""The factor registry: SEMANTICS §4's defaults, cache keys, checks and registration rules."""

from __future__ import annotations

import numpy as np
import pytest

import sweep
from sweep import factors
from sweep.core.errors import SweepError
from sweep.engine.params import resolve
from sweep.engine.workspace import Workspace, feature_key


def test_builtins_and_defaults():
    assert factors.names() == ("volatility", "kurtosis", "skewness", "beta", "carry", "size", "momentum",
                               "mean_reversion", "days_from_high", "ewmac", "breakout")  # SEMANTICS §4, §11
    assert sweep.FACTORS is factors.FACTORS
    defaults = {n: (f.window, f.long) for n, f in factors.FACTORS.items()}
    assert defaults["mean_reversion"] == (3, "low") and defaults["size"] == (None, "low")
    assert defaults["days_from_high"] == (200, None) and defaults["beta"] == (90, "low")
    assert factors.get("carry").needs == ("funding_rate",)


def test_cache_keys_share_what_is_shared():
    mr = resolve({"factor": "mean_reversion", "window": 7})
    mom = resolve({"factor": "momentum", "window": 7})
    assert feature_key(mr) == feature_key(mom)  # one momentum feature for both factors
    assert feature_key(resolve({"factor": "size", "window": 5})) == feature_key(resolve({"factor": "size"}))
    b_ew = resolve({"factor": "beta", "market": "equal_weight", "market_symbol": "ETH"})
    assert feature_key(b_ew) == feature_key(b_ew | {"market_symbol": "SOL"})  # symbol unread
    b_sym = resolve({"factor": "beta", "market_symbol": "ETH"})
    assert feature_key(b_sym) != feature_key(b_sym | {"market_symbol": "SOL"})


def test_feature_through_registry_equals_numpy(small_panel):
    l = small_panel.log_returns
    vol = Workspace(small_panel).vol(10)
    want = np.full_like(l, np.nan)
    for t in range(9, l.shape[0]):
        want[t] = np.std(l[t - 9:t + 1], axis=0, ddof=1)
    ok = np.isfinite(want)
    np.testing.assert_array_equal(np.isfinite(vol), ok)
    np.testing.assert_allclose(vol[ok], want[ok], rtol=1e-9, atol=1e-12)


def test_checks_name_the_missing_column_and_symbol(small_panel):
    ws = Workspace(sweep.panel_from_frame(
        sweep.synth_panel(n_symbols=5, n_days=30, seed=1).drop("funding_rate"), "nofund"))
    with pytest.raises(SweepError, match="carry factor.*'funding_rate'"):
        ws.check(resolve({"factor": "carry"}), "here")
    with pytest.raises(SweepError, match="market_symbol = 'NOPE'"):
        Workspace(small_panel).check(resolve({"factor": "beta", "market_symbol": "NOPE"}), "here")


def test_register_rules():
    with pytest.raises(SweepError, match="cache key 'momentum' belongs to 'momentum'"):
        factors.register(factors.Factor("fake", np.negative, key="momentum"))
    with pytest.raises(SweepError, match="long"):
        factors.register(factors.Factor("fake", np.negative, long="up"))
    with pytest.raises(SweepError, match="unknown factor 'fake'"):
        factors.get("fake")
    with pytest.raises(SweepError, match="factor = 'fake' is not one of"):
        resolve({"factor": "fake"})


def test_register_then_unregister_restores_choices():
    try:
        factors.register(factors.Factor("tmp_size", lambda panel: -panel.close, window=None, long="high"))
        p = resolve({"factor": "tmp_size", "window": 9})
        assert p["window"] == 0 and p["long"] == "high" and feature_key(p) == ("tmp_size",)
    finally:
        factors.unregister("tmp_size")
    with pytest.raises(SweepError):
        resolve({"factor": "tmp_size"})


def test_feature_of_the_wrong_shape_is_one_line(small_panel):
    try:
        factors.register(factors.Factor("short_rows", lambda panel, window: panel.close[window:]))
        with pytest.raises(SweepError, match=r"factor 'short_rows': its feature has shape \(250, 20\)"):
            Workspace(small_panel).feature(feature_key(resolve({"factor": "short_rows", "window": 10})))
    finally:
        factors.unregister("short_rows")
