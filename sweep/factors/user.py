"""A researcher's own factors: ``@sweep.factor``, the read-only panel they see, their checks.

A user factor is a function of a ``FactorPanel`` and its parameters returning a
``(T, N)`` float64 feature, the value at day ``t`` computed from data up to
``t`` (NaN: not eligible that day)::

    @sweep.factor(long="low", window=30, needs=("volume",))
    def amihud(panel, window):
        ...

``register_function`` turns it into a ``sweep.factors.Factor`` (so the engine
computes it once per study and shares it across configurations, as built-ins),
under the name a study gives it (``sweep.factors.load`` resolves file, module
and entry-point specs). Its first parameter is ``panel``; ``window`` takes the
declared default; every other parameter needs a default of type int, float,
str or bool and becomes a study parameter of that type. A parameter named like
a built-in one (``vol_window``, ``market_symbol``, ...) reads that parameter.

Its output is checked on every computation: a numpy float64 array of the
panel's shape, finite wherever the factor's inputs are complete (``close``
and the ``needs`` columns finite on day ``t`` and the ``window`` days before).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from sweep.core.errors import SweepError
from sweep.data.panel import Panel
from sweep.factors.registry import FACTORS, Factor, get, register, unregister

_UNSET = object()
KINDS = {bool: "bool", int: "int", float: "float", str: "str"}  # a default's type -> parameter kind
RESERVED = ("start", "end", "return_weights")  # keywords of sweep.backtest besides the parameters


@dataclass(frozen=True)
class Declared:
    """What ``@sweep.factor`` records on the function (``fn.__sweep_factor__``)."""

    long: str | None
    window: Any  # int, None, or _UNSET (the function's own default of ``window``)
    needs: tuple[str, ...]
    min_window: int


def factor(long: str | None = "high", window: Any = _UNSET, needs: tuple[str, ...] | list[str] = (),
           min_window: int = 1) -> Callable[[Callable], Callable]:
    """Declare a function a factor; the function itself is returned, still callable.

    ``long``: the side bought by default (``"low"``/``"high"``; a study's ``long``
    flips it); ``window``: the default of the ``window`` parameter (``None`` for a
    factor without one; omitted: the function's own default); ``needs``: columns
    without which the factor is refused; ``min_window``: the smallest window.

    >>> import numpy as np, sweep
    >>> @sweep.factor(long="low", window=5)
    ... def calm(panel, window):
    ...     return panel.log_returns  # a toy: yesterday-to-today log return
    >>> calm.__sweep_factor__.long
    'low'
    """
    if isinstance(needs, str):
        needs = (needs,)

    def mark(fn: Callable) -> Callable:
        fn.__sweep_factor__ = Declared(long, window, tuple(needs), min_window)
        return fn

    return mark


def _readonly(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.setflags(write=False)
    return view


class FactorPanel:
    """The panel as a user factor sees it: read-only ``(T, N)`` float64 arrays.

    Attributes ``close``, ``returns`` (SEMANTICS §2's ``r``), ``log_returns``
    (``l``), ``volume``, ``market_cap``, ``funding_rate``; every numeric column by
    name (``panel["open_interest"]``); ``dates`` (datetime64[D]), ``symbols``,
    ``shape`` and ``columns``. A missing column is a one-line error naming the factor.
    """

    def __init__(self, panel: Panel, owner: str = "a user factor"):
        self._panel = panel
        self._owner = owner
        self.dates = _readonly(panel.dates)
        self.symbols = tuple(panel.symbols)
        self.shape = panel.shape
        self.columns = tuple(panel.fields)

    def __getitem__(self, name: str) -> np.ndarray:
        return _readonly(self._panel.field(name, f"{self._owner} (panel[{name!r}])"))

    @property
    def close(self) -> np.ndarray:
        return _readonly(self._panel.close)

    @property
    def returns(self) -> np.ndarray:
        return _readonly(self._panel.simple_returns)

    @property
    def log_returns(self) -> np.ndarray:
        return _readonly(self._panel.log_returns)

    @property
    def volume(self) -> np.ndarray:
        return self["volume"]

    @property
    def market_cap(self) -> np.ndarray:
        return self["market_cap"]

    @property
    def funding_rate(self) -> np.ndarray:
        return self["funding_rate"]

    def __repr__(self) -> str:
        return f"FactorPanel({self._panel.source}, {self.shape[0]} days x {self.shape[1]} symbols)"


@dataclass(frozen=True)
class UserFactor:
    """A registered user factor: its function, its own parameters' defaults and kinds, its origin."""

    name: str
    fn: Callable
    defaults: dict[str, Any]  # parameter -> default, window excluded
    kinds: dict[str, str]  # parameter -> "int" | "float" | "str" | "bool"
    origin: str  # where the code comes from, for the notice and errors
    path: str | None  # the source file, when there is one
    sha256: str | None  # of that file's bytes


USER: dict[str, UserFactor] = {}  # name -> UserFactor, the registered user factors
_GENERATION = [0]  # bumped by every registration: lets the parameter table sync only on change


def generation() -> int:
    return _GENERATION[0]


def _signature(fn: Callable, d: Declared, where: str) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """``(default window, defaults, kinds)`` of ``fn``; a one-line error for a signature sweep cannot call."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        raise SweepError(f"{where}: cannot read the function's signature") from None
    params = list(sig.parameters.values())
    if not params or params[0].name != "panel" or params[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise SweepError(f"{where}: the first parameter must be 'panel' (def {fn.__name__}(panel, window, ...))")
    window = d.window
    defaults: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    for p in params[1:]:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise SweepError(f"{where}: parameter '{p.name}' ({'*' if p.kind == p.VAR_POSITIONAL else '**'}"
                             f"{p.name}): every parameter must be named, with a default")
        if p.kind == inspect.Parameter.POSITIONAL_ONLY:
            raise SweepError(f"{where}: parameter '{p.name}' is positional-only; sweep passes parameters by name")
        if p.name == "window":
            if window is _UNSET:
                if p.default is inspect.Parameter.empty:
                    raise SweepError(f"{where}: 'window' has no default; give one with "
                                     f"@sweep.factor(window=...)")
                window = p.default
            if window is None:
                raise SweepError(f"{where}: declared window=None but the function takes a 'window' parameter")
            continue
        if p.name in RESERVED:
            raise SweepError(f"{where}: parameter '{p.name}' is a name sweep.backtest takes itself; rename it")
        if p.default is inspect.Parameter.empty:
            raise SweepError(f"{where}: parameter '{p.name}' has no default; every parameter but panel "
                             f"and window needs one (it is the study's default)")
        kind = KINDS.get(type(p.default))
        if kind is None:
            raise SweepError(f"{where}: parameter '{p.name}' = {p.default!r}: a default must be an int, "
                             f"a float, a string or a bool")
        defaults[p.name] = p.default
        kinds[p.name] = kind
    if window is _UNSET:
        window = None
    elif "window" not in sig.parameters and window is not None:
        raise SweepError(f"{where}: declared window={window!r} but the function takes no 'window' parameter "
                         f"(declare window=None)")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
        raise SweepError(f"{where}: window = {window!r} must be a positive integer or None")
    return window, defaults, kinds


def register_function(fn: Callable, name: str, origin: str = "", path: str | None = None,
                      sha256: str | None = None) -> Factor:
    """Register the ``@sweep.factor`` function ``fn`` as factor ``name``; returns its ``Factor``.

    ``sha256`` (of the source file) is part of the feature's cache key, so a
    changed file never reads a feature cached from the old one.
    """
    where = f"factor '{name}'"
    d = getattr(fn, "__sweep_factor__", None)
    if not callable(fn):
        raise SweepError(f"{where}: {fn!r} is not a function")
    if not isinstance(d, Declared):
        raise SweepError(f"{where}: {getattr(fn, '__name__', fn)!r} is not declared a factor: decorate it "
                         f"with @sweep.factor(long=..., window=...)")
    if name in FACTORS and name not in USER:
        raise SweepError(f"{where}: a built-in factor has that name; pick another")
    window, defaults, kinds = _signature(fn, d, where)
    for other in USER.values():
        for p, kind in kinds.items():
            if other.name != name and other.kinds.get(p, kind) != kind:
                raise SweepError(f"{where}: parameter '{p}' is {kind} here but {other.kinds[p]} in factor "
                                 f"'{other.name}'; one study parameter has one type")
    for column in d.needs:
        if not isinstance(column, str) or not column:
            raise SweepError(f"{where}: needs = {d.needs!r} must be column names")
    reads = tuple(p for p in inspect.signature(fn).parameters if p != "panel")
    checked = _checked(fn, name, reads, d.needs)
    key = f"{name}#{sha256[:16]}" if sha256 else name
    spec = Factor(name, checked, window=window, long=d.long, min_window=d.min_window, needs=d.needs,
                  params=("window", *[p for p in reads if p != "window"]) if window is not None else reads,
                  key=key)
    if name in USER:
        unregister(name)
    registered = register(spec)
    USER[name] = UserFactor(name, fn, defaults, kinds, origin or name, path, sha256)
    _GENERATION[0] += 1
    return registered


def _checked(fn: Callable, name: str, reads: tuple[str, ...], needs: tuple[str, ...]) -> Callable:
    """``fn`` behind a read-only panel, its output checked (see ``check_output``)."""

    def feature(panel: Panel, **args: Any) -> np.ndarray:
        try:
            out = fn(FactorPanel(panel, f"the {name} factor"), **{k: args[k] for k in reads})
        except SweepError:
            raise
        except Exception as exc:  # the researcher's code failed: one line naming it, not a traceback
            shown = ", ".join(f"{k}={args[k]!r}" for k in reads)
            raise SweepError(f"factor '{name}' ({shown}) raised {type(exc).__name__}: {exc}") from None
        check_output(out, panel, name, args.get("window") or 0, needs)
        return out if out.flags.writeable else out.copy()

    return feature


def check_output(out: Any, panel: Panel, name: str, window: int, needs: tuple[str, ...] = ()) -> None:
    """Refuse a feature that is not a ``(T, N)`` float64 numpy array, or that is not finite where
    its inputs are complete: ``close`` and the ``needs`` columns finite on day ``t`` and on the
    ``window`` days before it (the days its returns span)."""
    where = f"factor '{name}'"
    if not isinstance(out, np.ndarray):
        raise SweepError(f"{where} returned a {type(out).__name__}, not a numpy array of shape {panel.shape}")
    if out.dtype != np.float64:
        raise SweepError(f"{where} returned dtype {out.dtype}, not float64 (return out.astype(np.float64))")
    if out.shape != panel.shape:
        raise SweepError(f"{where} returned shape {out.shape}, not the panel's {panel.shape} (days, symbols)")
    missing = ~np.isfinite(panel.close)
    for column in needs:
        if column in panel.fields:
            missing |= ~np.isfinite(panel.fields[column])
    # Days t with no missing input on t - window .. t: a running count of missing cells.
    count = np.cumsum(missing, axis=0, dtype=np.int64)
    before = np.zeros_like(count)
    if window + 1 < count.shape[0]:
        before[window + 1:] = count[:-window - 1]
    complete = count == before
    complete[:window] = False
    bad = complete & ~np.isfinite(out)
    if bad.any():
        t, i = (int(x[0]) for x in np.nonzero(bad))
        inputs = "the close" + "".join(f", {c}" for c in needs)
        span = f"that day and the {window} days before it" if window else "that day"
        raise SweepError(f"{where} returned {out[t, i]} on {panel.dates[t]} for {panel.symbols[i]}, where "
                         f"{inputs} {'are' if needs else 'is'} finite {span} ({int(bad.sum())} such values): "
                         f"NaN means 'no data', not 'no signal'")


def forget(name: str) -> None:
    """Unregister user factor ``name`` (its parameters leave the parameter table with it)."""
    if USER.pop(name, None) is not None:
        unregister(name)
        _GENERATION[0] += 1


def is_user(name: str) -> bool:
    """True for a factor registered by ``register_function``."""
    return name in USER


def param_kinds() -> dict[str, str]:
    """Every user factor's own parameters and their kinds (the study parameters they add)."""
    out: dict[str, str] = {}
    for f in USER.values():
        out.update(f.kinds)
    return out


def fill_params(out: dict[str, Any], given: dict[str, Any], names) -> None:
    """Give a resolved configuration ``out`` its factor's defaults of the user parameters ``names``
    not ``given``, and drop those another factor's configuration neither sets nor reads."""
    f = USER.get(out["factor"])
    for name in names:
        if name in given:
            continue
        if f is not None and name in f.defaults:
            out[name] = f.defaults[name]
        else:
            out.pop(name, None)


def features_of(configs: list[dict[str, Any]]) -> list[tuple[str, Callable[[Panel], np.ndarray]]]:
    """``(label, fn(panel) -> (T, N) feature)`` for each distinct feature of resolved ``configs``
    (built-in and user factors), e.g. ``("momentum (window=30)", fn)``; ``fn`` computes afresh."""
    seen: dict[tuple, tuple[str, Callable]] = {}
    for p in configs:
        f = get(p["factor"])
        key = f.cache_key(p)
        if key in seen:
            continue
        args = f.args(p)
        label = f.name + (" (" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")" if args else "")
        seen[key] = (label, _feature_fn(f, args))
    return list(seen.values())


def _feature_fn(f: Factor, args: dict[str, Any]) -> Callable[[Panel], np.ndarray]:
    def fn(panel: Panel) -> np.ndarray:
        return np.ascontiguousarray(f.feature(panel, **args), dtype=np.float64)

    return fn


def study_features(study: Any) -> list[tuple[str, Callable[[Panel], np.ndarray]]]:
    """``features_of`` the configurations of ``study`` (anything with ``resolved_configs()``)."""
    return features_of(study.resolved_configs())


def user_factors(study: Any) -> list[str]:
    """The user factors ``study`` names (``study.code``: name -> origin), in the study's order."""
    return list(getattr(study, "code", {}) or {})
