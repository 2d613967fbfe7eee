"""The heatmap of ``sweep report``: the objective over two swept parameters, on a diverging
scale centred on 0 for a signed metric, impossible cells (phase >= period) blank."""

from __future__ import annotations

import numpy as np
import polars as pl

from sweep.report.base import (
    Chart,
    finite_rows,
    fmt,
    is_percent,
    is_signed,
    key,
    metric_label,
    metric_name,
    param_label,
    ruined_mask,
    show,
    swept,
    values,
)
from sweep.report.figures import (
    WIDTH,
    category_ticks,
    diverging,
    grid_layout,
    new_figure,
    panel_param,
    percent_axis,
    wrap,
)


def heatmap_chart(res, trials: pl.DataFrame, value: str | None = None) -> Chart | str:
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
    panel = panel_param(names, trials, set(pair))
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
    nrows, ncols = grid_layout(len(pvals))
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
                category_ticks(ax.xaxis, xs, 10)
            if not numeric[ycol]:
                category_ticks(ax.yaxis, ys, 10)
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
            category_ticks(ax.xaxis, xs, 10)
            category_ticks(ax.yaxis, ys, 10)
        ax.set_xlabel(param_label(xcol))
        ax.set_ylabel(param_label(ycol))
        ax.set_title(f"{panel} = {show(pv)}" if panel else f"all {finite.height} configurations", fontsize=10)
    for j in range(len(pvals), nrows * ncols):
        axs[j // ncols][j % ncols].set_visible(False)
    cbar = fig.colorbar(mappable, ax=axs, shrink=0.9)
    cbar.set_label(metric_name(value) + (" (%)" if is_percent(value) else ""))
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
               + (" Blue is better, red worse, white the middle at 0." if is_signed(value) else "")
               + (" " + " ".join(notes) if notes else ""))
    return Chart("heatmap", "Objective over the swept parameters", fig, caption)
