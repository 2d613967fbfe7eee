"""kernels/rolling.py against pandas, numpy and scipy (SEMANTICS §3).

Every window is checked two ways: the values against an independent computation
and the NaN pattern against "NaN unless all w observations (and, for beta, the
market's) are finite", computed here with numpy's sliding windows.
"""

import math
import warnings
from fractions import Fraction

import numpy as np
from conftest import assert_panels_close
import pandas as pd
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from kernels.rolling import (
    days_from_high,
    rolling_beta,
    rolling_kurt,
    rolling_mean,
    rolling_skew,
    rolling_std,
    rolling_sum,
)

nan = np.nan
RTOL, ATOL = 1e-9, 1e-12
T, N = 200, 8

KERNELS = {
    "std": (rolling_std, 2),
    "skew": (rolling_skew, 3),
    "kurt": (rolling_kurt, 4),
    "sum": (rolling_sum, 1),
    "mean": (rolling_mean, 1),
}


assert_close = assert_panels_close


def expected_nan_mask(x, w, m=None):
    """True where the window x[t-w+1 .. t] (and m's) is incomplete or has a non-finite value."""
    ok = np.isfinite(x)
    if m is not None:
        ok = ok & np.isfinite(m)[:, None]
    mask = np.ones(x.shape, dtype=bool)
    if w <= x.shape[0]:
        full = sliding_window_view(ok, w, axis=0).all(axis=-1)  # (T - w + 1, N)
        mask[w - 1 :] = ~full
    return mask


def per_window(x, w, fn):
    """fn(window) at every (t, i) whose w values are all finite, NaN elsewhere.

    A ``fn`` marked ``vectorized`` takes a stack of windows (..., w) and reduces the
    last axis (each window is still computed on its own, just in one call)."""
    Tx, Nx = x.shape
    out = np.full((Tx, Nx), nan)
    if w > Tx:
        return out
    wins = sliding_window_view(x, w, axis=0)  # (T - w + 1, N, w)
    full = np.isfinite(wins).all(axis=-1)
    if getattr(fn, "vectorized", False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            vals = np.asarray(fn(np.where(full[..., None], wins, 1.0)), dtype=np.float64)
        out[w - 1 :] = np.where(full, vals, nan)
    else:
        for t, i in zip(*np.nonzero(full)):
            out[t + w - 1, i] = fn(wins[t, i])
    return out


def vectorized(fn):
    fn.vectorized = True
    return fn


@vectorized
def two_pass_std(win):
    d = win - np.mean(win, axis=-1, keepdims=True)
    return np.sqrt(np.sum(d * d, axis=-1) / (win.shape[-1] - 1))


@vectorized
def scipy_skew(win):
    return scipy.stats.skew(win, axis=-1, bias=False)


@vectorized
def scipy_kurt(win):
    return scipy.stats.kurtosis(win, axis=-1, fisher=True, bias=False)


def log_return_panel(seed, T=T, N=N):
    """Daily log returns (via numpy, not the returns kernels) with NaN holes: scattered,
    a late listing, a delisting, a gap, and one all-NaN symbol."""
    rng = np.random.default_rng(seed)
    close = np.exp(rng.standard_t(4, size=(T, N)).cumsum(axis=0) * 0.03) * rng.uniform(0.1, 100, N)
    close[rng.random((T, N)) < 0.03] = nan
    close[:45, 1] = nan
    close[160:, 2] = nan
    close[80:83, 3] = nan
    close[:, 7] = nan
    x = np.full((T, N), nan)
    x[1:] = np.log(close[1:] / close[:-1])
    return np.ascontiguousarray(x)


def wide_range_prices(T=T, seed=11):
    """Prices spanning 1e-8 .. 1e6 in one panel."""
    rng = np.random.default_rng(seed)
    close = np.empty((T, 5))
    close[:, 0] = 1e-8 * np.exp(rng.normal(0, 0.05, T).cumsum())
    close[:, 1] = 1e6 * np.exp(rng.normal(0, 0.05, T).cumsum())
    close[:, 2] = np.exp(np.linspace(math.log(1e-8), math.log(1e6), T) + rng.normal(0, 0.02, T))
    close[:, 3] = np.exp(np.linspace(math.log(1e6), math.log(1e-8), T) + rng.normal(0, 0.02, T))
    close[:, 4] = np.where(np.arange(T) % 7 < 3, 1e-8, 1e6) * rng.uniform(1.0, 1.5, T)
    close[rng.random((T, 5)) < 0.02] = nan
    return np.ascontiguousarray(close)


def wide_range_log_returns():
    close = wide_range_prices()
    x = np.full(close.shape, nan)
    x[1:] = np.log(close[1:] / close[:-1])
    return np.ascontiguousarray(x)


# ----------------------------------------------------------------------------
# std / skew / kurt / sum / mean vs pandas
# ----------------------------------------------------------------------------

WINDOWS = {
    "std": [2, 3, 10, 30, T + 5],
    "skew": [3, 4, 10, 30, T + 5],
    "kurt": [4, 5, 10, 30, T + 5],
    "sum": [1, 2, 5, 30, T + 5],
    "mean": [1, 2, 7, 30, T + 5],
}
CASES = [(name, w) for name, ws in WINDOWS.items() for w in ws]


# pandas' rolling skew/kurt come from running power sums; the G2 formula
# a * S4 / S2**2 - b then cancels, and pandas is off by up to ~1e-10 absolute
# (e.g. kurt(4) of seed 0 at [99, 4]: pandas 0.0035091429827831533, exact rational
# arithmetic 0.003509142978060439, the kernel 0.0035091429780607086). So against
# pandas skew/kurt get an absolute floor of 1e-9; the strict rtol 1e-9 / atol 1e-12
# comparison for them is the per-window scipy one below (and the exact one after it).
PANDAS_ATOL = {"skew": 1e-9, "kurt": 1e-9}

REFS = {
    "std": two_pass_std,
    "skew": scipy_skew,
    "kurt": scipy_kurt,
    "sum": math.fsum,
    "mean": lambda a: math.fsum(a) / len(a),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name,w", CASES)
def test_rolling_matches_pandas(name, w, seed):
    x = log_return_panel(seed)
    kernel, _ = KERNELS[name]
    got = kernel(x, w)
    expected = getattr(pd.DataFrame(x).rolling(w, min_periods=w), name)().to_numpy()
    assert_close(got, expected, atol=PANDAS_ATOL.get(name, ATOL))
    np.testing.assert_array_equal(np.isnan(got), expected_nan_mask(x, w))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name,w", CASES)
def test_rolling_matches_two_pass_per_window(name, w, seed):
    """The same panels against a per-window two-pass computation (numpy, or scipy's
    skew/kurtosis with bias=False, which are pandas' G1/G2 estimators) or an exact
    sum (math.fsum)."""
    x = log_return_panel(seed)
    kernel, _ = KERNELS[name]
    assert_close(kernel(x, w), per_window(x, w, REFS[name]))


def _exact_moments(win):
    v = [Fraction(float(a)) for a in win]
    n = len(v)
    mean = sum(v) / n
    s2 = sum((a - mean) ** 2 for a in v)
    s3 = sum((a - mean) ** 3 for a in v)
    s4 = sum((a - mean) ** 4 for a in v)
    return n, s2, s3, s4


def exact_skew(win):
    n, s2, s3, _ = _exact_moments(win)
    # G1 = sqrt(n (n-1)) / (n-2) * m3 / m2**1.5, m_k = S_k / n
    m2, m3 = s2 / n, s3 / n
    return math.sqrt(n * (n - 1)) / (n - 2) * float(m3 / m2) / math.sqrt(float(m2))


def exact_kurt(win):
    n, s2, _, s4 = _exact_moments(win)
    g2 = Fraction(n * (n + 1) * (n - 1), (n - 2) * (n - 3)) * s4 / s2**2 - Fraction(3 * (n - 1) ** 2, (n - 2) * (n - 3))
    return float(g2)


@pytest.mark.parametrize("name,w,ref", [("skew", 3, exact_skew), ("kurt", 4, exact_kurt), ("kurt", 7, exact_kurt)])
def test_skew_kurt_match_exact_rational_arithmetic(name, w, ref):
    """The minimum windows, where cancellation is worst, against exact rational
    moments of the (binary) inputs: the kernel is within 1e-12 relative."""
    x = np.ascontiguousarray(log_return_panel(0)[:, :4])
    assert_close(KERNELS[name][0](x, w), per_window(x, w, ref), rtol=1e-12)


def test_minimum_windows_hand_worked():
    x = np.array([[1.0], [2.0], [4.0], [8.0], [nan], [3.0]])
    # std(2) of (1, 2): |1 - 2| / sqrt(2)
    assert_close(rolling_std(x, 2)[:, 0], [nan, 1 / math.sqrt(2), 2 / math.sqrt(2), 4 / math.sqrt(2), nan, nan])
    # sum(1) and mean(1) are the series itself
    assert_close(rolling_sum(x, 1), x, rtol=0, atol=0)
    assert_close(rolling_mean(x, 1), x, rtol=0, atol=0)
    # skew(3) of (1, 2, 4): mean 7/3, deviations -4/3, -1/3, 5/3
    d = np.array([-4.0, -1.0, 5.0]) / 3.0
    m2, m3 = np.mean(d**2), np.mean(d**3)
    g1 = math.sqrt(3 * 2) / (3 - 2) * m3 / m2**1.5
    # (2, 4, 8) is (1, 2, 4) doubled: the same skewness
    assert_close(rolling_skew(x, 3)[:, 0], [nan, nan, g1, g1, nan, nan], rtol=1e-12)
    # kurt(4) of (1, 2, 4, 8)
    k = rolling_kurt(x, 4)[:, 0]
    assert np.isnan(k[[0, 1, 2, 4, 5]]).all()
    assert k[3] == pytest.approx(scipy_kurt(np.array([1.0, 2.0, 4.0, 8.0])), rel=1e-12)


def test_window_longer_than_series_is_all_nan():
    x = log_return_panel(0)[:10]
    for name, (kernel, wmin) in KERNELS.items():
        assert np.isnan(kernel(np.ascontiguousarray(x), 11)).all(), name
    assert np.isnan(rolling_beta(np.ascontiguousarray(x), np.ones(10) * 0.01, 11)).all()
    assert np.isnan(days_from_high(np.ascontiguousarray(np.abs(x) + 1.0), 11)).all()


def test_any_nan_in_window_gives_nan():
    x = np.array([[0.1], [0.2], [nan], [0.3], [0.5], [0.4], [0.7], [0.2], [0.9]])
    w = 4  # kurt needs 4; the first window clear of the NaN is days 3..6
    mask = np.array([True, True, True, True, True, True, False, False, False])
    for name, (kernel, wmin) in KERNELS.items():
        np.testing.assert_array_equal(np.isnan(kernel(x, w)[:, 0]), mask, err_msg=name)
    m = np.array([0.01, 0.02, 0.0, -0.01, 0.03, nan, 0.02, 0.01, 0.0, 0.02])
    xb = np.ascontiguousarray(np.column_stack([np.arange(10.0) ** 1.5, np.r_[x[:, 0], 0.1]]))
    b = rolling_beta(xb, m, 3)
    np.testing.assert_array_equal(np.isnan(b[:, 0]), [1, 1, 0, 0, 0, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(np.isnan(b[:, 1]), [1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    # an infinite observation is not finite either
    y = x.copy()
    y[7, 0] = np.inf
    for name, (kernel, wmin) in KERNELS.items():
        got = kernel(y, w)[:, 0]
        assert np.isnan(got[7:]).all(), name
        assert np.isfinite(got[6]), name


# ----------------------------------------------------------------------------
# constant windows
# ----------------------------------------------------------------------------


def constant_panel():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.02, (60, 4))
    x[:, 0] = 0.1  # constant 0.1 (not exactly representable: a naive mean drifts)
    x[:, 1] = -1e-8
    x[20:45, 2] = 0.013  # a constant stretch inside a varying series
    x[:, 3] = 0.0
    return np.ascontiguousarray(x)


@pytest.mark.parametrize("w", [2, 5, 20])
def test_std_of_constant_window_is_exactly_zero(w):
    x = constant_panel()
    s = rolling_std(x, w)
    assert (s[w - 1 :, [0, 1, 3]] == 0.0).all()
    assert (s[20 + w - 1 : 45, 2] == 0.0).all()
    assert (s[w - 1 : 20, 2] > 0.0).all() and (s[45:, 2] > 0.0).all()
    # pandas agrees (it tracks runs of equal values), as does the two-pass reference
    assert_close(s, pd.DataFrame(x).rolling(w).std().to_numpy())
    assert_close(s, per_window(x, w, two_pass_std))


@pytest.mark.parametrize("w", [4, 5, 20])
def test_skew_kurt_of_constant_window_are_nan(w):
    x = constant_panel()
    for kernel in (rolling_skew, rolling_kurt):
        out = kernel(x, w)
        assert np.isnan(out[:, [0, 1, 3]]).all()
        assert np.isnan(out[20 + w - 1 : 45, 2]).all()
        assert np.isfinite(out[w - 1 : 20, 2]).all() and np.isfinite(out[45 + w - 1 :, 2]).all()
    assert_close(rolling_skew(x, w), pd.DataFrame(x).rolling(w).skew().to_numpy())
    assert_close(rolling_kurt(x, w), pd.DataFrame(x).rolling(w).kurt().to_numpy())


def test_beta_against_constant_market_is_nan():
    x = constant_panel()
    rng = np.random.default_rng(9)
    m = rng.normal(0, 0.02, 60)
    m[10:30] = 0.1
    w = 5
    b = rolling_beta(x, m, w)
    for t in range(w - 1, 60):
        const = (m[t - w + 1 : t + 1] == m[t]).all()
        assert np.isnan(b[t]).all() == const, t
    # and a constant symbol against a varying market has beta 0
    assert_close(b[35:, [0, 1, 3]], np.zeros((25, 3)))


# ----------------------------------------------------------------------------
# beta vs numpy.cov
# ----------------------------------------------------------------------------


def numpy_beta(x, m, w):
    Tx, Nx = x.shape
    out = np.full((Tx, Nx), nan)
    for t in range(w - 1, Tx):
        mw = m[t - w + 1 : t + 1]
        if not np.isfinite(mw).all() or (mw == mw[0]).all():
            continue
        for i in range(Nx):
            xw = x[t - w + 1 : t + 1, i]
            if np.isfinite(xw).all():
                c = np.cov(xw, mw, ddof=1)
                out[t, i] = c[0, 1] / c[1, 1]
    return out


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("w", [2, 3, 10, 30, 90])
def test_beta_matches_numpy_cov(w, seed):
    x = log_return_panel(seed)
    # an equal-weight-style market with its own holes (day 0 and two stretches)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = np.log1p(np.nanmean(np.expm1(x[:, :6]), axis=1))
    m[50] = nan
    m[120:123] = nan
    m = np.ascontiguousarray(m)
    got = rolling_beta(x, m, w)
    assert_close(got, numpy_beta(x, m, w))
    np.testing.assert_array_equal(np.isnan(got), expected_nan_mask(x, w, m))


def test_beta_of_market_against_itself_is_one():
    m = np.random.default_rng(2).normal(0, 0.03, 100)
    xm = np.ascontiguousarray(np.column_stack([m, 2.0 * m - 0.001]))
    b = rolling_beta(xm, m, 20)
    fin = np.isfinite(b[:, 0])
    assert fin.sum() == 100 - 19
    assert_close(b[fin, 0], np.ones(fin.sum()))
    assert_close(b[fin, 1], np.full(fin.sum(), 2.0))


# ----------------------------------------------------------------------------
# prices spanning 1e-8 .. 1e6
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("name,w", [("std", 2), ("std", 20), ("skew", 3), ("skew", 20), ("kurt", 4), ("kurt", 20), ("sum", 1), ("sum", 20), ("mean", 20)])
def test_log_returns_of_wide_range_prices_match_pandas(name, w):
    x = wide_range_log_returns()
    assert np.nanmax(np.abs(x)) > 30  # one-day moves of a factor ~1e14
    kernel, _ = KERNELS[name]
    got = kernel(x, w)
    assert_close(got, getattr(pd.DataFrame(x).rolling(w), name)().to_numpy())
    np.testing.assert_array_equal(np.isnan(got), expected_nan_mask(x, w))


@pytest.mark.parametrize("w", [2, 20, 60])
def test_beta_on_wide_range_log_returns(w):
    x = wide_range_log_returns()
    m = np.ascontiguousarray(x[:, 1].copy())
    assert_close(rolling_beta(x, m, w), numpy_beta(x, m, w))


@pytest.mark.parametrize(
    "name,w,ref",
    [
        ("std", 2, two_pass_std),
        ("std", 20, two_pass_std),
        ("skew", 3, scipy_skew),
        ("skew", 20, scipy_skew),
        ("kurt", 4, scipy_kurt),
        ("kurt", 20, scipy_kurt),
        ("sum", 20, math.fsum),
        ("mean", 20, lambda a: math.fsum(a) / len(a)),
    ],
)
def test_wide_range_price_levels_match_two_pass(name, w, ref):
    """The kernels on the raw price levels themselves. pandas' online (add/remove)
    moments are inaccurate here: after a 1e6 value leaves the window the remaining
    ~1e-8 values keep only the rounding residue of the large one, so the reference
    is a per-window two-pass (numpy / scipy) or exactly summed (math.fsum) value."""
    close = wide_range_prices()
    assert np.nanmin(close) < 2e-8 and np.nanmax(close) > 1e6
    assert_close(KERNELS[name][0](close, w), per_window(close, w, ref))


# ----------------------------------------------------------------------------
# days_from_high
# ----------------------------------------------------------------------------


def brute_days_from_high(close, w):
    Tc, Nc = close.shape
    out = np.full((Tc, Nc), nan)
    for t in range(w - 1, Tc):
        for i in range(Nc):
            win = [close[u, i] for u in range(t - w + 1, t + 1)]
            if all(math.isfinite(v) for v in win):
                hi = max(win)
                latest = max(u for u in range(t - w + 1, t + 1) if close[u, i] == hi)
                out[t, i] = t - latest
    return out


def test_days_from_high_hand_worked_ties():
    #           0    1    2    3    4    5    6    7    8
    c = np.array([1.0, 3.0, 2.0, 3.0, 1.0, nan, 5.0, 5.0, 4.0])
    close = np.ascontiguousarray(c[:, None])
    # w = 3:
    # t=2 [1,3,2] high at 1 -> 1; t=3 [3,2,3] tie -> latest (3) -> 0;
    # t=4 [2,3,1] -> 1; t=5..7 contain the NaN -> NaN; t=8 [5,5,4] tie -> 7 -> 1
    assert_close(days_from_high(close, 3)[:, 0], [nan, nan, 1, 0, 1, nan, nan, nan, 1], rtol=0, atol=0)
    # w = 4: t=3 [1,3,2,3] -> 0; t=4 [3,2,3,1] -> 1; t=5..8 NaN
    assert_close(days_from_high(close, 4)[:, 0], [nan, nan, nan, 0, 1, nan, nan, nan, nan], rtol=0, atol=0)
    # w = 1: 0 on every finite day
    assert_close(days_from_high(close, 1)[:, 0], np.where(np.isfinite(c), 0.0, nan), rtol=0, atol=0)
    # an all-equal window: the latest day is the high
    flat = np.full((5, 1), 2.5)
    assert_close(days_from_high(flat, 5)[:, 0], [nan, nan, nan, nan, 0.0], rtol=0, atol=0)
    # the high at the oldest day of the window counts: w - 1
    dec = np.array([[5.0], [4.0], [3.0], [2.0]])
    assert_close(days_from_high(dec, 4)[:, 0], [nan, nan, nan, 3.0], rtol=0, atol=0)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("w", [1, 2, 5, 20, 60])
def test_days_from_high_matches_brute_force(w, seed):
    rng = np.random.default_rng(seed)
    close = rng.integers(1, 6, size=(120, N)).astype(np.float64)  # many ties
    close[rng.random(close.shape) < 0.03] = nan
    close[:30, 1] = nan
    close = np.ascontiguousarray(close)
    got = days_from_high(close, w)
    assert_close(got, brute_days_from_high(close, w), rtol=0, atol=0)
    np.testing.assert_array_equal(np.isnan(got), expected_nan_mask(close, w))


def test_days_from_high_matches_pandas_apply():
    rng = np.random.default_rng(4)
    close = np.ascontiguousarray(np.round(np.exp(rng.normal(0, 0.05, (150, 4)).cumsum(axis=0)), 2))
    close[rng.random(close.shape) < 0.02] = nan
    w = 15
    expected = pd.DataFrame(close).rolling(w).apply(lambda a: np.argmax(a[::-1]), raw=True).to_numpy()
    assert_close(days_from_high(close, w), expected, rtol=0, atol=0)


# ----------------------------------------------------------------------------
# property tests (hypothesis) for rolling_std and rolling_sum
# ----------------------------------------------------------------------------

# Values on a grid of k / 8 with |k| <= 400: every window sum is exact in binary, and a
# non-constant window has a variance of at least 1/64 / (2 w), so pandas' online
# algorithm stays accurate and the comparison tests window bounds and NaN handling
# rather than rounding (arbitrary floats would let hypothesis find inputs where
# pandas, not the kernel, is off: e.g. a tiny-variance window after a 1e3 value).
_cell = st.one_of(st.integers(-400, 400).map(lambda k: k / 8.0), st.just(nan))


@st.composite
def _panel_and_window(draw, wmin):
    Tp = draw(st.integers(1, 25))
    Np = draw(st.integers(1, 3))
    cells = draw(st.lists(_cell, min_size=Tp * Np, max_size=Tp * Np))
    x = np.ascontiguousarray(np.array(cells, dtype=np.float64).reshape(Tp, Np))
    w = draw(st.integers(wmin, Tp + 2))
    return x, w


_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(_panel_and_window(wmin=2))
def test_property_rolling_std_matches_pandas(xw):
    x, w = xw
    got = rolling_std(x, w)
    assert_close(got, pd.DataFrame(x).rolling(w).std().to_numpy())
    np.testing.assert_array_equal(np.isnan(got), expected_nan_mask(x, w))


@_settings
@given(_panel_and_window(wmin=1))
def test_property_rolling_sum_matches_pandas(xw):
    x, w = xw
    got = rolling_sum(x, w)
    assert_close(got, pd.DataFrame(x).rolling(w).sum().to_numpy())
    np.testing.assert_array_equal(np.isnan(got), expected_nan_mask(x, w))
