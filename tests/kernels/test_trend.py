"""kernels/trend.py against pandas and hand-worked numbers (SEMANTICS §11).

Averages over runs are checked run by run against pandas ``ewm(span=...,
adjust=True)`` on the run alone (a gap restarts the average, §11.3), the
breakout range against ``rolling(window).max()/.min()`` per run, the scalar
against numpy's median and an expanding mean, the targets against arithmetic.
"""

import math

import numpy as np
import pandas as pd
import pytest
from conftest import assert_panels_close

from kernels import trend as K

nan = np.nan


def _runs(col):
    """(start, stop) of each maximal stretch of finite values of ``col``."""
    out = []
    t = 0
    while t < len(col):
        if not np.isfinite(col[t]):
            t += 1
            continue
        u = t
        while u < len(col) and np.isfinite(col[u]):
            u += 1
        out.append((t, u))
        t = u
    return out


def _per_run(y, fn):
    """``fn(pandas Series of one run) -> array`` applied run by run; NaN off the runs."""
    out = np.full(y.shape, nan)
    for i in range(y.shape[1]):
        for a, b in _runs(y[:, i]):
            out[a:b, i] = fn(pd.Series(y[a:b, i]))
    return out


@pytest.fixture(scope="module")
def gappy():
    """Log returns and log closes with gaps of 1 and 5 days, a late listing and a delisting."""
    rng = np.random.default_rng(3)
    T, N = 260, 5
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.03, (T, N)), axis=0))
    close[40:45, 0] = nan
    close[100, 1] = nan
    close[:30, 2] = nan
    close[200:, 3] = nan
    close[150:152, 4] = nan
    close[10:70, 4] = close[9, 4]  # a stale print: exactly constant log returns (0)
    l = np.full((T, N), nan)
    l[1:] = np.log(close[1:] / close[:-1])
    return close, np.log(close), l


@pytest.mark.parametrize("span", [2.0, 8.0, 35.0, 64.0, 7.5])
def test_ewma_runs_is_pandas_ewm_mean_per_run(gappy, span):
    _, x, _ = gappy
    expected = _per_run(x, lambda s: s.ewm(span=span, adjust=True).mean().to_numpy())
    assert_panels_close(K.ewma_runs(x, span), expected)


@pytest.mark.parametrize("span,min_periods", [(35.0, 10), (10.0, 2), (3.5, 4)])
def test_ewsd_runs_is_pandas_ewm_std_per_run(gappy, span, min_periods):
    _, _, l = gappy
    expected = _per_run(l, lambda s: s.ewm(span=span, adjust=True, min_periods=min_periods).std().to_numpy())
    got = K.ewsd_runs(l, span, min_periods)
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(np.isfinite(got), finite)
    # The stale run's zero returns: pandas and the engine round a zero variance differently
    # (both within 1e-9 of 0); elsewhere relative agreement.
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-9, atol=1e-12)


def test_a_gap_restarts_the_averages_unlike_pandas_over_the_column(gappy):
    _, x, _ = gappy
    got = K.ewma_runs(x, 16.0)
    whole = pd.Series(x[:, 0]).ewm(span=16.0, adjust=True).mean().to_numpy()
    # The day after the gap starts afresh: the average is that day's value.
    assert got[45, 0] == x[45, 0]
    assert abs(whole[45] - x[45, 0]) > 1e-6
    assert np.isnan(got[40:45, 0]).all()


def test_run_length_counts_returns_of_the_current_run():
    close = np.array([[nan], [1.0], [2.0], [nan], [3.0], [4.0], [5.0]])
    np.testing.assert_array_equal(K.run_length(close)[:, 0], [-1, 0, 1, -1, 0, 1, 2])


def test_floor_sigma():
    raw = np.array([[nan, 0.0, 1e-18, 0.001, 0.05]])
    floor = 0.05 / math.sqrt(365)
    got = K.floor_sigma(raw, 0.05)
    np.testing.assert_array_equal(got, [[nan, floor, floor, floor, 0.05]])
    # vol_floor = 0: sigma must be > 0, else NaN.
    np.testing.assert_array_equal(K.floor_sigma(raw, 0.0), [[nan, nan, 1e-18, 0.001, 0.05]])


@pytest.mark.parametrize("window", [2, 5, 20])
def test_breakout_position_against_pandas_rolling_range(gappy, window):
    _, x, _ = gappy
    hi = _per_run(x, lambda s: s.rolling(window).max().to_numpy())
    lo = _per_run(x, lambda s: s.rolling(window).min().to_numpy())
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(hi == lo, 0.0, 40.0 * (x - (hi + lo) / 2.0) / (hi - lo))
    expected[~np.isfinite(hi)] = nan
    got = K.breakout_position(x, window)
    assert_panels_close(got, expected)
    assert np.nanmax(got) == 20.0 and np.nanmin(got) == -20.0  # a new high is +20, a new low -20
    assert (got[10 + window:70, 4] == 0.0).all()  # the stale print: hi == lo


def test_ewmac_forecast_and_gate():
    fast = np.array([[1.0, 2.0, 3.0]])
    slow = np.array([[0.5, 1.0, 1.0]])
    sigma = np.array([[0.5, nan, 0.25]])
    n_obs = np.array([[5, 5, 3]])
    np.testing.assert_array_equal(K.ewmac_forecast(fast, slow, sigma, n_obs, 4), [[1.0, nan, nan]])
    np.testing.assert_array_equal(K.ewmac_forecast(fast, slow, sigma, n_obs, 3), [[1.0, nan, 8.0]])
    np.testing.assert_array_equal(K.gate_forecast(fast, sigma, n_obs, 4), [[1.0, nan, nan]])


def test_auto_scalar_is_expanding_and_never_backfilled():
    rng = np.random.default_rng(5)
    T, N = 40, 7
    rf = rng.normal(0, 3, (T, N))
    rf[rng.random((T, N)) < 0.2] = nan
    rf[3] = nan  # a day without any forecast: m undefined, not counted
    rf[4, :3] = 0.0  # zeros are left out of the median
    allowed = rng.random((T, N)) < 0.8
    min_periods = 6
    got = K.auto_scalar(rf, allowed, min_periods)
    medians = []
    expected = np.full(T, nan)
    for t in range(T):
        v = np.abs(rf[t][allowed[t] & np.isfinite(rf[t]) & (rf[t] != 0.0)])
        if v.size:
            medians.append(np.median(v))
        if len(medians) >= min_periods:
            expected[t] = 10.0 / np.mean(medians)
    assert_panels_close(got, expected)
    assert np.isnan(got[:min_periods]).all()  # day 3 has no median: the first scalar comes a day later
    assert np.isfinite(got[min_periods])
    # Without a universe mask every symbol counts.
    all_in = K.auto_scalar(rf, np.empty((0, N), dtype=np.bool_), 1)
    v0 = np.abs(rf[0][np.isfinite(rf[0])])
    assert all_in[0] == 10.0 / np.median(v0)


def _targets(rf, sigma, scalar, allowed=None, regime=None, sizing=(20.0, 1.0, 0.2, 0.0, False)):
    T, N = rf.shape
    allowed = np.empty((0, N), dtype=np.bool_) if allowed is None else allowed
    regime = np.empty(0, dtype=np.bool_) if regime is None else regime
    return K.trend_targets(rf, sigma, np.asarray(scalar, dtype=float), (allowed, regime), sizing)


def test_targets_by_hand():
    s = 0.2 / math.sqrt(365)  # sigma_ann = 0.2: at forecast 10 a symbol alone runs at weight 1
    rf = np.array([[5.0, -2.0, nan, 30.0]])
    sigma = np.full((1, 4), s)
    # scalar 2: f = [10, -4, NaN, 20 (capped from 60)]; n_t = 3.
    target, order, count = _targets(rf, sigma, [2.0])
    np.testing.assert_allclose(target[0], [1 / 3, -0.4 / 3, 0.0, 2 / 3], rtol=1e-14)
    assert count[0] == 3 and list(order[0, :3]) == [0, 1, 3]
    # idm 1.5, vol_target 0.1, cap 8: f = [8, -4, NaN, 8].
    target, _, _ = _targets(rf, sigma, [2.0], sizing=(8.0, 1.5, 0.1, 0.0, False))
    np.testing.assert_allclose(target[0], [1.5 * 0.8 * 0.5 / 3, -1.5 * 0.4 * 0.5 / 3, 0.0, 1.5 * 0.8 * 0.5 / 3],
                               rtol=1e-14)
    # long_only: the short becomes 0, n_t stays 3, and it leaves the non-zero list.
    target, order, count = _targets(rf, sigma, [2.0], sizing=(20.0, 1.0, 0.2, 0.0, True))
    np.testing.assert_allclose(target[0], [1 / 3, 0.0, 0.0, 2 / 3], rtol=1e-14)
    assert count[0] == 2 and list(order[0, :2]) == [0, 3]
    # max_leverage 0.5 < G = 1 + 0.4/3: every weight scaled by 0.5 / G.
    target, _, _ = _targets(rf, sigma, [2.0], sizing=(20.0, 1.0, 0.2, 0.5, False))
    G = 1 / 3 + 0.4 / 3 + 2 / 3
    np.testing.assert_allclose(target[0], np.array([1 / 3, -0.4 / 3, 0.0, 2 / 3]) * 0.5 / G, rtol=1e-14)
    assert abs(np.abs(target[0]).sum() - 0.5) < 1e-15


def test_targets_universe_regime_and_missing_scalar():
    s = 0.2 / math.sqrt(365)
    rf = np.array([[5.0, 5.0], [5.0, 5.0], [5.0, 5.0]])
    sigma = np.full((3, 2), s)
    allowed = np.array([[True, False], [True, True], [True, True]])
    regime = np.array([True, True, False])
    target, _, count = _targets(rf, sigma, [1.0, 1.0, 1.0], allowed, regime)
    np.testing.assert_allclose(target, [[0.5, 0.0], [0.25, 0.25], [0.0, 0.0]], rtol=1e-14)
    assert list(count) == [1, 2, 0]
    # A day without a scalar ("auto" before its first estimate) has no position.
    target, _, count = _targets(rf, sigma, [nan, 1.0, 1.0])
    assert (target[0] == 0).all() and count[0] == 0
