"""The lookahead audit of factors: change the future, and nothing of the past may move.

For each cut day ``t`` (``cut_days``: ``K`` days spread evenly over the panel),
every value of the panel after ``t`` is replaced by noise, and every feature is
computed again on that panel. A feature value on a day ``<= t`` that differs from
its value on the real panel (NaN equals NaN, anything else must be the same float)
read the future: a lookahead, reported with the factor, the day and the symbol.

The noise (``noisy_panel``), seeded so an audit is reproducible:

* ``close``: a positive random walk continuing from each symbol's last close at or
  before ``t`` (daily log steps of standard deviation 5 %); a symbol with no close
  yet starts from its first close in the data, or 1;
* every other field: values drawn from the column's own finite values, each
  scaled by ``exp(N(0, 0.5^2))`` (signs kept, so volumes stay >= 0 and market
  caps > 0); a column with no finite value gets standard normal draws (their
  absolute values where SEMANTICS §1 forbids negatives).

Every cell after ``t`` gets a finite value, missing ones included: a factor that
reads whether a symbol trades tomorrow changes as well. Derived panels (returns)
are recomputed from the noisy close, so they share its future and not its past.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from sweep.core.errors import SweepError
from sweep.data.panel import NON_NEGATIVE, POSITIVE, Panel

CUTS = 5  # cut days per audit
SEED = 0
STEP = 0.05  # daily log-price step of the noisy close
SCALE = 0.5  # log-scale of the noise on other columns

Feature = tuple[str, Callable[[Panel], np.ndarray]]  # (label, fn(panel) -> (T, N) feature)


@dataclass(frozen=True)
class Leak:
    """One factor that read the future: its first changed value (day, symbol) at the first cut
    day that moved it, and how many values at or before that cut changed."""

    factor: str
    cut: str  # the cut day (values after it were noise)
    day: str
    symbol: str
    before: float
    after: float
    n_changed: int

    def line(self) -> str:
        return (f"lookahead: factor {self.factor} changed on {self.day} for {self.symbol} ({self.before!r} -> "
                f"{self.after!r}) when the data after {self.cut} was replaced by noise "
                f"({self.n_changed} values on or before {self.cut} changed)")


@dataclass
class Report:
    """The audit's answer: the factors audited, the cut days, the leaks found."""

    factors: list[str]
    cuts: list[str]
    leaks: list[Leak] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.leaks

    def lines(self) -> list[str]:
        if self.clean:
            return [f"no lookahead in {len(self.factors)} factor{'s' if len(self.factors) != 1 else ''} x "
                    f"{len(self.cuts)} cut day{'s' if len(self.cuts) != 1 else ''}"]
        n = len(self.factors)
        return [*(leak.line() for leak in self.leaks),
                f"lookahead in {len(self.leaks)} of {n} factor{'s' if n != 1 else ''} "
                f"({len(self.cuts)} cut days: {', '.join(self.cuts)})"]

    def to_dict(self) -> dict:
        return {"factors": self.factors, "cuts": self.cuts,
                "leaks": [leak.__dict__ for leak in self.leaks]}


def cut_days(T: int, k: int = CUTS) -> list[int]:
    """``k`` cut days spread evenly over days ``0 .. T - 2`` (a cut on the last day changes
    nothing), without repeats: ``floor(j * (T - 1) / (k + 1))`` for ``j = 1 .. k``."""
    if T < 2:
        return []
    return sorted({max(0, min(T - 2, (j * (T - 1)) // (k + 1))) for j in range(1, k + 1)})


def _noise_walk(close: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
    T, N = close.shape
    seen = np.isfinite(close[: t + 1])
    # The last close at or before t (else the first close in the data, else 1).
    last = np.where(seen.any(axis=0), close[: t + 1][seen.shape[0] - 1 - np.argmax(seen[::-1], axis=0),
                                                     np.arange(N)], np.nan)
    finite = np.isfinite(close)
    first = np.where(finite.any(axis=0), close[np.argmax(finite, axis=0), np.arange(N)], 1.0)
    start = np.where(np.isfinite(last), last, first)
    steps = rng.normal(0.0, STEP, size=(T - t - 1, N))
    return start * np.exp(np.cumsum(steps, axis=0))


def _noise_values(name: str, x: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    pool = x[np.isfinite(x)]
    if pool.size == 0:
        draws = rng.normal(size=shape)
        if name in NON_NEGATIVE or name in POSITIVE:
            draws = np.abs(draws) + (1.0 if name in POSITIVE else 0.0)
        return draws
    return rng.choice(pool, size=shape) * np.exp(rng.normal(0.0, SCALE, size=shape))


def noisy_panel(panel: Panel, t: int, seed: int = SEED) -> Panel:
    """``panel`` with every value of every field after day ``t`` replaced by noise."""
    rng = np.random.default_rng([seed, t])
    T, N = panel.shape
    fields = {}
    for name, x in panel.fields.items():
        y = np.array(x, dtype=np.float64, copy=True)
        if t + 1 < T:
            y[t + 1:] = (_noise_walk(x, t, rng) if name == "close"
                         else _noise_values(name, x, (T - t - 1, N), rng))
        fields[name] = np.ascontiguousarray(y)
    return Panel(dates=panel.dates, symbols=panel.symbols, fields=fields,
                 source=f"{panel.source} (noise after {panel.dates[t]})",
                 fingerprint=f"{panel.fingerprint}-noise-{seed}-{t}", non_numeric=dict(panel.non_numeric))


def _compare(label: str, real: np.ndarray, noisy: np.ndarray, panel: Panel, t: int) -> Leak | None:
    a, b = real[: t + 1], noisy[: t + 1]
    moved = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    if not moved.any():
        return None
    d, i = (int(v[0]) for v in np.nonzero(moved))
    return Leak(label, str(panel.dates[t]), str(panel.dates[d]), str(panel.symbols[i]),
                float(a[d, i]), float(b[d, i]), int(moved.sum()))


def lookahead(panel: Panel, features: list[Feature], cuts: int = CUTS, seed: int = SEED) -> Report:
    """Audit ``features`` (``(label, fn(panel) -> (T, N))`` pairs) on ``panel`` at ``cuts``
    cut days; each factor is reported once, at the first cut day that moved it.

    >>> import sweep
    >>> from sweep import factors
    >>> panel = sweep.synth(n_symbols=6, n_days=120, seed=1)
    >>> mom = factors.get("momentum")
    >>> peek = ("peek", lambda p: np.roll(p.close, -1, axis=0))
    >>> report = lookahead(panel, [("momentum (window=30)", lambda p: mom.feature(p, window=30)), peek])
    >>> [leak.factor for leak in report.leaks], len(report.cuts)
    (['peek'], 5)
    """
    days = cut_days(panel.shape[0], cuts)
    report = Report([label for label, _ in features], [str(panel.dates[t]) for t in days])
    real = {label: _feature(fn, panel, label) for label, fn in features}
    leaked: set[str] = set()
    for t in days:
        noisy = noisy_panel(panel, t, seed)
        for label, fn in features:
            if label in leaked:
                continue
            leak = _compare(label, real[label], _feature(fn, noisy, label), panel, t)
            if leak is not None:
                leaked.add(label)
                report.leaks.append(leak)
    order = {label: j for j, (label, _) in enumerate(features)}
    report.leaks.sort(key=lambda leak: order[leak.factor])
    return report


def _feature(fn: Callable[[Panel], np.ndarray], panel: Panel, label: str) -> np.ndarray:
    try:
        out = np.asarray(fn(panel), dtype=np.float64)
    except SweepError as exc:
        raise SweepError(f"lookahead audit of {label} on {panel.source}: {exc}") from None
    if out.shape != panel.shape:
        raise SweepError(f"lookahead audit of {label}: its feature has shape {out.shape}, the panel {panel.shape}")
    return out
