"""kernels/selection.py against plain-Python references (SEMANTICS §5)."""

import math

import numpy as np
import pytest

from kernels.selection import rank_eligible, universe

nan = np.nan
T, N = 200, 8

NO_VOL = np.empty((0, N))
NO_ALLOWED = np.empty((0, N), dtype=np.bool_)


def py_universe(market_cap, excluded, top_k):
    """Per day: the top_k largest finite caps among the non-excluded, ties by symbol order."""
    Tm, Nm = market_cap.shape
    out = np.zeros((Tm, Nm), dtype=bool)
    for t in range(Tm):
        cands = [i for i in range(Nm) if not excluded[i] and math.isfinite(market_cap[t, i])]
        for i in sorted(cands, key=lambda i: (-market_cap[t, i], i))[:top_k]:
            out[t, i] = True
    return out


def py_rank(feature, close, vol, excluded, allowed):
    """Per day: sorted(eligible, key=lambda i: (feature[t, i], i))."""
    Tf, Nf = feature.shape
    result = []
    for t in range(Tf):
        elig = []
        for i in range(Nf):
            if excluded[i]:
                continue
            if allowed.shape[0] > 0 and not allowed[t, i]:
                continue
            if not (math.isfinite(feature[t, i]) and math.isfinite(close[t, i])):
                continue
            if vol.shape[0] > 0 and not (math.isfinite(vol[t, i]) and vol[t, i] > 0.0):
                continue
            elig.append(i)
        result.append(sorted(elig, key=lambda i: (feature[t, i], i)))
    return result


def assert_ranking(order, count, expected):
    Tf, Nf = order.shape
    assert order.dtype == np.int32 and count.shape == (Tf,)
    for t in range(Tf):
        k = len(expected[t])
        assert count[t] == k, t
        assert order[t, :k].tolist() == expected[t], t
        assert (order[t, k:] == -1).all(), t


def make_inputs(seed, tie_levels=5):
    """Integer-valued features (many ties, including -0.0 against 0.0), NaN and
    infinite features, NaN closes, and a vol array with NaN, 0, negative and inf."""
    rng = np.random.default_rng(seed)
    feature = rng.integers(-2, tie_levels - 2, size=(T, N)).astype(np.float64)
    feature[rng.random((T, N)) < 0.1] = nan
    feature[rng.random((T, N)) < 0.02] = np.inf
    feature[rng.random((T, N)) < 0.02] = -np.inf
    zeros = feature == 0.0
    feature[zeros & (rng.random((T, N)) < 0.5)] = -0.0
    close = rng.uniform(1.0, 100.0, size=(T, N))
    close[rng.random((T, N)) < 0.1] = nan
    close[:40, 2] = nan  # a late listing
    vol = rng.uniform(0.01, 0.1, size=(T, N))
    u = rng.random((T, N))
    vol[u < 0.05] = nan
    vol[(u >= 0.05) & (u < 0.08)] = 0.0
    vol[(u >= 0.08) & (u < 0.10)] = -0.02
    vol[(u >= 0.10) & (u < 0.11)] = np.inf
    return np.ascontiguousarray(feature), np.ascontiguousarray(close), np.ascontiguousarray(vol)


# ----------------------------------------------------------------------------
# rank_eligible
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_eligible_plain(seed):
    feature, close, _ = make_inputs(seed)
    excluded = np.zeros(N, dtype=np.bool_)
    order, count = rank_eligible(feature, close, NO_VOL, excluded, NO_ALLOWED)
    assert_ranking(order, count, py_rank(feature, close, NO_VOL, excluded, NO_ALLOWED))


@pytest.mark.parametrize("seed", [0, 1])
def test_rank_eligible_continuous_feature(seed):
    rng = np.random.default_rng(seed)
    feature = rng.normal(size=(T, N))
    feature[rng.random((T, N)) < 0.1] = nan
    close = np.ones((T, N))
    excluded = np.zeros(N, dtype=np.bool_)
    order, count = rank_eligible(feature, close, NO_VOL, excluded, NO_ALLOWED)
    assert_ranking(order, count, py_rank(feature, close, NO_VOL, excluded, NO_ALLOWED))


@pytest.mark.parametrize("seed", [0, 1])
def test_rank_eligible_with_exclusions_and_vol(seed):
    feature, close, vol = make_inputs(seed)
    excluded = np.zeros(N, dtype=np.bool_)
    excluded[[0, 5]] = True
    order, count = rank_eligible(feature, close, vol, excluded, NO_ALLOWED)
    expected = py_rank(feature, close, vol, excluded, NO_ALLOWED)
    assert_ranking(order, count, expected)
    # the vol rule bites: fewer eligible than without it
    order2, count2 = rank_eligible(feature, close, NO_VOL, excluded, NO_ALLOWED)
    assert count.sum() < count2.sum()
    assert not np.isin(order, [0, 5]).any()


def test_rank_eligible_hand_worked_day():
    # symbols:          0     1     2    3     4    5     6     7
    f = np.array([[2.0, -1.0, 2.0, nan, 0.0, -0.0, 2.0, np.inf]])
    c = np.array([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, nan, 1.0]])
    v = np.array([[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]])
    v_bad = np.array([[0.1, 0.0, 0.1, 0.1, nan, 0.1, 0.1, 0.1]])
    ex = np.zeros(N, dtype=np.bool_)
    # 3 (NaN feature), 6 (NaN close), 7 (inf feature) drop; 4 and 5 tie at 0 (= -0.0), 0 and 2 tie at 2
    order, count = rank_eligible(f, c, NO_VOL, ex, NO_ALLOWED)
    assert count.tolist() == [5]
    assert order[0].tolist() == [1, 4, 5, 0, 2, -1, -1, -1]
    order, count = rank_eligible(f, c, v, ex, NO_ALLOWED)
    assert order[0, : count[0]].tolist() == [1, 4, 5, 0, 2]
    order, count = rank_eligible(f, c, v_bad, ex, NO_ALLOWED)  # 1 (vol 0) and 4 (vol NaN) drop
    assert order[0, : count[0]].tolist() == [5, 0, 2]
    ex2 = ex.copy()
    ex2[0] = True
    order, count = rank_eligible(f, c, NO_VOL, ex2, NO_ALLOWED)
    assert order[0, : count[0]].tolist() == [1, 4, 5, 2]


def test_rank_eligible_nothing_eligible():
    f = np.full((3, N), nan)
    f[1, 3] = 1.0
    order, count = rank_eligible(f, np.ones((3, N)), NO_VOL, np.zeros(N, dtype=np.bool_), NO_ALLOWED)
    assert count.tolist() == [0, 1, 0]
    assert (order[0] == -1).all() and order[1].tolist() == [3] + [-1] * (N - 1)


def test_rank_eligible_all_tied_keeps_symbol_order():
    f = np.full((4, N), 0.25)
    order, count = rank_eligible(f, np.ones((4, N)), NO_VOL, np.zeros(N, dtype=np.bool_), NO_ALLOWED)
    assert (count == N).all()
    assert (order == np.arange(N)).all()


# ----------------------------------------------------------------------------
# universe (top by market cap)
# ----------------------------------------------------------------------------


def make_caps(seed):
    rng = np.random.default_rng(seed)
    cap = rng.integers(1, 6, size=(T, N)).astype(np.float64) * 1e9  # many ties
    cap[rng.random((T, N)) < 0.15] = nan
    cap[:50, 3] = nan
    return np.ascontiguousarray(cap)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("top_k", [1, 3, 5, N, N + 3])
def test_universe_matches_python(top_k, seed):
    cap = make_caps(seed)
    excluded = np.zeros(N, dtype=np.bool_)
    excluded[[1, 6]] = True
    got = universe(cap, excluded, NO_ALLOWED, top_k)
    assert got.shape == (T, N) and got.dtype == np.bool_
    np.testing.assert_array_equal(got, py_universe(cap, excluded, top_k))


def test_universe_hand_worked_ties():
    # symbols:       0    1    2    3    4    5    6    7
    cap = np.array([[5.0, 7.0, 5.0, nan, 7.0, 5.0, 9.0, 1.0]])
    ex = np.zeros(N, dtype=np.bool_)
    # largest first: 6 (9), then 1 and 4 (7, symbol order), then 0, 2, 5 (5)
    expect = {1: [6], 2: [1, 6], 3: [1, 4, 6], 4: [0, 1, 4, 6], 5: [0, 1, 2, 4, 6], 20: [0, 1, 2, 4, 5, 6, 7]}
    for k, members in expect.items():
        assert np.flatnonzero(universe(cap, ex, NO_ALLOWED, k)[0]).tolist() == members, k
    ex[1] = True  # excluded first, then the top K of the rest
    assert np.flatnonzero(universe(cap, ex, NO_ALLOWED, 3)[0]).tolist() == [0, 4, 6]


def test_universe_off_when_top_k_is_zero():
    ex = np.zeros(N, dtype=np.bool_)
    got = universe(np.empty((0, 0)), ex, NO_ALLOWED, 0)
    assert got.shape == (0, N)


@pytest.mark.parametrize("seed", [0, 1])
def test_universe_then_rank_eligible_matches_python(seed):
    """The full §5 eligibility: exclude, top-K by cap, finite feature / close, vol."""
    feature, close, vol = make_inputs(seed + 10)
    cap = make_caps(seed)
    excluded = np.zeros(N, dtype=np.bool_)
    excluded[4] = True
    allowed = universe(cap, excluded, NO_ALLOWED, 4)
    order, count = rank_eligible(feature, close, vol, excluded, allowed)
    expected_allowed = py_universe(cap, excluded, 4)
    assert_ranking(order, count, py_rank(feature, close, vol, excluded, expected_allowed))
    assert (count <= 4).all()


def test_restrict_ranking_equals_ranking_with_vol():
    """Filtering the plain ranking by vol gives the ranking that sorts with vol eligibility."""
    from kernels.selection import rank_eligible, restrict_ranking

    rng = np.random.default_rng(3)
    T, N = 60, 12
    feature = np.round(rng.normal(size=(T, N)), 1)  # rounding makes ties
    feature[rng.random((T, N)) < 0.1] = np.nan
    close = np.where(rng.random((T, N)) < 0.05, np.nan, 1.0)
    vol = np.abs(rng.normal(size=(T, N)))
    vol[rng.random((T, N)) < 0.15] = np.nan
    vol[rng.random((T, N)) < 0.05] = 0.0
    excluded = np.zeros(N, dtype=np.bool_)
    excluded[4] = True
    no_universe = np.empty((0, N), dtype=np.bool_)
    order, count = rank_eligible(feature, close, np.empty((0, 0)), excluded, no_universe)
    expected = rank_eligible(feature, close, vol, excluded, no_universe)
    got = restrict_ranking(order, count, vol)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[0], expected[0])
