"""The fast path against the independent slow reference (tests/reference.py), to 1e-9.

Every factor x {equal, risk_parity} x {drift, constant} x {quantile, top_n}
x buffer on/off x costs on/off x phase 0/>0, on a generated panel with gaps,
listings, delistings, funding and market caps; and every factor x min_volume
on/off x regime all/bear/bull x market symbol/equal_weight x funding on/off
(SEMANTICS §5 universe and regime, §8 funding switch).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import assert_close
from reference import reference_backtest

import sweep

# Short windows so a 260-day panel leaves most of its days for evaluation.
WINDOWS = {"volatility": 10, "kurtosis": 12, "skewness": 10, "beta": 20, "carry": 3, "size": None,
           "momentum": 10, "mean_reversion": 3, "days_from_high": 40}
START = 40  # every window above (and vol_window) is complete by day 40


def _params(factor, weighting, hold, selection, buffer, costs, phase):
    p = {"factor": factor, "weighting": weighting, "hold": hold, "selection": selection,
         "vol_window": 10, "rebalance_days": 3, "phase": phase, "buffer": 0.3 if buffer else 0.0,
         "top_n": 3, "q": 4, "max_days": 8}
    if WINDOWS[factor] is not None:
        p["window"] = WINDOWS[factor]
    if costs:
        p.update(fee_bps=10.0, slippage_bps=5.0)
    if factor == "beta":
        p.update(market="equal_weight") if phase else p.update(market_symbol="S001")
    # Universe filters ride along on part of the grid so they meet every factor.
    if phase:
        p["exclude"] = ["S002", "S005"]
    if buffer:
        p["top_by_market_cap"] = 12
    return p


def _reference(panel, resolved, s, e):
    ref_params = dict(resolved)
    ref_params["exclude"] = list(resolved["exclude"])
    ref_params["top_by_market_cap"] = resolved["top_by_market_cap"] or None
    return reference_backtest(panel.dates, list(panel.symbols), panel.close, panel.fields.get("market_cap"),
                              panel.fields.get("funding_rate"), ref_params, s, e,
                              volume=panel.fields.get("volume"))


def _assert_agrees(fast, ref, case):
    for name, value in ref["metrics"].items():
        assert_close(fast.metrics[name], value, f"{name} of {case}")
    for column, series in (("ret", "R"), ("ret_pre_cost", "R_pre"), ("funding", "F"), ("turnover", "tau")):
        np.testing.assert_allclose(fast.returns[column].to_numpy(), ref[series], rtol=1e-9, atol=1e-12,
                                   err_msg=f"{column} of {case}")
    weights = fast.weights.drop("date").to_numpy()
    np.testing.assert_allclose(weights, ref["weights"], rtol=1e-9, atol=1e-12, err_msg=case)


# SEMANTICS §5 universe and regime, §8 funding switch. Short regime averages so the
# 260-day panel has both regimes (and days with neither: the warm-up, a market-symbol gap).
REGIME = {"regime_fast": 8, "regime_slow": START}
MARKETS = {"symbol": {"market": "symbol", "market_symbol": "S009"},  # S009 has a gap: undefined averages
           "equal_weight": {"market": "equal_weight"}}


def _new_params(factor, liquid, regime, market, funding, variant):
    # ``variant`` walks the older parameters along the grid so each new one meets several of them.
    weighting, hold, selection = (("equal", "drift", "quantile"), ("risk_parity", "constant", "top_n"),
                                  ("risk_parity", "drift", "quantile"), ("equal", "constant", "top_n"))[variant % 4]
    p = _params(factor, weighting, hold, selection, variant % 3 == 0, True, variant % 2 * 2)
    p.update(MARKETS[market], regime=regime, funding=funding, **REGIME)
    if liquid:
        p.update(min_volume=3e5, volume_window=10 + variant % 2)  # an odd window: ceil(v / 2) = 6
    if factor == "carry" and not funding:
        p["funding"] = True  # carry with funding = false is an error (test_universe_regime.py)
    return p


@pytest.mark.parametrize("factor", list(WINDOWS))
@pytest.mark.parametrize("liquid", [False, True])
@pytest.mark.parametrize("regime", ["all", "bear", "bull"])
def test_universe_regime_funding_match_reference(small_panel, factor, liquid, regime):
    start = small_panel.dates[START]
    for variant, (market, funding) in enumerate(itertools.product(MARKETS, [True, False])):
        params = _new_params(factor, liquid, regime, market, funding, variant + len(factor))
        fast = sweep.backtest(small_panel, start=start, return_weights=True, **params)
        ref = _reference(small_panel, fast.params, START, small_panel.shape[0] - 1)
        _assert_agrees(fast, ref, f"{params}")
        if not params["funding"]:
            assert fast.metrics["funding_return"] == 0.0 and (fast.returns["funding"] == 0.0).all()


def test_new_filters_bite_in_the_agreement_grid(small_panel):
    """The agreement above would be hollow if the filters never changed a weight."""
    start = small_panel.dates[START]
    base = _params("momentum", "equal", "drift", "quantile", False, True, 0)
    plain = sweep.backtest(small_panel, start=start, return_weights=True, **base)
    w0 = plain.weights.drop("date").to_numpy()
    liquid = sweep.backtest(small_panel, start=start, return_weights=True, min_volume=3e5, volume_window=10,
                            **base)
    assert not np.array_equal(liquid.weights.drop("date").to_numpy(), w0)
    assert liquid.metrics["avg_gross_exposure"] > 0.5
    for market in MARKETS.values():
        held = {}
        for regime in ("bear", "bull"):
            res = sweep.backtest(small_panel, start=start, return_weights=True, regime=regime, **REGIME,
                                 **{**base, **market})
            gross = np.abs(res.weights.drop("date").to_numpy()).sum(axis=1)
            held[regime] = gross > 0
            assert 0 < held[regime].mean() < 1, (market, regime)  # each regime holds on some days only
        assert not (held["bear"] & held["bull"]).any()  # never both
    nofund = sweep.backtest(small_panel, start=start, funding=False, **base)
    assert plain.metrics["funding_return"] != 0.0 and nofund.metrics["funding_return"] == 0.0


@pytest.mark.parametrize("factor", list(WINDOWS))
@pytest.mark.parametrize("weighting", ["equal", "risk_parity"])
@pytest.mark.parametrize("hold", ["drift", "constant"])
@pytest.mark.parametrize("selection", ["quantile", "top_n"])
def test_fast_path_matches_reference(small_panel, factor, weighting, hold, selection):
    start = small_panel.dates[START]
    for buffer, costs, phase in itertools.product([False, True], [False, True], [0, 2]):
        params = _params(factor, weighting, hold, selection, buffer, costs, phase)
        fast = sweep.backtest(small_panel, start=start, return_weights=True, **params)
        ref = _reference(small_panel, fast.params, START, small_panel.shape[0] - 1)
        case = f"{params}"
        for name, value in ref["metrics"].items():
            assert_close(fast.metrics[name], value, f"{name} of {case}")
        np.testing.assert_allclose(fast.returns["ret"].to_numpy(), ref["R"], rtol=1e-9, atol=1e-12,
                                   err_msg=case)
        np.testing.assert_allclose(fast.returns["ret_pre_cost"].to_numpy(), ref["R_pre"], rtol=1e-9,
                                   atol=1e-12, err_msg=case)
        weights = fast.weights.drop("date").to_numpy()
        np.testing.assert_allclose(weights, ref["weights"], rtol=1e-9, atol=1e-12, err_msg=case)


def test_every_factor_trades_in_the_agreement_grid(small_panel):
    """The agreement above would be hollow if a factor never held anything."""
    for factor in WINDOWS:
        params = _params(factor, "equal", "drift", "quantile", False, False, 0)
        res = sweep.backtest(small_panel, start=small_panel.dates[START], **params)
        assert res.metrics["avg_gross_exposure"] > 0.5, factor
        assert res.metrics["n_rebalances"] == len(range(START, small_panel.shape[0], 3))


@pytest.mark.parametrize("factor", list(WINDOWS))
def test_no_lookahead(small_panel, factor):
    """Changing every value after day t leaves weights and returns up to t bit-identical."""
    params = _params(factor, "risk_parity", "drift", "quantile", False, True, 0)
    start = small_panel.dates[START]
    base = sweep.backtest(small_panel, start=start, return_weights=True, **params)
    rng = np.random.default_rng(11)
    for t in (START + 5, 150, small_panel.shape[0] - 2):
        fields = {name: arr.copy() for name, arr in small_panel.fields.items()}
        for name, arr in fields.items():
            future = arr[t + 1:]
            # Scramble the future: new prices, caps and funding where data exist.
            future[:] = np.where(np.isfinite(future), np.abs(future) * rng.lognormal(0, 0.5, future.shape),
                                 future)
        close = fields.pop("close")
        changed = sweep.panel_from_arrays(small_panel.dates, small_panel.symbols, close, **fields)
        alt = sweep.backtest(changed, start=start, return_weights=True, **params)
        d = t - START + 1  # rows for days START .. t
        assert np.array_equal(base.weights.drop("date").to_numpy()[:d], alt.weights.drop("date").to_numpy()[:d])
        assert np.array_equal(base.returns["ret"].to_numpy()[:d], alt.returns["ret"].to_numpy()[:d])
        # ... and the scrambled future does reach the days after t.
        assert not np.array_equal(base.returns["ret"].to_numpy()[d:], alt.returns["ret"].to_numpy()[d:])
