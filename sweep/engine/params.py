"""Backtest parameters: names, types, defaults (SEMANTICS §4-§8) and validation.

Everything the engine accepts is declared once here; the study parser, the
``backtest`` API and the result tables all read these declarations.
"""

from __future__ import annotations

import difflib
import hashlib
from typing import Any

from sweep import factors
from sweep.core.errors import SweepError
from sweep.factors import FACTORS  # noqa: F401  (the live registry, re-exported as sweep.FACTORS)
from sweep.factors import user as user_factors
from sweep.factors import trend  # SEMANTICS §11 trend rules


class _Choices(dict):
    """The choices of each choice parameter; ``factor``'s are read from the factor registry
    on every lookup, so a factor registered after import is a valid choice."""

    def __getitem__(self, name):
        return factors.names() if name == "factor" else super().__getitem__(name)

    def get(self, name, default=None):
        return self[name] if name in self else default

    def items(self):
        return ((name, self[name]) for name in self)

    def values(self):
        return (self[name] for name in self)


CHOICES: dict[str, tuple[str, ...]] = _Choices({
    "factor": (),  # read live from sweep.factors
    "long": ("low", "high"),
    "selection": ("quantile", "top_n"),
    "weighting": ("equal", "risk_parity"),
    "hold": ("drift", "constant"),
    "market": ("symbol", "equal_weight"),
    "regime": ("all", "bear", "bull"),  # SEMANTICS §5 regime filter
    "transform": ("level", "mean", "change", "pct_change", "zscore"),  # column factors (README)
})

# name -> (kind, default). None defaults are resolved per factor in ``resolve``.
PARAMS: dict[str, tuple[str, Any]] = {
    "factor": ("choice", "volatility"),
    "window": ("int", None),
    "vol_window": ("int", 30),
    "long": ("choice", None),
    "selection": ("choice", "quantile"),
    "q": ("int", 5),
    "top_n": ("int", 10),
    "weighting": ("choice", "equal"),
    "long_allocation": ("float", None),
    "short_allocation": ("float", None),
    "rebalance_days": ("int", 1),
    "phase": ("int", 0),
    "hold": ("choice", "drift"),
    "buffer": ("float", 0.0),
    "fee_bps": ("float", 0.0),
    "slippage_bps": ("float", 0.0),
    "market": ("choice", "symbol"),
    "market_symbol": ("str", "BTC"),
    "max_days": ("int", 20),
    "top_by_market_cap": ("int", 0),  # 0: no market-cap universe filter
    "exclude": ("strlist", ()),
    # SEMANTICS §5 universe and regime, §8 funding switch
    "min_volume": ("float", 0.0),  # 0: no liquidity filter
    "volume_window": ("int", 30),
    "regime": ("choice", "all"),
    "regime_fast": ("int", 50),
    "regime_slow": ("int", 200),
    "funding": ("bool", True),
    # Any data column as a feature: factor = "column:NAME" (sweep.factors.columns, README)
    "transform": ("choice", "level"),
    # SEMANTICS §11 trend rules (ewmac, breakout; sweep.factors.trend): read by trend factors only
    "fast": ("float", None),  # ewmac: 16
    "slow": ("float", None),  # ewmac: 4 * fast
    "smooth": ("int", None),  # breakout: max(window // 4, 1)
    "forecast_scalar": ("scalar", "published"),  # the published value, a positive number or "auto"
    "scalar_min_periods": ("int", 500),
    "forecast_cap": ("float", 20.0),
    "vol_span": ("float", 35.0),
    "vol_min_periods": ("int", 10),
    "vol_floor": ("float", 0.05),
    "vol_target": ("float", 0.20),
    "idm": ("float", 1.0),
    "max_leverage": ("leverage", 2.0),  # "none" (stored as 0): no cap
    "long_only": ("bool", False),
}

# Lower bounds of the numeric parameters (window is checked per factor).
MINIMUM: dict[str, float] = {
    "vol_window": 2,
    "q": 2,
    "top_n": 1,
    "rebalance_days": 1,
    "phase": 0,
    "buffer": 0,
    "fee_bps": 0,
    "slippage_bps": 0,
    "long_allocation": 0,
    "short_allocation": 0,
    "max_days": 0,
    "top_by_market_cap": 0,
    # SEMANTICS §5 universe and regime
    "min_volume": 0,
    "volume_window": 1,
    "regime_fast": 1,
    "regime_slow": 2,
    # SEMANTICS §11 trend rules (forecast_cap, vol_target, idm must be > 0: sweep.factors.trend.resolve)
    "fast": 1,
    "slow": 1,
    "smooth": 1,
    "scalar_min_periods": 1,
    "forecast_cap": 0,
    "vol_span": 1,
    "vol_min_periods": 2,
    "vol_floor": 0,
    "vol_target": 0,
    "idm": 0,
}

# A researcher's own factors (sweep.factors.user): each keyword parameter of a user factor is a
# parameter too, of its default's type; ``sync_user_params`` adds those of the factors registered
# since (a study file's parse calls it), ``resolve`` gives each its factor's default and keeps it
# out of another factor's configuration that does not set it. A name already here reads the built-in.
USER_PARAMS: set[str] = set()
_SYNCED = [-1]  # the user factor registry's generation last synced


def sync_user_params() -> None:
    if _SYNCED[0] == user_factors.generation():
        return
    kinds = user_factors.param_kinds()
    for name in USER_PARAMS - set(kinds):  # its factors were forgotten
        PARAMS.pop(name, None)
        USER_PARAMS.discard(name)
    for name, kind in kinds.items():
        if name not in PARAMS:
            PARAMS[name] = (kind, None)
            USER_PARAMS.add(name)
    _SYNCED[0] = user_factors.generation()


# Far beyond any daily panel, far below the kernels' int64: a larger value is a typo.
MAX_INT = 1_000_000


def closest(name: str, valid) -> str:
    """`` (did you mean 'x'?)`` for a near miss, else an empty string."""
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def check_value(name: str, value: Any, where: str) -> Any:
    """Type-check one value of parameter ``name``; returns it normalised."""
    if name not in PARAMS:
        sync_user_params()  # a user factor's parameter, registered since the last sync
    if name not in PARAMS:
        raise SweepError(f"{where}: unknown parameter '{name}'{closest(name, PARAMS)}")
    kind, _ = PARAMS[name]
    bad = f"{where}: {name} = {value!r}"
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SweepError(f"{bad} must be an integer")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SweepError(f"{bad} must be a number")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise SweepError(f"{bad} must be finite")
    elif kind == "choice":
        if name == "factor" and isinstance(value, str) and value not in FACTORS:
            try:  # "column:NAME" builds its factor on first use (sweep.factors.registry.add_resolver)
                factors.registry.resolve(value)
            except SweepError as exc:
                raise SweepError(f"{bad}: {exc}") from None
        if not isinstance(value, str) or value not in CHOICES[name]:
            hint = closest(value, CHOICES[name]) if isinstance(value, str) else ""
            raise SweepError(f"{bad} is not one of {', '.join(CHOICES[name])}{hint}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise SweepError(f"{bad} must be true or false")
    elif kind in ("scalar", "leverage"):  # SEMANTICS §11 trend rules: forecast_scalar, max_leverage
        value = trend.check_value(kind, value, f"{where}: {name}")
    elif kind == "str":
        if not isinstance(value, str) or not value:
            raise SweepError(f"{bad} must be a non-empty string")
    elif kind == "strlist":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise SweepError(f"{bad} must be a list of symbols")
        value = tuple(value)
    if kind == "int" and value > MAX_INT:
        raise SweepError(f"{bad} is above the maximum {MAX_INT:,}")
    if name in MINIMUM and value < MINIMUM[name]:
        raise SweepError(f"{bad} is below the minimum {MINIMUM[name]:g}")
    return value


def resolve(params: dict[str, Any], where: str = "parameters", checked: bool = False) -> dict[str, Any]:
    """Every parameter with its value: given, the factor's default, or the global default.

    Checks types (unless ``checked``: values a study already checked one by one)
    and the rules that tie parameters together (a window below its feature's
    minimum, ``phase >= rebalance_days``). The result is the canonical form a
    configuration is hashed and stored in.
    """
    given = params if checked else {name: check_value(name, value, where) for name, value in params.items()}
    out = {name: given.get(name, default) for name, (_, default) in PARAMS.items()}
    factor = factors.get(out["factor"])
    sync_user_params()
    if USER_PARAMS:
        user_factors.fill_params(out, given, USER_PARAMS)
    if out["window"] is None:
        out["window"] = factor.window if factor.window is not None else 0
    elif factor.window is not None and out["window"] < factor.min_window:
        raise SweepError(
            f"{where}: window = {out['window']} is below the minimum {factor.min_window} "
            f"of the {out['factor']} factor"
        )
    if factor.window is None:
        out["window"] = 0  # size has no window: one value, so configurations hash alike
    if out["long"] is None:
        out["long"] = factor.long or "low"
    long_only = factor.long is None
    if out["long_allocation"] is None:
        out["long_allocation"] = 1.0 if long_only else 0.5
    if out["short_allocation"] is None:
        out["short_allocation"] = 0.0 if long_only else 0.5
    if out["phase"] >= out["rebalance_days"]:
        raise SweepError(
            f"{where}: phase = {out['phase']} must be below rebalance_days = {out['rebalance_days']}"
        )
    out["exclude"] = tuple(sorted(set(out["exclude"])))
    # SEMANTICS §5 regime: two moving averages, the fast one shorter (checked whatever the regime,
    # so a grid's impossible pairs are refused before a run, not only where a regime reads them).
    if out["regime_fast"] >= out["regime_slow"]:
        raise SweepError(f"{where}: regime_fast = {out['regime_fast']} must be below "
                         f"regime_slow = {out['regime_slow']}")
    trend.resolve(out, where)  # SEMANTICS §11 trend rules: speeds, published scalars (checked for trend factors)
    return out


def warmup_days(p: dict[str, Any]) -> int:
    """The largest window a resolved configuration reads (SEMANTICS §7's ``W``)."""
    factor = factors.get(p["factor"])
    w = p["window"] if factor.window is not None and "window" in factor.args(p) else 0
    if p["weighting"] == "risk_parity":
        w = max(w, p["vol_window"])
    if trend.is_trend(p["factor"]):  # SEMANTICS §11.9: the trend rule's warm-up replaces the ranking windows
        w = trend.warmup(p)
    # SEMANTICS §7: the liquidity window and the regime's slow average count too.
    if p["min_volume"] > 0:
        w = max(w, p["volume_window"])
    if p["regime"] != "all":
        w = max(w, p["regime_slow"])
    return w


def config_id(p: dict[str, Any]) -> str:
    """A stable 16-hex id of a resolved configuration (same parameters, same id)."""
    # repr of resolved values is canonical: ints, floats, strings and sorted tuples.
    text = repr(sorted(p.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
