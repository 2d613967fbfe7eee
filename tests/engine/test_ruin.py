"""Ruin (SEMANTICS §8, §9): a book whose NAV reaches zero is closed that day.

Hand-worked cases first (every expected number is plain arithmetic here), then
the fast path against the independent reference on every factor with books
levered until some of them are ruined.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_close
from reference import reference_backtest
from test_backtest import START, WINDOWS, _reference

import sweep

SQ = math.sqrt(365.0)


def _panel(close):
    close = np.array(close, dtype=float)
    dates = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-01") + close.shape[0])
    return sweep.panel_from_arrays(dates, ["A", "B"], close)


def _momentum(panel, **kw):
    # window 1: the feature at t is l[t]; q = 2 puts one symbol in each bucket.
    return sweep.backtest(panel, factor="momentum", window=1, q=2, rebalance_days=1,
                          start=panel.dates[1], return_weights=True, **kw)


def test_short_leg_up_150_percent_ruins_the_book_by_price():
    # Day 1: A rose, B flat -> long A (+0.5), short B (-0.5). Day 2: A falls 50 %
    # and B rises 150 %: P = 0.5 * -0.5 - 0.5 * 1.5 = -1.0, so 1 + P = 0: ruined.
    close = [[100, 100], [110, 100], [55, 250], [60, 200], [70, 210]]
    res = _momentum(_panel(close))
    R = res.returns["ret"].to_numpy()
    np.testing.assert_array_equal(R, [0.0, -1.0, 0.0, 0.0])
    # The pre-cost book holds the same weights: ruined on the same day.
    np.testing.assert_array_equal(res.returns["ret_pre_cost"].to_numpy(), [0.0, -1.0, 0.0, 0.0])
    # Ruined by price: no rebalance on day 2 (tau = 0) and the weights are 0 from then on.
    np.testing.assert_array_equal(res.returns["turnover"].to_numpy(), [1.0, 0.0, 0.0, 0.0])
    W = res.weights.drop("date").to_numpy()
    np.testing.assert_array_equal(W, [[0.5, -0.5], [0, 0], [0, 0], [0, 0]])
    m = res.metrics
    x = np.array([0.0, -1.0, 0.0, 0.0])
    expected = {
        "ruined": 1.0, "total_return": -1.0, "cagr": -1.0, "max_drawdown": -1.0, "calmar": -1.0,
        "sharpe": x.mean() / x.std(ddof=1) * SQ, "sharpe_pre_cost": x.mean() / x.std(ddof=1) * SQ,
        "sortino": x.mean() / math.sqrt(0.25) * SQ, "ann_vol": x.std(ddof=1) * SQ,
        "win_rate": 0.0, "turnover": 1.0 * 365 / 4, "cost_paid": 0.0,
        "avg_long": 0.25, "avg_short": 0.25, "avg_net_exposure": 0.0, "avg_gross_exposure": 0.25,
        "n_rebalances": 4,  # the schedule counts the closed book's rebalance days
    }
    for name, value in expected.items():
        assert_close(m[name], value, name)


def test_a_deeper_loss_than_the_nav_is_still_minus_one():
    # The short leg rises 200 %: 1 + P = 1 + 0.5 * -0.5 - 0.5 * 2 = -0.25 < 0.
    res = _momentum(_panel([[100, 100], [110, 100], [55, 300], [60, 200]]))
    np.testing.assert_array_equal(res.returns["ret"].to_numpy(), [0.0, -1.0, 0.0])
    assert res.metrics["ruined"] == 1.0 and res.metrics["total_return"] == -1.0


def test_ruin_by_cost_closes_the_net_book_but_not_the_pre_cost_one():
    # A cost of 100 % of the traded value: the first rebalance trades tau = 1 and
    # costs C = 1, the whole NAV. The net book is ruined by cost on day 1 (the
    # trade was made: tau and C are reported); the pre-cost book goes on.
    close = [[100, 100], [110, 100], [121, 100], [121, 110]]
    res = _momentum(_panel(close), fee_bps=10_000.0)
    np.testing.assert_array_equal(res.returns["ret"].to_numpy(), [-1.0, 0.0, 0.0])
    np.testing.assert_array_equal(res.returns["turnover"].to_numpy(), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(res.returns["cost"].to_numpy(), [1.0, 0.0, 0.0])
    # Pre-cost: day 2 the long A earns +10 %, the short B 0: P = 0.05; day 3
    # (rebalanced to long A again on day 2, A rose, B flat) B rises 10 %: P = -0.05.
    np.testing.assert_allclose(res.returns["ret_pre_cost"].to_numpy(), [0.0, 0.05, -0.05], rtol=1e-15)
    assert res.metrics["ruined"] == 1.0
    assert_close(res.metrics["cost_paid"], 1.0)
    assert_close(res.metrics["sharpe_pre_cost"], 0.0)
    assert res.metrics["avg_gross_exposure"] == 0.0  # the weights after step 4 of a ruin day are 0


def test_an_open_book_is_not_ruined(small_panel):
    res = sweep.backtest(small_panel, factor="volatility", window=10, start=small_panel.dates[START])
    assert res.metrics["ruined"] == 0.0
    assert (res.returns["ret"].to_numpy() > -1.0).all()


# Levered books (gross 2 x 3.5 of NAV) on the generated panel, so that some are ruined.
LEVERED = [dict(long_allocation=3.5, short_allocation=3.5, rebalance_days=k, hold=h, weighting=w)
           for k in (1, 7) for h in ("drift", "constant") for w in ("equal", "risk_parity")]


@pytest.mark.parametrize("factor", list(WINDOWS))
def test_ruined_books_match_the_reference_on_every_factor(small_panel, factor):
    """The fast path and the reference agree to 1e-9 on levered books, ruined ones among them."""
    ruined = 0
    for extra in LEVERED + [dict(long_allocation=2.0, short_allocation=2.0, fee_bps=3000.0, rebalance_days=1)]:
        params = {"factor": factor, "vol_window": 10, "q": 4, "max_days": 8, **extra}
        if WINDOWS[factor] is not None:
            params["window"] = WINDOWS[factor]
        if factor == "beta":
            params["market_symbol"] = "S001"
        if factor == "days_from_high":  # long-only: lever the long side alone
            params["short_allocation"] = 0.0
            params["long_allocation"] = 6.0
        fast = sweep.backtest(small_panel, start=small_panel.dates[START], return_weights=True, **params)
        ref = _reference(small_panel, fast.params, START, small_panel.shape[0] - 1)
        for name, value in ref["metrics"].items():
            assert_close(fast.metrics[name], value, f"{name} of {params}")
        np.testing.assert_allclose(fast.returns["ret"].to_numpy(), ref["R"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fast.returns["ret_pre_cost"].to_numpy(), ref["R_pre"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fast.weights.drop("date").to_numpy(), ref["weights"], rtol=1e-9, atol=1e-12)
        ruined += int(ref["metrics"]["ruined"])
    assert ruined > 0, f"no levered {factor} book was ruined: the agreement above would not test ruin"


def test_reference_closes_a_ruined_book_by_hand():
    """The reference itself, on the hand-worked price ruin above."""
    close = np.array([[100, 100], [110, 100], [55, 250], [60, 200]], dtype=float)
    dates = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-05"))
    params = dict(factor="momentum", window=1, vol_window=2, long="high", selection="quantile", q=2,
                  top_n=10, weighting="equal", long_allocation=0.5, short_allocation=0.5, rebalance_days=1,
                  phase=0, hold="drift", buffer=0.0, fee_bps=0.0, slippage_bps=0.0, market="symbol",
                  market_symbol="A", max_days=20, top_by_market_cap=None, exclude=[])
    out = reference_backtest(dates, ["A", "B"], close, None, None, params, 1, 3)
    np.testing.assert_array_equal(out["R"], [0.0, -1.0, 0.0])
    np.testing.assert_array_equal(out["V"], [1.0, 0.0, 0.0])
    assert out["metrics"]["ruined"] == 1.0
