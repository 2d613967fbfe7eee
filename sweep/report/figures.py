"""The small figure helpers every chart of ``sweep report`` shares: a ``Figure`` built
directly (never through ``pyplot``), wrapped titles, percent and log axes, the diverging
colour scale, NAV and drawdown, legends below the axes.

Figures are at most about 9 inches wide at 110 dpi, so their 9-10 pt labels stay readable
when the page shrinks them to an 800 px window; legends sit outside the axes, below them,
so they never cover a curve."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from sweep.report.base import DPI, MAX_PANELS, is_percent, is_signed, show

WIDTH = 9.0  # inches: the widest figure


def new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")



def wrap(text: str, width_in: float) -> str:
    """Wrap a title to the figure's width (about 10 characters an inch at 11 pt)."""
    import textwrap

    return "\n".join(textwrap.fill(part, max(30, int(width_in * 10))) for part in text.split("\n"))



def percent_axis(axis, metric: str) -> None:
    if is_percent(metric):
        from matplotlib.ticker import PercentFormatter

        axis.set_major_formatter(PercentFormatter(xmax=1.0))



def plain_log_axis(ax, low: float, high: float) -> None:
    """A log NAV axis with plain tick labels (0.2, 0.5, 1, 2, 5), not powers of ten; finer
    steps (0.8, 1, 1.5, 2) when the NAV spans less than a factor of 5."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    narrow = high / low < 5 if low > 0 else False
    subs = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0) if narrow else (1.0, 2.0, 5.0)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())



def diverging(values: np.ndarray, lower: bool, metric: str):
    """Colour map and norm of a heatmap: for a signed metric a diverging, colour-blind-safe
    scale (RdBu: blue good, red bad) with symmetric limits, so 0 is its white middle;
    otherwise the sequential viridis."""
    import matplotlib
    from matplotlib.colors import Normalize

    v = values[np.isfinite(values)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
    if is_signed(metric):
        a = max(abs(lo), abs(hi)) or 1.0
        cmap = matplotlib.colormaps["RdBu_r" if lower else "RdBu"]
        return cmap.with_extremes(bad="#bdbdbd"), Normalize(-a, a)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    cmap = matplotlib.colormaps["viridis_r" if lower else "viridis"]
    return cmap.with_extremes(bad="#bdbdbd"), Normalize(lo, hi)



def nav_series(ret: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NAV and drawdown of SEMANTICS §9 (peak including the starting NAV of 1)."""
    nav = np.cumprod(1.0 + np.asarray(ret, dtype=np.float64))
    peak = np.maximum(np.maximum.accumulate(nav), 1.0)
    return nav, nav / peak - 1.0



def as_dates(vals) -> np.ndarray:
    return np.asarray(vals, dtype="datetime64[D]")



def period_returns(dates, ret, unit: str) -> list[tuple[int, str, str, float | None]]:
    """Returns per calendar period read off the NAV: ``NAV at the period's last day / NAV at
    the previous period's last day - 1`` (NAV 1 before the first day), as ``(period, first
    day, last day, return)``, ``period`` counted from 1970 in ``unit`` (numpy's ``"Y"`` or
    ``"M"``); ``None`` for a period that starts with the book already closed (NAV 0)."""
    d = as_dates(dates)
    nav, _ = nav_series(ret)
    periods = d.astype(f"datetime64[{unit}]").astype(np.int64)
    out = []
    prev = 1.0
    for k in np.unique(periods):
        idx = np.flatnonzero(periods == k)
        end = float(nav[idx[-1]])
        out.append((int(k), str(d[idx[0]]), str(d[idx[-1]]), end / prev - 1.0 if prev > 0 else None))
        prev = end
    return out


def yearly_from_nav(dates, ret) -> list[tuple[int, str, str, float | None]]:
    """Calendar-year returns (``period_returns``) as ``(year, first day, last day, return)``;
    ``None`` for a year that starts with the book already closed (ruined in an earlier year)."""
    return [(k + 1970, a, b, r) for k, a, b, r in period_returns(dates, ret, "Y")]


def panel_param(names: list[str], df: pl.DataFrame, exclude: set[str]) -> str | None:
    """The panel parameter: the swept one (not ``phase``) with the fewest values, if few enough."""
    cands = [c for c in names if c not in exclude and c != "phase"]
    if not cands:
        return None
    best = min(cands, key=lambda c: df[c].n_unique())
    return best if df[best].n_unique() <= MAX_PANELS else None



def grid_layout(n: int) -> tuple[int, int]:
    ncols = min(n, 3 if n != 4 else 2)
    return math.ceil(n / ncols), ncols



def category_ticks(axis, vals: list[Any], most: int) -> None:
    step = max(1, math.ceil(len(vals) / most))
    idx = list(range(0, len(vals), step))
    axis.set_ticks(idx)
    axis.set_ticklabels([show(vals[i]) for i in idx])



def below_legend(fig, handles, labels, title: str | None = None, ncols: int | None = None) -> None:
    if handles:
        n = ncols or min(len(handles), 3)
        fig.legend(handles, labels, loc="outside lower center", ncols=n, fontsize=9, title=title,
                   title_fontsize=9, frameon=False)
