"""Slow, readable reference implementation of the trend rules (SEMANTICS §11).

Written from SEMANTICS alone, independently of the engine (no ``sweep`` or
``kernels`` import): every exponential average is the weighted sum of its
definition (§11.2) over the current run (§11.3), recomputed from scratch for
every day, where the engine runs recursions. Sections 2, 5 (universe and
regime), 8 and 9 are the shared reference's (``tests/reference.py``).

Entry point: :func:`reference_trend_backtest`.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

import reference as ref

A = 365.0

EWMAC_SCALARS = {(2, 8): 10.6, (4, 16): 7.5, (8, 32): 5.3, (16, 64): 3.75, (32, 128): 2.65, (64, 256): 1.87}
BREAKOUT_SCALARS = {10: 0.60, 20: 0.67, 40: 0.70, 80: 0.73, 160: 0.74, 320: 0.74}

_MEMO: dict[tuple, np.ndarray] = {}  # the slow arrays, by (data hash, what, parameters)


def _memo(arrays: tuple, what: tuple, make):
    digest = hashlib.sha1()
    for data in arrays:
        digest.update(np.ascontiguousarray(data).tobytes())
        digest.update(repr(data.shape).encode())
    key = (digest.hexdigest(), *what)
    if key not in _MEMO:
        _MEMO[key] = make()
    return _MEMO[key]


# ---------------------------------------------------------------------------
# 11.2 Exponential averages, straight from the definition
# ---------------------------------------------------------------------------


def ewma(values, span) -> float:
    """sum_j w_j y_j / sum_j w_j with w_j = d ** (k - j), alpha = 2 / (span + 1)."""
    y = np.asarray(values, dtype=float)
    d = 1.0 - 2.0 / (span + 1.0)
    k = len(y) - 1
    w = np.array([d ** (k - j) for j in range(k + 1)])
    return float(np.sum(w * y) / np.sum(w))


def ewsd(values, span) -> float:
    """sqrt(v * S0**2 / (S0**2 - sum w**2)), v the weighted variance about the weighted mean; NaN for k = 0."""
    y = np.asarray(values, dtype=float)
    if len(y) < 2:
        return math.nan
    d = 1.0 - 2.0 / (span + 1.0)
    k = len(y) - 1
    w = np.array([d ** (k - j) for j in range(k + 1)])
    s0 = np.sum(w)
    m = np.sum(w * y) / s0
    v = np.sum(w * (y - m) ** 2) / s0
    den = s0 ** 2 - np.sum(w ** 2)
    if den <= 0.0:
        return math.nan
    return float(math.sqrt(v * s0 ** 2 / den))


# ---------------------------------------------------------------------------
# 11.3 Runs
# ---------------------------------------------------------------------------


def run_start(close: np.ndarray, t: int, i: int) -> int | None:
    """a(t, i): the first day of the run of finite closes holding day t; None without a close at t."""
    if not math.isfinite(close[t, i]):
        return None
    a = t
    while a > 0 and math.isfinite(close[a - 1, i]):
        a -= 1
    return a


# ---------------------------------------------------------------------------
# 11.4 Volatility and 11.5 raw forecasts
# ---------------------------------------------------------------------------


def sigma_panel(close, l, vol_span, vol_min_periods, vol_floor) -> np.ndarray:
    def make():
        T, N = close.shape
        out = np.full((T, N), np.nan)
        floor = vol_floor / math.sqrt(A)
        for i in range(N):
            for t in range(T):
                a = run_start(close, t, i)
                if a is None or t - a < vol_min_periods:
                    continue
                raw = ewsd(l[a + 1:t + 1, i], vol_span)
                if not math.isfinite(raw):
                    continue
                s = max(raw, floor)
                if vol_floor == 0.0 and not s > 0.0:
                    continue
                out[t, i] = s
        return out

    return _memo((close, l), ("sigma", vol_span, vol_min_periods, vol_floor), make)


def ewmac_raw(close, x, sigma, fast, slow, vol_min_periods) -> np.ndarray:
    def make():
        T, N = close.shape
        out = np.full((T, N), np.nan)
        need = max(math.ceil(slow), vol_min_periods)
        for i in range(N):
            for t in range(T):
                a = run_start(close, t, i)
                if a is None or t - a < need or not math.isfinite(sigma[t, i]):
                    continue
                run = x[a:t + 1, i]
                out[t, i] = (ewma(run, fast) - ewma(run, slow)) / sigma[t, i]
        return out

    return _memo((close, sigma), ("ewmac", fast, slow, vol_min_periods), make)


def breakout_b(close, x, window) -> np.ndarray:
    """b[u] of §11.5 on every day u whose run holds ``window`` closes (u - a + 1 >= window), else NaN."""
    T, N = close.shape
    b = np.full((T, N), np.nan)
    for i in range(N):
        for u in range(T):
            a = run_start(close, u, i)
            if a is None or u - a + 1 < window:
                continue
            span = x[u - window + 1:u + 1, i]
            hi = float(np.max(span))
            lo = float(np.min(span))
            b[u, i] = 0.0 if hi == lo else 40.0 * (x[u, i] - (hi + lo) / 2.0) / (hi - lo)
    return b


def breakout_raw(close, x, sigma, window, smooth, vol_min_periods) -> np.ndarray:
    def make():
        T, N = close.shape
        out = np.full((T, N), np.nan)
        need = max(window + smooth, vol_min_periods)
        b = breakout_b(close, x, window)
        for i in range(N):
            for t in range(T):
                a = run_start(close, t, i)
                if a is None or t - a < need or not math.isfinite(sigma[t, i]):
                    continue
                out[t, i] = ewma(b[a + window - 1:t + 1, i], smooth)
        return out

    return _memo((close, sigma), ("breakout", window, smooth, vol_min_periods), make)


# ---------------------------------------------------------------------------
# 11.6 Forecast scalar, 11.7 cap
# ---------------------------------------------------------------------------


def published_scalar(params) -> float | None:
    if params["factor"] == "ewmac":
        fast, slow = params["fast"], params["slow"]
        for (f, s), value in EWMAC_SCALARS.items():
            if f == fast and s == slow:
                return value
        return None
    if params["smooth"] != max(params["window"] // 4, 1):
        return None
    return BREAKOUT_SCALARS.get(params["window"])


def scalar_series(rf, members_of_day, params) -> np.ndarray:
    """scalar[t] per day: fixed, or "auto" = 10 / mean of the daily medians m[u], u <= t."""
    T = rf.shape[0]
    given = params["forecast_scalar"]
    if given != "auto":
        value = published_scalar(params) if given in (None, "published") else float(given)
        if value is None:
            raise ValueError("no published forecast scalar for this speed")
        return np.full(T, value)
    out = np.full(T, np.nan)
    medians = []
    for u in range(T):
        vals = [abs(rf[u, i]) for i in members_of_day(u) if math.isfinite(rf[u, i]) and rf[u, i] != 0.0]
        if vals:
            medians.append(float(np.median(vals)))
        if len(medians) >= params["scalar_min_periods"]:
            out[u] = 10.0 / float(np.mean(medians))
    return out


# ---------------------------------------------------------------------------
# 11.8 Target weights
# ---------------------------------------------------------------------------


def trend_target(t, members, f, close, sigma, params) -> np.ndarray:
    N = close.shape[1]
    w = np.zeros(N)
    eligible = [i for i in members if math.isfinite(close[t, i]) and math.isfinite(f[t, i])]
    n_t = len(eligible)
    if n_t == 0:
        return w
    for i in eligible:
        sigma_ann = sigma[t, i] * math.sqrt(A)
        w[i] = params["idm"] * (f[t, i] / 10.0) * (params["vol_target"] / sigma_ann) / n_t
    if params["long_only"]:
        w = np.maximum(w, 0.0)
    G = float(np.sum(np.abs(w)))
    cap = params["max_leverage"]
    if cap is not None and G > cap:
        w = w * (cap / G)
    return w


def raw_forecast(params, close, x, l) -> tuple[np.ndarray, np.ndarray]:
    """(rf, sigma) of §11.4-§11.5 for the configuration's factor."""
    sigma = sigma_panel(close, l, params["vol_span"], params["vol_min_periods"], params["vol_floor"])
    if params["factor"] == "ewmac":
        rf = ewmac_raw(close, x, sigma, params["fast"], params["slow"], params["vol_min_periods"])
    elif params["factor"] == "breakout":
        rf = breakout_raw(close, x, sigma, params["window"], params["smooth"], params["vol_min_periods"])
    else:
        raise ValueError(f"not a trend factor: {params['factor']!r}")
    return rf, sigma


def _members(t, symbols, params, market_cap, volume):
    """Section 5's universe filters of day t (exclude, min_volume, top_by_market_cap)."""
    return ref.universe(t, symbols, params, market_cap, volume)


def reference_trend_backtest(dates, symbols, close, market_cap, funding, params, s, e, volume=None) -> dict:
    """Backtest one fully resolved trend configuration over days s .. e (inclusive).

    ``params`` carries §11.1's parameters (``max_leverage`` None for no cap,
    ``forecast_scalar`` None for the published value, a number or ``"auto"``)
    and §5/§8's (``exclude``, ``top_by_market_cap`` None when off, ``regime``,
    ``funding``, the schedule, ``buffer``, costs, ``hold``). Returns what
    ``reference.reference_backtest`` returns, plus ``"target"`` (day -> w*),
    ``"rf"``, ``"sigma"`` and ``"scalar"``.
    """
    close = np.asarray(close, dtype=np.float64)
    T, N = close.shape
    r = ref.simple_returns(close)
    l = ref.log_returns(r)
    q = ref.portfolio_returns(close)
    x = np.where(np.isfinite(close), np.log(np.where(np.isfinite(close), close, 1.0)), np.nan)

    rf, sigma = raw_forecast(params, close, x, l)
    scalar = scalar_series(rf, lambda u: _members(u, symbols, params, market_cap, volume), params)
    cap = params["forecast_cap"]
    f = np.full((T, N), np.nan)
    for t in range(T):
        for i in range(N):
            if math.isfinite(rf[t, i]) and math.isfinite(scalar[t]):
                f[t, i] = min(max(scalar[t] * rf[t, i], -cap), cap)

    # Section 5's regime filter first (market level M; None for "all", which reads no market).
    level = None if params.get("regime", "all") == "all" else ref.market_level(params, close, r, symbols)
    targets = {}
    for t in range(s, e + 1):
        if not ref.is_rebalance_day(t, s, params):
            continue
        if not ref.regime_holds(t, params, level):
            targets[t] = np.zeros(N)
            continue
        targets[t] = trend_target(t, _members(t, symbols, params, market_cap, volume), f, close, sigma, params)

    fund = funding if params.get("funding", True) else None
    run = ref.run_portfolio(q, fund, s, e, params, params["fee_bps"], params["slippage_bps"], targets)
    run_pre = ref.run_portfolio(q, fund, s, e, params, 0.0, 0.0, targets)
    out = {"metrics": ref.metrics(run, run_pre), "R": run["R"], "R_pre": run_pre["R"], "weights": run["weights"],
           "target": targets, "rf": rf, "sigma": sigma, "scalar": scalar, "f": f}
    for key in ("P", "F", "C", "tau", "V", "rebalance"):
        out[key] = run[key]
    return out
