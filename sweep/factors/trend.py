"""Trend rules of SEMANTICS §11: the ``ewmac`` and ``breakout`` factors, their parameters and targets.

A trend factor's feature is its raw forecast ``rf`` (§11.5): what the factor
registry caches and the lookahead audit recomputes. The arrays behind it (log
closes, run lengths, each span's EWMA, each volatility, each window's breakout
position ``b``) are Numba kernels (``kernels.trend``) computed once per panel
and shared by every configuration and every factor that reads them, under the
cache keys of ``_cached``. Unlike a ranked factor, a trend configuration is
sized symbol by symbol: ``targets`` turns ``rf`` into the target weights of
§11.7-§11.8, which the portfolio recursion reads on its rebalance days.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Any, Callable

import numpy as np

from kernels import trend as K

from sweep.core.errors import SweepError
from sweep.data.panel import Panel
from sweep.factors.registry import Factor, register

# §11.6: the published forecast scalars, by speed.
EWMAC_SCALARS = {(2.0, 8.0): 10.6, (4.0, 16.0): 7.5, (8.0, 32.0): 5.3, (16.0, 64.0): 3.75,
                 (32.0, 128.0): 2.65, (64.0, 256.0): 1.87}
BREAKOUT_SCALARS = {10: 0.60, 20: 0.67, 40: 0.70, 80: 0.73, 160: 0.74, 320: 0.74}  # with the default smooth

# Parameters of §11.1 and their defaults; ``fast``/``slow``/``smooth`` default per factor.
EWMAC_FAST = 16.0
VOL_PARAMS = ("vol_span", "vol_min_periods", "vol_floor")

_CACHE: "weakref.WeakKeyDictionary[Panel, dict]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _cached(panel: Panel, key: tuple, make: Callable[[], np.ndarray]) -> np.ndarray:
    """``make()`` once per panel and ``key``; the kernels release the GIL, so two threads
    may both compute a missing array (the same array): the first stored is kept."""
    with _LOCK:
        store = _CACHE.setdefault(panel, {})
        if key in store:
            return store[key]
    value = make()
    with _LOCK:
        return store.setdefault(key, value)


def cache_keys(panel: Panel) -> list[tuple]:
    """The keys of the trend arrays computed so far for ``panel`` (what a study shares)."""
    with _LOCK:
        return list(_CACHE.get(panel, {}))


def log_close(panel: Panel) -> np.ndarray:
    """``x = log(close)``, NaN where the close is missing (§11)."""
    return _cached(panel, ("log_close",), lambda: np.ascontiguousarray(np.log(panel.close)))


def run_length(panel: Panel) -> np.ndarray:
    """``n(t, i)`` of §11.3 (-1 without a close)."""
    return _cached(panel, ("run_length",), lambda: K.run_length(panel.close))


def ewma(panel: Panel, span: float) -> np.ndarray:
    """``EWMA_span`` of the log close over runs (§11.2-§11.3), shared by every speed using ``span``."""
    return _cached(panel, ("ewma", float(span)), lambda: K.ewma_runs(log_close(panel), float(span)))


def sigma(panel: Panel, vol_span: float, vol_min_periods: int, vol_floor: float) -> np.ndarray:
    """Daily volatility ``sigma`` of §11.4 (floored; NaN where undefined)."""
    def raw() -> np.ndarray:
        return _cached(panel, ("sigma_raw", float(vol_span), int(vol_min_periods)),
                       lambda: K.ewsd_runs(panel.log_returns, float(vol_span), int(vol_min_periods)))

    return _cached(panel, ("sigma", float(vol_span), int(vol_min_periods), float(vol_floor)),
                   lambda: K.floor_sigma(raw(), float(vol_floor)))


def breakout_position(panel: Panel, window: int) -> np.ndarray:
    """``b`` of §11.5 for ``window`` (the rolling range of the log close over runs)."""
    return _cached(panel, ("breakout_b", int(window)), lambda: K.breakout_position(log_close(panel), int(window)))


def ewmac(panel: Panel, fast: float, slow: float, vol_span: float, vol_min_periods: int,
          vol_floor: float) -> np.ndarray:
    """Raw ewmac forecast ``rf`` (§11.5)."""
    min_n = max(math.ceil(slow), vol_min_periods)
    return K.ewmac_forecast(ewma(panel, fast), ewma(panel, slow), sigma(panel, vol_span, vol_min_periods, vol_floor),
                            run_length(panel), min_n)


def breakout(panel: Panel, window: int, smooth: int, vol_span: float, vol_min_periods: int,
             vol_floor: float) -> np.ndarray:
    """Raw breakout forecast ``rf = EWMA_smooth(b)`` (§11.5)."""
    smoothed = _cached(panel, ("breakout_smooth", int(window), int(smooth)),
                       lambda: K.ewma_runs(breakout_position(panel, window), float(smooth)))
    min_n = max(window + smooth, vol_min_periods)
    return K.gate_forecast(smoothed, sigma(panel, vol_span, vol_min_periods, vol_floor), run_length(panel), min_n)


TREND_FACTORS = ("ewmac", "breakout")


def is_trend(name: str) -> bool:
    """Whether factor ``name`` is a trend rule (sized by §11.8, not ranked)."""
    return name in TREND_FACTORS


def default_smooth(window: int) -> int:
    """§11.1's default ``smooth``: ``max(floor(window / 4), 1)``."""
    return max(window // 4, 1)


def published_scalar(p: dict[str, Any]) -> float | None:
    """The published scalar of §11.6 for the speed of resolved ``p``, None without one."""
    if p["factor"] == "ewmac":
        return EWMAC_SCALARS.get((float(p["fast"]), float(p["slow"])))
    if p["smooth"] != default_smooth(p["window"]):
        return None
    return BREAKOUT_SCALARS.get(p["window"])


def _speed(p: dict[str, Any]) -> str:
    if p["factor"] == "ewmac":
        return f"ewmac fast = {p['fast']:g}, slow = {p['slow']:g}"
    return f"breakout window = {p['window']}, smooth = {p['smooth']}"


def _number(value: Any) -> float | None:
    """A finite number (a numeric string too: a table column that mixes ``"auto"`` with
    numbers holds strings), else None."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def check_value(kind: str, value: Any, what: str) -> Any:
    """Type-check ``forecast_scalar`` (kind ``"scalar"``: ``"published"`` (None too) for the
    published value, ``"auto"`` or a positive number) or ``max_leverage`` (kind ``"leverage"``:
    a number >= 0, or ``"none"`` / None for no cap, stored as 0); ``what`` (``"file: name"``)
    opens the error line, which quotes at most 40 characters of the value."""
    shown = repr(value)
    bad = f"{what} = {shown if len(shown) <= 40 else shown[:37] + '...'}"
    if kind == "scalar":
        if value is None or value == "published":
            return "published"
        if value == "auto":
            return value
        number = _number(value)
        if number is None or number <= 0.0:
            raise SweepError(f'{bad} must be a positive number, "auto" or "published"')
        return number
    if value is None or value == "none":
        return 0.0
    number = _number(value)
    if number is None or number < 0.0:
        raise SweepError(f'{bad} must be a number >= 0 or "none" (no cap)')
    return number


def resolve(p: dict[str, Any], where: str) -> None:
    """Fill the trend parameters of configuration ``p`` in place (§11.1, §11.6); check them for a
    trend factor. Every factor gets their defaults, so a resolved configuration resolves again
    to itself; other factors never read them."""
    p["fast"] = float(p["fast"]) if p["fast"] is not None else EWMAC_FAST
    p["slow"] = float(p["slow"]) if p["slow"] is not None else 4.0 * p["fast"]
    if p["smooth"] is None:
        p["smooth"] = default_smooth(p["window"])
    if not is_trend(p["factor"]):
        return
    if p["factor"] == "ewmac":
        if not 1.0 <= p["fast"] < p["slow"]:
            raise SweepError(f"{where}: ewmac needs 1 <= fast < slow; fast = {p['fast']:g}, slow = {p['slow']:g}")
    else:
        if not 1 <= p["smooth"] < p["window"]:
            raise SweepError(f"{where}: breakout needs 1 <= smooth < window; smooth = {p['smooth']}, "
                             f"window = {p['window']}")
    for name in ("forecast_cap", "vol_target", "idm"):
        if not p[name] > 0.0:
            raise SweepError(f"{where}: {name} = {p[name]!r} must be positive")
    if p["forecast_scalar"] == "published":
        value = published_scalar(p)
        if value is None:
            raise SweepError(f"{where}: {_speed(p)} has no published forecast scalar (SEMANTICS §11.6); "
                             f"set forecast_scalar to a positive number or \"auto\"")
        p["forecast_scalar"] = value


def warmup(p: dict[str, Any]) -> int:
    """Section 7's ``W`` of a trend configuration (§11.9), before the universe and regime windows."""
    min_obs = math.ceil(p["slow"]) if p["factor"] == "ewmac" else p["window"] + p["smooth"]
    w = max(min_obs, p["vol_min_periods"])
    if p["forecast_scalar"] == "auto":
        w += p["scalar_min_periods"] - 1
    return w


def sizing_key(p: dict[str, Any]) -> tuple:
    """What turns a raw forecast into targets, besides the universe and the regime (§11.6-§11.8)."""
    scalar = ("auto", p["scalar_min_periods"]) if p["forecast_scalar"] == "auto" else float(p["forecast_scalar"])
    return (scalar, p["forecast_cap"], p["idm"], p["vol_target"], p["max_leverage"], p["long_only"],
            *(p[name] for name in VOL_PARAMS))


def targets(panel: Panel, rf: tuple[tuple, np.ndarray], sizing: tuple, masks: tuple[np.ndarray, np.ndarray],
            universe_key: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(target, order, count)`` of ``kernels.trend.trend_targets`` for a raw forecast and ``sizing_key``.

    ``rf = (feature cache key, raw forecast)``; ``masks = (allowed, regime)``;
    ``universe_key`` names ``allowed``: the ``"auto"`` scalar, which reads the
    universe but not the regime, is shared under both keys.
    """
    rf_key, rf = rf
    scalar, cap, idm, vol_target, max_leverage, long_only, vol_span, vol_min_periods, vol_floor = sizing
    T = rf.shape[0]
    if isinstance(scalar, tuple):
        key = ("auto_scalar", rf_key, scalar[1], universe_key)
        series = _cached(panel, key, lambda: K.auto_scalar(rf, masks[0], scalar[1]))
    else:
        series = np.full(T, scalar)
    sig = sigma(panel, vol_span, vol_min_periods, vol_floor)
    return K.trend_targets(rf, sig, series, masks, (float(cap), float(idm), float(vol_target), float(max_leverage),
                                                    bool(long_only)))


register(Factor("ewmac", ewmac, window=None, long="high",
                params=("fast", "slow", *VOL_PARAMS)))
register(Factor("breakout", breakout, window=80, long="high", min_window=2,
                params=("window", "smooth", *VOL_PARAMS)))
