"""Equity, drawdown and calendar-year returns: the best strategies of a search (net and
gross of fees and slippage), the stitched out-of-sample book of a walk-forward, a
portfolio and its sleeves; the yearly table read off the NAV."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from sweep.report.base import Chart, Report, esc, fmt, html_table, short
from sweep.report.figures import (
    WIDTH,
    as_dates,
    below_legend,
    nav_series,
    new_figure,
    percent_axis,
    plain_log_axis,
    wrap,
    yearly_from_nav,
)
from sweep.report.folder import Results


def equity_axes(fig):
    ax, axd = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1])
    return ax, axd



def finish_equity(ax, axd, positive: bool) -> None:
    if positive:
        ys = np.concatenate([np.asarray(ln.get_ydata(), dtype=float) for ln in ax.get_lines()
                             if not ln.get_label().startswith("_")])
        plain_log_axis(ax, float(np.nanmin(ys)), float(np.nanmax(ys)))
    ax.axhline(1.0, color="grey", linewidth=0.7, linestyle=":")
    ax.set_ylabel("NAV (1 = start" + (", log scale)" if positive else ")"))
    ax.grid(True, alpha=0.3)
    axd.set_ylabel("drawdown (%)")
    percent_axis(axd.yaxis, "max_drawdown")
    axd.set_xlabel("date")
    axd.grid(True, alpha=0.3)



def equity_chart(res: Results, runs: list[tuple[str, dict[str, Any], Any]], shown: list[str],
                 bench: list[tuple[str, np.ndarray]] | None = None) -> Chart:
    """NAV and drawdown, net and gross of fees and slippage, of the rerun best strategies, and
    the NAV of each benchmark of ``bench`` (``[(label, daily returns over the same days)]``,
    see ``sweep.report.risk.benchmarks``) as a dotted line."""
    import matplotlib

    from sweep.report.risk import benchmark_lines

    fig = new_figure(WIDTH, 6.6)
    ax, axd = equity_axes(fig)
    cm = matplotlib.colormaps["tab10"]
    positive = True
    for i, (label, params, result) in enumerate(runs):
        r = result.returns
        dates = as_dates(r["date"].to_numpy())
        for col, style, tag in (("ret", "-", "net"), ("ret_pre_cost", "--", "gross")):
            nav, dd = nav_series(r[col].to_numpy())
            positive &= bool((nav > 0).all())
            ax.plot(dates, nav, linestyle=style, color=cm(i), linewidth=1.4 if tag == "net" else 0.9,
                    label=f"{label} {short(params, shown)} ({tag})")
            axd.plot(dates, dd, linestyle=style, color=cm(i), linewidth=1.1 if tag == "net" else 0.8)
    if bench and runs:
        benchmark_lines(ax, as_dates(runs[0][2].returns["date"].to_numpy()), bench)
        positive &= all(bool((nav_series(b)[0] > 0).all()) for _, b in bench)
    finish_equity(ax, axd, positive)
    below_legend(fig, *ax.get_legend_handles_labels(), ncols=3 if bench else 2)
    start, end = res.window
    fig.suptitle(wrap(f"{res.name}: the best {len(runs)} distinct strateg{'ies' if len(runs) != 1 else 'y'} by "
                      f"{res.objective}, not ruined, NAV net (solid) and gross of fees and slippage (dashed), "
                      f"{start} .. {end}", WIDTH), fontsize=11)
    caption = (f"Each strategy rerun with sweep.backtest over {start} .. {end}, starting flat with NAV 1. "
               "Gross is before fees and slippage; funding is in both. Drawdown is NAV over its running "
               "peak (at least 1) minus 1."
               + (" Dotted: the benchmarks over the same days, from NAV 1 (" + "; ".join(b[0] for b in bench)
                  + "); the buy and hold earns the symbol's close-to-close move, the equal-weight market the mean "
                  "of each day's finite simple returns." if bench else ""))
    return Chart("equity_drawdown", "Equity and drawdown of the best strategies", fig, caption)



def oos_equity_chart(res: Results, folds: pl.DataFrame, oos: pl.DataFrame) -> Chart | str:
    if oos.height == 0:
        return "No out-of-sample equity: oos_returns.parquet has no rows."
    oos = oos.sort("date")
    dates = as_dates(oos["date"].to_numpy())
    nav, dd = nav_series(oos["ret"].to_numpy())
    fig = new_figure(WIDTH, 6.0)
    ax, axd = equity_axes(fig)
    ax.plot(dates, nav, color="tab:blue", linewidth=1.5, label="out-of-sample NAV (net)")
    axd.plot(dates, dd, color="tab:red", linewidth=1.0)
    positive = bool((nav > 0).all())
    first_day = {int(f): d for f, d in oos.group_by("fold").agg(pl.col("date").min()).iter_rows()}
    label_every = max(1, math.ceil(folds.height / 20))
    for n, row in enumerate(folds.sort("fold").iter_rows(named=True)):
        d0 = first_day.get(int(row["fold"]))
        if d0 is None:
            continue
        x = np.datetime64(d0, "D")
        for a in (ax, axd):
            a.axvline(x, color="black", linewidth=0.8, linestyle="--", alpha=0.6)
        if n % label_every == 0:  # above the axes, in their own strip: never on the curve
            ax.text(x, 1.01, str(row["fold"]), transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                    fontsize=8, color="0.25", clip_on=False)
    finish_equity(ax, axd, positive)
    axd.set_xlabel("date (dashed: first test day of each fold, numbered above the chart)")
    below_legend(fig, *ax.get_legend_handles_labels())
    fig.suptitle(wrap(f"{res.name}: stitched out-of-sample NAV of the walk-forward, {oos['date'][0]} .. "
                      f"{oos['date'][-1]}, {folds.height} folds", WIDTH), fontsize=11)
    caption = ("Each fold trades, fresh and flat, the configuration chosen on its train window alone; the "
               "dashed lines mark the first test day of each fold, numbered above the chart (the folds table "
               "below gives each choice). Net of fees, slippage and funding.")
    return Chart("oos_equity", "Out-of-sample equity", fig, caption)



def book_equity_chart(res: Results, rets: pl.DataFrame, names: list[str]) -> Chart | str:
    """The book's NAV and drawdown, with each sleeve's NAV beside it."""
    import matplotlib

    if rets.height == 0:
        return "No equity chart: portfolio_returns.parquet has no rows."
    rets = rets.sort("date")
    dates = as_dates(rets["date"].to_numpy())
    fig = new_figure(WIDTH, 6.4)
    ax, axd = equity_axes(fig)
    cm = matplotlib.colormaps["tab10"]
    positive = True
    for i, name in enumerate(names):
        nav, _ = nav_series(rets[name].to_numpy())
        positive &= bool((nav > 0).all())
        ax.plot(dates, nav, color=cm((i + 1) % 10), linewidth=0.9, alpha=0.9, label=f"sleeve {name}")
    nav, dd = nav_series(rets["book"].to_numpy())
    positive &= bool((nav > 0).all())
    ax.plot(dates, nav, color="black", linewidth=1.8, label="the book")
    axd.plot(dates, dd, color="black", linewidth=1.0)
    finish_equity(ax, axd, positive)
    below_legend(fig, *ax.get_legend_handles_labels(), ncols=min(4, len(names) + 1))
    start, end = res.window
    fig.suptitle(wrap(f"{res.name}: NAV of the book and of each sleeve, net of costs, {start} .. {end}", WIDTH),
                 fontsize=11)
    caption = ("The book (black) holds each sleeve as a fixed fraction of its NAV, re-mixed daily at no cost; "
               "each sleeve is its factor's chosen configuration rerun over the common window. Drawdown (below) "
               "is the book's.")
    return Chart("book_equity", "Equity of the book and its sleeves", fig, caption)


# --------------------------------------------------------------------------- calendar years


def yearly_returns(result) -> list[tuple[int, str, str, float | None]]:
    """Calendar-year net returns of a rerun, read off its NAV (see ``yearly_from_nav``)."""
    r = result.returns
    return yearly_from_nav(r["date"].to_numpy(), r["ret"].to_numpy())



def yearly_table(rep: Report, runs, names: list[str], series=None) -> None:
    """Calendar-year returns, one column per strategy: ``runs`` as ``rerun`` gives them, or
    ``series`` as ``[(column title, id, dates, returns)]``."""
    if series is None:
        series = [(f"{label} {short(p, names)}", row["config_id"], r.returns["date"].to_numpy(),
                   r.returns["ret"].to_numpy()) for label, p, r, row in runs]
    years: dict[int, dict[str, tuple[str, str, float | None]]] = {}
    totals = []
    for _, sid, dates, ret in series:
        for year, first, last, v in yearly_from_nav(dates, ret):
            years.setdefault(year, {})[sid] = (first, last, v)
        totals.append(float(np.prod(1.0 + np.asarray(ret))) - 1.0)
    rows = []
    for year in sorted(years):
        spans = {v[:2] for v in years[year].values()}
        first, last = min(s[0] for s in spans), max(s[1] for s in spans)
        part = f" ({first[5:]} .. {last[5:]})" if first != f"{year}-01-01" or last != f"{year}-12-31" else ""
        cells = [f"<th>{year}{esc(part)}</th>"]
        for _, sid, _, _ in series:
            v = years[year].get(sid)
            if v is None:
                cells.append("<td>-</td>")
            elif v[2] is None:
                cells.append(f'<td data-config="{esc(sid)}" data-year="{year}" data-value="closed">closed</td>')
            else:
                cells.append(f'<td data-config="{esc(sid)}" data-year="{year}" data-value="{v[2]!r}" '
                             f'class="{"neg" if v[2] < 0 else "pos"}">{v[2]:.1%}</td>')
        rows.append(cells)
    rows.append(["<th>whole window</th>"] + [f"<td>{fmt(t, 'total_return')}</td>" for t in totals])
    start, end = rep.results.window
    rep.p(f"Calendar-year net returns, {start} .. {end}: the NAV at the year's last day over the NAV at the "
          "previous year's last day, minus 1 (net of fees, slippage and funding); a partial year shows its dates; "
          "'closed': the book was ruined in an earlier year.")
    rep.blocks.append(html_table(["year"] + [s[0] for s in series], rows, "yearly-returns", raw=True))
