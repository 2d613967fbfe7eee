"""The objective against the rebalance period (one line per factor, else window), with the
q05..q95 interval of a Monte Carlo study drawn only at the points that are one
configuration that study sampled on the same data, window and objective."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sweep.core.errors import SweepError
from sweep.report.base import (
    MAX_LINES,
    Chart,
    finite_rows,
    key,
    lower_is_better,
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
    below_legend,
    grid_layout,
    new_figure,
    panel_param,
    percent_axis,
    wrap,
)
from sweep.report.folder import read_results
from sweep.results.schema import read_manifest


def lines_chart(res, table: pl.DataFrame, value: str,
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
    panel = panel_param(names, table, {"rebalance_days", line})
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
    nrows, ncols = grid_layout(len(pvals))
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
        if not lower_is_better(value) and value not in ("turnover", "n_rebalances"):
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
    below_legend(fig, handles, labels, title=line if line and not (scatter and numeric_line) else None,
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


# --------------------------------------------------------------------------- the Monte Carlo band


def monte_carlo_band(res, explicit):
    """A function giving the q05..q95 band of a point of the lines chart, from a Monte Carlo
    study of exactly that configuration on the same data, window and objective, or None; and
    a sentence about it. A point that averages several configurations has no band: no Monte
    Carlo study sampled that average. A study of the ``phase`` method is not used: its
    samples are other phases, not resamples of this configuration."""
    fp = (res.manifest.get("data") or {}).get("fingerprint")
    cands: list[tuple[Path, dict[str, Any]]] = []
    if explicit is not None:
        other = read_results(explicit)
        if other.kind != "monte_carlo":
            raise SweepError(f"--monte-carlo {explicit}: a {other.kind} results folder, not a monte_carlo one")
        cands.append((other.folder, other.manifest))
    else:
        here = res.folder.resolve()
        for sib in sorted(p for p in here.parent.iterdir() if p.is_dir() and p != here):
            try:
                m = read_manifest(sib, required=True)
            except SweepError:
                continue  # a neighbour's broken, older or unrelated folder is not this report's business
            if (m.get("study") or {}).get("kind") == "monte_carlo" and (m.get("data") or {}).get("fingerprint") == fp:
                cands.append((sib, m))
    why = []
    for folder, m in cands:
        mcm = m.get("monte_carlo") or {}
        if (m.get("study") or {}).get("objective", "sharpe") != res.objective:
            why.append(f"{folder.name} ranks by another objective")
            continue
        w = m.get("evaluation_window") or {}
        if (str(w.get("start")), str(w.get("end"))) != res.window:
            why.append(f"{folder.name} sampled another window ({w.get('start')} .. {w.get('end')})")
            continue
        if mcm.get("method") == "phase":
            why.append(f"{folder.name} samples phases, not resamples of one book")
            continue
        try:
            s = pl.read_parquet(folder / "summary.parquet", columns=["config_id", "q05", "q95"])
        except (OSError, pl.exceptions.PolarsError):
            why.append(f"{folder.name}'s summary.parquet is unreadable")
            continue
        table = {c: (lo, hi) for c, lo, hi in s.iter_rows() if lo is not None and hi is not None}
        if not table:
            continue

        def band(ids: list[str], table=table):
            return table.get(ids[0]) if len(ids) == 1 else None

        note = (f"Bars: the 5 %..95 % range of {res.objective} over {mcm.get('n_samples', '?')} "
                f"{mcm.get('method', '?')} samples from {folder.name} ({w.get('start')} .. {w.get('end')}).")
        return band, note
    where = explicit if explicit is not None else "beside this one"
    return None, (f"No Monte Carlo band: no monte_carlo results folder {where} samples these configurations on this "
                  "window and objective" + (f" ({'; '.join(why)})" if why else "")
                  + "; run one, or pass --monte-carlo FOLDER.")
