"""Slow, readable reference implementation of the factor backtest.

This module is the executable twin of ``SEMANTICS.md`` (kept beside the
project as ``../shared/SEMANTICS.md``).  It is written independently of the
fast engine, as plain Python loops over days and symbols, so that tests can
compare the two to 1e-9.  Every function names the section of the rules it
implements.  Speed is not a goal; clarity is.

Entry point: :func:`reference_backtest`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

METRIC_NAMES = (
    "total_return",
    "cagr",
    "ann_vol",
    "sharpe",
    "sharpe_pre_cost",
    "sortino",
    "max_drawdown",
    "calmar",
    "win_rate",
    "turnover",
    "cost_paid",
    "funding_return",
    "avg_long",
    "avg_short",
    "avg_net_exposure",
    "avg_gross_exposure",
    "n_rebalances",
    "ruined",
)

FACTORS = (
    "volatility",
    "kurtosis",
    "skewness",
    "beta",
    "carry",
    "size",
    "momentum",
    "mean_reversion",
    "days_from_high",
)


# ---------------------------------------------------------------------------
# Section 2: returns
# ---------------------------------------------------------------------------


def simple_returns(close: np.ndarray) -> np.ndarray:
    """r[t,i] = close[t,i] / close[t-1,i] - 1 where both closes are finite,
    else NaN; r[0,:] = NaN."""
    T, N = close.shape
    r = np.full((T, N), np.nan)
    for t in range(1, T):
        for i in range(N):
            a = close[t - 1, i]
            b = close[t, i]
            if math.isfinite(a) and math.isfinite(b):
                r[t, i] = b / a - 1.0
    return r


def log_returns(r: np.ndarray) -> np.ndarray:
    """l[t,i] = log(1 + r[t,i]) (NaN stays NaN)."""
    T, N = r.shape
    l = np.full((T, N), np.nan)
    for t in range(T):
        for i in range(N):
            if math.isfinite(r[t, i]):
                l[t, i] = math.log(1.0 + r[t, i])
    return l


def carried_forward_close(close: np.ndarray) -> np.ndarray:
    """c[t,i] = the last finite close up to and including t (NaN before the
    first one)."""
    T, N = close.shape
    c = np.full((T, N), np.nan)
    for i in range(N):
        last = np.nan
        for t in range(T):
            if math.isfinite(close[t, i]):
                last = close[t, i]
            c[t, i] = last
    return c


def portfolio_returns(close: np.ndarray) -> np.ndarray:
    """q[t,i] = c[t,i] / c[t-1,i] - 1 on the carried-forward close ``c``.

    A gap day earns 0 (c unchanged), the day the price comes back earns the
    whole move since the last close, after the last close q = 0.  q is NaN on
    day 0 and on every day up to and including a symbol's first close (the
    caller counts NaN as 0)."""
    c = carried_forward_close(close)
    T, N = close.shape
    q = np.full((T, N), np.nan)
    for t in range(1, T):
        for i in range(N):
            if math.isfinite(c[t - 1, i]) and math.isfinite(c[t, i]):
                q[t, i] = c[t, i] / c[t - 1, i] - 1.0
    return q


# ---------------------------------------------------------------------------
# Section 3: features (value at t uses data up to and including t)
# ---------------------------------------------------------------------------


def _rolling(x: np.ndarray, w: int) -> pd.core.window.rolling.Rolling:
    """pandas rolling window of exactly ``w`` rows per column.  The default
    ``min_periods = w`` makes the result NaN unless all ``w`` values in the
    window are finite, as section 3 requires."""
    return pd.DataFrame(x).rolling(int(w), min_periods=int(w))


def feature_volatility(l: np.ndarray, w: int) -> np.ndarray:
    """Sample standard deviation (ddof = 1) of l[t-w+1 .. t]."""
    return _rolling(l, w).std(ddof=1).to_numpy(dtype=np.float64)


def feature_skewness(l: np.ndarray, w: int) -> np.ndarray:
    """Bias-corrected sample skewness, pandas ``rolling(w).skew()`` (NaN for a
    zero-variance window)."""
    return _rolling(l, w).skew().to_numpy(dtype=np.float64)


def feature_kurtosis(l: np.ndarray, w: int) -> np.ndarray:
    """Bias-corrected excess kurtosis, pandas ``rolling(w).kurt()`` (NaN for a
    zero-variance window)."""
    return _rolling(l, w).kurt().to_numpy(dtype=np.float64)


def feature_momentum(l: np.ndarray, w: int) -> np.ndarray:
    """Sum of the w log returns l[t-w+1 .. t]."""
    return _rolling(l, w).sum().to_numpy(dtype=np.float64)


def feature_carry(funding: np.ndarray | None, w: int, shape) -> np.ndarray:
    """Mean of funding_rate[t-w+1 .. t, i]; NaN unless all finite.

    Without a funding column there is no carry to rank: all NaN (so the
    portfolio is flat)."""
    if funding is None:
        return np.full(shape, np.nan)
    return _rolling(funding, w).mean().to_numpy(dtype=np.float64)


def feature_size(market_cap: np.ndarray | None, shape) -> np.ndarray:
    """market_cap[t,i] itself (window ignored).  No market_cap column: all
    NaN."""
    if market_cap is None:
        return np.full(shape, np.nan)
    return np.array(market_cap, dtype=np.float64, copy=True)


def market_log_return(l, r, symbols, market, market_symbol) -> np.ndarray:
    """l_m for beta.

    market = "symbol": the log return of ``market_symbol``.
    market = "equal_weight": log(1 + mean of that day's finite r) over all
    symbols of the panel; NaN on a day with no finite r."""
    T, N = l.shape
    if market == "symbol":
        if market_symbol not in symbols:
            raise ValueError(f"market_symbol {market_symbol!r} is not in the panel")
        return l[:, list(symbols).index(market_symbol)].copy()
    if market == "equal_weight":
        lm = np.full(T, np.nan)
        for t in range(T):
            finite = [r[t, i] for i in range(N) if math.isfinite(r[t, i])]
            if finite:
                lm[t] = math.log(1.0 + float(np.mean(finite)))
        return lm
    raise ValueError(f"unknown market {market!r}")


def feature_beta(l: np.ndarray, lm: np.ndarray, w: int) -> np.ndarray:
    """cov(l_i, l_m) / var(l_m) over l[t-w+1 .. t], both with ddof = 1.

    NaN unless all w returns of the symbol and of the market are finite.
    A zero market variance gives no finite beta: NaN (ineligible either way)."""
    T, N = l.shape
    out = np.full((T, N), np.nan)
    w = int(w)
    for t in range(T):
        lo = t - w + 1
        if lo < 0:
            continue
        m = lm[lo : t + 1]
        if not np.all(np.isfinite(m)):
            continue
        for i in range(N):
            x = l[lo : t + 1, i]
            if not np.all(np.isfinite(x)):
                continue
            if w < 2:
                continue  # ddof = 1 needs two points
            dx = x - np.mean(x)
            dm = m - np.mean(m)
            cov = np.sum(dx * dm) / (w - 1)
            var = np.sum(dm * dm) / (w - 1)
            if var == 0.0:
                continue
            out[t, i] = cov / var
    return out


def feature_days_from_high(close: np.ndarray, w: int) -> np.ndarray:
    """Days since the highest of close[t-w+1 .. t]: 0 when today is the high,
    a tie goes to the latest day; NaN unless all w closes are finite."""
    T, N = close.shape
    out = np.full((T, N), np.nan)
    w = int(w)
    for t in range(T):
        lo = t - w + 1
        if lo < 0:
            continue
        for i in range(N):
            window = close[lo : t + 1, i]
            if not np.all(np.isfinite(window)):
                continue
            best_day = lo
            best = window[0]
            for u in range(lo, t + 1):
                if close[u, i] >= best:  # ">=": a tie goes to the later day
                    best = close[u, i]
                    best_day = u
            out[t, i] = float(t - best_day)
    return out


def compute_feature(params, close, l, r, symbols, market_cap, funding) -> np.ndarray:
    """Section 4: the feature (T, N) behind the factor."""
    factor = params["factor"]
    w = params["window"]
    shape = close.shape
    if factor == "volatility":
        return feature_volatility(l, w)
    if factor == "kurtosis":
        return feature_kurtosis(l, w)
    if factor == "skewness":
        return feature_skewness(l, w)
    if factor == "beta":
        lm = market_log_return(l, r, symbols, params["market"], params["market_symbol"])
        return feature_beta(l, lm, w)
    if factor == "carry":
        return feature_carry(funding, w, shape)
    if factor == "size":
        return feature_size(market_cap, shape)
    if factor in ("momentum", "mean_reversion"):
        return feature_momentum(l, w)
    if factor == "days_from_high":
        return feature_days_from_high(close, w)
    raise ValueError(f"unknown factor {factor!r}")


# ---------------------------------------------------------------------------
# Section 5: selection on a rebalance day t
# ---------------------------------------------------------------------------


def is_liquid(t, i, volume, v, X) -> bool:
    """The ``min_volume = X`` rule with ``volume_window = v``: the window is
    the v days t-v+1 .. t (a day before day 0 counts as non-finite); the
    symbol passes when at least ceil(v / 2) of its v volumes are finite and
    the mean of those finite values (their sum over their count) is >= X."""
    finite = []
    for u in range(t - v + 1, t + 1):
        if u < 0:
            continue  # before the panel: non-finite
        x = volume[u, i]
        if math.isfinite(x):
            finite.append(x)
    if len(finite) < math.ceil(v / 2):
        return False
    total = 0.0
    for x in finite:  # in day order
        total += x
    return total / len(finite) >= X


def universe(t, symbols, params, market_cap, volume=None) -> list[int]:
    """Universe filters, in order: ``exclude`` drops symbols, then
    ``min_volume = X`` (with ``volume_window``, X = 0 is off) keeps the liquid
    ones, then ``top_by_market_cap = K`` keeps the K largest finite market
    caps of day t among the rest (ties by symbol order).  Returns symbol
    indices in symbol order."""
    excluded = set(params.get("exclude") or [])
    members = [i for i, sym in enumerate(symbols) if sym not in excluded]
    X = params.get("min_volume") or 0.0
    if X > 0:
        if volume is None:
            raise ValueError("min_volume needs a volume column")
        v = int(params.get("volume_window", 30))
        members = [i for i in members if is_liquid(t, i, volume, v, X)]
    K = params.get("top_by_market_cap")
    if K is not None:
        if market_cap is None:
            raise ValueError("top_by_market_cap needs a market_cap column")
        finite = [i for i in members if math.isfinite(market_cap[t, i])]
        # Largest first; Python's sort is stable, so equal caps keep symbol order.
        finite.sort(key=lambda i: -market_cap[t, i])
        kept = set(finite[: int(K)])
        members = [i for i in members if i in kept]
    return members


def eligible(t, members, feature, close, vol_rp, weighting) -> list[int]:
    """Feature finite at t, close[t] finite (the real close, not carried
    forward), and for risk_parity a finite positive volatility(vol_window)."""
    out = []
    for i in members:
        if not math.isfinite(feature[t, i]):
            continue
        if not math.isfinite(close[t, i]):
            continue
        if weighting == "risk_parity":
            s = vol_rp[t, i]
            if not (math.isfinite(s) and s > 0.0):
                continue
        out.append(i)
    return out


def sides(t, elig, feature, params) -> tuple[list[int], list[int]]:
    """Sort by feature ascending (stable: ties by symbol order), cut buckets
    of size k, and return (long members, short members)."""
    if params["factor"] == "days_from_high":
        # Long-only: every eligible symbol with value <= max_days, no short side.
        longs = [i for i in elig if feature[t, i] <= params["max_days"]]
        return longs, []

    ranked = sorted(elig, key=lambda i: feature[t, i])  # elig is in symbol order
    n = len(ranked)
    if params["selection"] == "quantile":
        k = n // int(params["q"])
    elif params["selection"] == "top_n":
        k = min(int(params["top_n"]), n // 2)
    else:
        raise ValueError(f"unknown selection {params['selection']!r}")
    if k == 0:
        return [], []
    bottom = ranked[:k]
    top = ranked[n - k :]
    if params["long"] == "low":
        return bottom, top
    if params["long"] == "high":
        return top, bottom
    raise ValueError(f"unknown long side {params['long']!r}")


def market_level(params, close, r, symbols) -> np.ndarray:
    """The regime filter's market level M_t, by beta's ``market`` setting.

    market = "symbol": the close of ``market_symbol`` (NaN where missing).
    market = "equal_weight": M_0 = 1, M_t = M_{t-1} * (1 + mean of day t's
    finite r), unchanged on a day without any finite r."""
    T, N = close.shape
    market = params.get("market", "symbol")
    if market == "symbol":
        sym = params.get("market_symbol", "BTC")
        if sym not in symbols:
            raise ValueError(f"market_symbol {sym!r} is not in the panel")
        return close[:, list(symbols).index(sym)].astype(np.float64).copy()
    if market == "equal_weight":
        M = np.empty(T)
        M[0] = 1.0
        for t in range(1, T):
            finite = [r[t, i] for i in range(N) if math.isfinite(r[t, i])]
            if finite:
                total = 0.0
                for x in finite:
                    total += x
                M[t] = M[t - 1] * (1.0 + total / len(finite))
            else:
                M[t] = M[t - 1]
        return M
    raise ValueError(f"unknown market {market!r}")


def level_average(M, t, f) -> float:
    """A_f(t): the sum of the f levels M[t-f+1 .. t] (summed afresh) over f;
    NaN (undefined) unless t-f+1 >= 0 and all f levels are finite."""
    if t - f + 1 < 0:
        return math.nan
    total = 0.0
    for u in range(t - f + 1, t + 1):
        if not math.isfinite(M[u]):
            return math.nan
        total += M[u]
    return total / f


def regime_holds(t, params, M) -> bool:
    """On rebalance day t: "all" always holds; "bear" when A_fast < A_slow,
    "bull" when A_fast > A_slow; equality or an undefined average holds
    neither (flat)."""
    regime = params.get("regime", "all")
    if regime == "all":
        return True
    fast = int(params.get("regime_fast", 50))
    slow = int(params.get("regime_slow", 200))
    if not 1 <= fast < slow:
        raise ValueError("need 1 <= regime_fast < regime_slow")
    a_fast = level_average(M, t, fast)
    a_slow = level_average(M, t, slow)
    if math.isnan(a_fast) or math.isnan(a_slow):
        return False
    if regime == "bear":
        return a_fast < a_slow
    if regime == "bull":
        return a_fast > a_slow
    raise ValueError(f"unknown regime {regime!r}")


# ---------------------------------------------------------------------------
# Section 6: weights
# ---------------------------------------------------------------------------


def side_weights(members, allocation, weighting, t, vol_rp) -> dict[int, float]:
    """Weights of one side (positive; the caller flips the short side)."""
    k = len(members)
    if k == 0:
        return {}
    if weighting == "equal":
        return {i: allocation / k for i in members}
    if weighting == "risk_parity":
        inv = {i: 1.0 / vol_rp[t, i] for i in members}
        total = sum(inv[i] for i in members)
        return {i: allocation * inv[i] / total for i in members}
    raise ValueError(f"unknown weighting {weighting!r}")


def target_weights(t, symbols, params, feature, close, vol_rp, market_cap, volume=None, level=None) -> np.ndarray:
    """Sections 5 and 6: the target vector w* at the close of rebalance day t.

    The regime filter comes first (``level`` is the market level M; None for
    regime = "all"): where it does not hold every target weight is 0."""
    N = len(symbols)
    target = np.zeros(N)
    if not regime_holds(t, params, level):
        return target
    members = universe(t, symbols, params, market_cap, volume)
    elig = eligible(t, members, feature, close, vol_rp, params["weighting"])
    longs, shorts = sides(t, elig, feature, params)
    for i, wi in side_weights(longs, params["long_allocation"], params["weighting"], t, vol_rp).items():
        target[i] += wi
    if params["factor"] != "days_from_high":
        for i, wi in side_weights(shorts, params["short_allocation"], params["weighting"], t, vol_rp).items():
            target[i] -= wi
    return target


# ---------------------------------------------------------------------------
# Section 7: schedule
# ---------------------------------------------------------------------------


def is_rebalance_day(t, s, params) -> bool:
    k = int(params["rebalance_days"])
    phase = int(params["phase"])
    return (t - s - phase) % k == 0


# ---------------------------------------------------------------------------
# Section 8: portfolio recursion
# ---------------------------------------------------------------------------


def run_portfolio(q, funding, s, e, params, fee_bps, slippage_bps, targets) -> dict:
    """Run the daily recursion for t = s .. e.

    ``targets[t]`` is the precomputed target w* for each rebalance day t
    (targets never depend on costs or on the held weights)."""
    N = q.shape[1]
    w = np.zeros(N)  # state at the close of day s - 1
    V = 1.0
    out = {k: [] for k in ("R", "P", "F", "C", "tau", "V", "rebalance")}
    weights = []
    closed = False  # Section 8, ruin: once the NAV reaches zero the book is closed.
    ruined = False
    for t in range(s, e + 1):
        if closed:
            # Every later day: P = F = R = tau = C = 0, w = 0, no rebalance (the
            # schedule still counts the day for n_rebalances).
            for key, value in (("R", 0.0), ("P", 0.0), ("F", 0.0), ("C", 0.0), ("tau", 0.0), ("V", 0.0)):
                out[key].append(value)
            out["rebalance"].append(is_rebalance_day(t, s, params))
            weights.append(np.zeros(N))
            continue
        # 1. Price: P_t = sum_i w_i * q[t,i], non-finite q as 0.
        qt = np.array([q[t, i] if math.isfinite(q[t, i]) else 0.0 for i in range(N)])
        P = 0.0
        for i in range(N):
            P += w[i] * qt[i]

        # 2. Funding: F_t = - sum_i w_i * funding[t,i], non-finite as 0.
        F = 0.0
        if funding is not None:
            for i in range(N):
                f = funding[t, i]
                if math.isfinite(f):
                    F -= w[i] * f

        # 3. Ruin by price: no drift, no rebalance, tau = C = 0, F as computed.
        if 1.0 + P + F <= 0.0:
            closed = ruined = True
            w = np.zeros(N)
            for key, value in (("R", -1.0), ("P", P), ("F", F), ("C", 0.0), ("tau", 0.0), ("V", 0.0)):
                out[key].append(value)
            out["rebalance"].append(is_rebalance_day(t, s, params))
            weights.append(w.copy())
            continue

        # Drift.
        if params["hold"] == "drift":
            growth = 1.0 + P + F
            w = np.array([w[i] * (1.0 + qt[i]) / growth for i in range(N)])
        elif params["hold"] == "constant":
            pass
        else:
            raise ValueError(f"unknown hold {params['hold']!r}")

        # 4. Rebalance.
        tau = 0.0
        C = 0.0
        rebalance = is_rebalance_day(t, s, params)
        if rebalance:
            w_star = targets[t].copy()
            b = params["buffer"]
            if b > 0:
                for i in range(N):
                    if w_star[i] != 0.0 and abs(w_star[i] - w[i]) <= b * abs(w_star[i]):
                        w_star[i] = w[i]  # keep the held weight, trade nothing
            for i in range(N):
                tau += abs(w_star[i] - w[i])
            C = tau * (fee_bps + slippage_bps) / 10_000
            w = w_star

        # 5. Net return and NAV; a cost of the whole NAV or more ruins the book
        # (the trade was made: tau, C and F stay as computed).
        if C >= 1.0:
            closed = ruined = True
            R = -1.0
            V = 0.0
            w = np.zeros(N)
        else:
            R = (1.0 + P + F) * (1.0 - C) - 1.0
            V = V * (1.0 + R)

        out["R"].append(R)
        out["P"].append(P)
        out["F"].append(F)
        out["C"].append(C)
        out["tau"].append(tau)
        out["V"].append(V)
        out["rebalance"].append(rebalance)
        weights.append(w.copy())
    result = {k: np.array(v) for k, v in out.items()}
    result["ruined"] = ruined
    result["weights"] = np.array(weights).reshape(len(weights), N)
    return result


# ---------------------------------------------------------------------------
# Section 9: metrics
# ---------------------------------------------------------------------------


def sharpe_ratio(R: np.ndarray) -> float:
    sd = np.std(R, ddof=1) if len(R) > 1 else np.nan
    if not math.isfinite(sd) or sd == 0.0:
        return math.nan
    return float(np.mean(R) / sd * math.sqrt(365))


def metrics(run: dict, run_pre: dict) -> dict:
    R = run["R"]
    n = len(R)
    total_return = float(np.prod(1.0 + R) - 1.0)
    if 1.0 + total_return < 0.0:  # impossible since section 8's ruin rule; kept as a guard
        cagr = math.nan
    else:
        cagr = float((1.0 + total_return) ** (365.0 / n) - 1.0)
    sd = float(np.std(R, ddof=1)) if n > 1 else math.nan
    ann_vol = sd * math.sqrt(365)
    sharpe = sharpe_ratio(R)
    sharpe_pre = sharpe_ratio(run_pre["R"])

    downside = float(np.sqrt(np.mean(np.minimum(R, 0.0) ** 2)))
    sortino = math.nan if downside == 0.0 else float(np.mean(R) / downside * math.sqrt(365))

    # Drawdown against the running peak, the starting NAV of 1 included.
    peak = 1.0
    max_drawdown = 0.0
    for V in run["V"]:
        peak = max(peak, V)
        max_drawdown = min(max_drawdown, V / peak - 1.0)
    calmar = math.nan if max_drawdown == 0.0 else cagr / abs(max_drawdown)

    nonzero = int(np.sum(R != 0.0))
    win_rate = math.nan if nonzero == 0 else int(np.sum(R > 0.0)) / nonzero

    W = run["weights"]
    return {
        "total_return": total_return,
        "cagr": cagr,
        "ann_vol": ann_vol,
        "sharpe": sharpe,
        "sharpe_pre_cost": sharpe_pre,
        "sortino": sortino,
        "max_drawdown": float(max_drawdown),
        "calmar": float(calmar),
        "win_rate": float(win_rate),
        "turnover": float(np.sum(run["tau"]) * 365.0 / n),
        "cost_paid": float(np.sum(run["C"])),
        "funding_return": float(np.sum(run["F"])),
        "avg_long": float(np.mean(np.sum(W > 0.0, axis=1))),
        "avg_short": float(np.mean(np.sum(W < 0.0, axis=1))),
        "avg_net_exposure": float(np.mean(np.sum(W, axis=1))),
        "avg_gross_exposure": float(np.mean(np.sum(np.abs(W), axis=1))),
        "n_rebalances": int(np.sum(run["rebalance"])),
        "ruined": 1.0 if run["ruined"] else 0.0,
    }


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


def reference_backtest(dates, symbols, close, market_cap, funding, params, s, e, volume=None) -> dict:
    """Backtest one fully resolved configuration over the inclusive window
    [s, e] of day indices.

    ``params`` may carry section 5's ``min_volume`` / ``volume_window`` (read
    from ``volume``), ``regime`` / ``regime_fast`` / ``regime_slow`` (with
    ``market`` / ``market_symbol``) and section 8's ``funding`` switch
    (default true; false ignores the funding column).

    Returns ``{"metrics", "R", "R_pre", "weights"}`` plus the per-day
    diagnostics ``"P"``, ``"F"``, ``"C"``, ``"tau"``, ``"V"``,
    ``"rebalance"`` (arrays of length n = e - s + 1).
    """
    close = np.asarray(close, dtype=np.float64)
    T, N = close.shape
    if len(dates) != T or len(symbols) != N:
        raise ValueError("dates / symbols do not match the shape of close")
    if market_cap is not None:
        market_cap = np.asarray(market_cap, dtype=np.float64)
    if funding is not None:
        funding = np.asarray(funding, dtype=np.float64)
    if params["factor"] not in FACTORS:
        raise ValueError(f"unknown factor {params['factor']!r}")
    if not (0 <= s <= e < T):
        raise ValueError(f"bad window s={s}, e={e} for T={T}")
    if not (int(params["rebalance_days"]) >= 1 and 0 <= int(params["phase"]) < int(params["rebalance_days"])):
        raise ValueError("need rebalance_days >= 1 and 0 <= phase < rebalance_days")
    if volume is not None:
        volume = np.asarray(volume, dtype=np.float64)
    # Section 5: a liquidity filter without volumes is an error before any day.
    if (params.get("min_volume") or 0.0) > 0 and volume is None:
        raise ValueError("min_volume > 0 needs a volume column")
    # Section 8: funding = false ignores the column (F = 0); carry then has
    # nothing to rank (section 4: an error).
    if not params.get("funding", True):
        if params["factor"] == "carry":
            raise ValueError("carry needs funding = true")
        funding = None

    # Section 2.
    r = simple_returns(close)
    l = log_returns(r)
    q = portfolio_returns(close)

    # Section 3/4.
    feature = compute_feature(params, close, l, r, symbols, market_cap, funding)
    vol_rp = feature_volatility(l, params["vol_window"]) if params["weighting"] == "risk_parity" else None
    # Section 5, regime filter: the market level (a missing market symbol is
    # an error unless regime = "all", which reads no market).
    level = None if params.get("regime", "all") == "all" else market_level(params, close, r, symbols)

    # Sections 5/6/7: targets on rebalance days (they use data up to t only).
    targets = {}
    for t in range(s, e + 1):
        if is_rebalance_day(t, s, params):
            targets[t] = target_weights(t, symbols, params, feature, close, vol_rp, market_cap, volume, level)

    # Section 8: the net run and the pre-cost run (fees and slippage 0,
    # funding kept).
    run = run_portfolio(q, funding, s, e, params, params["fee_bps"], params["slippage_bps"], targets)
    run_pre = run_portfolio(q, funding, s, e, params, 0.0, 0.0, targets)

    result = {
        "metrics": metrics(run, run_pre),
        "R": run["R"],
        "R_pre": run_pre["R"],
        "weights": run["weights"],
    }
    for key in ("P", "F", "C", "tau", "V", "rebalance"):
        result[key] = run[key]
    return result
