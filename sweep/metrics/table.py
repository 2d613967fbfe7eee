"""The metrics a study reports: one row per metric (SEMANTICS §9), and extra ones.

The built-in rows follow ``kernels.metrics.METRICS`` one for one: the kernel's
order is the layout of its output (``kernels.metrics.M_*`` name the slots), and
this table adds what the kernel does not need to know: whether a larger or a
smaller value is better, the words and unit a page or a terminal shows, and
whether the value is a fraction shown as a percent.

An extra metric is computed in Python from a configuration's daily net return
series; ``register`` adds one and every grid study then reports it as a column
after the built-in ones.

    >>> from sweep import metrics
    >>> metrics.get("turnover").direction, metrics.lower_is_better("sharpe")
    ('min', False)
    >>> metrics.get("cagr").percent, metrics.get("cagr").label
    (True, 'CAGR')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from kernels.metrics import METRICS as KERNEL_METRICS

from sweep.core.errors import SweepError


@dataclass(frozen=True)
class Metric:
    """One metric: ``direction`` is ``"max"`` (larger is better) or ``"min"``;
    ``label``/``unit`` are the words of an axis (``short`` those of a sentence);
    ``percent``: a fraction shown as a percent; ``signed``: its sign is the news
    (a loss against a gain). ``fn`` is set for an extra metric only: the daily
    net returns of one configuration (1-D float64) -> one float."""

    name: str
    direction: str
    label: str
    unit: str
    percent: bool
    short: str = ""
    signed: bool = False
    fn: Callable[[np.ndarray], float] | None = None

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "min"


def _m(name, direction, label, unit, percent, short=None, signed=False) -> Metric:
    return Metric(name, direction, label, unit, percent, short or label, signed)


METRICS: tuple[Metric, ...] = (
    _m("total_return", "max", "total return", "%", True, signed=True),
    _m("cagr", "max", "CAGR", "% a year", True, signed=True),
    _m("ann_vol", "min", "volatility", "% a year", True),
    _m("sharpe", "max", "Sharpe ratio", "annualised, net of costs", False, "Sharpe", True),
    _m("sharpe_pre_cost", "max", "Sharpe ratio before fees and slippage", "annualised", False,
       "pre-cost Sharpe", True),
    _m("sortino", "max", "Sortino ratio", "annualised", False, "Sortino", True),
    _m("max_drawdown", "max", "maximum drawdown", "%", True, "max drawdown"),
    _m("calmar", "max", "Calmar ratio", "CAGR / |max drawdown|", False, "Calmar", True),
    _m("win_rate", "max", "win rate", "% of days with a non-zero return", True),
    _m("turnover", "min", "turnover", "x NAV a year, one-sided", False),
    _m("cost_paid", "min", "fees and slippage paid", "% of NAV, summed", True, "cost paid"),
    _m("funding_return", "max", "funding", "% of NAV, summed", True, signed=True),
    _m("avg_long", "max", "long names", "average count", False),
    _m("avg_short", "max", "short names", "average count", False),
    _m("avg_net_exposure", "max", "net exposure", "% of NAV, average", True, signed=True),
    _m("avg_gross_exposure", "max", "gross exposure", "% of NAV, average", True),
    _m("n_rebalances", "max", "rebalances", "count", False),
    _m("ruined", "min", "ruined", "1 = the NAV reached zero", False),
)
# The kernel's order is the table's: a new kernel metric without its row fails here, on import.
assert tuple(m.name for m in METRICS) == KERNEL_METRICS, "sweep.metrics.METRICS out of step with kernels"

_BUILTIN = {m.name: m for m in METRICS}
_EXTRA: dict[str, Metric] = {}


def get(name: str) -> Metric:
    """The row of metric ``name`` (built-in or registered); a one-line SweepError otherwise."""
    row = _BUILTIN.get(name) or _EXTRA.get(name)
    if row is None:
        raise SweepError(f"unknown metric '{name}'; the metrics are {', '.join(names())}")
    return row


def names() -> tuple[str, ...]:
    """Every metric a grid study reports, in column order: the kernel's, then the extra ones."""
    return KERNEL_METRICS + tuple(_EXTRA)


def extra() -> tuple[Metric, ...]:
    """The registered extra metrics, in registration order."""
    return tuple(_EXTRA.values())


def lower_is_better(name: str) -> bool:
    """Whether a smaller ``name`` is better (False for a name that is no metric)."""
    row = _BUILTIN.get(name) or _EXTRA.get(name)
    return row is not None and row.direction == "min"


def register(name: str, fn: Callable[[np.ndarray], float], *, direction: str = "max", label: str | None = None,
             unit: str = "", percent: bool = False, signed: bool = False) -> Metric:
    """Add an extra metric: ``fn(R) -> float`` of a configuration's daily net returns ``R``.

    Every grid study run afterwards reports it as a column after the built-in
    ones, and ``sweep.backtest`` in ``Result.metrics``. Registering a name again replaces the extra metric of that name;
    a built-in name is refused.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise SweepError(f"metric name {name!r} must be an identifier")
    if name in _BUILTIN:
        raise SweepError(f"metric '{name}' is built in and cannot be registered again")
    if direction not in ("max", "min"):
        raise SweepError(f"metric '{name}': direction = {direction!r} must be 'max' or 'min'")
    if not callable(fn):
        raise SweepError(f"metric '{name}': fn must be callable")
    row = Metric(name, direction, label or name.replace("_", " "), unit, percent, label or name, signed, fn)
    _EXTRA[name] = row
    return row


def unregister(name: str) -> None:
    """Remove an extra metric (a name that is not registered is ignored)."""
    _EXTRA.pop(name, None)


def compute_extra(returns: np.ndarray) -> dict[str, np.ndarray]:
    """Each extra metric of each row of ``returns`` (``(C, n)`` daily net returns): name -> ``(C,)``."""
    R = np.asarray(returns, dtype=np.float64)
    return {m.name: np.array([float(m.fn(R[c])) for c in range(R.shape[0])], dtype=np.float64)
            for m in _EXTRA.values()}
