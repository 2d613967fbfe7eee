"""The t-test of a mean daily IC, without SciPy: Student's t tail through the regularized
incomplete beta function (a continued fraction, evaluated by the modified Lentz method as in
Numerical Recipes' ``betacf``), and the moments of a daily series the diagnostics report.
"""

from __future__ import annotations

import math

import numpy as np

_TINY = 1e-300
_EPS = 3e-16
_MAX_ITER = 10_000


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of ``I_x(a, b)`` (Numerical Recipes 6.4), by modified Lentz."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_ITER + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)`` (``scipy.special.betainc``)."""
    if not (a > 0 and b > 0) or math.isnan(x):
        return math.nan
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The fraction converges fast for x < (a + 1) / (a + b + 2); else use the symmetry.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, dof: float) -> float:
    """Two-sided p-value of ``t`` under Student's t with ``dof`` degrees of freedom:
    ``2 * scipy.stats.t.sf(|t|, dof) = I_{dof / (dof + t^2)}(dof / 2, 1 / 2)``.
    NaN for a NaN ``t`` or ``dof < 1``; 0 for an infinite ``t``."""
    if math.isnan(t) or not dof >= 1:
        return math.nan
    if math.isinf(t):
        return 0.0
    return min(1.0, betainc(0.5 * dof, 0.5, dof / (dof + t * t)))


def ic_stats(ic: np.ndarray) -> dict[str, float]:
    """The summary of a daily IC series over its finite days: ``ic_mean``, ``ic_std`` (ddof=1),
    ``ic_ir`` (mean / std), ``ic_t`` (mean / std * sqrt(n)), ``ic_p`` (two-sided, Student t
    with ``n - 1`` dof), ``ic_positive`` (share of days with IC > 0) and ``n_days``."""
    v = ic[np.isfinite(ic)]
    n = len(v)
    mean = float(v.mean()) if n else math.nan
    std = float(v.std(ddof=1)) if n > 1 else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        ir = float(np.float64(mean) / np.float64(std)) if n > 1 else math.nan
    t = ir * math.sqrt(n) if n > 1 else math.nan
    return {"ic_mean": mean, "ic_std": std, "ic_ir": ir, "ic_t": t, "ic_p": t_two_sided_p(t, n - 1),
            "ic_positive": float((v > 0).mean()) if n else math.nan, "n_days": n}


def mean_stderr(x: np.ndarray) -> tuple[float, float, int]:
    """``(mean, std(ddof=1) / sqrt(n), n)`` over the finite values of ``x`` (alphalens'
    ``mean_return_by_quantile`` standard error); NaN where undefined."""
    v = x[np.isfinite(x)]
    n = len(v)
    mean = float(v.mean()) if n else math.nan
    se = float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return mean, se, n


__all__ = ["betainc", "ic_stats", "mean_stderr", "t_two_sided_p"]
