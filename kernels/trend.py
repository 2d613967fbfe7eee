"""Trend rules (SEMANTICS §11): exponential averages over runs, volatility, forecasts, targets.

Conventions shared by every kernel here:

* A *run* of symbol ``i`` is a maximal stretch of consecutive days with a
  finite value (§11.3). Every average restarts at the first value after a
  missing one, with no memory: per run it equals pandas
  ``Series(run).ewm(span=s, adjust=True).mean()`` (or ``.std()``), never a
  whole column with gaps (pandas' default ``ignore_na=False`` decays weights
  across NaNs, §11.10). A day without a value is NaN.
* Spans, never centres of mass: ``alpha = 2 / (span + 1)``.
* Log closes ``x = log(close)`` and log returns ``l`` (§2) are the inputs: a
  run of ``x`` from day ``a`` holds the returns ``l[a+1 .. t]``, which is
  exactly a run of finite ``l`` (``l[a]`` is NaN since ``close[a-1]`` is).
* The value at ``t`` reads data up to ``t`` only.
"""

import math

import numpy as np
from numba import njit

A_DAYS = 365.0  # §11: annualisation


@njit(cache=True, nogil=True)
def run_length(close):
    """``n(t, i) = t - a(t, i)`` (§11.3), the log returns of the current run; -1 without a close.

    Equals, per run of finite closes, ``np.arange(len(run))``.
    """
    T, N = close.shape
    out = np.full((T, N), -1, dtype=np.int64)
    for i in range(N):
        n = -1
        for t in range(T):
            if np.isfinite(close[t, i]):
                n += 1
                out[t, i] = n
            else:
                n = -1
    return out


@njit(cache=True, nogil=True)
def ewma_runs(y, span):
    """Exponential mean over runs of finite ``y`` (§11.2, §11.3).

    Per run, pandas ``Series(run).ewm(span=span, adjust=True).mean()``: the
    weighted sums ``S1 = d * S1 + y``, ``S0 = d * S0 + 1`` restart after a NaN.
    """
    T, N = y.shape
    d = 1.0 - 2.0 / (span + 1.0)
    out = np.full((T, N), np.nan)
    for i in range(N):
        s0 = 0.0
        s1 = 0.0
        for t in range(T):
            v = y[t, i]
            if np.isfinite(v):
                s0 = d * s0 + 1.0
                s1 = d * s1 + v
                out[t, i] = s1 / s0
            else:
                s0 = 0.0
                s1 = 0.0
    return out


@njit(cache=True, nogil=True)
def ewsd_runs(y, span, min_periods):
    """Bias-corrected exponential standard deviation over runs of finite ``y`` (§11.2).

    Per run, pandas ``Series(run).ewm(span=span, adjust=True, min_periods=min_periods)
    .std()`` (``bias=False``): pandas' weighted Welford update of the mean and
    variance, scaled by ``S0**2 / (S0**2 - S2)``; NaN before ``min_periods``
    values and for a single value.
    """
    T, N = y.shape
    d = 1.0 - 2.0 / (span + 1.0)
    out = np.full((T, N), np.nan)
    for i in range(N):
        nobs = 0
        mean = 0.0
        var = 0.0
        s0 = 0.0  # sum of weights
        s2 = 0.0  # sum of squared weights
        for t in range(T):
            v = y[t, i]
            if not np.isfinite(v):
                nobs = 0
                continue
            if nobs == 0:
                mean = v
                var = 0.0
                s0 = 1.0
                s2 = 1.0
            else:
                old = s0 * d  # the weight of everything before today
                s2 = s2 * d * d + 1.0
                old_mean = mean
                if mean != v:
                    mean = (old * old_mean + v) / (old + 1.0)
                dm = old_mean - mean
                dv = v - mean
                var = (old * (var + dm * dm) + dv * dv) / (old + 1.0)
                s0 = old + 1.0
            nobs += 1
            if nobs >= min_periods:
                num = s0 * s0
                den = num - s2
                if den > 0.0:
                    out[t, i] = math.sqrt(num / den * var)
    return out


@njit(cache=True, nogil=True)
def floor_sigma(sigma_raw, vol_floor):
    """``sigma = max(sigma_raw, vol_floor / sqrt(365))`` (§11.4), NaN where ``sigma_raw`` is.

    With ``vol_floor = 0`` a ``sigma_raw`` that is not ``> 0`` is NaN as well.
    Equals ``np.where(raw > 0 or floor > 0, np.maximum(raw, floor / sqrt(365)), nan)``.
    """
    T, N = sigma_raw.shape
    floor = vol_floor / math.sqrt(A_DAYS)
    out = np.full((T, N), np.nan)
    for t in range(T):
        for i in range(N):
            v = sigma_raw[t, i]
            if np.isfinite(v):
                v = max(v, floor)
                if v > 0.0:
                    out[t, i] = v
    return out


@njit(cache=True, nogil=True)
def ewmac_forecast(fast, slow, sigma, n_obs, min_n):
    """Raw ewmac forecast ``(EWMA_fast(x) - EWMA_slow(x)) / sigma`` (§11.5).

    ``fast``/``slow`` are ``ewma_runs`` of the log close, ``n_obs`` is
    ``run_length``; finite only where ``sigma`` is finite and
    ``n_obs >= min_n = max(ceil(slow), vol_min_periods)``. Elementwise, as
    numpy ``np.where(mask, (fast - slow) / sigma, nan)``.
    """
    T, N = fast.shape
    out = np.full((T, N), np.nan)
    for t in range(T):
        for i in range(N):
            s = sigma[t, i]
            if n_obs[t, i] >= min_n and np.isfinite(s):
                out[t, i] = (fast[t, i] - slow[t, i]) / s
    return out


@njit(cache=True, nogil=True)
def breakout_position(x, window):
    """``b[u] = 40 * (x[u] - (hi + lo) / 2) / (hi - lo)`` over runs of ``x`` (§11.5).

    ``hi``/``lo`` are the largest and smallest of ``x[u-window+1 .. u]``, all of
    the current run (pandas ``rolling(window).max()``/``.min()`` per run); ``b``
    is 0 where ``hi == lo``, exactly +20 on a new high and -20 on a new low, and
    NaN before the run holds ``window`` values.
    """
    T, N = x.shape
    out = np.full((T, N), np.nan)
    for i in range(N):
        run = 0
        for t in range(T):
            v = x[t, i]
            if not np.isfinite(v):
                run = 0
                continue
            run += 1
            if run < window:
                continue
            hi = v
            lo = v
            for u in range(t - window + 1, t):
                hi = max(hi, x[u, i])
                lo = min(lo, x[u, i])
            # 20 * ((x - lo) - (hi - x)) / (hi - lo): the same number, written so that a new
            # high gives exactly +20 and a new low exactly -20.
            out[t, i] = 0.0 if hi == lo else 20.0 * ((v - lo) - (hi - v)) / (hi - lo)
    return out


@njit(cache=True, nogil=True)
def gate_forecast(smoothed, sigma, n_obs, min_n):
    """Keep ``smoothed`` (the breakout's ``EWMA_smooth(b)``) where ``sigma`` is finite and
    ``n_obs >= min_n`` (§11.5); NaN elsewhere. As ``np.where(mask, smoothed, nan)``."""
    T, N = smoothed.shape
    out = np.full((T, N), np.nan)
    for t in range(T):
        for i in range(N):
            if n_obs[t, i] >= min_n and np.isfinite(sigma[t, i]):
                out[t, i] = smoothed[t, i]
    return out


@njit(cache=True, nogil=True)
def auto_scalar(rf, allowed, min_periods):
    """The expanding forecast scalar of §11.6, one value per day, never backfilled.

    ``m[u]`` is the median (numpy ``np.median``) of ``|rf[u, i]|`` over symbols
    with ``allowed[u, i]`` (all symbols when ``allowed`` has no rows) and ``rf``
    finite and non-zero; ``scalar[t] = 10 / mean(m[u <= t] defined)``, NaN until
    ``m`` has been defined on ``min_periods`` days.
    """
    T, N = rf.shape
    use_allowed = allowed.shape[0] > 0
    out = np.full(T, np.nan)
    vals = np.empty(N)
    total = 0.0
    days = 0
    for t in range(T):
        n = 0
        for i in range(N):
            v = rf[t, i]
            if (use_allowed and not allowed[t, i]) or not np.isfinite(v) or v == 0.0:
                continue
            vals[n] = abs(v)
            n += 1
        if n > 0:
            srt = np.sort(vals[:n])
            h = n // 2
            total += srt[h] if n % 2 == 1 else (srt[h - 1] + srt[h]) / 2.0
            days += 1
        if days >= min_periods:
            out[t] = 10.0 / (total / days)
    return out


@njit(cache=True, nogil=True)
def trend_targets(rf, sigma, scalar, masks, sizing):
    """Target weights ``w*`` of every day (§11.7, §11.8), and the non-zero ones as lists.

    ``masks = (allowed, regime)``: the ``(T, N)`` universe (no rows: every
    symbol) and the ``(T,)`` regime (no entries: always holds; where it does not
    hold the row is 0). ``sizing = (cap, idm, vol_target, max_leverage,
    long_only)``, ``max_leverage <= 0`` meaning no cap. ``f = clip(scalar[t] *
    rf, -cap, cap)``; eligible: in the universe with ``f`` finite (``rf`` is
    finite only where the close is); ``w* = idm * (f / 10) * (vol_target /
    (sigma * sqrt(365))) / n_t``, then ``max(w*, 0)`` with ``long_only``, then
    scaled by ``max_leverage / G`` where ``G = sum |w*|`` exceeds it.

    Returns ``(target, order, count)``: ``target`` ``(T, N)``; ``order[t, :count[t]]``
    the symbols with a non-zero target, in symbol order (-1 after them), as
    ``portfolio.simulate`` reads a ranking.
    """
    allowed, regime = masks
    cap, idm, vol_target, max_leverage, long_only = sizing
    T, N = rf.shape
    use_allowed = allowed.shape[0] > 0
    use_regime = regime.shape[0] > 0
    root_a = math.sqrt(A_DAYS)
    target = np.zeros((T, N))
    order = np.full((T, N), -1, dtype=np.int32)
    count = np.zeros(T, dtype=np.int32)
    for t in range(T):
        if use_regime and not regime[t]:
            continue
        k = scalar[t]
        if not np.isfinite(k):
            continue
        n_t = 0
        for i in range(N):
            if (not use_allowed or allowed[t, i]) and np.isfinite(rf[t, i]):
                n_t += 1
        if n_t == 0:
            continue
        gross = 0.0
        for i in range(N):
            if (not use_allowed or allowed[t, i]) and np.isfinite(rf[t, i]):
                f = min(max(k * rf[t, i], -cap), cap)
                w = idm * (f / 10.0) * (vol_target / (sigma[t, i] * root_a)) / n_t
                if long_only and w < 0.0:
                    w = 0.0
                target[t, i] = w
                gross += abs(w)
        if max_leverage > 0.0 and gross > max_leverage:
            scale = max_leverage / gross
            for i in range(N):
                target[t, i] *= scale
        n = 0
        for i in range(N):
            if target[t, i] != 0.0:
                order[t, n] = i
                n += 1
        count[t] = n
    return target, order, count
