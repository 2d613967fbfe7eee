"""Hand-worked checks of the reference backtest (tests/reference.py) itself.

Every expected number here is worked out by hand from SEMANTICS.md, as plain
arithmetic in the test, never by calling the reference's own helpers."""

import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from reference import METRIC_NAMES, reference_backtest  # noqa: E402

nan = np.nan


def make_params(**overrides):
    p = dict(
        factor="momentum",
        window=1,
        vol_window=2,
        long="high",
        selection="quantile",
        q=2,
        top_n=10,
        weighting="equal",
        long_allocation=0.5,
        short_allocation=0.5,
        rebalance_days=1,
        phase=0,
        hold="drift",
        buffer=0.0,
        fee_bps=0.0,
        slippage_bps=0.0,
        market="symbol",
        market_symbol="A",
        max_days=20,
        top_by_market_cap=None,
        exclude=[],
    )
    p.update(overrides)
    return p


def run(close, params, s, e, market_cap=None, funding=None, symbols=None):
    close = np.array(close, dtype=float)
    T, N = close.shape
    dates = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-01") + T)
    symbols = symbols or [chr(ord("A") + i) for i in range(N)]
    mc = None if market_cap is None else np.array(market_cap, dtype=float)
    fr = None if funding is None else np.array(funding, dtype=float)
    return reference_backtest(dates, symbols, close, mc, fr, params, s, e)


def close_rel(a, b, tol=1e-12):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


# ---------------------------------------------------------------------------
# 1. Two-symbol equal-weight long-short momentum(1), rebalanced every 2 days
# ---------------------------------------------------------------------------


def test_two_symbol_long_short_by_hand():
    # day:      0      1      2      3      4      5
    A = [100.0, 110.0, 99.0, 99.0, 108.9, 108.9]
    B = [100.0, 100.0, 105.0, 94.5, 94.5, 99.225]
    close = np.column_stack([A, B])
    p = make_params(rebalance_days=2, fee_bps=7.0, slippage_bps=3.0)  # 10 bps in all
    out = run(close, p, s=1, e=5)
    c = 10.0 / 10_000

    # Day 1 (rebalance): w = 0 -> P = 0.  momentum(1): A = log 1.1 > B = log 1.0.
    # Long "high" = A, short B, k = floor(2/2) = 1.  tau = 1, C = 0.001.
    P1, tau1, C1 = 0.0, 1.0, 1.0 * c
    R1 = (1 + P1) * (1 - C1) - 1
    w = [0.5, -0.5]

    # Day 2 (no rebalance): q_A = -0.1, q_B = +0.05.
    P2 = 0.5 * -0.1 + -0.5 * 0.05  # -0.075
    w = [0.5 * 0.9 / (1 + P2), -0.5 * 1.05 / (1 + P2)]
    R2 = P2
    w_day2 = list(w)

    # Day 3 (rebalance): q_A = 0, q_B = -0.1.
    P3 = w[0] * 0.0 + w[1] * -0.1
    w = [w[0] * 1.0 / (1 + P3), w[1] * 0.9 / (1 + P3)]
    # momentum(1) at day 3: A = log(1) = 0, B = log(0.9) < 0 -> long A, short B again.
    tau3 = abs(0.5 - w[0]) + abs(-0.5 - w[1])
    C3 = tau3 * c
    R3 = (1 + P3) * (1 - C3) - 1
    w = [0.5, -0.5]

    # Day 4 (no rebalance): q_A = 0.1, q_B = 0.
    P4 = 0.5 * 0.1
    w = [0.5 * 1.1 / (1 + P4), -0.5 / (1 + P4)]
    R4 = P4

    # Day 5 (rebalance): q_A = 0, q_B = 0.05.
    P5 = w[1] * 0.05
    w = [w[0] / (1 + P5), w[1] * 1.05 / (1 + P5)]
    # momentum(1): A = 0, B = log 1.05 > 0 -> long B, short A.
    tau5 = abs(-0.5 - w[0]) + abs(0.5 - w[1])
    C5 = tau5 * c
    R5 = (1 + P5) * (1 - C5) - 1

    R = np.array([R1, R2, R3, R4, R5])
    np.testing.assert_allclose(out["R"], R, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(out["P"], [P1, P2, P3, P4, P5], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(out["tau"], [tau1, 0, tau3, 0, tau5], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(out["weights"][1], w_day2, rtol=1e-13)
    np.testing.assert_allclose(out["weights"][4], [-0.5, 0.5], rtol=1e-13)

    # Pre-cost series: the same with no cost on rebalance days.
    np.testing.assert_allclose(out["R_pre"], [P1, P2, P3, P4, P5], rtol=1e-13, atol=1e-15)

    m = out["metrics"]
    assert set(m) == set(METRIC_NAMES)
    n = 5
    total = (1 + R1) * (1 + R2) * (1 + R3) * (1 + R4) * (1 + R5) - 1
    assert close_rel(m["total_return"], total)
    assert close_rel(m["cagr"], (1 + total) ** (365 / n) - 1)
    assert close_rel(m["turnover"], (tau1 + tau3 + tau5) * 365 / n)
    assert close_rel(m["cost_paid"], C1 + C3 + C5)
    assert m["funding_return"] == 0.0
    assert m["n_rebalances"] == 3
    assert m["avg_long"] == 1.0 and m["avg_short"] == 1.0
    mean = R.mean()
    sd = math.sqrt(sum((x - mean) ** 2 for x in R) / (n - 1))
    assert close_rel(m["ann_vol"], sd * math.sqrt(365))
    assert close_rel(m["sharpe"], mean / sd * math.sqrt(365))
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in R) / n)
    assert close_rel(m["sortino"], mean / down * math.sqrt(365))
    # Wins: R1 < 0 (cost only), R2 = -0.075 < 0, R4 = 0.05 > 0; count by sign.
    wins = sum(x > 0 for x in R)
    assert close_rel(m["win_rate"], wins / sum(x != 0 for x in R))
    # Drawdown by hand against the running peak (starting NAV 1 included).
    V, peak, mdd = 1.0, 1.0, 0.0
    for x in R:
        V *= 1 + x
        peak = max(peak, V)
        mdd = min(mdd, V / peak - 1)
    assert close_rel(m["max_drawdown"], mdd)
    assert close_rel(m["calmar"], m["cagr"] / abs(mdd))
    # Net exposure: day 1 0, day 2 sum(w_day2), days 3 and 5 back to 0, day 4 drifted.
    w4 = [0.5 * 1.1 / 1.05, -0.5 / 1.05]
    assert close_rel(m["avg_net_exposure"], (0 + sum(w_day2) + 0 + sum(w4) + 0) / 5)
    gross = (1 + sum(map(abs, w_day2)) + 1 + sum(map(abs, w4)) + 1) / 5
    assert close_rel(m["avg_gross_exposure"], gross)


def test_sharpe_pre_cost_uses_zero_fee_run():
    A = [100.0, 110.0, 99.0, 99.0, 108.9, 108.9]
    B = [100.0, 100.0, 105.0, 94.5, 94.5, 99.225]
    close = np.column_stack([A, B])
    with_cost = run(close, make_params(fee_bps=25.0, slippage_bps=5.0), 1, 5)
    no_cost = run(close, make_params(), 1, 5)
    np.testing.assert_array_equal(with_cost["R_pre"], no_cost["R"])
    assert with_cost["metrics"]["sharpe_pre_cost"] == no_cost["metrics"]["sharpe"]
    np.testing.assert_array_equal(with_cost["weights"], no_cost["weights"])


# ---------------------------------------------------------------------------
# 2. Funding (carry factor)
# ---------------------------------------------------------------------------


def test_funding_carry_by_hand():
    T = 6
    close = np.full((T, 2), 50.0)  # prices never move: P = 0
    funding = np.column_stack([np.full(T, 0.001), np.full(T, -0.0005)])
    p = make_params(factor="carry", window=1, long="low", fee_bps=10.0)
    out = run(close, p, s=0, e=T - 1, funding=funding)

    # Day 0: flat before, carry(1): A = 0.001, B = -0.0005 -> long B (low), short A.
    # tau0 = 1, F0 = 0.
    # Days 1..5: w = [-0.5, 0.5] at the close before:
    F = -(-0.5 * 0.001 + 0.5 * -0.0005)  # = +0.00075 (short pays nothing, receives)
    assert close_rel(F, 0.00075)
    # drift: w_i * (1 + 0) / (1 + F); rebalance back to +-0.5:
    tau = 2 * (0.5 - 0.5 / (1 + F))
    C = tau * 0.001
    R = (1 + F) * (1 - C) - 1
    np.testing.assert_allclose(out["F"], [0.0] + [F] * 5, rtol=1e-13)
    np.testing.assert_allclose(out["tau"], [1.0] + [tau] * 5, rtol=1e-12)
    np.testing.assert_allclose(out["R"], [-0.001] + [R] * 5, rtol=1e-12)
    np.testing.assert_allclose(out["R_pre"], [0.0] + [F] * 5, rtol=1e-13)
    assert close_rel(out["metrics"]["funding_return"], 5 * F)

    # hold = "constant": weights never drift, so there is nothing to trade after day 0.
    const = run(close, make_params(factor="carry", window=1, long="low", fee_bps=10.0, hold="constant"),
                s=0, e=T - 1, funding=funding)
    np.testing.assert_allclose(const["tau"], [1.0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(const["R"], [-0.001] + [F] * 5, rtol=1e-13)


def test_no_funding_column_means_zero_funding_and_flat_carry():
    close = np.full((5, 2), 10.0)
    out = run(close, make_params(factor="carry", long="low"), 0, 4)
    assert np.all(out["weights"] == 0.0)
    assert out["metrics"]["funding_return"] == 0.0
    assert math.isnan(out["metrics"]["sharpe"])  # R all 0: std 0
    assert math.isnan(out["metrics"]["win_rate"])  # no non-zero R
    assert math.isnan(out["metrics"]["sortino"])
    assert math.isnan(out["metrics"]["calmar"])  # max drawdown 0


# ---------------------------------------------------------------------------
# 3. A gap in a close series: carried-forward price return
# ---------------------------------------------------------------------------


def test_gap_earns_the_whole_move_on_return():
    # A is missing on days 3 and 4; B is missing after day 5 (delisted).
    A = [100.0, 100.0, 120.0, nan, nan, 90.0, 99.0, 99.0]
    B = [100.0, 100.0, 100.0, 110.0, 110.0, 121.0, nan, nan]
    close = np.column_stack([A, B])
    # Rebalance only on day 2 (rebalance_days larger than the window).
    p = make_params(rebalance_days=10)
    out = run(close, p, s=2, e=7)

    # Day 2: momentum(1) A = log 1.2 > B = 0 -> long A 0.5, short B 0.5.
    wA, wB = 0.5, -0.5
    R = []
    R.append(0.0)  # day 2: flat before; no costs
    # q per day (carried forward):
    qA = {3: 0.0, 4: 0.0, 5: 90.0 / 120.0 - 1, 6: 99.0 / 90.0 - 1, 7: 0.0}
    qB = {3: 0.1, 4: 0.0, 5: 0.1, 6: 0.0, 7: 0.0}  # frozen at 121 after its last close
    for t in range(3, 8):
        P = wA * qA[t] + wB * qB[t]
        R.append(P)
        wA, wB = wA * (1 + qA[t]) / (1 + P), wB * (1 + qB[t]) / (1 + P)
    np.testing.assert_allclose(out["R"], R, rtol=1e-13, atol=1e-15)
    # Day 5 earns A's whole -25 % since its last close on day 2.
    assert out["R"][3] != 0.0
    np.testing.assert_allclose(out["weights"][-1], [wA, wB], rtol=1e-13)
    # P&L is conserved: NAV equals the buy-and-hold value of the two legs.
    nav = 1 + 0.5 * (99.0 / 120.0 - 1) - 0.5 * (121.0 / 100.0 - 1)
    assert close_rel(out["V"][-1], nav)


def test_gap_makes_symbol_ineligible_and_feature_nan():
    # B has no close on day 3: momentum(1) of B is NaN on days 3 and 4
    # (r needs both closes finite), and close[3] is not finite.
    A = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    B = [10.0, 10.0, 10.0, nan, 10.0, 10.0]
    C = [10.0, 9.0, 8.0, 7.0, 6.0, 5.0]
    close = np.column_stack([A, B, C])
    out = run(close, make_params(), 1, 5)
    W = out["weights"]
    # n = 3 eligible -> k = floor(3/2) = 1 on days 1, 2, 5; n = 2 -> k = 1 on days 3, 4.
    for d in range(5):
        assert W[d, 0] == 0.5 and W[d, 2] == -0.5 and W[d, 1] == 0.0


# ---------------------------------------------------------------------------
# 4. Buffer
# ---------------------------------------------------------------------------


def test_buffer_keeps_small_deviations():
    # size factor with fixed caps: A small (long), B large (short), C middle (never held: k=1).
    A = [100.0, 102.0, 130.0, 130.0]
    B = [100.0, 100.0, 100.0, 99.0]
    Cc = [100.0, 100.0, 100.0, 100.0]
    close = np.column_stack([A, B, Cc])
    mc = np.tile([1.0, 3.0, 2.0], (4, 1))
    b = 0.1
    p = make_params(factor="size", long="low", buffer=b, fee_bps=10.0)
    out = run(close, p, 0, 3, market_cap=mc)

    # Day 0: tau = 1.
    w = [0.5, -0.5]
    taus = [1.0]
    # Day 1: q_A = 0.02. w_A = 0.51/1.01 = 0.50495..., w_B = -0.5/1.01 = -0.49505...
    P = 0.5 * 0.02
    w = [0.5 * 1.02 / (1 + P), -0.5 / (1 + P)]
    # |0.5 - 0.50495| = 0.00495 <= 0.05 and |-0.5 + 0.49505| = 0.00495 <= 0.05 -> both kept.
    assert abs(0.5 - w[0]) <= b * 0.5 and abs(-0.5 - w[1]) <= b * 0.5
    taus.append(0.0)
    w_day1 = list(w)
    # Day 2: q_A = 130/102 - 1: a big move, both legs leave the band.
    qA = 130.0 / 102.0 - 1
    P = w[0] * qA
    w = [w[0] * (1 + qA) / (1 + P), w[1] / (1 + P)]
    assert abs(0.5 - w[0]) > 0.05 and abs(-0.5 - w[1]) > 0.05
    taus.append(abs(0.5 - w[0]) + abs(-0.5 - w[1]))
    # Day 3: q_B = -0.01: w_B = -0.5 * 0.99 / 1.005 = -0.49254 (kept), w_A = 0.5/1.005 (kept).
    P = -0.5 * -0.01
    w = [0.5 / (1 + P), -0.5 * 0.99 / (1 + P)]
    taus.append(0.0)

    np.testing.assert_allclose(out["tau"], taus, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(out["weights"][1], w_day1 + [0.0], rtol=1e-13)
    np.testing.assert_allclose(out["weights"][2], [0.5, -0.5, 0.0], rtol=1e-13)
    np.testing.assert_allclose(out["weights"][3], w + [0.0], rtol=1e-13)
    assert out["metrics"]["n_rebalances"] == 4
    assert close_rel(out["metrics"]["cost_paid"], sum(taus) * 0.001)


def test_buffer_mixed_keep_and_trade():
    # Three symbols, k = 1 of 3: only the band decides per symbol.
    # A long 0.5, C short 0.5.  Day 1: A +4 %, C 0 %.
    A = [100.0, 104.0]
    B = [100.0, 100.0]
    C = [100.0, 100.0]
    close = np.column_stack([A, B, C])
    mc = np.tile([1.0, 2.0, 3.0], (2, 1))
    p = make_params(factor="size", long="low", buffer=0.03)
    out = run(close, p, 0, 1, market_cap=mc)
    P = 0.5 * 0.04
    wA, wC = 0.5 * 1.04 / (1 + P), -0.5 / (1 + P)
    # |0.5 - wA| = 0.0098 <= 0.015 -> keep A; |-0.5 - wC| = 0.0098 <= 0.015 -> keep C too.
    assert abs(0.5 - wA) <= 0.015
    np.testing.assert_allclose(out["tau"], [1.0, 0.0])
    out2 = run(close, make_params(factor="size", long="low", buffer=0.019), 0, 1, market_cap=mc)
    # band 0.0095 < 0.0098 -> both trade
    np.testing.assert_allclose(out2["tau"], [1.0, abs(0.5 - wA) + abs(-0.5 - wC)], rtol=1e-13)
    # Mixed: make C move too so that only A stays in its band.
    C2 = [100.0, 97.0]
    close3 = np.column_stack([A, B, C2])
    out3 = run(close3, make_params(factor="size", long="low", buffer=0.05), 0, 1, market_cap=mc)
    P3 = 0.5 * 0.04 - 0.5 * -0.03  # 0.035
    wA3, wC3 = 0.5 * 1.04 / (1 + P3), -0.5 * 0.97 / (1 + P3)
    # A: |0.5 - 0.502415| = 0.0024 <= 0.025 keep.  C: |-0.5 + 0.468599| = 0.0314 > 0.025 trade.
    assert abs(0.5 - wA3) <= 0.025 and abs(-0.5 - wC3) > 0.025
    np.testing.assert_allclose(out3["tau"], [1.0, abs(-0.5 - wC3)], rtol=1e-13)
    np.testing.assert_allclose(out3["weights"][1], [wA3, 0.0, -0.5], rtol=1e-13)


# ---------------------------------------------------------------------------
# 5. Selection, weights, universe, schedule
# ---------------------------------------------------------------------------


def test_quantile_ties_by_symbol_order_and_risk_parity():
    # Four symbols on day 2 with momentum(1): A = B = 0 (tie), C up, D down.
    close = np.array([
        [10.0, 10.0, 10.0, 10.0],
        [10.0, 10.0, 11.0, 9.0],
        [10.0, 10.0, 11.5, 8.5],
    ])
    out = run(close, make_params(long="low", q=2), 2, 2)
    # ascending: D (log 8.5/9), A (0), B (0), C (log 11.5/11); k = 2: bottom D, A; top B, C.
    np.testing.assert_allclose(out["weights"][0], [0.25, -0.25, -0.25, 0.25])

    # risk parity with vol_window = 2 on l[1..2]: A, B have zero vol -> ineligible.
    out = run(close, make_params(long="low", q=2, weighting="risk_parity"), 2, 2)
    # eligible C, D: k = 1. long low = D, short C.
    np.testing.assert_allclose(out["weights"][0], [0.0, 0.0, -0.5, 0.5])

    # risk parity sizing within a side (top_n = 2 of 4, different vols).
    close = np.array([
        [10.0, 10.0, 10.0, 10.0],
        [10.0, 10.0, 10.0, 10.0],
        [11.0, 12.0, 9.0, 8.0],
    ])
    p = make_params(long="high", selection="top_n", top_n=2, weighting="risk_parity", window=1, vol_window=2)
    out = run(close, p, 2, 2)
    l = np.log([1.1, 1.2, 0.9, 0.8])
    s = np.abs(l) / math.sqrt(2)  # std of {0, x} with ddof 1 = |x| / sqrt(2)
    longs = (1 / s[0], 1 / s[1])
    shorts = (1 / s[2], 1 / s[3])
    expect = [0.5 * longs[0] / sum(longs), 0.5 * longs[1] / sum(longs),
              -0.5 * shorts[0] / sum(shorts), -0.5 * shorts[1] / sum(shorts)]
    np.testing.assert_allclose(out["weights"][0], expect, rtol=1e-12)


def test_universe_exclude_then_top_by_market_cap():
    close = np.array([[10.0] * 4, [11.0, 12.0, 9.0, 8.0]])
    mc = np.array([[0.0] * 4, [5.0, 7.0, 7.0, 9.0]])
    # exclude D, then keep the 2 largest caps of the rest: B (7) and C (7); A (5) is dropped.
    # Eligible B, C -> k = 1: long the higher momentum B, short C.
    p = make_params(exclude=["D"], top_by_market_cap=2, long="high")
    out = run(close, p, 1, 1, market_cap=mc)
    np.testing.assert_allclose(out["weights"][0], [0.0, 0.5, -0.5, 0.0])
    # With a tie at the cut: caps A=5, B=7, C=7, keep only 1 -> B (earlier symbol wins the tie).
    p = make_params(exclude=["D"], top_by_market_cap=1)
    out = run(close, p, 1, 1, market_cap=mc)
    np.testing.assert_allclose(out["weights"][0], [0.0, 0.0, 0.0, 0.0])  # n = 1 -> k = 0


def test_schedule_phase():
    close = np.tile([[10.0, 10.0]], (10, 1))
    close[:, 0] = 10.0 * 1.01 ** np.arange(10)
    out = run(close, make_params(rebalance_days=3, phase=1), 2, 9)
    # rebalance where (t - 2 - 1) % 3 == 0: t = 3, 6, 9
    assert list(out["rebalance"]) == [False, True, False, False, True, False, False, True]
    assert out["metrics"]["n_rebalances"] == 3
    assert np.all(out["weights"][0] == 0.0)


def test_days_from_high_long_only():
    # w = 3 closes; A high today (0), B high 2 days ago (2), C high 1 day ago (1).
    close = np.array([
        [1.0, 1.0, 1.0],
        [1.0, 5.0, 1.0],
        [2.0, 4.0, 3.0],
        [3.0, 3.0, 2.0],
    ])
    p = make_params(factor="days_from_high", window=3, max_days=1, long_allocation=1.0, short_allocation=0.0)
    out = run(close, p, 3, 3)
    np.testing.assert_allclose(out["weights"][0], [0.5, 0.0, 0.5])
    # A tie goes to the latest day: closes 2, 3, 3 -> 0 days from high.
    close = np.array([[2.0, 1.0], [3.0, 1.0], [3.0, 1.0]])
    out = run(close, make_params(factor="days_from_high", window=3, max_days=0, long_allocation=1.0), 2, 2)
    # A: high 3 at days 1 and 2 -> latest -> 0; B: all equal -> 0.
    np.testing.assert_allclose(out["weights"][0], [0.5, 0.5])


def test_beta_by_hand():
    # Market A; B = 2 * market log return exactly -> beta 2; C constant -> beta 0.
    lm = np.array([0.01, -0.02, 0.03])
    A = 100 * np.exp(np.concatenate([[0.0], np.cumsum(lm)]))
    B = 100 * np.exp(np.concatenate([[0.0], np.cumsum(2 * lm)]))
    C = np.full(4, 50.0)
    close = np.column_stack([A, B, C])
    out = run(close, make_params(factor="beta", window=3, long="low", q=3), 3, 3)
    # ascending: C (0), A (1), B (2); k = 1: long C, short B.
    np.testing.assert_allclose(out["weights"][0], [0.0, -0.5, 0.5])


def test_window_too_short_is_flat_and_metrics_defined():
    close = np.array([[1.0, 2.0], [1.1, 2.0], [1.2, 2.2]])
    out = run(close, make_params(factor="volatility", window=5), 0, 2)
    assert np.all(out["weights"] == 0.0)
    m = out["metrics"]
    assert m["total_return"] == 0.0 and m["cagr"] == 0.0 and m["ann_vol"] == 0.0
    assert m["n_rebalances"] == 3 and m["turnover"] == 0.0


def test_top_by_market_cap_tie_at_the_cut():
    # exclude E; caps A=9, B=7, C=7, D=7 -> K = 3 keeps A, B, C (D loses the tie to B, C).
    # D has the highest momentum, so it would be the long leg if it were kept.
    close = np.array([[10.0] * 5, [11.0, 10.5, 9.0, 15.0, 20.0]])
    mc = np.array([[1.0] * 5, [9.0, 7.0, 7.0, 7.0, 100.0]])
    p = make_params(exclude=["E"], top_by_market_cap=3, long="high")
    out = run(close, p, 1, 1, market_cap=mc)
    # Eligible A, B, C; n = 3 -> k = 1; ascending C, B, A: long A, short C.
    np.testing.assert_allclose(out["weights"][0], [0.5, 0.0, -0.5, 0.0, 0.0])


def test_skew_and_kurtosis_match_scipy_bias_corrected():
    from scipy import stats

    rng = np.random.default_rng(0)
    T, N, w = 12, 4, 6
    close = 100 * np.exp(np.vstack([np.zeros(N), np.cumsum(rng.normal(0, 0.05, (T - 1, N)), axis=0)]))
    t = T - 1
    l = np.log(close[1:] / close[:-1])[t - w:t]  # l[t-w+1 .. t]
    for factor, fn in (("skewness", lambda x: stats.skew(x, bias=False)),
                       ("kurtosis", lambda x: stats.kurtosis(x, bias=False))):
        vals = np.array([fn(l[:, i]) for i in range(N)])
        order = np.argsort(vals, kind="stable")
        out = run(close, make_params(factor=factor, window=w, long="high", q=4), t, t)
        expect = np.zeros(N)
        expect[order[-1]], expect[order[0]] = 0.5, -0.5
        np.testing.assert_allclose(out["weights"][0], expect)


def test_no_lookahead():
    # Changing data after day t cannot change the weights held at the close of t.
    rng = np.random.default_rng(1)
    T, N = 20, 4
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, (T, N)), axis=0))
    p = make_params(factor="volatility", window=5, weighting="risk_parity", vol_window=4, long="low")
    base = run(close, p, 5, T - 1)
    for t in range(5, T - 1):
        bumped = close.copy()
        bumped[t + 1:] *= rng.uniform(0.5, 2.0, (T - t - 1, N))
        other = run(bumped, p, 5, T - 1)
        np.testing.assert_array_equal(other["weights"][: t - 5 + 1], base["weights"][: t - 5 + 1])
