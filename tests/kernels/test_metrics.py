"""kernels/metrics.py against numpy / pandas and hand-worked series (SEMANTICS §9)."""

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from kernels.metrics import (METRICS, N_METRICS, N_SERIES, S_COST, S_FUNDING, S_GROSS, S_LONG, S_NET, S_RET,
                             S_RET_PRE, S_SHORT, S_TURNOVER, compute_metrics, mean_std, sharpe)

nan = np.nan
RTOL, ATOL = 1e-9, 1e-12
SQ = math.sqrt(365.0)


def run_kernel(R, R_pre=None, tau=None, cost=None, fund=None, n_long=None, n_short=None, net=None, gross=None, n_reb=0):
    n = len(R)
    z = np.zeros(n)

    def arr(a):
        return np.ascontiguousarray(z if a is None else np.asarray(a, dtype=np.float64))

    R = arr(R)
    out = np.full(N_METRICS, -12345.0)
    # Rows in the order of the S_* constants: the kernel reads them by name, not position.
    series = np.empty((N_SERIES, n))
    for row, a in ((S_RET, R), (S_RET_PRE, R if R_pre is None else R_pre), (S_TURNOVER, tau), (S_COST, cost),
                   (S_FUNDING, fund), (S_LONG, n_long), (S_SHORT, n_short), (S_NET, net), (S_GROSS, gross)):
        series[row] = arr(a)
    compute_metrics(series, n_reb, out)
    return dict(zip(METRICS, out.tolist()))


def reference_metrics(R, R_pre, tau, cost, fund, n_long, n_short, net, gross, n_reb):
    """Every §9 metric straight from its definition, with numpy / pandas."""
    s = pd.Series(R)
    n = len(R)
    V = np.cumprod(1.0 + R)
    total = V[-1] - 1.0
    cagr = (1.0 + total) ** (365.0 / n) - 1.0 if 1.0 + total >= 0.0 else nan
    sd = s.std(ddof=1)
    sd_pre = pd.Series(R_pre).std(ddof=1)
    down = np.sqrt(np.mean(np.minimum(R, 0.0) ** 2))
    peak = np.maximum(1.0, np.maximum.accumulate(V))
    mdd = float(np.min(V / peak - 1.0))
    return {
        "total_return": total,
        "cagr": cagr,
        "ann_vol": sd * SQ,
        "sharpe": s.mean() / sd * SQ if sd > 0 else nan,
        "sharpe_pre_cost": np.mean(R_pre) / sd_pre * SQ if sd_pre > 0 else nan,
        "sortino": s.mean() / down * SQ if down > 0 else nan,
        "max_drawdown": mdd,
        "calmar": cagr / abs(mdd) if mdd != 0 else nan,
        "win_rate": (R > 0).sum() / (R != 0).sum() if (R != 0).any() else nan,
        "turnover": tau.sum() * 365.0 / n,
        "cost_paid": cost.sum(),
        "funding_return": fund.sum(),
        "avg_long": n_long.mean(),
        "avg_short": n_short.mean(),
        "avg_net_exposure": net.mean(),
        "avg_gross_exposure": gross.mean(),
        "n_rebalances": float(n_reb),
        "ruined": 1.0 if (V == 0.0).any() else 0.0,  # the NAV reached zero (SEMANTICS §8)
    }


def assert_metrics(got, expected, rtol=RTOL, atol=ATOL):
    assert set(got) == set(METRICS) == set(expected)
    for k in METRICS:
        g, e = got[k], expected[k]
        if isinstance(e, float) and math.isnan(e) or (isinstance(e, np.floating) and np.isnan(e)):
            assert math.isnan(g), f"{k}: {g} != NaN"
        else:
            assert not math.isnan(g), f"{k}: NaN != {e}"
            assert g == pytest.approx(float(e), rel=rtol, abs=atol), k


def random_inputs(seed, n=250):
    rng = np.random.default_rng(seed)
    R_pre = rng.standard_t(3, size=n) * 0.02 + 0.0005
    R_pre[rng.random(n) < 0.1] = 0.0  # flat days
    cost = np.where(rng.random(n) < 0.2, rng.uniform(0, 0.002, n), 0.0)
    R = (1.0 + R_pre) * (1.0 - cost) - 1.0
    tau = cost / 0.0015
    fund = rng.normal(0, 1e-4, n)
    n_long = rng.integers(0, 6, n).astype(np.float64)
    n_short = rng.integers(0, 6, n).astype(np.float64)
    net = rng.uniform(-0.2, 0.2, n)
    gross = rng.uniform(0.5, 1.0, n)
    n_reb = int((cost > 0).sum())
    return dict(R=R, R_pre=R_pre, tau=tau, cost=cost, fund=fund, n_long=n_long, n_short=n_short, net=net, gross=gross, n_reb=n_reb)


@pytest.mark.parametrize("seed", range(6))
def test_compute_metrics_matches_numpy_pandas(seed):
    inp = random_inputs(seed)
    got = run_kernel(**inp)
    assert_metrics(got, reference_metrics(**inp))
    assert got["max_drawdown"] < 0 and math.isfinite(got["calmar"])


@pytest.mark.parametrize("seed", range(3))
def test_compute_metrics_losing_series(seed):
    """A series that loses most of its value: deep drawdown, negative cagr / sharpe."""
    inp = random_inputs(seed, n=120)
    inp["R"] = inp["R"] - 0.01
    got = run_kernel(**inp)
    assert_metrics(got, reference_metrics(**inp))
    assert got["max_drawdown"] < -0.5 and got["cagr"] < 0 and got["sharpe"] < 0


def test_all_zero_series():
    n = 30
    R = np.zeros(n)
    got = run_kernel(R, n_reb=0)
    for k in ("sharpe", "sharpe_pre_cost", "sortino", "win_rate", "calmar"):
        assert math.isnan(got[k]), k
    for k in ("total_return", "cagr", "ann_vol", "max_drawdown", "turnover", "cost_paid"):
        assert got[k] == 0.0, k


def test_negative_wealth_gives_nan_cagr():
    # NAV: 1.1, 1.1 * -0.5 = -0.55, -0.55 * 1.2 = -0.66
    R = np.array([0.1, -1.5, 0.2])
    got = run_kernel(R)
    assert got["total_return"] == pytest.approx(-1.66, rel=1e-12)
    assert math.isnan(got["cagr"])
    assert math.isnan(got["calmar"])
    # peak 1.1: -0.55 / 1.1 - 1 = -1.5, -0.66 / 1.1 - 1 = -1.6
    assert got["max_drawdown"] == pytest.approx(-1.6, rel=1e-12)


def test_wealth_exactly_zero_is_not_nan_cagr():
    # 1 + total_return = 0 is not < 0: cagr = 0 ** (365 / 2) - 1 = -1
    got = run_kernel(np.array([-1.0, 0.5]))
    assert got["total_return"] == -1.0
    assert got["cagr"] == -1.0
    assert got["max_drawdown"] == -1.0
    assert got["calmar"] == -1.0


def test_first_day_loss_is_a_drawdown():
    # NAV 0.9, 0.945, 1.0395: the peak starts at 1, so day one is a 10 % drawdown
    R = np.array([-0.1, 0.05, 0.1])
    got = run_kernel(R)
    assert got["max_drawdown"] == pytest.approx(-0.1, rel=1e-12)
    growth = 0.9 * 1.05 * 1.1
    assert got["total_return"] == pytest.approx(growth - 1.0, rel=1e-12)
    cagr = growth ** (365.0 / 3.0) - 1.0
    assert got["cagr"] == pytest.approx(cagr, rel=1e-9)
    assert got["calmar"] == pytest.approx(cagr / 0.1, rel=1e-9)


def test_hand_worked_small_series():
    R = np.array([0.02, -0.01, 0.0, 0.03])
    tau = np.array([1.0, 0.0, 0.5, 0.0])
    cost = tau * 0.001
    fund = np.array([1e-4, -2e-4, 0.0, 5e-5])
    n_long = np.array([2.0, 2.0, 3.0, 3.0])
    n_short = np.array([2.0, 2.0, 1.0, 0.0])
    net = np.array([0.0, 0.1, 0.2, 1.0])
    gross = np.array([1.0, 1.1, 0.8, 1.0])
    got = run_kernel(R, R_pre=R + cost, tau=tau, cost=cost, fund=fund, n_long=n_long, n_short=n_short, net=net, gross=gross, n_reb=2)
    mean = 0.04 / 4
    var = ((0.01) ** 2 + (0.02) ** 2 + (0.01) ** 2 + (0.02) ** 2) / 3  # deviations 0.01, -0.02, -0.01, 0.02
    assert got["ann_vol"] == pytest.approx(math.sqrt(var) * SQ, rel=1e-12)
    assert got["sharpe"] == pytest.approx(mean / math.sqrt(var) * SQ, rel=1e-12)
    assert got["sortino"] == pytest.approx(mean / math.sqrt(0.01**2 / 4) * SQ, rel=1e-12)
    assert got["win_rate"] == pytest.approx(2 / 3, rel=1e-15)
    # NAV 1.02, 1.0098, 1.0098, 1.040094: drawdown -0.01 from the 1.02 peak
    assert got["max_drawdown"] == pytest.approx(-0.01, rel=1e-12)
    assert got["total_return"] == pytest.approx(1.02 * 0.99 * 1.03 - 1.0, rel=1e-12)
    assert got["turnover"] == pytest.approx(1.5 * 365 / 4, rel=1e-15)
    assert got["cost_paid"] == pytest.approx(0.0015, rel=1e-12)
    assert got["funding_return"] == pytest.approx(-5e-5, rel=1e-9)
    assert got["avg_long"] == 2.5 and got["avg_short"] == 1.25
    assert got["avg_net_exposure"] == pytest.approx(0.325, rel=1e-12)
    assert got["avg_gross_exposure"] == pytest.approx(0.975, rel=1e-12)
    assert got["n_rebalances"] == 2.0


def test_only_gains_has_nan_sortino_and_calmar():
    R = np.array([0.01, 0.0, 0.02, 0.005])
    got = run_kernel(R)
    assert math.isnan(got["sortino"])  # no downside
    assert got["max_drawdown"] == 0.0 and math.isnan(got["calmar"])
    assert got["win_rate"] == 1.0


def test_single_day_has_nan_std():
    got = run_kernel(np.array([0.05]))
    assert math.isnan(got["ann_vol"]) and math.isnan(got["sharpe"])
    assert got["cagr"] == pytest.approx(1.05**365 - 1.0, rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_mean_std_and_sharpe_match_numpy(seed):
    x = np.random.default_rng(seed).normal(0.001, 0.02, 300)
    m, sd = mean_std(x)
    assert m == pytest.approx(np.mean(x), rel=RTOL, abs=ATOL)
    assert sd == pytest.approx(np.std(x, ddof=1), rel=RTOL)
    assert sharpe(x) == pytest.approx(np.mean(x) / np.std(x, ddof=1) * SQ, rel=RTOL)


@pytest.mark.parametrize("value,n", [(0.1, 3), (0.1, 10), (0.001, 365), (0.0003, 365), (-0.002, 50)])
def test_constant_series_has_zero_std_and_nan_sharpe(value, n):
    """§9: sharpe is NaN where std is 0. A constant daily return has a standard
    deviation of exactly 0 (statistics.stdev, exact rational arithmetic, says 0.0;
    numpy's np.std is not a usable reference here: it leaves a rounding residue of
    ~1e-17 for some of these series too), so sharpe and sharpe_pre_cost must be NaN,
    not mean / (rounding residue) ~ 1e17."""
    R = np.full(n, value)
    assert statistics.stdev(R.tolist()) == 0.0  # the exact reference
    got = run_kernel(R, R_pre=R)
    assert got["ann_vol"] == pytest.approx(0.0, abs=ATOL)
    assert math.isnan(got["sharpe"]), got["sharpe"]
    assert math.isnan(got["sharpe_pre_cost"]), got["sharpe_pre_cost"]
    assert math.isnan(sharpe(R)), sharpe(R)
