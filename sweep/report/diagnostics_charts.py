"""The charts of a diagnostics report (``sweep.report.diagnostics``), each drawn from the
study's tables alone: the daily IC with its rolling mean, the IC decay by horizon, the mean
forward return by quantile, the quantile books and the rank autocorrelation by lag.

The strongest configurations are those of the rows ranked by |IR| (summary.parquet), in that
order; error bars are +-2 standard errors (the IC's: ic_std / sqrt(days); a quantile's:
quantiles.parquet's stderr)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from sweep.report.base import Chart
from sweep.report.diagnostics_text import finite, label
from sweep.report.figures import (
    WIDTH,
    as_dates,
    below_legend,
    grid_layout,
    new_figure,
    plain_log_axis,
    wrap,
)

ROLLING = 60  # days of the IC's rolling mean
ROLLING_MIN = 20  # finite ICs a rolling mean needs
SERIES = 3  # configuration x horizon pairs in the IC-over-time chart
LINES = 8  # configurations in the decay and autocorrelation charts
MAX_HORIZONS = 4  # quantile panels


def _window(res) -> str:
    start, end = res.window
    return f"{start} .. {end}"


def _percent(axis) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(xmax=1.0))


def rolling_ic(ic: np.ndarray, days: int = ROLLING, least: int = ROLLING_MIN) -> np.ndarray:
    """The mean of the finite ICs among the last ``days`` days (this one included), NaN with
    fewer than ``least`` of them: ``pd.Series(ic).rolling(days, min_periods=least).mean()``."""
    s = pl.Series(ic, dtype=pl.Float64).fill_nan(None)
    return s.rolling_mean(window_size=days, min_samples=least).fill_null(np.nan).to_numpy()


def ic_series_chart(res, top: pl.DataFrame, ic: pl.DataFrame, shown: list[str]) -> Chart | str:
    """Stacked panels, one per strongest configuration x horizon: the daily IC and its rolling mean."""
    rows = [r for r in top.head(SERIES).iter_rows(named=True) if finite(r["ic_ir"])]
    if not rows:
        return "No IC-over-time chart: no configuration has a finite IC."
    fig = new_figure(WIDTH, 1.2 + 2.2 * len(rows))
    axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    for ax, r in zip(axes, rows):
        s = ic.filter((pl.col("config_id") == r["config_id"]) & (pl.col("horizon") == r["horizon"])).sort("date")
        d, v = as_dates(s["date"].to_list()), s["ic"].cast(pl.Float64).to_numpy()
        ax.plot(d, v, color="tab:blue", linewidth=0.6, alpha=0.55, label="daily IC")
        ax.plot(d, rolling_ic(v), color="tab:red", linewidth=1.8, label=f"{ROLLING}-day rolling mean")
        ax.axhline(r["ic_mean"], color="black", linestyle="--", linewidth=0.9, label="mean IC over the window")
        ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(f"{label(r, shown)}, {r['horizon']}-day returns: mean IC {r['ic_mean']:.3f}, "
                     f"IR {r['ic_ir']:.3f}", fontsize=10)
        ax.set_ylabel("IC (Spearman)")
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("date")
    h, lab = axes[0].get_legend_handles_labels()
    below_legend(fig, h, lab)
    fig.suptitle(wrap(f"{res.name}: daily information coefficient of the strongest by |IR|, {_window(res)}",
                      WIDTH), fontsize=11)
    return Chart("ic_series", "IC over time", fig,
                 f"Blue: the IC of each day (the Spearman correlation across names of the factor at t and the "
                 f"return from t to t + h; missing where fewer than 2 names have both). Red: the mean of the "
                 f"finite ICs of the last {ROLLING} days (at least {ROLLING_MIN}). Dashed: the mean over the window.")


def ic_decay_chart(res, summary: pl.DataFrame, configs: list[str], shown: list[str]) -> Chart | str:
    """Mean IC by horizon with +-2 standard errors, one line per strongest configuration."""
    configs = configs[:LINES]
    if not configs:
        return "No IC decay chart: no configuration has a finite IC."
    fig = new_figure(WIDTH, 5.0)
    ax = fig.subplots()
    hs = sorted(summary["horizon"].unique().to_list())
    pos = {h: i for i, h in enumerate(hs)}
    handles, names = [], []
    for k, cid in enumerate(configs):
        s = summary.filter(pl.col("config_id") == cid).sort("horizon")
        x = np.array([pos[h] for h in s["horizon"]], dtype=float) + (k - (len(configs) - 1) / 2) * 0.06
        m = s["ic_mean"].cast(pl.Float64).to_numpy()
        se = s["ic_std"].cast(pl.Float64).to_numpy() / np.sqrt(s["n_days"].cast(pl.Float64).to_numpy())
        c = ax.errorbar(x, m, yerr=2 * se, marker="o", markersize=4, capsize=3, linewidth=1.4)
        handles.append(c)
        names.append(label(s.row(0, named=True), shown))
    ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xticks(range(len(hs)), [str(h) for h in hs])
    ax.set_xlabel("horizon (days)")
    ax.set_ylabel("mean IC")
    ax.grid(True, alpha=0.3)
    ax.set_title(wrap(f"{res.name}: IC decay by horizon, the {len(configs)} strongest configurations, "
                      f"{_window(res)}", WIDTH), fontsize=11)
    below_legend(fig, handles, names)
    return Chart("ic_decay", "IC decay by horizon", fig,
                 "Mean IC at each horizon with +-2 standard errors (ic_std / sqrt(days)); the points of one "
                 "horizon are shifted a little apart. Overlapping returns (h > 1) make the bars too narrow.")


def quantile_chart(res, quantiles: pl.DataFrame, best: dict[str, Any] | None, shown: list[str]) -> Chart | str:
    """Bars of the mean forward return by quantile, +-2 standard errors, one panel per horizon."""
    if best is None:
        return "No quantile chart: no configuration has a finite IC."
    qd = quantiles.filter(pl.col("config_id") == best["config_id"])
    hs = sorted(qd["horizon"].unique().to_list())[:MAX_HORIZONS]
    if not hs:
        return f"No quantile chart: quantiles.parquet has no row of configuration {best['config_id']}."
    nr, nc = grid_layout(len(hs))
    fig = new_figure(WIDTH, 1.2 + 2.9 * nr)
    axes = fig.subplots(nr, nc, squeeze=False).ravel()
    import matplotlib

    for ax, h in zip(axes, hs):
        s = qd.filter(pl.col("horizon") == h).sort("quantile")
        qs = s["quantile"].to_numpy()
        m = s["mean"].cast(pl.Float64).to_numpy()
        se = s["stderr"].cast(pl.Float64).to_numpy()
        colours = matplotlib.colormaps["viridis"](np.linspace(0.1, 0.9, len(qs)))
        ax.bar(qs, m, yerr=2 * se, color=colours, capsize=3, edgecolor="black", linewidth=0.5)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_xticks(qs)
        ax.set_title(f"{h}-day forward return", fontsize=10)
        ax.set_xlabel("quantile (1 = lowest factor values)")
        ax.set_ylabel(f"mean {h}-day return")
        _percent(ax.yaxis)
        ax.grid(True, axis="y", alpha=0.3)
    for ax in axes[len(hs):]:
        ax.set_visible(False)
    fig.suptitle(wrap(f"{res.name}: mean forward return by quantile of {label(best, shown)}, {_window(res)}",
                      WIDTH), fontsize=11)
    return Chart("quantile_returns", "Mean return by quantile", fig,
                 "The mean over days of each quantile's equal-weight mean forward return (quantiles of equal "
                 "count each day, alphalens' convention), with +-2 standard errors (quantiles.parquet's stderr).")


def books_chart(res, books: pl.DataFrame, best: dict[str, Any] | None, shown: list[str]) -> Chart | str:
    """The NAV of each quantile's daily-rebalanced equal-weight book (log scale)."""
    if best is None:
        return "No quantile books chart: no configuration has a finite IC."
    bd = books.filter(pl.col("config_id") == best["config_id"]).sort("quantile", "date")
    if bd.height == 0:
        return f"No quantile books chart: books.parquet has no row of configuration {best['config_id']}."
    import matplotlib

    fig = new_figure(WIDTH, 5.2)
    ax = fig.subplots()
    qs = sorted(bd["quantile"].unique().to_list())
    colours = matplotlib.colormaps["viridis"](np.linspace(0.05, 0.95, len(qs)))
    lo, hi = np.inf, -np.inf
    for c, q in zip(colours, qs):
        s = bd.filter(pl.col("quantile") == q)
        nav = s["nav"].cast(pl.Float64).to_numpy()
        ok = np.isfinite(nav) & (nav > 0)
        if ok.any():
            lo, hi = min(lo, nav[ok].min()), max(hi, nav[ok].max())
        end = f"{nav[ok][-1]:.2f}" if ok.any() else "-"
        tag = " (lowest)" if q == qs[0] else " (highest)" if q == qs[-1] else ""
        ax.plot(as_dates(s["date"].to_list()), np.where(ok, nav, np.nan), color=c, linewidth=1.3,
                label=f"quantile {q}{tag}: {end}")
    if np.isfinite(lo):
        plain_log_axis(ax, lo, hi)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("date")
    ax.set_ylabel("NAV (log scale)")
    ax.grid(True, alpha=0.3)
    ax.set_title(wrap(f"{res.name}: the quantile books of {label(best, shown)}, rebalanced daily, "
                      f"{_window(res)}", WIDTH), fontsize=11)
    h, lab = ax.get_legend_handles_labels()
    below_legend(fig, h, lab, ncols=min(len(qs), 3))
    side = best.get("long_side") or ""
    return Chart("quantile_books", "Quantile books", fig,
                 "Each quantile's book holds its names at the close of t in equal weights and earns their mean "
                 "return to the close of t + 1; no fees. "
                 + ({"low": "The strategy buys the lowest quantile and sells the highest.",
                     "high": "The strategy buys the highest quantile and sells the lowest."}.get(side, "")))


def autocorr_chart(res, autocorr: pl.DataFrame, configs: list[str], summary: pl.DataFrame,
                   shown: list[str]) -> Chart | str:
    """The factor's rank autocorrelation by lag, one line per strongest configuration."""
    configs = configs[:LINES]
    if not configs:
        return "No rank autocorrelation chart: no configuration has a finite IC."
    first = {r["config_id"]: r for r in summary.iter_rows(named=True)}
    fig = new_figure(WIDTH, 5.0)
    ax = fig.subplots()
    for cid in configs:
        s = autocorr.filter(pl.col("config_id") == cid).sort("lag")
        ax.plot(s["lag"].to_numpy(), s["autocorr"].cast(pl.Float64).to_numpy(), marker="o", markersize=3,
                linewidth=1.3, label=label(first[cid], shown))
    ax.axhline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("lag (days)")
    ax.set_ylabel("rank autocorrelation")
    ax.grid(True, alpha=0.3)
    ax.set_title(wrap(f"{res.name}: factor rank autocorrelation, the {len(configs)} strongest configurations, "
                      f"{_window(res)}", WIDTH), fontsize=11)
    h, lab = ax.get_legend_handles_labels()
    below_legend(fig, h, lab)
    return Chart("rank_autocorr", "Rank autocorrelation", fig,
                 "The mean over days of the correlation of the names' factor ranks at t and at t - lag (names "
                 "ranked on both days): near 1 a slow factor, cheap to trade; a fast decay means high turnover.")
