"""The factor registry: everything the engine knows about a factor, in one record.

A factor is a feature panel ``(T, N)`` computed from the data, ranked every
rebalance day. Its record carries the feature function, the cache key under
which the feature is shared (``mean_reversion`` reads the ``momentum`` feature
with another default window and side), the panel columns it needs, the
parameters it reads, its default long side and its default window. The engine,
the study parser and the book read factors from here only: adding one is one
``register`` call.

    >>> import numpy as np
    >>> from sweep import factors
    >>> def reversal(panel, window):
    ...     return -factors.get("momentum").feature(panel, window=window)
    >>> f = factors.register(factors.Factor("my_reversal", reversal, window=10, long="high"))
    >>> "my_reversal" in factors.names()
    True
    >>> factors.unregister("my_reversal")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from sweep.core.errors import SweepError
from sweep.data.panel import Panel


@dataclass(frozen=True)
class Factor:
    """One factor.

    ``feature(panel, **args) -> (T, N) float64`` computes the feature, ``args``
    being the parameters of ``params`` it reads (``window`` unless said
    otherwise); NaN marks a cell with no value (not ranked that day).
    ``key`` names the cached feature (default: ``name``): factors sharing a key
    share the feature, so they must share the function and ``params``.
    ``needs``: panel columns besides ``close`` (checked before a run).
    ``long``: default side (``"low"``/``"high"``), or None for a long-only
    threshold book (every eligible symbol whose feature is at most ``max_days``).
    ``window``: default window, None when the feature has none (then ``window``
    is not among ``params``); ``min_window`` its smallest valid value.
    ``reads(p)`` (optional) narrows ``params`` for one configuration (beta reads
    ``market_symbol`` only when ``market = "symbol"``); ``check(panel, p, where)``
    (optional) refuses a configuration the data cannot serve beyond ``needs``.
    """

    name: str
    feature: Callable[..., np.ndarray]
    window: int | None = 30
    long: str | None = "high"
    min_window: int = 1
    needs: tuple[str, ...] = ()
    params: tuple[str, ...] | None = None  # None: ("window",) with a window, () without
    key: str | None = None
    reads: Callable[[dict[str, Any]], tuple[str, ...]] | None = field(default=None, compare=False)
    check: Callable[[Panel, dict[str, Any], str], None] | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.params is None:
            object.__setattr__(self, "params", ("window",) if self.window is not None else ())
        if self.key is None:
            object.__setattr__(self, "key", self.name)
        object.__setattr__(self, "needs", tuple(self.needs))

    def args(self, p: dict[str, Any]) -> dict[str, Any]:
        """The parameters of ``p`` this factor's feature reads, by name."""
        used = self.reads(p) if self.reads is not None else self.params
        return {name: p[name] for name in used}

    def cache_key(self, p: dict[str, Any]) -> tuple:
        """What the feature of configuration ``p`` depends on, and nothing else."""
        return (self.key, *self.args(p).items())

    def validate(self, panel: Panel, p: dict[str, Any], where: str) -> None:
        """Refuse a configuration whose data lacks a column this factor needs (or fails ``check``)."""
        for column in self.needs:
            panel.field(column, f"the {self.name} factor ({where})")
        if self.check is not None:
            self.check(panel, p, where)


FACTORS: dict[str, Factor] = {}  # the live registry: name -> Factor, in registration order
_BY_KEY: dict[str, Factor] = {}  # cache key -> the first factor registered under it


def register(factor: Factor) -> Factor:
    """Add (or replace) ``factor``; returns it. Usable as ``register(Factor(...))``."""
    if not isinstance(factor, Factor):
        raise SweepError(f"register() takes a Factor, not {type(factor).__name__}")
    head, colon, tail = factor.name.partition(":")
    if not (factor.name.isidentifier() or colon and head.strip() == head != "" and tail.strip() == tail != ""):
        # "source:name" names a factor built from a spec: "column:open_interest", "my_factors.py:amihud".
        raise SweepError(f"factor name {factor.name!r} must be an identifier or 'source:name'")
    if factor.long not in ("low", "high", None):
        raise SweepError(f"factor '{factor.name}': long = {factor.long!r} must be 'low', 'high' or None")
    if factor.window is not None and factor.window < factor.min_window:
        raise SweepError(f"factor '{factor.name}': default window {factor.window} is below its minimum "
                         f"{factor.min_window}")
    owner = _BY_KEY.get(factor.key)
    if owner is not None and owner.name != factor.name and (
            owner.feature is not factor.feature or owner.params != factor.params):
        raise SweepError(f"factor '{factor.name}': cache key '{factor.key}' belongs to '{owner.name}', "
                         f"whose feature differs")
    FACTORS[factor.name] = factor
    if owner is None or owner.name == factor.name:
        _BY_KEY[factor.key] = factor
    return factor


def unregister(name: str) -> None:
    """Remove factor ``name`` (a name that is not registered is ignored)."""
    factor = FACTORS.pop(name, None)
    if factor is not None and _BY_KEY.get(factor.key) is factor:
        del _BY_KEY[factor.key]
        heir = next((f for f in FACTORS.values() if f.key == factor.key), None)
        if heir is not None:
            _BY_KEY[factor.key] = heir


# Functions ``name -> Factor | None`` that build a factor from its name on first use
# (``column:NAME``, ``sweep.factors.columns``): the factor is registered, then found as any other.
_RESOLVERS: list[Callable[[str], "Factor | None"]] = []


def add_resolver(fn: Callable[[str], "Factor | None"]) -> None:
    """Let ``get`` build the factors of names ``fn`` recognises (``fn`` returns None for others)."""
    if fn not in _RESOLVERS:
        _RESOLVERS.append(fn)


def resolve(name: str) -> Factor | None:
    """The factor ``name``, built by a resolver and registered on first use; None when no
    factor has that name (a resolver that recognises a name but refuses it raises)."""
    if name in FACTORS:
        return FACTORS[name]
    for resolver in _RESOLVERS:
        factor = resolver(name)
        if factor is not None:
            return register(factor)
    return None


def get(name: str) -> Factor:
    """The factor ``name``; a one-line SweepError listing the known factors otherwise."""
    factor = resolve(name) if isinstance(name, str) else None
    if factor is None:
        raise SweepError(f"unknown factor '{name}'; the factors are {', '.join(FACTORS)}")
    return factor


def names() -> tuple[str, ...]:
    """The registered factors' names, in registration order."""
    return tuple(FACTORS)


def compute(panel: Panel, key: tuple) -> np.ndarray:
    """The feature panel of cache key ``key`` (as ``Factor.cache_key`` builds it)."""
    factor = _BY_KEY[key[0]]
    out = np.ascontiguousarray(factor.feature(panel, **dict(key[1:])), dtype=np.float64)
    if out.shape != panel.shape:
        # A researcher's feature of the wrong shape would index the kernels out of bounds.
        raise SweepError(f"factor '{factor.name}': its feature has shape {out.shape}, the panel "
                         f"{panel.source} has {panel.shape}")
    return out
