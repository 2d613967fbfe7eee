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
from sweep.stats import overfit
from sweep.stats.overfit import (
    block_moments,
    cscv_arrays,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    min_backtest_length,
    overfitting_from_trials,
    overfitting_summary,
    pbo,
    pbo_chunks,
    probabilistic_sharpe_ratio,
    split_plan,
    split_table,
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


def test_split_table_and_pairs_visit_every_split_once():
    for S in (2, 4, 6, 8, 16):
        combos = list(itertools.combinations(range(S), S // 2))
        table = split_table(S)
        assert table.tolist() == [list(c) for c in combos]
        n = len(combos)
        for i in range(n):  # row n - 1 - i is the complement of row i; the first half holds block 0
            assert sorted(combos[i] + combos[n - 1 - i]) == list(range(S))
            assert (0 in combos[i]) == (i < n // 2)
        # the partitions the passes walk, each giving a split and its complement
        ks, ins, outs, sampled = split_plan(10, S, math.inf)
        assert not sampled and ks.tolist() == list(range(n // 2))
        seen = [tuple(r) for r in ins.tolist()] + [tuple(r) for r in outs.tolist()]
        assert len(seen) == len(set(seen)) == n and set(seen) == set(combos)
        assert all(tuple(outs[j]) == combos[n - 1 - j] for j in range(n // 2))


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


# --- streamed, ordered and sampled CSCV against a slow one over block moments ----------------


def slow_pbo(sums, sumsq, counts, combos) -> dict:
    """CSCV over the splits ``combos`` (in-sample block tuples) from the block moments, one
    numpy reduction per split; NaN Sharpes as -inf (below every number, tied with each other)."""
    C, S = sums.shape
    rows = []
    for comb in combos:
        halves = []
        for idx in (list(comb), [b for b in range(S) if b not in comb]):
            days = counts[idx].sum()
            s, q = sums[:, idx].sum(axis=1), sumsq[:, idx].sum(axis=1)
            centred = q - s * (s / days)
            ok = centred > 1e-12 * q
            halves.append(np.where(ok, s / days / np.sqrt(np.where(ok, centred, 1.0) / (days - 1)), -np.inf))
        sr_in, sr_out = halves
        if np.isneginf(sr_in).all():
            rows.append((math.nan, math.nan, math.nan))
            continue
        best = int(np.argmax(sr_in))  # the first of equal maxima
        x = sr_out[best]
        others = np.delete(sr_out, best)
        w = (1 + (others < x).sum() + 0.5 * (others == x).sum()) / (C + 1)
        rows.append((sr_in[best], x if np.isfinite(x) else math.nan, math.log(w / (1 - w))))
    xi, xo, lg = (np.array(v, dtype=float) for v in zip(*rows))
    ok = ~np.isnan(lg)
    fit = ok & np.isfinite(xi) & np.isfinite(xo)
    slope, intercept = np.polyfit(xi[fit], xo[fit], 1)
    return {"pbo": np.mean(lg[ok] <= 0), "prob_oos_loss": np.mean(xo[ok] < 0), "logits": lg,
            "mean_logit": lg[ok].mean(), "median": np.median(lg[ok]), "q05": np.quantile(lg[ok], 0.05),
            "slope": slope, "intercept": intercept, "n_valid": int(ok.sum()), "mean_is": xi[fit].mean()}


def assert_matches_slow(res: dict, ref: dict, n_used: int) -> None:
    assert res["n_combinations"] == res["n_splits_used"] == n_used
    assert res["n_valid"] == ref["n_valid"]
    assert res["pbo"] == pytest.approx(ref["pbo"], abs=1e-15)
    assert res["prob_oos_loss"] == pytest.approx(ref["prob_oos_loss"], abs=1e-15)
    assert res["mean_logit"] == pytest.approx(ref["mean_logit"], rel=1e-12)
    assert res["logits"]["median"] == pytest.approx(ref["median"], rel=1e-12, abs=1e-12)
    assert res["logits"]["q05"] == pytest.approx(ref["q05"], rel=1e-12, abs=1e-12)
    assert res["degradation_slope"] == pytest.approx(ref["slope"], rel=1e-9)
    assert res["degradation_intercept"] == pytest.approx(ref["intercept"], rel=1e-9, abs=1e-13)
    assert res["mean_is_sharpe"] == pytest.approx(ref["mean_is"], rel=1e-12)
    if "logit_values" in res:
        got = np.array([math.nan if v is None else v for v in res["logit_values"]])
        np.testing.assert_allclose(got, ref["logits"], rtol=1e-12, atol=1e-12)


def awkward_moments(C=11, S=8, n_days=230, seed=7):
    """Block moments with the cases that break a careless CSCV: a configuration that never
    trades, one flat over its first half (its warm-up), one of constant returns, two
    duplicates (ties in and out of sample) and one that exists only in blocks 2 and 5."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0003, 0.01, (C, n_days)) + rng.normal(0.0, 0.0005, (C, 1))
    r[1] = 0.0
    r[2, : n_days // 2] = 0.0
    r[4] = 0.0015
    r[6] = r[5]
    r[8] = r[5]
    sums, sumsq, counts = block_moments(r, S)
    sums[9, [0, 1, 3, 4, 6, 7]] = 0.0
    sumsq[9, [0, 1, 3, 4, 6, 7]] = 0.0
    return sums, sumsq, counts


def test_pbo_all_splits_against_slow_with_ties_and_flat():
    sums, sumsq, counts = awkward_moments()
    combos = list(itertools.combinations(range(8), 4))
    res = pbo(sums, sumsq, counts)
    assert res["splits_sampled"] is False and res["n_combinations_total"] == 70
    assert_matches_slow(res, slow_pbo(sums, sumsq, counts, combos), 70)
    chosen = cscv_arrays(sums, sumsq, counts)[0]
    assert 6 not in chosen and 8 not in chosen  # a duplicate never beats its first copy


def test_pbo_some_splits_without_any_sharpe():
    # every configuration flat over blocks 0-3: the split with exactly those in-sample has no
    # winner, is left out, and its logit is None
    sums, sumsq, counts = awkward_moments()
    sums[:, :4] = 0.0
    sumsq[:, :4] = 0.0
    res = pbo(sums, sumsq, counts)
    assert res["n_valid"] == 69 and res["logit_values"][0] is None
    assert_matches_slow(res, slow_pbo(sums, sumsq, counts, list(itertools.combinations(range(8), 4))), 70)


def test_near_equal_sharpes_decided_by_the_sharpe_itself():
    # Series losing 0.001 f on k of n days have one Sharpe whatever f; rounded, some are
    # bitwise equal while their scores y|y| (what the passes compare first) differ, others
    # differ in the last place while their scores are equal. Every decision must follow the
    # Sharpes: the tie counted half, the higher of the two near-equal Sharpes chosen.
    n = 20

    def sparse(k, f):
        return -0.001 * f * k, (0.001 * f) ** 2 * k

    def score(s, s2):
        m = s / n
        return m * abs(m) * (n - 1) / (s2 - s * m)

    out_moments = [sparse(3, 1), sparse(3, 5), sparse(2, 1), sparse(2, 9)]
    y = [k.sharpe_from_moments(a, b, n) for a, b in out_moments]
    sc = [score(a, b) for a, b in out_moments]
    assert y[0] == y[1] and sc[0] != sc[1]  # the premise: equal Sharpes, unequal scores
    assert y[3] > y[2] and sc[2] == sc[3]  # and the converse, the later one higher
    sums = np.array([[0.05 - 0.01 * i, out_moments[i][0]] for i in range(4)])
    sumsq = np.array([[2e-3, out_moments[i][1]] for i in range(4)])
    counts = np.array([n, n])
    chosen, is_sr, oos_sr, rank, _ = cscv_arrays(sums, sumsq, counts)
    # split (0,): configuration 0 wins block 0; out of sample it ties configuration 1 and is
    # below 2 and 3; split (1,): configuration 3 wins block 1 by one unit in the last place
    assert chosen.tolist() == [0, 3]
    assert rank[0] == 1 + 0 + 0.5 * 1 and oos_sr[0] == y[0] and is_sr[1] == y[3]


@pytest.mark.parametrize("sizes", [[1] * 11, [3, 3, 3, 2], [11], [0, 5, 0, 6], [2, 1, 8]])
def test_chunks_equal_in_memory(sizes):
    sums, sumsq, counts = awkward_moments()
    edges = np.cumsum([0] + sizes)
    calls = []

    def read():
        calls.append(1)
        return ((sums[a:b], sumsq[a:b]) for a, b in itertools.pairwise(edges))

    assert pbo_chunks(read, counts, 11) == pbo(sums, sumsq, counts)
    assert len(calls) == 2  # two passes, nothing kept between them but the per-split state


def test_chunks_equal_in_memory_16_blocks_across_config_blocks():
    # 300 configurations of 16 blocks: chunks straddling the kernel's blocks of configurations
    rng = np.random.default_rng(8)
    r = rng.normal(0.0, 0.01, (300, 640))
    r[150:] = r[:150]  # every configuration has a twin in a later chunk
    r[7] = 0.0
    sums, sumsq, counts = block_moments(r, 16)
    whole = pbo(sums, sumsq, counts)
    b = k.CONFIG_BLOCK
    assert 2 * b < 300
    for size in (1, b - 1, b, b + 1, 299):
        read = lambda size=size: ((sums[i:i + size], sumsq[i:i + size]) for i in range(0, 300, size))
        assert pbo_chunks(read, counts, 300) == whole, size
    assert (cscv_arrays(sums, sumsq, counts)[0] < 150).all()


def test_chunks_bad_input():
    sums, sumsq, counts = awkward_moments()
    with pytest.raises(SweepError, match="expected 12"):
        pbo_chunks(lambda: iter([(sums, sumsq)]), counts, 12)
    with pytest.raises(SweepError, match="must be"):
        pbo_chunks(lambda: iter([(sums[:, :6], sumsq[:, :6])]), counts, 11)
    with pytest.raises(SweepError, match="even number"):
        pbo_chunks(lambda: iter([(sums, sumsq)]), counts[:7], 11)


def test_sampler_uniform_and_deterministic():
    a = overfit._sample(6435, 500, 13)
    assert np.array_equal(a, overfit._sample(6435, 500, 13))
    assert len(set(a.tolist())) == 500 and a.min() >= 0 and a.max() < 6435 and (np.diff(a) > 0).all()
    assert not np.array_equal(a, overfit._sample(6435, 500, 14))
    # 3 of 6, 6,000 times: each element drawn with probability 1/2 (binomial sd 0.0065)
    freq = np.zeros(6)
    for seed in range(6000):
        freq[overfit._sample(6, 3, seed)] += 1
    assert np.abs(freq / 6000 - 0.5).max() < 0.03
    assert overfit._sample(6, 6, 0).tolist() == list(range(6))


def test_unrank_is_itertools():
    for S in (2, 8, 10):
        combos = list(itertools.combinations(range(S), S // 2))
        assert [tuple(overfit._unrank(i, S)) for i in range(len(combos))] == combos


def test_sampled_splits_against_slow_on_the_same_subset():
    rng = np.random.default_rng(9)
    r = rng.normal(0.0, 0.01, (40, 1600))
    r[3] += 0.0004
    r[5] = r[4]
    r[9, :800] = 0.0
    sums, sumsq, counts = block_moments(r, 16)
    budget = 40 * 1000  # below 40 x 12,870: the floor of 500 partitions, 1,000 splits
    ks, ins, outs, sampled = split_plan(40, 16, budget)
    assert sampled and len(ks) == overfit.MIN_PARTITIONS
    combos = list(itertools.combinations(range(16), 8))
    index = {c: i for i, c in enumerate(combos)}
    ids = sorted([index[tuple(x)] for x in ins.tolist()] + [index[tuple(x)] for x in outs.tolist()])
    assert len(set(ids)) == 1000 and [index[tuple(x)] for x in ins.tolist()] == ks.tolist()
    res = pbo(sums, sumsq, counts, max_pairs=budget)
    assert res["splits_sampled"] is True and res["n_combinations_total"] == 12870
    assert_matches_slow(res, slow_pbo(sums, sumsq, counts, [combos[i] for i in ids]), 1000)
    assert pbo(sums, sumsq, counts, max_pairs=budget) == res  # deterministic
    chunks = lambda: ((sums[i:i + 7], sumsq[i:i + 7]) for i in range(0, 40, 7))
    assert pbo_chunks(chunks, counts, 40, max_pairs=budget) == res
    # the estimate is within a few standard errors (0.5 / sqrt(500) = 0.022) of every split's PBO
    assert abs(res["pbo"] - pbo(sums, sumsq, counts)["pbo"]) < 0.07


def test_split_plan_budget():
    assert split_plan(1000, 16, 1000 * 12870)[3] is False
    ks, _, _, sampled = split_plan(1000, 16, 1000 * 12870 - 1)
    assert sampled and len(ks) == 6434
    assert len(split_plan(10 ** 6, 16, 2e9)[0]) == 1000
    assert len(split_plan(10 ** 7, 16, 2e9)[0]) == overfit.MIN_PARTITIONS
    assert split_plan(10, 4, 0)[3] is False  # the floor covers all 3 partitions of 4 blocks


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
    # the same figures from the summary statistics a streamed sweep carries
    n_finite = int(np.isfinite(ann).sum())
    assert overfitting_from_trials(r[b], C, n_finite, var, out["pbo"]) == out
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
