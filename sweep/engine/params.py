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
}


# Far beyond any daily panel, far below the kernels' int64: a larger value is a typo.
MAX_INT = 1_000_000


def closest(name: str, valid) -> str:
    """`` (did you mean 'x'?)`` for a near miss, else an empty string."""
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def check_value(name: str, value: Any, where: str) -> Any:
    """Type-check one value of parameter ``name``; returns it normalised."""
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
        if not isinstance(value, str) or value not in CHOICES[name]:
            hint = closest(value, CHOICES[name]) if isinstance(value, str) else ""
            raise SweepError(f"{bad} is not one of {', '.join(CHOICES[name])}{hint}")
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
    return out


def warmup_days(p: dict[str, Any]) -> int:
    """The largest window a resolved configuration reads (SEMANTICS §7's ``W``)."""
    factor = factors.get(p["factor"])
    w = p["window"] if factor.window is not None else 0
    if p["weighting"] == "risk_parity":
        w = max(w, p["vol_window"])
    return w


def config_id(p: dict[str, Any]) -> str:
    """A stable 16-hex id of a resolved configuration (same parameters, same id)."""
    # repr of resolved values is canonical: ints, floats, strings and sorted tuples.
    text = repr(sorted(p.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
