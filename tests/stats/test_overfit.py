"""Overfitting statistics (sweep/_overfit.py, kernels/cscv.py) against the papers' published
numbers, a slow CSCV that slices the return matrix, numpy, scipy and hand-worked cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from kernels import cscv as k
from sweep.core.errors import SweepError
from sweep.stats.overfit import (
    block_moments,
    cscv_arrays,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    min_backtest_length,
    overfitting_summary,
    pbo,
    probabilistic_sharpe_ratio,
)


def printed(value: float, published: float, digits: int) -> None:
    """``value`` rounds to the ``digits`` decimals the paper printed."""
    assert abs(value - published) <= 0.5 * 10.0 ** -digits, f"{value!r} does not print as {published}"


# --- published numbers ------------------------------------------------------------------


def test_expected_max_sharpe_published():
    # Bailey & Lopez de Prado (2014), N = 100 trials of unit variance.
    printed(expected_max_sharpe(100, 1.0), 2.5306, 4)
    # sqrt(V) scaling and the one-trial convention
    assert expected_max_sharpe(100, 0.25) == pytest.approx(0.5 * expected_max_sharpe(100, 1.0), rel=1e-15)
    assert expected_max_sharpe(1, 3.0) == 0.0


def test_deflated_sharpe_published():
    # "The Deflated Sharpe Ratio" example: 100 trials, V[SR] = 1/2 annualised, 1,250 days,
    # skewness -3, kurtosis 10, SR 2.5 annualised; 250 days a year. The formula takes per-day units.
    days = 250.0
    sr = 2.5 / math.sqrt(days)
    var = 0.5 / days
    printed(deflated_sharpe_ratio(sr, 100, var, 1250, -3.0, 10.0), 0.9004, 4)
    # the annualised expected maximum the paper quotes along the way (~1.7894)
    printed(expected_max_sharpe(100, var) * math.sqrt(days), 1.7894, 4)


def test_probabilistic_sharpe_published():
    # "The Sharpe Ratio Efficient Frontier": SR 1.585 annualised from 24 monthly returns,
    # skewness -2.448, kurtosis 10.164, against a benchmark of 0.
    printed(probabilistic_sharpe_ratio(1.585 / math.sqrt(12), 0.0, 24, -2.448, 10.164), 0.9132, 4)


def test_min_backtest_length_published():
    # "Pseudo-Mathematics and Financial Charlatanism": 45 trials, in-sample Sharpe 1 -> ~5 years.
    printed(min_backtest_length(45, 1.0), 4.998, 3)
    assert min_backtest_length(45, 2.0) == pytest.approx(min_backtest_length(45, 1.0) / 4, rel=1e-15)
    assert min_backtest_length(45, 0.0) == math.inf


def test_psr_against_scipy_and_edges():
    sr, bench, n, g3, g4 = 0.08, 0.02, 500, 0.4, 5.5
    z = (sr - bench) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr * sr)
    assert probabilistic_sharpe_ratio(sr, bench, n, g3, g4) == pytest.approx(stats.norm.cdf(z), rel=1e-12)
    assert probabilistic_sharpe_ratio(0.1, 0.1, 100, -1.0, 6.0) == 0.5
    assert math.isnan(probabilistic_sharpe_ratio(0.1, 0.0, 1, 0.0, 3.0))


# --- block moments ----------------------------------------------------------------------


@pytest.mark.parametrize("n_days,S", [(203, 8), (160, 16), (33, 6)])
def test_block_moments_against_numpy(n_days, S):
    r = np.random.default_rng(n_days).normal(0.001, 0.02, (5, n_days))
    sums, sumsq, counts = block_moments(r, S)
    # np.array_split makes the first n % S pieces one longer, the documented rule
    pieces = np.array_split(r, S, axis=1)
    assert counts.tolist() == [p.shape[1] for p in pieces]
    assert counts.sum() == n_days and counts.max() - counts.min() <= 1
    np.testing.assert_allclose(sums, np.stack([p.sum(axis=1) for p in pieces], axis=1), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sumsq, np.stack([(p * p).sum(axis=1) for p in pieces], axis=1),
                               rtol=1e-12, atol=1e-15)


def test_half_splits_are_itertools_combinations():
    for S in (2, 4, 6, 8, 16):
        expected = np.zeros((math.comb(S, S // 2), S), dtype=np.uint8)
        for i, comb in enumerate(itertools.combinations(range(S), S // 2)):
            expected[i, list(comb)] = 1
        np.testing.assert_array_equal(k.half_splits(S), expected)


# --- CSCV against a slow implementation that slices the returns ----------------------------


def slow_cscv(returns: np.ndarray, S: int):
    """CSCV from the paper, directly: concatenate the in-sample and out-of-sample blocks of the
    returns, two-pass Sharpe (ddof 1, NaN for a constant half), argmax, mid-rank, logit."""
    C, n = returns.shape
    bounds = np.cumsum([0] + [len(p) for p in np.array_split(np.arange(n), S)])
    blocks = [returns[:, bounds[b]:bounds[b + 1]] for b in range(S)]

    def sharpe(x):
        if len(x) < 2 or (x == x[0]).all():
            return -math.inf  # NaN ranks below every number
        return float(np.mean(x) / np.std(x, ddof=1))

    rows = []
    for comb in itertools.combinations(range(S), S // 2):
        rest = [b for b in range(S) if b not in comb]
        ins = np.concatenate([blocks[b] for b in comb], axis=1)
        outs = np.concatenate([blocks[b] for b in rest], axis=1)
        sr_in = [sharpe(ins[c]) for c in range(C)]
        sr_out = [sharpe(outs[c]) for c in range(C)]
        best = max(range(C), key=lambda c: (sr_in[c], -c))  # ties to the lowest index
        x = sr_out[best]
        others = [sr_out[c] for c in range(C) if c != best]
        rank = 1 + sum(y < x for y in others) + 0.5 * sum(y == x for y in others)
        w = rank / (C + 1)
        rows.append((best, sr_in[best], sr_out[best], rank, math.log(w / (1 - w))))
    return rows


@pytest.mark.parametrize("C,n_days,S,seed", [(7, 203, 8, 1), (12, 150, 6, 2), (3, 64, 8, 3)])
def test_cscv_against_slow(C, n_days, S, seed):
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0005, 0.02, (C, n_days)) + rng.normal(0.0, 0.001, (C, 1))
    r[1] = 0.0  # a configuration that never trades: NaN Sharpe, never chosen, ranked last
    sums, sumsq, counts = block_moments(r, S)
    chosen, is_sr, oos_sr, rank, logit = cscv_arrays(sums, sumsq, counts)
    slow = slow_cscv(r, S)
    assert len(chosen) == len(slow) == math.comb(S, S // 2)
    for i, (b, si, so, rk, lg) in enumerate(slow):
        assert chosen[i] == b and rank[i] == rk
        assert is_sr[i] == pytest.approx(si, rel=1e-12, abs=1e-12)
        assert oos_sr[i] == pytest.approx(so, rel=1e-12, abs=1e-12)
        assert logit[i] == pytest.approx(lg, rel=1e-12, abs=1e-12)
    # the summary figures from the slow rows
    res = pbo(sums, sumsq, counts)
    lg = np.array([row[4] for row in slow])
    xi = np.array([row[1] for row in slow])
    xo = np.array([row[2] for row in slow])
    assert res["pbo"] == np.mean(lg <= 0)
    assert res["prob_oos_loss"] == np.mean(xo < 0)
    assert res["mean_logit"] == pytest.approx(lg.mean(), rel=1e-12, abs=1e-12)
    slope, intercept = np.polyfit(xi, xo, 1)
    assert res["degradation_slope"] == pytest.approx(slope, rel=1e-10)
    assert res["degradation_intercept"] == pytest.approx(intercept, rel=1e-10, abs=1e-13)
    assert res["logit_values"] == pytest.approx(lg.tolist(), rel=1e-12, abs=1e-12)
    assert res["logits"]["median"] == pytest.approx(np.median(lg), rel=1e-12, abs=1e-12)
    assert (res["n_combinations"], res["n_blocks"], res["n_configurations"]) == (len(slow), S, C)
    assert res["block_days"] == counts.tolist()


def test_cscv_hand_worked_ties_and_flat():
    r = np.random.default_rng(5).normal(0.0, 0.01, (1, 64))
    # two identical configurations: configuration 0 is always chosen and ties its twin out of
    # sample, mid-rank 1.5 of 2 -> w = 1/2 -> every logit exactly 0 -> PBO 1
    s, q, n = block_moments(np.vstack([r, r]), 4)
    res = pbo(s, q, n)
    assert res["pbo"] == 1.0 and res["logit_values"] == [0.0] * 6
    # against a flat configuration (NaN Sharpe): rank 2 of 2 -> w = 2/3 -> logit ln 2, PBO 0
    s, q, n = block_moments(np.vstack([np.zeros((1, 64)), r]), 4)
    chosen = cscv_arrays(s, q, n)[0]
    res = pbo(s, q, n)
    assert (chosen == 1).all()
    assert res["pbo"] == 0.0 and res["logit_values"] == pytest.approx([math.log(2)] * 6, rel=1e-15)


# --- PBO behaviour ------------------------------------------------------------------------


def test_pbo_noise_near_half():
    values = []
    for seed in range(5):
        r = np.random.default_rng(100 + seed).normal(0.0, 0.01, (50, 1600))
        res = pbo(*block_moments(r, 16))
        assert res["n_combinations"] == 12870
        values.append(res["pbo"])
    assert 0.35 <= np.mean(values) <= 0.65, values


def test_pbo_real_edge_near_zero():
    rng = np.random.default_rng(11)
    r = rng.normal(0.0, 0.01, (50, 1600))
    r[17] += 0.0016  # ~3 annualised Sharpe on 1 % daily volatility
    res = pbo(*block_moments(r, 16))
    assert res["pbo"] < 0.1
    assert res["prob_oos_loss"] < 0.1
    assert res["logits"]["median"] == pytest.approx(math.log(50), rel=1e-12)  # the edge ranks first OOS


def test_bad_inputs_raise():
    r = np.random.default_rng(0).normal(0.0, 0.01, (4, 100))
    with pytest.raises(SweepError, match="even"):
        block_moments(r, 7)
    with pytest.raises(SweepError, match="blocks"):
        block_moments(r[:, :20], 16)
    s, q, n = block_moments(r, 8)
    with pytest.raises(SweepError, match="at least 2 configurations"):
        pbo(s[:1], q[:1], n)
    with pytest.raises(SweepError, match="must be"):
        pbo(s, q[:, :6], n)
    with pytest.raises(SweepError, match="finite"):
        block_moments(np.where(r > 0.02, np.nan, r), 8)


# --- the summary --------------------------------------------------------------------------


def test_overfitting_summary_against_scipy():
    rng = np.random.default_rng(21)
    C, n = 40, 730
    r = rng.standard_t(4, (C, n)) * 0.01 + 0.0004
    ann = r.mean(axis=1) / r.std(axis=1, ddof=1) * math.sqrt(365)
    b = int(np.argmax(ann))
    sums, sumsq, counts = block_moments(r, 16)
    out = overfitting_summary(r[b], ann, sums, sumsq, counts)

    per = ann / math.sqrt(365)
    var = per.var(ddof=1)
    g3 = stats.skew(r[b], bias=True)
    g4 = stats.kurtosis(r[b], fisher=False, bias=True)
    sr = per[b]
    e_max = math.sqrt(var) * ((1 - np.euler_gamma) * stats.norm.ppf(1 - 1 / C)
                              + np.euler_gamma * stats.norm.ppf(1 - 1 / (C * math.e)))

    def psr(bench):
        return stats.norm.cdf((sr - bench) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr ** 2))

    assert (out["n_trials"], out["n_finite"], out["n_obs"]) == (C, C, n)
    assert out["sharpe_var"] == pytest.approx(var, rel=1e-12)
    assert out["sharpe_var_annual"] == pytest.approx(var * 365, rel=1e-12)
    assert out["best_sharpe"] == pytest.approx(sr, rel=1e-12)
    assert out["best_sharpe_annual"] == pytest.approx(ann[b], rel=1e-12)
    assert out["skewness"] == pytest.approx(g3, rel=1e-10)
    assert out["kurtosis"] == pytest.approx(g4, rel=1e-10)
    assert out["psr"] == pytest.approx(psr(0.0), rel=1e-9)
    assert out["dsr"] == pytest.approx(psr(e_max), rel=1e-9)
    assert out["expected_max_sharpe"] == pytest.approx(e_max, rel=1e-9)
    assert out["expected_max_sharpe_annual"] == pytest.approx(e_max * math.sqrt(365), rel=1e-9)
    assert out["min_backtest_years"] == pytest.approx(
        (e_max / math.sqrt(var) / ann[b]) ** 2, rel=1e-9)
    assert out["backtest_years"] == n / 365
    assert out["pbo"] == pbo(sums, sumsq, counts)
    # 40 noise-like trials: the deflated figure is far below the naive one
    assert out["dsr"] < out["psr"]


def test_overfitting_summary_nan_sharpes_and_json():
    import json

    rng = np.random.default_rng(3)
    r = rng.normal(0.0, 0.01, (6, 200))
    r[2] = 0.0
    ann = np.array([0.5, -0.2, np.nan, 1.1, 0.3, -1.0])
    out = overfitting_summary(r[3], ann, *block_moments(r, 8))
    assert out["n_trials"] == 6 and out["n_finite"] == 5
    assert out["sharpe_var"] == pytest.approx(np.var(ann[np.isfinite(ann)] / math.sqrt(365), ddof=1), rel=1e-12)
    json.loads(json.dumps(out, allow_nan=False))  # strict JSON: no NaN or infinity left
