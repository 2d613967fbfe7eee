"""kernels/diagnostics.py against hand-worked numbers, pandas and scipy; sweep.stats.ic's t-test
against scipy.stats.t."""

import math

import numpy as np
import pandas as pd
import pytest
from conftest import assert_panels_close

from kernels import diagnostics as K
from sweep.stats.ic import betainc, ic_stats, mean_stderr, t_two_sided_p

nan = np.nan
stats = pytest.importorskip("scipy.stats")


def random_panel(T=60, N=15, seed=0, holes=0.1, ties=True):
    """A factor panel with NaN holes and, with ``ties``, values rounded so that days have ties."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, N))
    if ties:
        x = np.round(x * 2) / 2
    x[rng.random((T, N)) < holes] = nan
    x[5] = nan  # a day without any value
    x[6, 1:] = nan  # a day with one value
    return np.ascontiguousarray(x)


def random_close(T=60, N=15, seed=1, holes=0.05):
    rng = np.random.default_rng(seed)
    close = 10 * np.exp(rng.normal(0, 0.03, size=(T, N)).cumsum(axis=0))
    close[rng.random((T, N)) < holes] = nan
    return np.ascontiguousarray(close)


def test_forward_returns_hand_worked_and_pandas():
    close = np.array([[1.0, 2.0], [1.1, nan], [1.21, 2.2], [1.0, 2.0], [2.0, 4.0]])
    fwd = K.forward_returns(close, 2, 3)  # the window ends on day 3: day 2 + 2 is past it
    expected = np.array([[0.21, 0.1], [1.0 / 1.1 - 1, nan], [nan, nan], [nan, nan], [nan, nan]])
    assert_panels_close(fwd, expected)
    c = random_close()
    for h in (1, 3, 7):
        df = pd.DataFrame(c)
        want = (df.shift(-h) / df - 1).to_numpy().copy()
        want[50 - h + 1:] = nan  # window end e = 50
        assert_panels_close(K.forward_returns(c, h, 50), want)


def test_rank_ic_hand_worked_four_symbols():
    """Four symbols, four days, the Spearman correlations worked by hand.

    Day 0: x = 1, 2, 3, 4; fwd ranks 1, 3, 2, 4: d = 0, -1, 1, 0, sum d^2 = 2, rho = 1 - 6 * 2 / (4 * 15) = 0.8.
    Day 1: x = 1, 1, 2, 3 (a tie: ranks 1.5, 1.5, 3, 4); fwd ranks 4, 3, 2, 1. Deviations from 2.5:
    dx = -1, -1, .5, 1.5 and dy = 1.5, .5, -.5, -1.5: sum dx dy = -4.5, sum dx^2 = 4.5, sum dy^2 = 5,
    rho = -4.5 / sqrt(22.5) = -3 / sqrt(10).
    Day 2: only symbols 0 and 3 have both values: x = 1, 2 and fwd = 0, 0.1: rho = 1.
    Day 3: a constant forward return: undefined (NaN). Day 4 has one pair only: NaN.
    """
    x = np.array([[1, 2, 3, 4], [1, 1, 2, 3], [1, nan, 3, 2], [1, 2, 3, 4], [1, nan, nan, nan]], dtype=float)
    fwd = np.array([[.1, .3, .2, .4], [.4, .3, .2, .1], [0, .5, nan, .1], [.2, .2, .2, .2], [.1, .2, .3, .4]])
    ic = K.rank_ic(x, fwd, 0, 4)
    assert_panels_close(ic, [0.8, -3 / math.sqrt(10), 1.0, nan, nan])
    assert_panels_close(K.rank_ic(x, fwd, 1, 2), [-3 / math.sqrt(10), 1.0])  # the window's rows only


def test_rank_ic_against_scipy():
    x = random_panel()
    fwd = random_panel(seed=5, ties=True)
    ic = K.rank_ic(x, fwd, 0, x.shape[0] - 1)
    for t in range(x.shape[0]):
        m = np.isfinite(x[t]) & np.isfinite(fwd[t])
        if m.sum() < 2 or np.ptp(x[t][m]) == 0 or np.ptp(fwd[t][m]) == 0:
            assert np.isnan(ic[t])
            continue
        assert ic[t] == pytest.approx(stats.spearmanr(x[t][m], fwd[t][m])[0], rel=1e-12, abs=1e-14)


def qcut_labels(x: np.ndarray, q: int) -> np.ndarray:
    """pandas' answer: ``pd.qcut(x, q, labels=False) + 1`` per day; 0 where none (or the day's
    edges are not unique, where pandas raises)."""
    out = np.zeros(x.shape, dtype=np.int32)
    for t in range(x.shape[0]):
        m = np.isfinite(x[t])
        if not m.any():
            continue
        try:
            out[t, m] = pd.qcut(pd.Series(x[t][m]), q, labels=False).to_numpy() + 1
        except ValueError:
            pass
    return out


@pytest.mark.parametrize("q", [2, 3, 5, 10])
def test_quantile_labels_equal_pandas_qcut(q):
    x = random_panel(T=80, N=23, seed=q)
    x[10] = 1.0  # a constant day: edges not unique
    x[11, :12] = 0.5  # many ties
    x[12] = np.arange(23.0) ** 3 / 7.0  # distinct values, interpolated edges
    got = K.quantile_labels(x, q, 0, x.shape[0] - 1)
    want = qcut_labels(x, q)
    np.testing.assert_array_equal(got, want)
    assert (got[10] == 0).all() and (got[12] > 0).all()
    np.testing.assert_array_equal(K.quantile_labels(x, q, 20, 30), want[20:31])


def test_quantile_means_against_pandas_groupby():
    x, fwd = random_panel(seed=3, ties=False), random_panel(seed=4, ties=False)
    labels = K.quantile_labels(x, 4, 0, x.shape[0] - 1)
    got = K.quantile_means(labels, fwd, 4, 0)
    T, N = x.shape
    df = pd.DataFrame({"t": np.repeat(np.arange(T), N), "k": labels.ravel(), "r": fwd.ravel()})
    df = df[(df.k > 0) & df.r.notna()]
    want = df.groupby(["t", "k"]).r.mean().unstack().reindex(index=range(T), columns=range(1, 5))
    assert_panels_close(got, want.to_numpy())


def test_daily_ranks_and_rank_autocorr_against_pandas():
    x = random_panel(seed=8)
    ranks = K.daily_ranks(x, 0, x.shape[0] - 1)
    R = pd.DataFrame(x).rank(axis=1)
    assert_panels_close(ranks, R.to_numpy())
    ac = K.rank_autocorr(ranks, 4)
    for lag in range(1, 5):
        want = R.corrwith(R.shift(lag), axis=1).to_numpy()
        assert_panels_close(ac[:, lag - 1], want)


def test_quantile_turnover_against_sets():
    x = random_panel(seed=9, ties=False, holes=0.2)
    labels = K.quantile_labels(x, 3, 0, x.shape[0] - 1)
    got = K.quantile_turnover(labels, 3)
    for d in range(labels.shape[0]):
        for k in (1, 2, 3):
            now = set(np.flatnonzero(labels[d] == k))
            if d == 0 or not (labels[d - 1] > 0).any() or not now:
                assert np.isnan(got[d, k - 1])
                continue
            before = set(np.flatnonzero(labels[d - 1] == k))
            assert got[d, k - 1] == pytest.approx(len(now - before) / len(now), abs=1e-15)


@pytest.mark.parametrize("a,b", [(0.5, 0.5), (1.0, 3.0), (2.5, 0.5), (50.0, 0.5), (1000.0, 0.5), (0.1, 7.0)])
def test_betainc_against_scipy(a, b):
    special = pytest.importorskip("scipy.special")
    for x in (1e-9, 0.01, 0.2, 0.5, 0.77, 0.99, 1 - 1e-9):
        assert betainc(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("dof", [1, 2, 5, 30, 999, 5000])
def test_t_p_value_against_scipy(dof):
    for t in (0.0, 0.3, -1.0, 2.0, -3.4, 8.0, 40.0):
        want = 2 * stats.t.sf(abs(t), dof)
        assert t_two_sided_p(t, dof) == pytest.approx(want, rel=1e-9, abs=1e-300)
    assert t_two_sided_p(math.inf, 5) == 0.0 and math.isnan(t_two_sided_p(nan, 5))
    assert math.isnan(t_two_sided_p(1.0, 0))


def test_ic_stats_and_mean_stderr_against_scipy():
    rng = np.random.default_rng(2)
    ic = rng.normal(0.03, 0.1, 300)
    ic[::17] = nan
    got = ic_stats(ic)
    v = ic[np.isfinite(ic)]
    t = v.mean() / v.std(ddof=1) * math.sqrt(len(v))
    assert got["n_days"] == len(v)
    assert got["ic_t"] == pytest.approx(stats.ttest_1samp(v, 0.0).statistic, rel=1e-10)
    assert got["ic_p"] == pytest.approx(stats.ttest_1samp(v, 0.0).pvalue, rel=1e-9)
    assert got["ic_ir"] == pytest.approx(v.mean() / v.std(ddof=1), rel=1e-12)
    assert got["ic_t"] == pytest.approx(t, rel=1e-12)
    assert got["ic_positive"] == pytest.approx((v > 0).mean())
    mean, se, n = mean_stderr(ic)
    assert (mean, n) == (pytest.approx(v.mean()), len(v)) and se == pytest.approx(stats.sem(v), rel=1e-12)
    assert math.isnan(ic_stats(np.array([nan, 0.1]))["ic_p"])
