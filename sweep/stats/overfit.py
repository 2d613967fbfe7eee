"""How much of the best backtest of a sweep is luck: PSR, DSR, MinBTL and PBO.

Units: inside every formula a Sharpe ratio is per period (per day for daily
returns: ``mean / std``, not annualised), its variance is in per-period
units squared, ``n_obs`` counts periods, and kurtosis is RAW (3 for a normal
distribution, not the excess 0). Annualised figures (``* sqrt(periods per
year)``, variance ``* periods per year``) are only computed for display, in
``overfitting_summary``; the one exception is ``min_backtest_length``, whose
published form takes an annualised Sharpe and gives years. Undefined values
are NaN in the scalar functions and ``None`` (JSON ``null``) in the dicts.

References:

* Bailey, Lopez de Prado, "The Sharpe Ratio Efficient Frontier", Journal of
  Risk 15(2), 2012 (probabilistic Sharpe ratio).
* Bailey, Lopez de Prado, "The Deflated Sharpe Ratio", Journal of Portfolio
  Management 40(5), 2014 (expected maximum Sharpe, deflated Sharpe ratio).
* Bailey, Borwein, Lopez de Prado, Zhu, "Pseudo-Mathematics and Financial
  Charlatanism", Notices of the AMS 61(5), 2014 (minimum backtest length).
* Bailey, Borwein, Lopez de Prado, Zhu, "The Probability of Backtest
  Overfitting", Journal of Computational Finance 20(4), 2017 (CSCV, PBO).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from statistics import NormalDist
from typing import Any

import numpy as np

from kernels import cscv as _k

from sweep.core.errors import SweepError

EULER_GAMMA = 0.5772156649015329
DEFAULT_BLOCKS = 16
# Full logit arrays are returned only up to this many combinations (S = 12 gives 924).
MAX_LOGIT_VALUES = 1000
# PBO's budget of (configuration, split) evaluations: 3.6 (all splits) to 6 (a sample)
# ns of one core each over both passes; 1,000,000 configurations took 11.8 s of CPU, 6.5 s
# on two idle cores (benchmarks/bench_pbo.py). Beyond it a seeded sample of at least
# MIN_PARTITIONS partitions (see pbo_chunks).
MAX_PAIRS = 2e9
MIN_PARTITIONS = 500
SAMPLE_SEED = 13
# In-memory moments go through the streamed passes this many configurations at a time.
CHUNK = 4096

_Z = NormalDist()


def probabilistic_sharpe_ratio(sr: float, sr_benchmark: float, n_obs: int, skew: float,
                               kurtosis: float) -> float:
    """Probability that the true Sharpe exceeds ``sr_benchmark``, given ``sr`` measured on ``n_obs`` periods.

    ``Phi((sr - sr*) * sqrt(n - 1) / sqrt(1 - skew * sr + (kurtosis - 1) / 4 * sr**2))``
    with ``sr`` and ``sr*`` per period, ``skew`` the skewness and ``kurtosis``
    the RAW kurtosis (normal = 3) of the per-period returns. NaN when
    ``n_obs < 2``, an input is NaN, or the variance term is not positive (it
    cannot be for moments of one sample, since kurtosis >= skew**2 + 1).
    """
    if not (n_obs >= 2):
        return math.nan
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if not var > 0.0 or math.isnan(sr_benchmark):
        return math.nan
    return _Z.cdf((sr - sr_benchmark) * math.sqrt(n_obs - 1.0) / math.sqrt(var))


def expected_max_sharpe(n_trials: int, var_sr: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe ratios of zero-skill strategies with variance ``var_sr``.

    ``sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))``,
    gamma the Euler-Mascheroni constant: in the units of ``var_sr`` (per period
    Sharpe for a per-period variance). One trial gives 0 (the expected maximum
    of one draw is its mean; the formula is undefined at N = 1).

    >>> round(expected_max_sharpe(100, 1.0), 4)
    2.5306
    """
    if n_trials < 1:
        raise SweepError(f"expected_max_sharpe: n_trials must be >= 1, got {n_trials!r}")
    if n_trials == 1:
        return 0.0
    if math.isnan(var_sr) or var_sr < 0.0:
        return math.nan
    e_max = ((1.0 - EULER_GAMMA) * _Z.inv_cdf(1.0 - 1.0 / n_trials)
             + EULER_GAMMA * _Z.inv_cdf(1.0 - 1.0 / (n_trials * math.e)))
    return math.sqrt(var_sr) * e_max


def deflated_sharpe_ratio(sr: float, n_trials: int, var_sr: float, n_obs: int, skew: float,
                          kurtosis: float) -> float:
    """PSR of ``sr`` against the expected maximum Sharpe of ``n_trials`` zero-skill trials.

    ``sr`` per period, ``var_sr`` the variance of the trials' per-period Sharpe
    ratios, ``n_obs`` periods, RAW ``kurtosis``: see
    ``probabilistic_sharpe_ratio`` and ``expected_max_sharpe``.
    """
    return probabilistic_sharpe_ratio(sr, expected_max_sharpe(n_trials, var_sr), n_obs, skew,
                                      kurtosis)


def min_backtest_length(n_trials: int, sr_annual: float) -> float:
    """Minimum backtest length in years for ``n_trials`` trials not to produce ``sr_annual`` by luck.

    ``(E[max] / sr)**2`` with ``E[max] = expected_max_sharpe(n_trials, 1)`` and
    ``sr`` the ANNUALISED in-sample Sharpe ratio: over ``y`` years a
    zero-skill annualised Sharpe has variance about ``1 / y``, so ``y`` years
    of ``N`` trials reach ``E[max] / sqrt(y)`` by chance alone. Infinite for
    ``sr_annual <= 0`` (no length makes a non-positive Sharpe significant).
    """
    if math.isnan(sr_annual):
        return math.nan
    if sr_annual <= 0.0:
        return math.inf
    return (expected_max_sharpe(n_trials, 1.0) / sr_annual) ** 2


def block_moments(returns: np.ndarray, n_blocks: int = DEFAULT_BLOCKS):
    """Per-block ``(sums (C, S), sumsq (C, S), counts (S,))`` of daily ``returns (C, n)``.

    Contiguous blocks, the first ``n % S`` one day longer; the moments of
    several chunks of configurations over the same days concatenate along
    axis 0. Validates, then calls ``kernels.cscv.block_moments``.
    """
    r = np.ascontiguousarray(returns, dtype=np.float64)
    if r.ndim != 2:
        raise SweepError(f"block_moments: returns must be 2-D (configurations x days), got shape {r.shape}")
    _check_blocks(n_blocks, r.shape[1])
    if not np.isfinite(r).all():
        c, t = np.argwhere(~np.isfinite(r))[0]
        raise SweepError(f"block_moments: returns must be finite; configuration {c}, day {t} is {r[c, t]!r}")
    return _k.block_moments(r, int(n_blocks))


def _check_blocks(n_blocks: Any, n_days: int) -> None:
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)):
        raise SweepError(f"n_blocks must be an even integer >= 2, got {n_blocks!r}")
    if n_blocks < 2 or n_blocks % 2:
        raise SweepError(f"n_blocks must be an even integer >= 2, got {n_blocks!r}")
    if n_days < 2 * n_blocks:
        raise SweepError(f"{n_days} days cannot be cut into {n_blocks} blocks of at least 2 days; "
                         f"use fewer blocks or a longer window")


def _moments(sums, sumsq, counts):
    sums, sumsq = np.ascontiguousarray(sums, dtype=np.float64), np.ascontiguousarray(sumsq, dtype=np.float64)
    counts = _check_counts(counts)
    if sums.ndim != 2 or sums.shape != sumsq.shape or sums.shape[1] != len(counts):
        raise SweepError(f"pbo: sums {sums.shape}, sumsq {sumsq.shape} must be (C, S), counts {counts.shape} (S,)")
    return sums, sumsq, counts


def _check_counts(counts) -> np.ndarray:
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    if counts.ndim != 1 or len(counts) < 2 or len(counts) % 2:
        raise SweepError(f"pbo needs an even number of blocks >= 2, got counts of shape {counts.shape}")
    if (counts < 1).any():
        raise SweepError(f"pbo: every block needs at least one day, got counts {counts.tolist()}")
    return counts


def _in_memory(sums, sumsq):  # ``read`` for ``_cscv``: CHUNK rows at a time
    return lambda: ((sums[i:i + CHUNK], sumsq[i:i + CHUNK]) for i in range(0, len(sums), CHUNK))


def split_table(n_blocks: int) -> np.ndarray:
    """The in-sample blocks of every split, ``(C(S, S/2), S/2)`` in ``itertools.combinations``
    order: row ``n - 1 - k`` is the complement of row ``k``, the first half holds block 0."""
    return np.array(list(itertools.combinations(range(n_blocks), n_blocks // 2)),
                    dtype=np.int64).reshape(-1, n_blocks // 2)


def _unrank(k: int, S: int) -> list[int]:
    """The ``k``-th tuple of ``itertools.combinations(range(S), S // 2)``."""
    out, b = [], 0
    for left in range(S // 2, 0, -1):
        while k >= math.comb(S - 1 - b, left - 1):  # skip the tuples that put ``b`` next
            k -= math.comb(S - 1 - b, left - 1)
            b += 1
        out.append(b)
        b += 1
    return out


def _sample(population: int, m: int, seed: int) -> np.ndarray:
    """``m`` of ``range(population)`` without replacement, ascending: a partial Fisher-Yates
    shuffle on SplitMix64 with rejection, exactly uniform and the same on every platform
    and numpy version (which a numpy Generator does not promise)."""
    mask = (1 << 64) - 1
    state, swaps, out = seed & mask, {}, []
    for i in range(m):
        span = population - i
        limit = (1 << 64) - (1 << 64) % span
        while True:
            state = (state + 0x9E3779B97F4A7C15) & mask
            z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & mask
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
            z ^= z >> 31
            if z < limit:
                break
        j = i + z % span
        out.append(swaps.get(j, j))
        swaps[j] = swaps.get(i, i)
    return np.sort(np.array(out, dtype=np.int64))


def split_plan(n_configs: int, n_blocks: int, max_pairs: float = MAX_PAIRS, seed: int = SAMPLE_SEED):
    """The partitions CSCV evaluates: ``(ks, ins, outs, sampled)``.

    ``ks`` ascending numbers ``k < n / 2`` (``n = C(S, S/2)``) of the in-sample
    tuples with block 0 in ``itertools.combinations`` order, ``ins`` their
    blocks, ``outs`` the complements (tuple ``n - 1 - k``); each partition is
    two splits. All ``n / 2`` partitions when ``n_configs * n <= max_pairs``,
    else ``max(MIN_PARTITIONS, max_pairs // (2 n_configs))`` of them drawn
    uniformly without replacement by ``_sample(n / 2, m, seed)``.
    """
    half = math.comb(n_blocks, n_blocks // 2) // 2
    m = half if n_configs * 2 * half <= max_pairs else max(MIN_PARTITIONS, int(max_pairs // (2 * n_configs)))
    if m >= half:
        table = split_table(n_blocks)
        return np.arange(half, dtype=np.int64), table[:half], np.ascontiguousarray(table[::-1][:half]), False
    ks = _sample(half, m, seed)
    ins = np.array([_unrank(int(k), n_blocks) for k in ks], dtype=np.int64)
    outs = np.array([[b for b in range(n_blocks) if b not in set(row)] for row in ins.tolist()], dtype=np.int64)
    return ks, ins, outs, True


def _cscv(read, counts, n_configs: int, plan):
    """Both CSCV passes over the chunks of ``read()``; per split used, in ascending split
    number: ``(ids, chosen, is_sr, oos_sr, rank, logit)`` (see ``cscv_arrays``)."""
    ks, ins, outs, _ = plan
    S, m = len(counts), len(ks)
    chosen, best = np.full(2 * m, -1, dtype=np.int64), np.full((4, 2 * m), np.nan)
    best[[_k.BEST_SCORE, _k.IS_SHARPE]] = -np.inf
    below, ties = np.zeros(2 * m, dtype=np.int64), np.zeros(2 * m, dtype=np.int64)
    # The kernel releases the GIL and disjoint pair ranges write disjoint slots: a range a core.
    jobs = max(1, min(os.cpu_count() or 1, m))
    edges = np.linspace(0, m, jobs + 1).astype(np.int64)
    with ThreadPoolExecutor(jobs) as pool:
        for rank_pass in (False, True):
            c0 = 0
            for s, q in read():
                s, q = np.asarray(s, dtype=np.float64), np.asarray(q, dtype=np.float64)
                if s.ndim != 2 or s.shape != q.shape or s.shape[1] != S:
                    raise SweepError(f"pbo: a chunk's sums {s.shape} and sumsq {q.shape} must be (c, {S})")
                if not len(s):
                    continue
                sT, qT = np.ascontiguousarray(s.T), np.ascontiguousarray(q.T)
                for f in [pool.submit(_k.cscv_pass, sT, qT, counts, ins, outs, edges[i], edges[i + 1], c0,
                                      rank_pass, chosen, best, below, ties) for i in range(jobs)]:
                    f.result()
                c0 += len(s)
            if c0 != n_configs:
                raise SweepError(f"pbo: the chunks hold {c0} configurations, expected {n_configs}")
    ids = np.empty(2 * m, dtype=np.int64)
    ids[0::2], ids[1::2] = ks, math.comb(S, S // 2) - 1 - ks
    o = np.argsort(ids)
    valid = chosen >= 0
    rank = np.where(valid, 1.0 + below + 0.5 * (ties - 1), np.nan)  # the winner tied itself
    w = rank / (n_configs + 1.0)
    # the C library's log, as the kernels use: numpy's own may differ in the last place
    logit = np.array([math.log(v) if v > 0.0 else math.nan for v in (w / (1.0 - w)).tolist()])
    best[:, ~valid] = np.nan
    return ids[o], chosen[o], best[_k.IS_SHARPE][o], best[_k.OOS_SHARPE][o], rank[o], logit[o]


def cscv_arrays(sums, sumsq, counts):
    """Per-combination arrays of CSCV over ALL splits: ``(chosen, is_sr, oos_sr, rank, logit)``.

    Combinations in ``itertools.combinations(range(S), S // 2)`` order (the
    in-sample blocks); ``chosen[k]`` the configuration with the best in-sample
    Sharpe (ties to the lowest index, -1 when every one is NaN), its in-sample
    and out-of-sample per-period Sharpe, its out-of-sample mid-rank among the
    ``C`` (1 = worst; NaN below every number) and ``ln(w / (1 - w))``, ``w =
    rank / (C + 1)``; NaN where ``chosen`` is -1. See ``kernels.cscv.cscv_pass``.
    """
    sums, sumsq, counts = _moments(sums, sumsq, counts)
    C, S = sums.shape
    if C < 2:
        raise SweepError(f"pbo needs at least 2 configurations, got {C}")
    return _cscv(_in_memory(sums, sumsq), counts, C, split_plan(C, S, math.inf))[1:]


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def pbo(sums, sumsq, counts, max_pairs: float = MAX_PAIRS, seed: int = SAMPLE_SEED) -> dict:
    """Probability of Backtest Overfitting by CSCV from per-block moments in memory:
    ``sums`` / ``sumsq`` ``(C, S)`` per configuration and block, the sum of the daily
    returns and of their squares; ``counts (S,)`` days per block, ``S`` even. The same
    as ``pbo_chunks`` over one chunk (which see, for the result)."""
    sums, sumsq, counts = _moments(sums, sumsq, counts)
    return pbo_chunks(_in_memory(sums, sumsq), counts, len(sums), max_pairs, seed)


def pbo_chunks(read: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], counts, n_configs: int,
               max_pairs: float = MAX_PAIRS, seed: int = SAMPLE_SEED) -> dict:
    """PBO by CSCV streamed over chunks of configurations, in memory O(splits + one chunk).

    ``read()`` returns a fresh iterator over ``(sums, sumsq)`` chunks, each
    ``(c_i, S)`` float64, together ``n_configs`` configurations in a fixed
    order (the index breaks ties); it is called twice: pass 1 finds each
    split's in-sample best, pass 2 ranks it out of sample. ``counts (S,)``:
    days per block. For each split of the blocks into an in-sample and an
    out-of-sample half, the configuration with the best in-sample Sharpe is
    taken and its out-of-sample rank ``r`` among the ``C`` (1 = worst, ties
    counted half) gives ``w = r / (C + 1)`` and the logit ``ln(w / (1 - w))``.

    Splits used: all ``C(S, S/2)`` when ``n_configs * C(S, S/2) <= max_pairs``
    (with S = 16, up to 155,400 configurations at ``MAX_PAIRS`` = 2e9). Beyond, a
    seeded uniform sample of partitions (``split_plan``), each used in both
    directions, ``max(MIN_PARTITIONS, max_pairs // (2 C))`` of them, so the
    work stays near ``max_pairs`` down to the floor. PBO is a mean over splits
    of the indicator ``logit <= 0``; over ``m`` partitions drawn uniformly,
    each partition's mean of two indicators has variance at most 1/4, so the
    sampled PBO estimates the all-splits one without bias (when every split has
    a winner) and with standard error at most ``0.5 / sqrt(m)``: 0.016 for the
    1,000 partitions (2,000 splits) of 1,000,000 configurations, 0.022 at 500.

    Returned (JSON-ready):

    * ``pbo``: share of logits ``<= 0`` (the in-sample best is at or below the
      out-of-sample median);
    * ``n_combinations`` = ``n_splits_used``: splits used (every share, fit
      and quantile is over them); ``n_combinations_total``: ``C(S, S/2)``;
      ``splits_sampled``: whether they are a sample; ``n_blocks``,
      ``n_configurations``, ``block_days``;
    * ``logits``: min, 5/25/50/75/95 % quantiles, max; ``mean_logit``;
      ``logit_values``: every logit in ``itertools.combinations`` order of the
      splits used, only when there are at most ``MAX_LOGIT_VALUES`` of them;
    * ``prob_oos_loss``: share of splits whose chosen configuration has an
      out-of-sample Sharpe below 0;
    * ``degradation_slope``, ``degradation_intercept``: least-squares line of
      the chosen configuration's out-of-sample Sharpe on its in-sample Sharpe
      across splits (per-period Sharpe; the slope has no unit, the
      intercept is a per-period Sharpe); ``mean_is_sharpe``,
      ``mean_oos_sharpe``: their means (per period).

    A split where every in-sample Sharpe is NaN is left out of every share and
    fit (``n_valid`` counts the others).
    """
    counts = _check_counts(counts)
    C, S = int(n_configs), len(counts)
    if C < 2:
        raise SweepError(f"pbo needs at least 2 configurations, got {C}")
    plan = split_plan(C, S, max_pairs, seed)
    _, chosen, is_sr, oos_sr, _, logit = _cscv(read, counts, C, plan)
    valid = chosen >= 0
    lg = logit[valid]
    n_valid = int(valid.sum())
    out: dict[str, Any] = {
        "pbo": _num(np.mean(lg <= 0.0)) if n_valid else None,
        "n_combinations": len(chosen),
        "n_combinations_total": math.comb(S, S // 2),
        "n_splits_used": len(chosen),
        "splits_sampled": bool(plan[3]),
        "n_valid": n_valid,
        "n_blocks": int(S),
        "n_configurations": C,
        "block_days": [int(x) for x in counts],
    }
    if n_valid:
        q = np.quantile(lg, [0.05, 0.25, 0.5, 0.75, 0.95])
        out["logits"] = {"min": float(lg.min()), "q05": float(q[0]), "q25": float(q[1]),
                         "median": float(q[2]), "q75": float(q[3]), "q95": float(q[4]),
                         "max": float(lg.max())}
        out["mean_logit"] = float(lg.mean())
    else:
        out["logits"] = out["mean_logit"] = None
    if len(chosen) <= MAX_LOGIT_VALUES:
        out["logit_values"] = [_num(x) for x in logit]
    x, y = is_sr[valid], oos_sr[valid]
    out["prob_oos_loss"] = _num(np.mean(y < 0.0)) if n_valid else None
    fit = np.isfinite(x) & np.isfinite(y)
    slope = intercept = math.nan
    if fit.sum() >= 2:
        xf, yf = x[fit], y[fit]
        dx = xf - xf.mean()
        sxx = float(dx @ dx)
        if sxx > 0.0:
            slope = float(dx @ (yf - yf.mean())) / sxx
            intercept = float(yf.mean()) - slope * float(xf.mean())
    out["degradation_slope"] = _num(slope)
    out["degradation_intercept"] = _num(intercept)
    out["mean_is_sharpe"] = _num(np.mean(x[fit])) if fit.any() else None
    out["mean_oos_sharpe"] = _num(np.mean(y[fit])) if fit.any() else None
    return out


def _sharpe(x: np.ndarray) -> float:
    if len(x) < 2:
        return math.nan
    sd = float(np.std(x, ddof=1))
    if not sd > 0.0 or (x == x[0]).all():  # a constant series has no Sharpe (SEMANTICS §9)
        return math.nan
    return float(np.mean(x)) / sd


def _population_moments(x: np.ndarray) -> tuple[float, float]:
    """Skewness ``m3 / m2**1.5`` and RAW kurtosis ``m4 / m2**2`` (central moments, ddof = 0)."""
    if len(x) < 2:
        return math.nan, math.nan
    d = x - x.mean()
    m2 = float(np.mean(d * d))
    if not m2 > 0.0 or (x == x[0]).all():
        return math.nan, math.nan
    return float(np.mean(d ** 3)) / m2 ** 1.5, float(np.mean(d ** 4)) / m2 ** 2


def overfitting_summary(best_returns, sharpes, sums, sumsq, counts,
                        periods_per_year: float = 365) -> dict:
    """Every overfitting statistic of a sweep, JSON-ready: ``overfitting_from_trials``
    with N = ``len(sharpes)``, V[SR] and the finite count from ``sharpes`` (the
    ANNUALISED Sharpe ratio of every configuration tried, NaN for one without a
    Sharpe) and ``pbo(sums, sumsq, counts)`` (per-block moments of every
    configuration's returns, see ``block_moments``)."""
    r = _best_returns(best_returns)
    ann = np.asarray(sharpes, dtype=np.float64).ravel()
    if len(ann) < 1:
        raise SweepError("overfitting_summary: no configuration (sharpes is empty)")
    per = ann[np.isfinite(ann)] / math.sqrt(periods_per_year)
    var_sr = float(np.var(per, ddof=1)) if len(per) >= 2 else math.nan
    return overfitting_from_trials(r, len(ann), len(per), var_sr, pbo(sums, sumsq, counts),
                                   periods_per_year)


def _best_returns(best_returns) -> np.ndarray:
    r = np.asarray(best_returns, dtype=np.float64).ravel()
    if not np.isfinite(r).all():
        raise SweepError("overfitting_summary: best_returns must be finite")
    return r


def overfitting_from_trials(best_returns, n_trials: int, n_finite: int, sharpe_var: float,
                            pbo_result: dict | None, periods_per_year: float = 365) -> dict:
    """Every overfitting statistic of a sweep from summary figures, JSON-ready (NaN and
    infinity as ``None``): no per-configuration array, so a streamed sweep can call it.

    Inputs: ``best_returns`` the daily returns of the best configuration (the
    ones its Sharpe is measured on); ``n_trials`` N, every configuration tried;
    ``n_finite`` those with a Sharpe; ``sharpe_var`` V[SR], the sample variance
    (ddof = 1) of their PER-PERIOD Sharpe ratios (annualised ones divided by
    ``sqrt(periods_per_year)``), NaN for fewer than 2; ``pbo_result`` the dict
    of ``pbo`` or ``pbo_chunks``, passed through; ``periods_per_year`` the
    annualisation (365: crypto trades every day).

    Returned, with suffix ``_annual`` for annualised figures and none for
    per-period ones:

    * ``n_trials``, ``n_finite``; ``n_obs``: days of ``best_returns``;
      ``backtest_years``: ``n_obs / periods_per_year``;
    * ``sharpe_var`` (``sharpe_var_annual`` = times ``periods_per_year``);
    * ``best_sharpe`` / ``best_sharpe_annual``: ``mean / std(ddof=1)`` of
      ``best_returns``;
    * ``skewness``, ``kurtosis``: population skewness and RAW kurtosis of
      ``best_returns``;
    * ``psr``: probabilistic Sharpe ratio against 0; ``dsr``: deflated Sharpe
      ratio (against ``expected_max_sharpe``);
    * ``expected_max_sharpe`` / ``expected_max_sharpe_annual``: E[max SR] of N
      zero-skill trials with variance V[SR];
    * ``min_backtest_years``: the minimum backtest length for N trials at the
      best's annualised Sharpe (``min_backtest_length``);
    * ``pbo``: ``pbo_result``.
    """
    r = _best_returns(best_returns)
    n_trials, var_sr = int(n_trials), float(sharpe_var)
    if n_trials < 1:
        raise SweepError("overfitting_summary: no configuration (sharpes is empty)")
    root = math.sqrt(periods_per_year)
    sr = _sharpe(r)
    skew, kurt = _population_moments(r)
    e_max = expected_max_sharpe(n_trials, var_sr)
    return {
        "periods_per_year": periods_per_year,
        "n_trials": n_trials,
        "n_finite": int(n_finite),
        "n_obs": len(r),
        "backtest_years": len(r) / periods_per_year,
        "sharpe_var": _num(var_sr),
        "sharpe_var_annual": _num(var_sr * periods_per_year),
        "best_sharpe": _num(sr),
        "best_sharpe_annual": _num(sr * root),
        "skewness": _num(skew),
        "kurtosis": _num(kurt),
        "psr": _num(probabilistic_sharpe_ratio(sr, 0.0, len(r), skew, kurt)),
        "dsr": _num(deflated_sharpe_ratio(sr, n_trials, var_sr, len(r), skew, kurt)),
        "expected_max_sharpe": _num(e_max),
        "expected_max_sharpe_annual": _num(e_max * root),
        "min_backtest_years": _num(min_backtest_length(n_trials, sr * root)),
        "pbo": pbo_result,
    }
