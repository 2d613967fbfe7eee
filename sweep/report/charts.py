"""The charts of ``sweep report``, each a ``matplotlib.figure.Figure`` built directly (never
through ``pyplot``) and returned in a ``Chart``, or a sentence saying why it is absent.

Figures are at most about 9 inches wide at 110 dpi, so their 9-10 pt labels stay readable
when the page shrinks them to an 800 px window; legends sit outside the axes, below them,
so they never cover a curve."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from sweep.engine.params import LOWER_IS_BETTER
from sweep.report.base import (
    MAX_LINES,
    MAX_PANELS,
    PERCENT,
    SIGNED,
    TOP_BOXES,
    Chart,
    Results,
    as_dates,
    diverging,
    finite_rows,
    fmt,
    key,
    metric_label,
    metric_name,
    nav_series,
    new_figure,
    param_label,
    percent_axis,
    plain_log_axis,
    ruined_mask,
    short,
    show,
    swept,
    values,
    wrap,
)

WIDTH = 9.0  # inches: the widest figure


def _panels(names: list[str], df: pl.DataFrame, exclude: set[str]) -> str | None:
    """The panel parameter: the swept one (not ``phase``) with the fewest values, if few enough."""
    cands = [c for c in names if c not in exclude and c != "phase"]
    if not cands:
        return None
    best = min(cands, key=lambda c: df[c].n_unique())
    return best if df[best].n_unique() <= MAX_PANELS else None


def _grid_layout(n: int) -> tuple[int, int]:
    ncols = min(n, 3 if n != 4 else 2)
    return math.ceil(n / ncols), ncols


def _category_ticks(axis, vals: list[Any], most: int) -> None:
    step = max(1, math.ceil(len(vals) / most))
    idx = list(range(0, len(vals), step))
    axis.set_ticks(idx)
    axis.set_ticklabels([show(vals[i]) for i in idx])


def _below_legend(fig, handles, labels, title: str | None = None, ncols: int | None = None) -> None:
    if handles:
        n = ncols or min(len(handles), 3)
        fig.legend(handles, labels, loc="outside lower center", ncols=n, fontsize=9, title=title,
                   title_fontsize=9, frameon=False)


# --------------------------------------------------------------------------- heatmap


def heatmap_chart(res: Results, trials: pl.DataFrame, value: str | None = None) -> Chart | str:
    """The objective over two swept parameters, one panel per value of a third; ruined books
    are left out of the cells, impossible cells (phase >= rebalance period) are blank."""
    from matplotlib.patches import Rectangle

    value = value or res.objective
    names = swept(trials, res.axes)
    if "rebalance_days" in names and "window" in names:
        pair = ["rebalance_days", "window"]
    elif len(names) >= 2:
        # On a tie, a parameter other than phase: phase is timing luck, the others are choices.
        pair = sorted(names, key=lambda c: (-trials[c].n_unique(), c == "phase"))[:2]
        if "rebalance_days" in pair:
            pair = ["rebalance_days"] + [c for c in pair if c != "rebalance_days"]
    else:
        return ("No heatmap: the study sweeps " + (f"only {names[0]}" if names else "no parameter")
                + "; a heatmap needs two swept parameters.")
    xcol, ycol = pair
    panel = _panels(names, trials, set(pair))
    averaged = [c for c in names if c not in (xcol, ycol, panel)]
    xs, ys = values(trials, xcol), values(trials, ycol)
    pvals = values(trials, panel) if panel else [None]
    finite = finite_rows(trials, value)
    if finite.height == 0:
        return f"No heatmap: no configuration has a finite {value}."
    keys = [xcol, ycol] + ([panel] if panel else [])
    ruined = finite.with_columns(ruined_mask(finite).alias("__ruined"))
    cells: dict[tuple, list[float]] = {}
    tried: dict[tuple, bool] = {}  # cell -> every book in it ruined
    for row in ruined.select(keys + [value, "__ruined"]).iter_rows():
        k = tuple(key(v) for v in row[:-2])
        tried[k] = tried.get(k, True) and bool(row[-1])
        if not row[-1]:
            cells.setdefault(k, []).append(row[-2])
    mean = {k: float(np.mean(v)) for k, v in cells.items()}
    coverage = len({k[:2] for k in tried}) / (len(xs) * len(ys))
    scatter = res.kind == "optuna" and coverage < 0.5
    kept = ruined.filter(~pl.col("__ruined"))
    all_values = np.array(list(mean.values()) if not scatter else kept[value].to_list(), dtype=float)
    cmap, norm = diverging(all_values, res.lower, value)
    cmap = cmap.with_extremes(bad="white")  # an impossible cell is blank
    phase_axes = {"phase", "rebalance_days"} == {xcol, ycol}
    nrows, ncols = _grid_layout(len(pvals))
    fig = new_figure(min(3.3 * ncols + 1.6, WIDTH), 3.0 * nrows + 1.0)
    axs = fig.subplots(nrows, ncols, squeeze=False)
    numeric = {c: all(isinstance(v, (int, float)) for v in values(trials, c)) for c in (xcol, ycol)}
    best_fn = np.nanargmin if res.lower else np.nanargmax
    mappable = None
    annotate = len(xs) <= 8 and len(ys) <= 8 and ncols <= 2
    any_impossible = any_ruined_cell = any_nan = False
    for i, pv in enumerate(pvals):
        ax = axs[i // ncols][i % ncols]
        if scatter:
            sub = kept if panel is None else kept.filter(pl.col(panel) == pv)
            x = sub[xcol].to_numpy() if numeric[xcol] else np.array([xs.index(key(v)) for v in sub[xcol]])
            y = sub[ycol].to_numpy() if numeric[ycol] else np.array([ys.index(key(v)) for v in sub[ycol]])
            z = sub[value].to_numpy()
            mappable = ax.scatter(x, y, c=z, cmap=cmap, norm=norm, s=28, edgecolors="black", linewidths=0.3)
            if z.size:
                b = int(best_fn(z))
                ax.scatter([x[b]], [y[b]], marker="*", s=220, facecolors="none", edgecolors="black",
                           linewidths=1.2)
            if not numeric[xcol]:
                _category_ticks(ax.xaxis, xs, 10)
            if not numeric[ycol]:
                _category_ticks(ax.yaxis, ys, 10)
        else:
            Z = np.full((len(ys), len(xs)), np.nan)
            for (kx, ky, *kp), v in mean.items():
                if not panel or kp[0] == pv:
                    Z[ys.index(ky), xs.index(kx)] = v
            mappable = ax.imshow(np.ma.masked_invalid(Z), origin="lower", aspect="auto", cmap=cmap, norm=norm,
                                 interpolation="nearest")
            for yi, ky in enumerate(ys):
                for xi, kx in enumerate(xs):
                    k = (kx, ky) + ((pv,) if panel else ())
                    if np.isfinite(Z[yi, xi]):
                        if annotate:
                            rgba = cmap(norm(Z[yi, xi]))
                            dark = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5
                            ax.text(xi, yi, fmt(float(Z[yi, xi]), value), ha="center", va="center", fontsize=8,
                                    color="white" if dark else "black")
                        continue
                    impossible = phase_axes and (kx if xcol == "phase" else ky) >= (ky if xcol == "phase" else kx)
                    if impossible:
                        any_impossible = True
                    elif tried.get(k):
                        any_ruined_cell = True
                        ax.text(xi, yi, "x", ha="center", va="center", fontsize=9, color="#b00020")
                    else:
                        any_nan = True
                        ax.add_patch(Rectangle((xi - 0.5, yi - 0.5), 1, 1, color="#bdbdbd", linewidth=0))
            if np.isfinite(Z).any():
                yi, xi = np.unravel_index(int(best_fn(Z)), Z.shape)
                ax.add_patch(Rectangle((xi - 0.5, yi - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.8))
            _category_ticks(ax.xaxis, xs, 10)
            _category_ticks(ax.yaxis, ys, 10)
        ax.set_xlabel(param_label(xcol))
        ax.set_ylabel(param_label(ycol))
        ax.set_title(f"{panel} = {show(pv)}" if panel else f"all {finite.height} configurations", fontsize=10)
    for j in range(len(pvals), nrows * ncols):
        axs[j // ncols][j % ncols].set_visible(False)
    cbar = fig.colorbar(mappable, ax=axs, shrink=0.9)
    cbar.set_label(metric_name(value) + (" (%)" if value in PERCENT else ""))
    percent_axis(cbar.ax.yaxis, value)
    start, end = res.window
    how = ("each dot a trial, the star the best" if scatter else
           "the box marks the best cell" + (f"; each cell the mean over {', '.join(averaged)}" if averaged else ""))
    fig.suptitle(wrap(f"{res.name}: {metric_name(value)} by {xcol} and {ycol}, {start} .. {end}\n({how})",
                      fig.get_figwidth()), fontsize=11)
    notes = []
    if any_impossible:
        notes.append("Blank (white) cells: phase >= rebalance period, a book that cannot exist.")
    if any_nan:
        notes.append("Grey cells: no finite value.")
    if any_ruined_cell:
        notes.append("Cells marked x: every book in them was ruined.")
    caption = (f"{metric_label(value)} of every configuration not ruined, over the evaluation window {start} .. "
               f"{end}, by {param_label(xcol)} (x) and {param_label(ycol)} (y)"
               + (f", one panel per {panel}" if panel else "")
               + (f"; averaged over {', '.join(averaged)}" if averaged else "")
               + (". An Optuna search does not fill a grid: each dot is a trial." if scatter else ".")
               + (" Blue is better, red worse, white the middle at 0." if value in SIGNED else "")
               + (" " + " ".join(notes) if notes else ""))
    return Chart("heatmap", "Objective over the swept parameters", fig, caption)


# --------------------------------------------------------------------------- objective against the period


def lines_chart(res: Results, table: pl.DataFrame, value: str,
                band: Callable[[list[str]], tuple[float, float] | None] | None = None,
                band_label: str = "Monte Carlo q05..q95", note: str = "", median: bool = False) -> Chart | str:
    """The objective against ``rebalance_days``, one line per factor (else window), panels per
    a third swept parameter. ``band(config_ids)`` gives the q05..q95 range of a point (one
    configuration, exactly) or None: drawn as an interval at that period only, never joined."""
    names = swept(table, res.axes)
    if "rebalance_days" not in names:
        return ("No chart of the objective against rebalance_days: the study does not sweep rebalance_days"
                + (f" (it sweeps {', '.join(names)})." if names else "."))
    line = "factor" if "factor" in names else ("window" if "window" in names else None)
    panel = _panels(names, table, {"rebalance_days", line})
    averaged = [c for c in names if c not in ("rebalance_days", line, panel)]
    finite = finite_rows(table, value)
    n_ruined = finite.filter(ruined_mask(finite)).height
    finite = finite.filter(~ruined_mask(finite))
    if finite.height == 0:
        return f"No chart of the objective against rebalance_days: no book not ruined has a finite {value}."
    xs = values(finite, "rebalance_days")
    lvals = values(finite, line) if line else [None]
    pvals = values(finite, panel) if panel else [None]
    pts: dict[tuple, list[tuple[float, str]]] = {}
    for row in finite.iter_rows(named=True):
        k = (key(row[panel]) if panel else None, key(row[line]) if line else None, row["rebalance_days"])
        pts.setdefault(k, []).append((row[value], row["config_id"]))
    coverage = len({k[1:] for k in pts}) / (len(xs) * len(lvals))
    scatter = len(lvals) > MAX_LINES or (res.kind == "optuna" and coverage < 0.5)
    import matplotlib

    numeric_line = line is not None and all(isinstance(v, (int, float)) for v in lvals)
    if numeric_line and len(lvals) > 1:
        from matplotlib.colors import ListedColormap

        # viridis without its last, pale yellow tenth: every line stays visible on white.
        seq = ListedColormap(matplotlib.colormaps["viridis"](np.linspace(0.0, 0.88, 256)))
        lo, hi = float(min(lvals)), float(max(lvals))
        color = {v: seq((float(v) - lo) / (hi - lo)) for v in lvals}
    else:
        cm = matplotlib.colormaps["tab10"]
        color = {v: cm(i % 10) for i, v in enumerate(lvals)}
    nrows, ncols = _grid_layout(len(pvals))
    fig = new_figure(min(max(3.6 * ncols, 6.5) + 0.5, WIDTH), 3.2 * nrows + 1.6)
    axs = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    best_fn = min if res.lower else max
    steps = np.diff(np.array(xs, dtype=float))
    dodge = 0.16 * (float(steps.min()) if steps.size else 1.0) / max(1, len(lvals))
    banded = 0
    for i, pv in enumerate(pvals):
        ax = axs[i // ncols][i % ncols]
        for li, lv in enumerate(lvals):
            keys = sorted(k for k in pts if k[0] == pv and k[1] == lv)
            if not keys:
                continue
            x = np.array([k[2] for k in keys], dtype=float)
            if scatter:
                for k in keys:
                    vals = [v for v, _ in pts[k]]
                    ax.scatter([k[2]] * len(vals), vals, s=14, color=color[lv], alpha=0.8, edgecolors="none")
            else:
                y = np.array([np.mean([v for v, _ in pts[k]]) for k in keys])
                ax.plot(x, y, marker="o", markersize=3.5, linewidth=1.4, color=color[lv],
                        label=show(lv) if line else "all configurations")
            if band is None:
                continue
            got = [(k[2], band([c for _, c in pts[k]])) for k in keys]
            got = [(bx, b) for bx, b in got if b is not None]
            if got:
                banded += len(got)
                off = (li - (len(lvals) - 1) / 2) * dodge
                bx = np.array([g[0] for g in got], dtype=float) + off
                lo_b = np.array([g[1][0] for g in got])
                hi_b = np.array([g[1][1] for g in got])
                ax.vlines(bx, lo_b, hi_b, color=color[lv], alpha=0.75, linewidth=2.2, label="_band")
                ax.scatter(np.r_[bx, bx], np.r_[lo_b, hi_b], marker="_", s=60, color=color[lv], label="_band")
        if scatter:  # the envelope of the best trial per period, to read the shape through the cloud
            per_x: dict[Any, float] = {}
            for k, vs in pts.items():
                if k[0] == pv:
                    per_x[k[2]] = best_fn([per_x.get(k[2], vs[0][0])] + [v for v, _ in vs])
            bxs = sorted(per_x)
            ax.plot(bxs, [per_x[b] for b in bxs], color="black", linewidth=1.0, label="best per period")
        if value not in LOWER_IS_BETTER and value not in ("turnover", "n_rebalances"):
            ax.axhline(0.0, color="grey", linewidth=0.7, linestyle=":")
        ax.set_xlabel(param_label("rebalance_days"))
        ax.set_ylabel(("median " if median else "") + metric_label(res.objective))
        percent_axis(ax.yaxis, res.objective if median else value)
        ax.set_title(f"{panel} = {show(pv)}" if panel else "all configurations", fontsize=10)
        ax.grid(True, alpha=0.3)
    for j in range(len(pvals), nrows * ncols):
        axs[j // ncols][j % ncols].set_visible(False)
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles, labels = [], []
    for ax in axs.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if scatter and numeric_line:
        sm = ScalarMappable(norm=Normalize(float(min(lvals)), float(max(lvals))), cmap=seq)
        fig.colorbar(sm, ax=axs, shrink=0.9).set_label(param_label(line))
    elif scatter and line:
        handles += [Patch(color=color[v]) for v in lvals]
        labels += [show(v) for v in lvals]
    if banded:
        handles.append(Line2D([0], [0], color="grey", linewidth=2.2, marker="_", markersize=8))
        labels.append(band_label)
    _below_legend(fig, handles, labels, title=line if line and not (scatter and numeric_line) else None,
                  ncols=min(len(handles), 5))
    start, end = res.window
    what = metric_name(res.objective)
    avg = f"\n(each point the mean over {', '.join(averaged)})" if averaged and not scatter else ""
    if median:
        mcm = res.manifest.get("monte_carlo") or {}
        title = (f"{res.name}: median {what} over {mcm.get('n_samples', '?')} {mcm.get('method', '?')} samples "
                 f"by rebalance period, {start} .. {end}{avg}")
    else:
        title = f"{res.name}: {what} by rebalance period, {start} .. {end}{avg}"
    fig.suptitle(wrap(title, fig.get_figwidth()), fontsize=11)
    caption = (("Median over the samples of the " if median else "")
               + f"{metric_label(res.objective)} against {param_label('rebalance_days')}"
               + (f", one {'colour' if scatter else 'line'} per {line}" if line else "")
               + (f", one panel per {panel}" if panel else "")
               + (f"; points averaged over {', '.join(averaged)}" if averaged and not scatter else "")
               + ("; each dot is a trial, the black line the best per period" if scatter else "")
               + (f"; {n_ruined} ruined book{'s' if n_ruined != 1 else ''} left out" if n_ruined else "") + ". "
               + (f"Vertical bars: {band_label} at the {banded} point{'s' if banded != 1 else ''} that are one "
                  "configuration the Monte Carlo study sampled, on the same window (bars are shifted a little "
                  "sideways per line so they do not overlap). " + note if banded else "")
               + ("No point of this chart is one configuration the Monte Carlo study sampled: no bars. "
                  if band is not None and not banded else ""))
    return Chart("objective_vs_rebalance_days", "Objective against the rebalance period", fig, caption.strip())


# --------------------------------------------------------------------------- equity


def _equity_axes(fig):
    ax, axd = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1])
    return ax, axd


def _finish_equity(ax, axd, positive: bool) -> None:
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


def equity_chart(res: Results, runs: list[tuple[str, dict[str, Any], Any]], shown: list[str]) -> Chart:
    """NAV and drawdown, net and gross of fees and slippage, of the rerun best strategies."""
    import matplotlib

    fig = new_figure(WIDTH, 6.6)
    ax, axd = _equity_axes(fig)
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
    _finish_equity(ax, axd, positive)
    _below_legend(fig, *ax.get_legend_handles_labels(), ncols=2)
    start, end = res.window
    fig.suptitle(wrap(f"{res.name}: the best {len(runs)} distinct strateg{'ies' if len(runs) != 1 else 'y'} by "
                      f"{res.objective}, not ruined, NAV net (solid) and gross of fees and slippage (dashed), "
                      f"{start} .. {end}", WIDTH), fontsize=11)
    caption = (f"Each strategy rerun with sweep.backtest over {start} .. {end}, starting flat with NAV 1. "
               "Gross is before fees and slippage; funding is in both. Drawdown is NAV over its running "
               "peak (at least 1) minus 1.")
    return Chart("equity_drawdown", "Equity and drawdown of the best strategies", fig, caption)


def oos_equity_chart(res: Results, folds: pl.DataFrame, oos: pl.DataFrame) -> Chart | str:
    if oos.height == 0:
        return "No out-of-sample equity: oos_returns.parquet has no rows."
    oos = oos.sort("date")
    dates = as_dates(oos["date"].to_numpy())
    nav, dd = nav_series(oos["ret"].to_numpy())
    fig = new_figure(WIDTH, 6.0)
    ax, axd = _equity_axes(fig)
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
    _finish_equity(ax, axd, positive)
    axd.set_xlabel("date (dashed: first test day of each fold, numbered above the chart)")
    _below_legend(fig, *ax.get_legend_handles_labels())
    fig.suptitle(wrap(f"{res.name}: stitched out-of-sample NAV of the walk-forward, {oos['date'][0]} .. "
                      f"{oos['date'][-1]}, {folds.height} folds", WIDTH), fontsize=11)
    caption = ("Each fold trades, fresh and flat, the configuration chosen on its train window alone; the "
               "dashed lines mark the first test day of each fold, numbered above the chart (the folds table "
               "below gives each choice). Net of fees, slippage and funding.")
    return Chart("oos_equity", "Out-of-sample equity", fig, caption)


def train_test_chart(res: Results, folds: pl.DataFrame) -> Chart | str:
    obj = res.objective
    tr, te = f"train_{obj}", f"test_{obj}"
    if folds.height == 0:
        return "No train/test chart: folds.parquet has no rows."
    folds = folds.sort("fold")
    x = np.arange(folds.height)
    fig = new_figure(min(WIDTH, max(6.5, 0.55 * folds.height + 3)), 4.4)
    ax = fig.subplots()
    ax.bar(x - 0.2, folds[tr].to_numpy(), width=0.4, label="train window (where it was chosen)", color="tab:grey")
    ax.bar(x + 0.2, folds[te].to_numpy(), width=0.4, label="test window (out of sample)", color="tab:blue")
    ax.axhline(0.0, color="black", linewidth=0.7)
    step = max(1, math.ceil(folds.height / 16))
    ax.set_xticks(x[::step])
    ax.set_xticklabels([f"{f}\n{str(d)[:7]}" for f, d in zip(folds["fold"], folds["test_start"])][::step],
                       fontsize=8)
    ax.set_xlabel("fold (and the month its test window starts)")
    ax.set_ylabel(metric_label(obj))
    percent_axis(ax.yaxis, obj)
    ax.grid(True, axis="y", alpha=0.3)
    _below_legend(fig, *ax.get_legend_handles_labels(), ncols=2)
    ax.set_title(wrap(f"{res.name}: {metric_name(obj)} of each fold's choice, train vs test, "
                      f"{folds['train_start'].min()} .. {folds['test_end'].max()}", fig.get_figwidth()), fontsize=11)
    caption = ("The configuration chosen in each fold, scored on the train window it was chosen on and on "
               "the test window that followed. A test bar far below its train bar is the search's optimism.")
    return Chart("train_vs_test", "Train against test, per fold", fig, caption)


# --------------------------------------------------------------------------- monte carlo


def distribution_chart(res: Results, top: pl.DataFrame, samples: pl.DataFrame, shown: list[str],
                       actual: dict[str, float] | None) -> Chart | str:
    """Box plots of the objective over the samples, best median on top, with the actual
    (unresampled) value of each configuration marked."""
    obj = res.objective
    top = top.head(TOP_BOXES)
    if top.height == 0:
        return f"No distribution chart: no configuration has a finite median {obj}."
    data, labels, act = [], [], []
    for row in top.iter_rows(named=True):
        v = samples.filter(pl.col("config_id") == row["config_id"])[obj].to_numpy()
        data.append(v[np.isfinite(v)])
        labels.append(short(row, shown) if shown else row["config_id"])
        act.append((actual or {}).get(row["config_id"], np.nan))
    # Best at the top: boxplot draws the first position lowest.
    data, labels, act = data[::-1], labels[::-1], act[::-1]
    fig = new_figure(WIDTH, 1.6 + 0.36 * len(data) + 0.8)
    ax = fig.subplots()
    ax.boxplot(data, orientation="horizontal", whis=(5, 95), tick_labels=labels, showfliers=True,
               flierprops={"markersize": 2, "alpha": 0.5}, medianprops={"color": "tab:red"})
    handles, names = [], []
    if actual:
        pos = np.arange(1, len(data) + 1)
        ok = np.isfinite(act)
        h = ax.scatter(np.asarray(act)[ok], pos[ok], marker="D", s=30, color="black", zorder=3)
        handles.append(h)
        names.append("actual value (the real data, not resampled)")
    from matplotlib.lines import Line2D

    handles.append(Line2D([0], [0], color="tab:red"))
    names.append("median of the samples")
    if obj not in LOWER_IS_BETTER:
        ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel(metric_label(obj))
    percent_axis(ax.xaxis, obj)
    ax.set_ylabel("configuration (" + ", ".join(shown) + ")" if shown else "configuration")
    ax.grid(True, axis="x", alpha=0.3)
    _below_legend(fig, handles, names, ncols=2)
    mc = res.manifest.get("monte_carlo") or {}
    start, end = res.window
    ax.set_title(wrap(f"{res.name}: {metric_name(obj)} over {mc.get('n_samples', '?')} {mc.get('method', '?')} "
                      f"samples, top {top.height} by median, {start} .. {end}", WIDTH), fontsize=11)
    caption = ("Box: the middle half of the samples, red line the median; whiskers at the 5 % and 95 % "
               "quantiles (summary.parquet's q05, q95); dots beyond them"
               + ("; black diamond: the configuration on the real data, unresampled, over the whole window. "
                  if actual else ". ")
               + {"block_bootstrap": "Samples are stationary block-bootstrap resamples of whole days.",
                  "phase": "Samples are the rebalance phases 0 .. k-1 of each configuration.",
                  "subperiod": "Samples are random subperiods of the evaluation window."}.get(mc.get("method"), ""))
    return Chart("distribution", "Distribution over the samples", fig, caption)


# --------------------------------------------------------------------------- portfolio


def book_equity_chart(res: Results, rets: pl.DataFrame, names: list[str]) -> Chart | str:
    """The book's NAV and drawdown, with each sleeve's NAV beside it."""
    import matplotlib

    if rets.height == 0:
        return "No equity chart: portfolio_returns.parquet has no rows."
    rets = rets.sort("date")
    dates = as_dates(rets["date"].to_numpy())
    fig = new_figure(WIDTH, 6.4)
    ax, axd = _equity_axes(fig)
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
    _finish_equity(ax, axd, positive)
    _below_legend(fig, *ax.get_legend_handles_labels(), ncols=min(4, len(names) + 1))
    start, end = res.window
    fig.suptitle(wrap(f"{res.name}: NAV of the book and of each sleeve, net of costs, {start} .. {end}", WIDTH),
                 fontsize=11)
    caption = ("The book (black) holds each sleeve as a fixed fraction of its NAV, re-mixed daily at no cost; "
               "each sleeve is its factor's chosen configuration rerun over the common window. Drawdown (below) "
               "is the book's.")
    return Chart("book_equity", "Equity of the book and its sleeves", fig, caption)
