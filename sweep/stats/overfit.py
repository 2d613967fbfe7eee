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

import math
import os
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


def cscv_arrays(sums, sumsq, counts):
    """Per-combination arrays of CSCV: ``(chosen, is_sr, oos_sr, rank, logit)``.

    Combinations in ``itertools.combinations(range(S), S // 2)`` order (the
    in-sample blocks); Sharpe ratios per period; see ``kernels.cscv.cscv``.
    """
    sums = np.ascontiguousarray(sums, dtype=np.float64)
    sumsq = np.ascontiguousarray(sumsq, dtype=np.float64)
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    if sums.ndim != 2 or sums.shape != sumsq.shape or counts.shape != (sums.shape[1],):
        raise SweepError(f"pbo: sums {sums.shape} and sumsq {sumsq.shape} must be (C, S) "
                         f"and counts {counts.shape} (S,)")
    C, S = sums.shape
    if C < 2:
        raise SweepError(f"pbo needs at least 2 configurations, got {C}")
    if S < 2 or S % 2:
        raise SweepError(f"pbo needs an even number of blocks >= 2, got {S}")
    if (counts < 1).any():
        raise SweepError(f"pbo: every block needs at least one day, got counts {counts.tolist()}")
    splits = _k.half_splits(S)
    n = splits.shape[0]
    out = (np.empty(n, dtype=np.int64), np.empty(n), np.empty(n), np.empty(n), np.empty(n))
    # The kernel releases the GIL and disjoint ranges write disjoint outputs: one
    # range per core (12,870 splits of thousands of configurations take seconds).
    jobs = max(1, min(os.cpu_count() or 1, n // 2))
    edges = np.linspace(0, n // 2, jobs + 1).astype(np.int64)
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda i: _k.cscv_range(sums, sumsq, counts, splits, edges[i], edges[i + 1], *out),
                      range(jobs)))
    return out


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def pbo(sums, sumsq, counts) -> dict:
    """Probability of Backtest Overfitting by CSCV from per-block moments.

    ``sums`` / ``sumsq`` ``(C, S)``: per configuration and block, the sum of the
    daily returns and of their squares; ``counts (S,)``: days per block; ``S``
    even. For each of the ``C(S, S/2)`` choices of in-sample blocks, the
    configuration with the best in-sample Sharpe is taken and its
    out-of-sample rank ``r`` among the ``C`` (1 = worst) gives ``w = r / (C +
    1)`` and the logit ``ln(w / (1 - w))``. Returned (JSON-ready):

    * ``pbo``: share of logits ``<= 0`` (the in-sample best is at or below the
      out-of-sample median);
    * ``n_combinations``, ``n_blocks``, ``n_configurations``, ``block_days``;
    * ``logits``: min, 5/25/50/75/95 % quantiles, max; ``mean_logit``;
      ``logit_values``: every logit, only when there are at most
      ``MAX_LOGIT_VALUES`` combinations;
    * ``prob_oos_loss``: share of combinations whose chosen configuration has
      an out-of-sample Sharpe below 0;
    * ``degradation_slope``, ``degradation_intercept``: least-squares line of
      the chosen configuration's out-of-sample Sharpe on its in-sample Sharpe
      across combinations (per-period Sharpe; the slope has no unit, the
      intercept is a per-period Sharpe); ``mean_is_sharpe``,
      ``mean_oos_sharpe``: their means (per period).

    A combination where every in-sample Sharpe is NaN is left out of every
    share and fit (``n_valid`` counts the others).
    """
    chosen, is_sr, oos_sr, rank, logit = cscv_arrays(sums, sumsq, counts)
    C, S = np.shape(sums)
    counts = np.asarray(counts)
    valid = chosen >= 0
    lg = logit[valid]
    n_valid = int(valid.sum())
    out: dict[str, Any] = {
        "pbo": _num(np.mean(lg <= 0.0)) if n_valid else None,
        "n_combinations": int(len(chosen)),
        "n_valid": n_valid,
        "n_blocks": int(S),
        "n_configurations": int(C),
        "block_days": [int(x) for x in counts],
    }
    if n_valid:
        q = np.quantile(lg, [0.05, 0.25, 0.5, 0.75, 0.95])
        out["logits"] = {"min": float(lg.min()), "q05": float(q[0]), "q25": float(q[1]),
                         "median": float(q[2]), "q75": float(q[3]), "q95": float(q[4]),
                         "max": float(lg.max())}
        out["mean_logit"] = float(lg.mean())
    else:
        out["logits"] = None
        out["mean_logit"] = None
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
    """Every overfitting statistic of a sweep, JSON-ready (NaN and infinity as ``None``).

    Inputs: ``best_returns`` the daily returns of the best configuration (the
    ones its Sharpe is measured on); ``sharpes`` the ANNUALISED Sharpe ratio of
    every configuration tried (NaN for one without a Sharpe); ``sums``,
    ``sumsq``, ``counts`` the per-block moments of every configuration's
    returns (see ``block_moments``); ``periods_per_year`` the annualisation
    (365: crypto trades every day).

    Returned, with suffix ``_annual`` for annualised figures and none for
    per-period ones:

    * ``n_trials``: N = ``len(sharpes)``, every configuration tried;
      ``n_finite``: those with a Sharpe; ``n_obs``: days of ``best_returns``;
      ``backtest_years``: ``n_obs / periods_per_year``;
    * ``sharpe_var`` (per-period Sharpe squared; ``sharpe_var_annual`` = times
      ``periods_per_year``): V[SR], the sample variance (ddof = 1) of the
      finite per-period Sharpe ratios ``sharpes / sqrt(periods_per_year)``;
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
    * ``pbo``: the dict of ``pbo(sums, sumsq, counts)``.
    """
    r = np.asarray(best_returns, dtype=np.float64).ravel()
    if not np.isfinite(r).all():
        raise SweepError("overfitting_summary: best_returns must be finite")
    ann = np.asarray(sharpes, dtype=np.float64).ravel()
    n_trials = int(len(ann))
    if n_trials < 1:
        raise SweepError("overfitting_summary: no configuration (sharpes is empty)")
    root = math.sqrt(periods_per_year)
    per = ann[np.isfinite(ann)] / root
    var_sr = float(np.var(per, ddof=1)) if len(per) >= 2 else math.nan
    sr = _sharpe(r)
    skew, kurt = _population_moments(r)
    e_max = expected_max_sharpe(n_trials, var_sr)
    return {
        "periods_per_year": periods_per_year,
        "n_trials": n_trials,
        "n_finite": int(len(per)),
        "n_obs": int(len(r)),
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
        "pbo": pbo(sums, sumsq, counts),
    }
