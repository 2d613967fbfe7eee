"""kernels/returns.py against pandas / numpy and hand-worked arrays (SEMANTICS §2)."""

import math

import numpy as np
from conftest import assert_panels_close
import pandas as pd
import pytest

from kernels.returns import carried_returns, equal_weight_market, log_returns, simple_returns

nan = np.nan
RTOL, ATOL = 1e-9, 1e-12


assert_close = assert_panels_close


def random_close(T=200, N=8, seed=0, hole_rate=0.05):
    """Positive random-walk closes with scattered NaN holes, a late listing, an
    early delisting and a multi-day gap."""
    rng = np.random.default_rng(seed)
    levels = np.exp(rng.normal(0.0, 0.04, size=(T, N)).cumsum(axis=0))
    close = levels * rng.uniform(0.5, 50.0, size=N)
    close[rng.random((T, N)) < hole_rate] = nan
    close[:37, 1] = nan  # listed late
    close[150:, 2] = nan  # delisted
    close[60:75, 3] = nan  # a 15-day gap
    return np.ascontiguousarray(close)


def wide_range_close(T=200, seed=3):
    """One panel whose prices span 1e-8 .. 1e6: a column near 1e-8, one near 1e6,
    one climbing from 1e-8 to 1e6 and one jumping between the two extremes."""
    rng = np.random.default_rng(seed)
    close = np.empty((T, 4))
    close[:, 0] = 1e-8 * np.exp(rng.normal(0, 0.05, T).cumsum())
    close[:, 1] = 1e6 * np.exp(rng.normal(0, 0.05, T).cumsum())
    close[:, 2] = np.exp(np.linspace(math.log(1e-8), math.log(1e6), T) + rng.normal(0, 0.01, T))
    close[:, 3] = np.where(rng.random(T) < 0.5, 1e-8, 1e6) * rng.uniform(1.0, 1.5, T)
    close[rng.random((T, 4)) < 0.03] = nan
    return np.ascontiguousarray(close)


# ----------------------------------------------------------------------------
# simple_returns / log_returns
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simple_returns_match_pandas_pct_change(seed):
    close = random_close(seed=seed)
    expected = pd.DataFrame(close).pct_change(fill_method=None).to_numpy()
    r = simple_returns(close)
    assert_close(r, expected, rtol=1e-15, atol=0.0)
    assert np.isnan(r[0]).all()


def test_simple_returns_nan_unless_both_closes_finite():
    close = np.array([[1.0, nan], [2.0, 4.0], [nan, 5.0], [3.0, 2.5], [3.0, nan]])
    expected = np.array(
        [
            [nan, nan],
            [2.0 / 1.0 - 1.0, nan],
            [nan, 5.0 / 4.0 - 1.0],
            [nan, 2.5 / 5.0 - 1.0],  # the gap is not bridged: NaN the day after
            [0.0, nan],
        ]
    )
    assert_close(simple_returns(close), expected, rtol=0.0, atol=0.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_log_returns_match_log1p_of_pandas(seed):
    close = random_close(seed=seed)
    r = pd.DataFrame(close).pct_change(fill_method=None).to_numpy()
    assert_close(log_returns(simple_returns(close)), np.log1p(r))
    # and the log of the price ratio, a second, independent way
    ratio = close[1:] / close[:-1]
    assert_close(log_returns(simple_returns(close))[1:], np.log(ratio))


def test_log_returns_keep_digits_of_tiny_returns():
    r = np.array([[1e-12, -1e-15, 0.0, nan, -1.0, 3e-17]])
    out = log_returns(r)
    for j, x in enumerate(r[0]):
        if math.isnan(x):
            assert math.isnan(out[0, j])
        elif x == -1.0:
            assert out[0, j] == -math.inf
        else:
            # math.log1p is correctly rounded enough; log(1 + x) would lose it all.
            assert out[0, j] == pytest.approx(math.log1p(x), rel=1e-15, abs=0.0)


def test_returns_of_prices_spanning_1e8_to_1e6():
    close = wide_range_close()
    assert np.nanmin(close) < 2e-8 and np.nanmax(close) > 1e6
    df = pd.DataFrame(close)
    r = simple_returns(close)
    assert_close(r, df.pct_change(fill_method=None).to_numpy(), rtol=1e-15, atol=0.0)
    lr = log_returns(r)
    # SEMANTICS §2 defines l = log(1 + r) from the stored r.
    assert_close(lr, np.log1p(df.pct_change(fill_method=None).to_numpy()))
    # Against log(b / a): r = b / a - 1 is stored with an absolute error of about
    # eps, so 1 + r carries a relative error of about eps * a / b; a one-day drop by
    # 1e14 (b / a = 1e-14) therefore costs ~1 % of the log return by construction of
    # the definition, not by the kernel. Check exactly that error bound.
    ratio = close[1:] / close[:-1]
    eps = np.finfo(np.float64).eps
    bound = 4.0 * eps * (1.0 + 1.0 / ratio) + RTOL * np.abs(np.log(ratio))
    finite = np.isfinite(ratio)
    np.testing.assert_array_equal(np.isfinite(lr[1:]), finite)
    assert (np.abs(lr[1:][finite] - np.log(ratio[finite])) <= bound[finite]).all()
    # the jumping column moves by about log(1e14) = 32 in one day
    assert np.nanmax(np.abs(lr[:, 3])) > 30.0


# ----------------------------------------------------------------------------
# carried_returns
# ----------------------------------------------------------------------------


def test_carried_returns_hand_worked_gap():
    # day:        0    1     2    3    4     5    6
    close = np.array([[nan, 10.0, nan, nan, 12.0, 6.0, nan]]).T
    # NaN before the first close (day 0 and the first close itself has no prior),
    # 0 on the gap days 2-3, the whole move 10 -> 12 on day 4, then 12 -> 6,
    # and 0 after the last close.
    expected = np.array([[nan, nan, 0.0, 0.0, 0.2, -0.5, 0.0]]).T
    assert_close(carried_returns(np.ascontiguousarray(close)), expected, rtol=1e-15, atol=0.0)


def test_carried_returns_hand_worked_panel():
    close = np.array(
        [
            [5.0, nan, nan],
            [nan, 2.0, nan],
            [nan, 3.0, nan],
            [4.0, nan, nan],
            [nan, nan, nan],
        ]
    )
    expected = np.array(
        [
            [nan, nan, nan],
            [0.0, nan, nan],  # col 0 gap; col 1 first close
            [0.0, 0.5, nan],
            [4.0 / 5.0 - 1.0, 0.0, nan],  # col 0 earns the whole 5 -> 4; col 1 after its last close
            [0.0, 0.0, nan],  # a symbol with no close at all stays NaN
        ]
    )
    assert_close(carried_returns(close), expected, rtol=1e-15, atol=0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_carried_returns_match_pandas_ffill(seed):
    close = random_close(seed=seed)
    expected = pd.DataFrame(close).ffill().pct_change(fill_method=None).to_numpy()
    assert_close(carried_returns(close), expected, rtol=1e-15, atol=0.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_carried_returns_lose_no_pnl_over_gaps(seed):
    """Compounding q from the first to the last close gives last / first."""
    close = random_close(seed=seed)
    q = carried_returns(close)
    for i in range(close.shape[1]):
        finite = np.flatnonzero(np.isfinite(close[:, i]))
        first, last = finite[0], finite[-1]
        assert np.isnan(q[: first + 1, i]).all()
        assert np.isfinite(q[first + 1 :, i]).all()
        assert (q[last + 1 :, i] == 0.0).all()
        growth = np.prod(1.0 + q[first + 1 : last + 1, i])
        assert growth == pytest.approx(close[last, i] / close[first, i], rel=1e-12)


# ----------------------------------------------------------------------------
# equal_weight_market
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_weight_market_matches_pandas_row_mean(seed):
    close = random_close(seed=seed, hole_rate=0.3)
    close[100] = nan  # a day with no finite return at all
    r = simple_returns(close)
    expected = np.log1p(pd.DataFrame(r).mean(axis=1, skipna=True).to_numpy())
    m = equal_weight_market(r)
    assert_close(m, expected)
    assert np.isnan(m[0]) and np.isnan(m[100]) and np.isnan(m[101])


def test_equal_weight_market_hand_worked():
    r = np.array([[nan, nan, nan], [0.1, nan, -0.3], [nan, nan, 0.02]])
    expected = [nan, math.log1p((0.1 - 0.3) / 2.0), math.log1p(0.02)]
    assert_close(equal_weight_market(r), expected, rtol=1e-15, atol=0.0)
