"""``sweep report RESULTS``: one self-contained HTML page of a results folder, with its charts
also written as PNG files.

Convention: the page is ``RESULTS/report.html`` unless ``--out`` names another
file; every chart is embedded in it as a base64 ``data:image/png`` URI and also
written to ``<stem>_charts/<chart>.png`` beside the HTML (``report_charts/``
by default), so the page opens from disk with no server and no network (no
external CSS, script, font or link: text that came from the study, such as a
URL in a comment, has its ``://`` escaped), and the PNG files can go into a
paper or a slide as they are.

What each kind shows (charts named as in ``CHARTS``):

* every kind: a header (study name, kind, objective, data and its
  fingerprint, evaluation window, configuration count, versions, the study file).
* ``grid`` / ``optuna``: ``heatmap``: the objective over two swept parameters
  (``rebalance_days`` x ``window`` when both are swept, else the two with the
  most values), one panel per value of a third (the one with the fewest
  values, ``phase`` excepted: it depends on ``rebalance_days``); any other
  swept parameter is averaged over, and the title says so. An Optuna search
  that covers less than half of the cells is drawn as a scatter of its trials
  instead. ``objective_vs_rebalance_days``: one line per ``factor`` (else per
  ``window``), with the q05..q95 band of a Monte Carlo study of the same
  configurations where one exists (``--monte-carlo FOLDER``, else a sibling
  results folder of kind ``monte_carlo`` on the same data sharing
  configuration ids). ``equity_drawdown``: the top 3 configurations by the
  objective rerun with ``sweep.backtest`` on the manifest's data and
  evaluation window, net and gross of fees and slippage (funding is in both,
  as in SEMANTICS §8); their calendar-year compounded net returns as a table;
  ``summary.json``'s overfitting statistics in words.
* ``walk_forward``: ``oos_equity`` (the stitched out-of-sample NAV, a line at
  each fold's first test day) and ``train_vs_test`` (the chosen configuration's
  objective on its train and on its test window, per fold), and the folds table.
* ``monte_carlo``: ``distribution`` (box plots of the objective over the
  samples, top 15 configurations by median; whiskers at the 5 % and 95 %
  quantiles, as ``q05``/``q95`` of ``summary.parquet``),
  ``objective_vs_rebalance_days`` (the median with the q05..q95 band) and the
  summary table.

A missing optional piece (no ``summary.json``, no swept ``rebalance_days``,
data that moved or changed) skips its chart or table with a sentence saying
why; a folder that is not a results folder, or an unreadable file in it, is a
``SweepError`` naming the file.

Figures are built on ``matplotlib.figure.Figure`` directly and rendered by the
Agg canvas, never through ``pyplot``: no global backend switch (the caller's
Jupyter or GUI backend is left alone), no figure registry to leak, and no
display needed.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import io
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ._errors import SweepError
from ._params import LOWER_IS_BETTER

# The charts each kind can have, in page order (file names without ".png").
CHARTS = {
    "grid": ("heatmap", "objective_vs_rebalance_days", "equity_drawdown"),
    "optuna": ("heatmap", "objective_vs_rebalance_days", "equity_drawdown"),
    "walk_forward": ("oos_equity", "train_vs_test"),
    "monte_carlo": ("distribution", "objective_vs_rebalance_days"),
}
MAIN_TABLE = {"grid": "trials.parquet", "optuna": "trials.parquet", "walk_forward": "folds.parquet",
              "monte_carlo": "summary.parquet"}
TOP_EQUITY = 3  # configurations rerun for the equity curves and the yearly table
TOP_TABLE = 10  # rows of the best-configurations table
TOP_BOXES = 15  # configurations in the Monte Carlo box plot
MAX_PANELS = 12  # more values than this of the panel parameter: averaged over instead
MAX_LINES = 10  # more values than this of the line parameter: a scatter instead
MAX_TABLE_ROWS = 60
# A configuration that lost this much of its NAV (max_drawdown at or below -BUST) is flagged:
# near zero NAV, drifted weights grow to many times NAV (SEMANTICS §8 divides by 1 + P + F)
# and its later returns, hence its Sharpe ratio, no longer describe a tradable book.
BUST = 0.9
DPI = 110
CHARTS_SUFFIX = "_charts"

# (what, unit) of each metric, for axis labels; PERCENT ones are fractions shown as %.
METRIC_LABELS = {
    "total_return": ("total return", "%"),
    "cagr": ("CAGR", "% a year"),
    "ann_vol": ("volatility", "% a year"),
    "sharpe": ("Sharpe ratio", "annualised, net of costs"),
    "sharpe_pre_cost": ("Sharpe ratio before fees and slippage", "annualised"),
    "sortino": ("Sortino ratio", "annualised"),
    "max_drawdown": ("maximum drawdown", "%"),
    "calmar": ("Calmar ratio", "CAGR / |max drawdown|"),
    "win_rate": ("win rate", "% of days with a non-zero return"),
    "turnover": ("turnover", "x NAV a year, one-sided"),
    "cost_paid": ("fees and slippage paid", "% of NAV, summed"),
    "funding_return": ("funding", "% of NAV, summed"),
    "avg_long": ("long names", "average count"),
    "avg_short": ("short names", "average count"),
    "avg_net_exposure": ("net exposure", "% of NAV, average"),
    "avg_gross_exposure": ("gross exposure", "% of NAV, average"),
    "n_rebalances": ("rebalances", "count"),
}
PERCENT = {"total_return", "cagr", "ann_vol", "max_drawdown", "win_rate", "cost_paid", "funding_return",
           "avg_net_exposure", "avg_gross_exposure"}
PARAM_LABELS = {
    "rebalance_days": "rebalance period (days)",
    "window": "feature window (days)",
    "vol_window": "risk-parity volatility window (days)",
    "phase": "rebalance phase (days after the window start)",
    "q": "buckets (q)",
    "top_n": "names per side",
    "buffer": "buffer (fraction of the target weight)",
    "fee_bps": "fee (bp)",
    "slippage_bps": "slippage (bp)",
    "long_allocation": "long allocation (fraction of NAV)",
    "short_allocation": "short allocation (fraction of NAV)",
    "max_days": "max days from the high",
    "top_by_market_cap": "top by market cap (names)",
}
SHORT = {"rebalance_days": "rebal", "weighting": "", "window": "win", "factor": "", "phase": "phase",
         "vol_window": "volwin", "selection": "", "hold": ""}


def metric_label(m: str) -> str:
    what, unit = METRIC_LABELS.get(m, (m, ""))
    return f"{what} ({unit})" if unit else what


def param_label(p: str) -> str:
    return PARAM_LABELS.get(p, p.replace("_", " "))


def _show(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v)) or "none"
    if isinstance(v, float):
        if v != v:
            return "nan"
        return str(int(v)) if v.is_integer() else f"{v:g}"
    return str(v)


def _key(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _fmt(v: Any, metric: str | None = None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "nan" if v != v else ("inf" if v > 0 else "-inf")
        if metric in PERCENT:
            return f"{v:.1%}"
        if metric == "n_rebalances":
            return f"{v:.0f}"
        return f"{v:.3f}"
    return _show(v)


def _short(params: dict[str, Any], names: list[str]) -> str:
    """``rebal 7, win 30, equal``: a configuration in a legend or tick label."""
    parts = []
    for k in names:
        if k in params:
            tag = SHORT.get(k, k)
            parts.append(f"{tag} {_show(params[k])}" if tag else _show(params[k]))
    return ", ".join(parts) or "the configuration"


# --------------------------------------------------------------------------- reading


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise SweepError(f"{path}: unreadable ({_first_line(exc)}); rerun the study with --force") from None
    if not isinstance(obj, dict):
        raise SweepError(f"{path}: unreadable (not a JSON object); rerun the study with --force")
    return obj


def _read_parquet(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise SweepError(f"{path}: missing (the results folder is incomplete); rerun the study")
    try:
        return pl.read_parquet(path)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise SweepError(f"{path}: unreadable ({_first_line(exc)}); rerun the study with --force") from None


def _require(df: pl.DataFrame, path: Path, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SweepError(f"{path}: not a sweep results table (no column {', '.join(missing)}); rerun the study")


@dataclass
class Results:
    """A results folder as read: its manifest and tables (``tables`` keyed by file name)."""

    folder: Path
    manifest: dict[str, Any]
    kind: str
    name: str
    objective: str
    tables: dict[str, pl.DataFrame]
    summary: dict[str, Any] | None
    axes: list[str]  # the parameters the study searches ([grid] and [space] keys)
    study_table: dict[str, Any]  # the study text's [study] table

    @property
    def lower(self) -> bool:
        return self.objective in LOWER_IS_BETTER

    @property
    def window(self) -> tuple[str, str]:
        w = self.manifest.get("evaluation_window") or {}
        return str(w.get("start", "?")), str(w.get("end", "?"))

    @property
    def params(self) -> list[str]:
        return list(self.manifest.get("parameters") or [])


def read_results(folder: str | Path) -> Results:
    """Read a results folder (or a file inside it); raise ``SweepError`` naming the bad file."""
    folder = Path(folder)
    if folder.suffix in (".parquet", ".json") and not folder.is_dir():
        folder = folder.parent
    if not folder.exists():
        raise SweepError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise SweepError(f"{folder}: not a results folder (a file; give the folder `sweep run` wrote)")
    mpath = folder / "manifest.json"
    if not mpath.exists():
        raise SweepError(f"{folder}: not a results folder (no manifest.json; run a study into it first)")
    manifest = _read_json(mpath)
    study = manifest.get("study")
    kind = study.get("kind") if isinstance(study, dict) else None
    if kind not in CHARTS:
        raise SweepError(f"{mpath}: not a sweep manifest (study kind {kind!r}); rerun the study")
    objective = study.get("objective") or "sharpe"
    tables: dict[str, pl.DataFrame] = {}
    if kind in ("grid", "optuna"):
        p = folder / "trials.parquet"
        tables["trials"] = _read_parquet(p)
        _require(tables["trials"], p, ["config_id", objective])
    elif kind == "walk_forward":
        p = folder / "folds.parquet"
        tables["folds"] = _read_parquet(p)
        _require(tables["folds"], p, ["fold", "test_start", "test_end", f"train_{objective}", f"test_{objective}"])
        p = folder / "oos_returns.parquet"
        tables["oos_returns"] = _read_parquet(p)
        _require(tables["oos_returns"], p, ["date", "fold", "ret"])
    else:
        p = folder / "summary.parquet"
        tables["summary"] = _read_parquet(p)
        _require(tables["summary"], p, ["config_id", "median", "q05", "q95"])
        p = folder / "samples.parquet"
        tables["samples"] = _read_parquet(p)
        _require(tables["samples"], p, ["config_id", "sample", objective])
    spath = folder / "summary.json"
    summary = _read_json(spath) if spath.exists() else None
    try:
        raw = tomllib.loads(study.get("text") or "")
    except tomllib.TOMLDecodeError:
        raw = {}
    axes = [k for t in ("grid", "space") for k in (raw.get(t) or {})]
    if not axes:  # an older manifest without the study text: every parameter column is a candidate
        axes = list(manifest.get("parameters") or [])
    return Results(folder=folder, manifest=manifest, kind=kind, name=str(study.get("name") or folder.name),
                   objective=objective, tables=tables, summary=summary, axes=axes,
                   study_table=raw.get("study") or {})


def swept(df: pl.DataFrame, names: list[str]) -> list[str]:
    """The parameters among ``names`` that take more than one value in ``df``."""
    return [c for c in names if c in df.columns and df[c].n_unique() > 1]


# --------------------------------------------------------------------------- the report


@dataclass
class Chart:
    name: str
    title: str
    figure: Any  # matplotlib.figure.Figure
    caption: str = ""


@dataclass
class Report:
    """What ``write_report`` renders: ``charts`` (name -> ``Chart``, its ``figure`` ready to
    check or save), ``skipped`` (name -> the sentence saying why a chart is absent) and
    the page's HTML blocks in order (``Chart`` objects where a chart goes)."""

    results: Results
    charts: dict[str, Chart] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    blocks: list[Any] = field(default_factory=list)

    def h2(self, text: str) -> None:
        self.blocks.append(f"<h2>{_esc(text)}</h2>")

    def p(self, text: str, cls: str = "") -> None:
        self.blocks.append(f"<p{f' class={cls!r}' if cls else ''}>{_esc(text)}</p>")

    def chart(self, name: str, built: Chart | str) -> None:
        if isinstance(built, str):
            self.skipped[name] = built
            self.p(built, "skipped")
        else:
            self.charts[name] = built
            self.blocks.append(built)


def _esc(text: Any) -> str:
    # No "scheme://" may reach the page, even in text a study file brought along.
    return html.escape(str(text)).replace("://", ":&#47;&#47;")


def build_report(folder: str | Path, *, data: str | Path | None = None, funding: str | Path | None = None,
                 monte_carlo: str | Path | None = None) -> Report:
    """Read a results folder, build every chart (matplotlib figures) and the page's blocks."""
    res = read_results(folder)
    rep = Report(res)
    _header(rep)
    if res.kind in ("grid", "optuna"):
        _search_report(rep, data, funding, monte_carlo)
    elif res.kind == "walk_forward":
        _walk_forward_report(rep)
    else:
        _monte_carlo_report(rep)
    return rep


def _header(rep: Report) -> None:
    res, m = rep.results, rep.results.manifest
    d = m.get("data") or {}
    start, end = res.window
    days = (m.get("evaluation_window") or {}).get("days")
    count = m.get("configurations")
    counts = f"{count:,} configurations" if isinstance(count, int) else "?"
    if res.kind == "optuna":
        counts += f" from {m.get('n_trials', '?')} trials ({(m.get('optuna') or {}).get('sampler', '?')} sampler)"
    elif res.kind == "monte_carlo":
        mc = m.get("monte_carlo") or {}
        counts += (f" x {mc.get('method', '?')} samples = {m.get('backtests', '?'):,} backtests"
                   if isinstance(m.get("backtests"), int) else "")
    elif res.kind == "walk_forward":
        wf = m.get("walk_forward") or {}
        counts = (f"{wf.get('candidates', '?')} candidates x {wf.get('folds', '?')} folds (train "
                  f"{wf.get('train_days', '?')} days, test {wf.get('test_days', '?')}, step "
                  f"{wf.get('step_days', '?')}{', anchored' if wf.get('anchored') else ''}; inner "
                  f"{wf.get('inner', 'grid')})")
    versions = ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items())
    rows = [
        ("study", f"{res.name} ({m.get('study', {}).get('path', '?')})"),
        ("kind", res.kind),
        ("objective", f"{res.objective}: {metric_label(res.objective)}, "
                      f"{'lower' if res.lower else 'higher'} is better"),
        ("data", f"{d.get('path', '?')}: {d.get('days', '?')} days x {d.get('symbols', '?')} symbols, "
                 f"{d.get('first_date', '?')} .. {d.get('last_date', '?')}, fingerprint {d.get('fingerprint', '?')}"),
        ("evaluation window", f"{start} .. {end}" + (f" ({days} days)" if days else "")),
        ("configurations", counts),
        ("versions", versions or "?"),
        ("created", str(m.get("created", "?"))),
    ]
    if res.study_table.get("description"):
        rows.insert(1, ("description", str(res.study_table["description"])))
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    rep.blocks.append(f"<h1>{_esc(res.name)}: {_esc(res.kind.replace('_', '-'))} study report</h1>")
    rep.blocks.append(f'<table class="meta">{body}</table>')
    text = (m.get("study") or {}).get("text")
    if text:
        rep.blocks.append(f"<details><summary>Study file</summary><pre>{_esc(text)}</pre></details>")


# --------------------------------------------------------------------------- figures


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _wrap(text: str, width_in: float) -> str:
    """Wrap a title to the figure's width (about 10 characters an inch at 11 pt)."""
    import textwrap

    return "\n".join(textwrap.fill(part, max(30, int(width_in * 10))) for part in text.split("\n"))


def _percent_axis(axis, metric: str) -> None:
    if metric in PERCENT:
        from matplotlib.ticker import PercentFormatter

        axis.set_major_formatter(PercentFormatter(xmax=1.0))


def _cmap_norm(values: np.ndarray, lower: bool):
    import matplotlib
    from matplotlib.colors import Normalize, TwoSlopeNorm

    cmap = matplotlib.colormaps["RdYlGn_r" if lower else "RdYlGn"].with_extremes(bad="#d9d9d9")
    v = values[np.isfinite(values)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    # Centre a metric that changes sign at 0 (a loss reads red, a gain green).
    norm = TwoSlopeNorm(0.0, lo, hi) if lo < 0 < hi else Normalize(lo, hi)
    return cmap, norm


def _values(df: pl.DataFrame, col: str) -> list[Any]:
    """Distinct values of a column: numbers ascending, anything else by its text."""
    vals = {_key(v): v for v in df[col].to_list()}
    keys = list(vals)
    if all(isinstance(k, (int, float)) and not isinstance(k, bool) for k in keys if k is not None):
        keys.sort(key=lambda k: (k is None, k if k is not None else 0))
    else:
        keys.sort(key=lambda k: _show(k))
    return keys


def _panels(names: list[str], df: pl.DataFrame, exclude: set[str]) -> str | None:
    """The panel parameter: the swept one (not ``phase``) with the fewest values, if few enough."""
    cands = [c for c in names if c not in exclude and c != "phase"]
    if not cands:
        return None
    best = min(cands, key=lambda c: df[c].n_unique())
    return best if df[best].n_unique() <= MAX_PANELS else None


def _grid_layout(n: int) -> tuple[int, int]:
    ncols = n if n <= 3 else min(4, math.ceil(math.sqrt(n)) + (1 if n > 4 else 0))
    ncols = min(ncols, n)
    return math.ceil(n / ncols), ncols


def _finite_rows(df: pl.DataFrame, col: str) -> pl.DataFrame:
    return df.filter(pl.col(col).is_not_null() & pl.col(col).is_finite())


def _dedup(trials: pl.DataFrame) -> pl.DataFrame:
    # An Optuna search may try a configuration twice: count it once.
    return trials.unique("config_id", keep="first", maintain_order=True)


def heatmap_chart(res: Results, trials: pl.DataFrame, value: str | None = None) -> Chart | str:
    """The objective over two swept parameters, one panel per value of a third."""
    value = value or res.objective
    names = swept(trials, res.axes)
    if "rebalance_days" in names and "window" in names:
        pair = ["rebalance_days", "window"]
    elif len(names) >= 2:
        pair = sorted(names, key=lambda c: -trials[c].n_unique())[:2]
        if "rebalance_days" in pair:
            pair = ["rebalance_days"] + [c for c in pair if c != "rebalance_days"]
    else:
        return ("No heatmap: the study sweeps " + (f"only {names[0]}" if names else "no parameter")
                + "; a heatmap needs two swept parameters.")
    xcol, ycol = pair
    panel = _panels(names, trials, set(pair))
    averaged = [c for c in names if c not in (xcol, ycol, panel)]
    xs, ys = _values(trials, xcol), _values(trials, ycol)
    pvals = _values(trials, panel) if panel else [None]
    finite = _finite_rows(trials, value)
    if finite.height == 0:
        return f"No heatmap: no configuration has a finite {value}."
    keys = [xcol, ycol] + ([panel] if panel else [])
    cells: dict[tuple, list[float]] = {}
    for row in finite.select(keys + [value]).iter_rows():
        cells.setdefault(tuple(_key(v) for v in row[:-1]), []).append(row[-1])
    mean = {k: float(np.mean(v)) for k, v in cells.items()}
    coverage = len({k[:2] for k in mean}) / (len(xs) * len(ys))
    scatter = res.kind == "optuna" and coverage < 0.5
    all_values = np.array(list(mean.values()) if not scatter else finite[value].to_list(), dtype=float)
    cmap, norm = _cmap_norm(all_values, res.lower)
    nrows, ncols = _grid_layout(len(pvals))
    fig = _figure(min(4.6 * ncols + 1.2, 17), 3.6 * nrows + 0.8)
    axs = fig.subplots(nrows, ncols, squeeze=False)
    numeric = {c: all(isinstance(v, (int, float)) for v in _values(trials, c)) for c in (xcol, ycol)}
    best_fn = np.nanargmin if res.lower else np.nanargmax
    mappable = None
    for i, pv in enumerate(pvals):
        ax = axs[i // ncols][i % ncols]
        if scatter:
            sub = finite if panel is None else finite.filter(pl.col(panel) == pv)
            x = sub[xcol].to_numpy() if numeric[xcol] else np.array([xs.index(_key(v)) for v in sub[xcol]])
            y = sub[ycol].to_numpy() if numeric[ycol] else np.array([ys.index(_key(v)) for v in sub[ycol]])
            z = sub[value].to_numpy()
            mappable = ax.scatter(x, y, c=z, cmap=cmap, norm=norm, s=28, edgecolors="black", linewidths=0.3)
            if z.size:
                b = int(best_fn(z))
                ax.scatter([x[b]], [y[b]], marker="*", s=220, facecolors="none", edgecolors="black",
                           linewidths=1.2)
        else:
            Z = np.full((len(ys), len(xs)), np.nan)
            for (kx, ky, *kp), v in mean.items():
                if not panel or kp[0] == pv:
                    Z[ys.index(ky), xs.index(kx)] = v
            mappable = ax.imshow(np.ma.masked_invalid(Z), origin="lower", aspect="auto", cmap=cmap, norm=norm,
                                 interpolation="nearest")
            _category_ticks(ax.xaxis, xs, 16)
            _category_ticks(ax.yaxis, ys, 12)
            if len(xs) <= 16 and len(ys) <= 12:
                for yi in range(len(ys)):
                    for xi in range(len(xs)):
                        if np.isfinite(Z[yi, xi]):
                            ax.text(xi, yi, _fmt(float(Z[yi, xi]), value), ha="center", va="center", fontsize=7)
            if np.isfinite(Z).any():
                yi, xi = np.unravel_index(int(best_fn(Z)), Z.shape)
                from matplotlib.patches import Rectangle

                ax.add_patch(Rectangle((xi - 0.5, yi - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.6))
        if not numeric[xcol] and scatter:
            _category_ticks(ax.xaxis, xs, 16)
        if not numeric[ycol] and scatter:
            _category_ticks(ax.yaxis, ys, 12)
        ax.set_xlabel(param_label(xcol))
        ax.set_ylabel(param_label(ycol))
        ax.set_title(f"{panel} = {_show(pv)}" if panel else f"all {len(finite)} configurations", fontsize=10)
    for j in range(len(pvals), nrows * ncols):
        axs[j // ncols][j % ncols].set_visible(False)
    cbar = fig.colorbar(mappable, ax=axs, shrink=0.9)
    cbar.set_label(metric_label(value))
    _percent_axis(cbar.ax.yaxis, value)
    start, end = res.window
    how = (f"each dot one of {finite.height} trials, the star the best" if scatter else
           "the box marks the best cell" + (f"; each cell the mean over {', '.join(averaged)}" if averaged else ""))
    fig.suptitle(_wrap(f"{res.name}: {METRIC_LABELS.get(value, (value,))[0]} by {xcol} and {ycol}, "
                       f"{start} .. {end}\n({how})", fig.get_figwidth()), fontsize=11)
    caption = (f"{metric_label(value)} of every configuration over the evaluation window {start} .. {end}, "
               f"by {param_label(xcol)} (x) and {param_label(ycol)} (y)"
               + (f", one panel per {panel}" if panel else "")
               + (f"; averaged over {', '.join(averaged)}" if averaged else "")
               + (". An Optuna search does not fill a grid: each dot is a trial." if scatter else
                  ". Grey cells: no finite value."))
    return Chart("heatmap", "Objective over the swept parameters", fig, caption)


def _category_ticks(axis, values: list[Any], most: int) -> None:
    step = max(1, math.ceil(len(values) / most))
    idx = list(range(0, len(values), step))
    axis.set_ticks(idx)
    axis.set_ticklabels([_show(values[i]) for i in idx])


def _mc_band(mc: pl.DataFrame | None, ids: list[str]) -> tuple[float, float] | None:
    if mc is None:
        return None
    hit = mc.filter(pl.col("config_id").is_in(ids))
    if hit.height == 0:
        return None
    lo, hi = hit["q05"].min(), hit["q95"].max()  # several configurations at one point: the widest band
    return (float(lo), float(hi)) if lo is not None and hi is not None else None


def lines_chart(res: Results, table: pl.DataFrame, value: str, mc: pl.DataFrame | None = None,
                mc_note: str = "", band_from_table: bool = False) -> Chart | str:
    """The objective against ``rebalance_days``, one line per factor (else window), panels
    per a third swept parameter, with a Monte Carlo q05..q95 band where ``mc`` has the
    configuration (``band_from_table``: the table's own ``q05``/``q95`` columns)."""
    names = swept(table, res.axes)
    if "rebalance_days" not in names:
        return ("No chart of the objective against rebalance_days: the study does not sweep rebalance_days"
                + (f" (it sweeps {', '.join(names)})." if names else "."))
    line = "factor" if "factor" in names else ("window" if "window" in names else None)
    panel = _panels(names, table, {"rebalance_days", line})
    averaged = [c for c in names if c not in ("rebalance_days", line, panel)]
    finite = _finite_rows(table, value)
    if finite.height == 0:
        return f"No chart of the objective against rebalance_days: no configuration has a finite {value}."
    xs = _values(finite, "rebalance_days")
    lvals = _values(finite, line) if line else [None]
    pvals = _values(finite, panel) if panel else [None]
    pts: dict[tuple, list[tuple[float, str]]] = {}
    for row in finite.iter_rows(named=True):
        k = (_key(row[panel]) if panel else None, _key(row[line]) if line else None, row["rebalance_days"])
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
    fig = _figure(min(max(5.2 * ncols, 8.0) + 1.8, 17), 3.8 * nrows + 1.1)
    axs = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    best_fn = min if res.lower else max
    banded = False
    for i, pv in enumerate(pvals):
        ax = axs[i // ncols][i % ncols]
        for lv in lvals:
            keys = sorted(k for k in pts if k[0] == pv and k[1] == lv)
            if not keys:
                continue
            x = np.array([k[2] for k in keys], dtype=float)
            if scatter:
                for k in keys:
                    vals = [v for v, _ in pts[k]]
                    ax.scatter([k[2]] * len(vals), vals, s=14, color=color[lv], alpha=0.8,
                               edgecolors="none")
            else:
                y = np.array([np.mean([v for v, _ in pts[k]]) for k in keys])
                ax.plot(x, y, marker="o", markersize=3, linewidth=1.4, color=color[lv],
                        label=_show(lv) if line else "all configurations")
            bands = [(k[2], _table_band(pts[k], finite) if band_from_table else
                      _mc_band(mc, [c for _, c in pts[k]])) for k in keys]
            bands = [(bx, b) for bx, b in bands if b is not None]
            if bands:
                banded = True
                bx = np.array([b[0] for b in bands], dtype=float)
                lo_b, hi_b = [b[1][0] for b in bands], [b[1][1] for b in bands]
                if scatter:
                    ax.vlines(bx, lo_b, hi_b, color=color[lv], alpha=0.5, linewidth=3)
                else:
                    ax.fill_between(bx, lo_b, hi_b, color=color[lv], alpha=0.1, linewidth=0)
                    for edge in (lo_b, hi_b):
                        ax.plot(bx, edge, color=color[lv], linewidth=0.6, linestyle="--", alpha=0.8)
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
        ax.set_ylabel(("median " if band_from_table else "") + metric_label(res.objective))
        _percent_axis(ax.yaxis, res.objective if band_from_table else value)
        ax.set_title(f"{panel} = {_show(pv)}" if panel else "all configurations", fontsize=10)
        ax.grid(True, alpha=0.3)
    for j in range(len(pvals), nrows * ncols):
        axs[j // ncols][j % ncols].set_visible(False)
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch

    ax0 = axs[0][0]
    handles, labels = ax0.get_legend_handles_labels()
    if scatter and numeric_line:
        sm = ScalarMappable(norm=Normalize(float(min(lvals)), float(max(lvals))), cmap=seq)
        fig.colorbar(sm, ax=axs, shrink=0.9).set_label(param_label(line))
    elif scatter and line:
        handles += [Patch(color=color[v]) for v in lvals]
        labels += [_show(v) for v in lvals]
    if banded:
        handles.append(Patch(facecolor="grey", alpha=0.3, edgecolor="grey", linestyle="--"))
        labels.append("q05..q95 over samples" if band_from_table else "Monte Carlo q05..q95")
    if handles:
        fig.legend(handles, labels, title=line if line and not (scatter and numeric_line) else None,
                   loc="outside right upper", fontsize=8)
    start, end = res.window
    what = METRIC_LABELS.get(res.objective, (res.objective,))[0]
    avg = f"\n(each point the mean over {', '.join(averaged)})" if averaged and not scatter else ""
    if band_from_table:
        mcm = res.manifest.get("monte_carlo") or {}
        title = (f"{res.name}: median {what} over {mcm.get('n_samples', '?')} {mcm.get('method', '?')} samples "
                 f"by rebalance period, {start} .. {end}{avg}")
    else:
        title = f"{res.name}: {what} by rebalance period, {start} .. {end}{avg}"
    fig.suptitle(_wrap(title, fig.get_figwidth() - 1.5), fontsize=11)
    caption = (("Median over the samples of the " if band_from_table else "")
               + f"{metric_label(res.objective)} against {param_label('rebalance_days')}"
               + (f", one {'colour' if scatter else 'line'} per {line}" if line else "")
               + (f", one panel per {panel}" if panel else "")
               + (f"; points averaged over {', '.join(averaged)}" if averaged and not scatter else "")
               + ("; each dot is a trial, the black line the best per period" if scatter else "") + ". "
               + ("Shaded: the 5 %..95 % range over the samples (q05..q95). " if band_from_table and banded else "")
               + (mc_note if mc_note else ""))
    return Chart("objective_vs_rebalance_days", "Objective against the rebalance period", fig, caption.strip())


def _table_band(points: list[tuple[float, str]], table: pl.DataFrame) -> tuple[float, float] | None:
    return _mc_band(table, [c for _, c in points])


def _nav(ret: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NAV and drawdown of SEMANTICS §9 (peak including the starting NAV of 1)."""
    nav = np.cumprod(1.0 + ret)
    peak = np.maximum(np.maximum.accumulate(nav), 1.0)
    return nav, nav / peak - 1.0


def _dates(values) -> np.ndarray:
    return np.asarray(values, dtype="datetime64[D]")


def equity_chart(res: Results, runs: list[tuple[str, dict[str, Any], Any]], shown: list[str]) -> Chart:
    """NAV and drawdown, net and gross of fees and slippage, of the rerun top configurations."""
    import matplotlib

    fig = _figure(12, 7)
    ax, axd = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1])
    cm = matplotlib.colormaps["tab10"]
    positive = True
    for i, (label, params, result) in enumerate(runs):
        r = result.returns
        dates = _dates(r["date"].to_numpy())
        for col, style, tag in (("ret", "-", "net"), ("ret_pre_cost", "--", "gross")):
            nav, dd = _nav(r[col].to_numpy())
            positive &= bool((nav > 0).all())
            ax.plot(dates, nav, linestyle=style, color=cm(i), linewidth=1.3 if tag == "net" else 0.9,
                    label=f"{label} {_short(params, shown)} ({tag})")
            axd.plot(dates, dd, linestyle=style, color=cm(i), linewidth=1.1 if tag == "net" else 0.8)
    if positive:
        ax.set_yscale("log")
    ax.axhline(1.0, color="grey", linewidth=0.7, linestyle=":")
    ax.set_ylabel("NAV (1 = start" + (", log scale)" if positive else ")"))
    ax.legend(fontsize=8, loc="upper left", ncols=1 if len(runs) < 3 else 2)
    ax.grid(True, alpha=0.3)
    axd.set_ylabel("drawdown from peak (%)")
    _percent_axis(axd.yaxis, "max_drawdown")
    axd.set_xlabel("date")
    axd.grid(True, alpha=0.3)
    start, end = res.window
    ax.set_title(_wrap(f"{res.name}: top {len(runs)} by {res.objective}, NAV net (solid) and gross of fees "
                       f"and slippage (dashed), {start} .. {end}", 12), fontsize=11)
    axd.set_title("drawdown from the running peak", fontsize=10)
    caption = (f"Each configuration rerun with sweep.backtest over {start} .. {end}, starting flat with NAV 1. "
               "Gross is before fees and slippage; funding is in both. Drawdown is NAV over its running "
               "peak (at least 1) minus 1.")
    return Chart("equity_drawdown", "Equity and drawdown of the best configurations", fig, caption)


# --------------------------------------------------------------------------- grid and optuna


def _search_report(rep: Report, data, funding, monte_carlo) -> None:
    res = rep.results
    trials = _dedup(res.tables["trials"])
    names = swept(trials, res.axes)
    rep.h2("Best configurations")
    _best_table(rep, trials, names)
    rep.h2("Skill or luck")
    _overfitting_words(rep)
    rep.h2("Objective over the swept parameters")
    rep.chart("heatmap", heatmap_chart(res, trials))
    rep.h2("Objective against the rebalance period")
    mc, note = (None, "")
    if "rebalance_days" in names:
        mc, note = _monte_carlo_band(res, trials, monte_carlo)
    rep.chart("objective_vs_rebalance_days", lines_chart(res, trials, res.objective, mc, note))
    if note and "rebalance_days" in names and mc is None:
        rep.p(note)
    rep.h2("Equity, drawdown and yearly returns of the best configurations")
    _equity_section(rep, trials, names, data, funding)


def _best_table(rep: Report, trials: pl.DataFrame, names: list[str]) -> None:
    res = rep.results
    finite = _finite_rows(trials, res.objective)
    best = finite.sort(res.objective, descending=not res.lower).head(TOP_TABLE)
    shown = [res.objective] + [m for m in ("sharpe", "sharpe_pre_cost", "cagr", "max_drawdown", "turnover",
                                           "ann_vol") if m != res.objective and m in trials.columns]
    flag = "max_drawdown" in trials.columns
    cols = ["#"] + names + shown + (["note"] if flag else [])
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    body, busted = [], 0
    for i, row in enumerate(best.iter_rows(named=True), 1):
        cells = [str(i)] + [_show(row[c]) for c in names] + [_fmt(row[m], m) for m in shown]
        if flag:
            bust = row["max_drawdown"] is not None and row["max_drawdown"] <= -BUST
            busted += bust
            cells.append(("NAV went below zero" if row["max_drawdown"] < -1 else
                          f"lost {-row['max_drawdown']:.0%} at worst") if bust else "")
        body.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    start, end = res.window
    rep.p(f"Top {best.height} of {trials.height} distinct configurations by {res.objective}, "
          f"{start} .. {end} (net of fees, slippage and funding; sharpe_pre_cost before fees and slippage).")
    rep.blocks.append(f'<table class="data" id="best">{"<tr>" + head + "</tr>"}{"".join(body)}</table>')
    if busted:
        dd = trials["max_drawdown"]
        everywhere, negative = int((dd <= -BUST).sum()), int((dd < -1).sum())
        rep.p(f"{everywhere} of all {trials.height} configurations lost {BUST:.0%} or more of their NAV at some "
              f"point" + (f" ({negative} went below zero)" if negative else "") + ".", "skipped")
        rep.p(f"{busted} of these {best.height} lost {BUST:.0%} or more of their NAV at some point (max_drawdown "
              f"at or below -{BUST:.0%}). Near zero NAV the drifted weights grow to many times NAV, so the later "
              "daily returns, and the ratios computed from them, no longer describe a tradable book: set those "
              "configurations aside before reading the ranking.", "skipped")


def overfitting_sentences(summary: dict[str, Any] | None) -> list[str]:
    """``summary.json``'s overfitting statistics as sentences a researcher can act on."""
    if summary is None:
        return ["No summary.json in the folder: no deflated Sharpe ratio or PBO to report "
                "(rerun the study with this version of sweep to get them)."]
    o = summary.get("overfitting")
    if not isinstance(o, dict) or "dsr" not in o:
        return [f"No overfitting statistics in summary.json: {summary.get('note', 'none were computed')}."]
    n = o.get("n_trials", "?")
    sr, emax = o.get("best_sharpe_annual", float("nan")), o.get("expected_max_sharpe_annual", float("nan"))
    dsr, psr = o["dsr"], o.get("psr", float("nan"))
    if dsr >= 0.95:
        verdict = "it passes the usual 95 % bar: the best is unlikely to be luck alone."
    elif dsr >= 0.5:
        verdict = "suggestive, not conclusive: confirm it out of sample (a walk-forward study) before trading it."
    else:
        verdict = "do not trust it: luck explains it as well as skill does."
    out = [f"DSR {dsr:.3f}: after {n} tries, the best Sharpe is {sr:.2f} a year, while the best of {n} tries "
           f"of pure luck would be expected near {emax:.2f}; the probability that the best beats luck is "
           f"{dsr:.1%}. Verdict: {verdict}"]
    if math.isfinite(psr):
        out.append(f"PSR {psr:.3f} against zero, without deflation: "
                   + ("had this been the only configuration tried, its Sharpe would be convincing; the search "
                      "is what takes that away." if psr >= 0.95 and dsr < 0.95 else
                      "the confidence that the best's true Sharpe is above zero, ignoring the search."))
    years, have = o.get("min_backtest_years"), o.get("backtest_years")
    if isinstance(years, (int, float)) and isinstance(have, (int, float)) and math.isfinite(years):
        out.append(f"Minimum backtest length: a Sharpe of {sr:.2f} found among {n} tries needs {years:.1f} years "
                   f"of data to be told from luck; the window has {have:.1f}"
                   + (" (too short)." if years > have else " (long enough)."))
    if (o.get("kurtosis") or 0) > 10 or abs(o.get("skewness") or 0) > 2:
        out.append(f"The best's daily returns are far from normal (skewness {o.get('skewness', 0):.1f}, "
                   f"kurtosis {o.get('kurtosis', 0):.0f}): a few days carry its Sharpe, which the DSR counts "
                   "against it.")
    pbo = o.get("pbo")
    if isinstance(pbo, dict) and "pbo" in pbo:
        p = pbo["pbo"]
        verdict = ("the choice of the best is no better than a coin flip: the ranking does not carry over." if p >= 0.5
                   else "the in-sample ranking carries over only in part." if p >= 0.1
                   else "the in-sample ranking carries over well.")
        splits = pbo.get("n_valid", pbo.get("n_combinations"))
        out.append(f"PBO {p:.2f}: in {p:.0%} of the " + (f"{splits:,} " if isinstance(splits, int) else "")
                   + f"splits of the window into halves ({pbo.get('n_blocks', '?')} blocks), the in-sample winner "
                   f"ranked below the median out of sample; {verdict}")
        if "prob_oos_loss" in pbo:
            out.append(f"The in-sample winner lost money out of sample in {pbo['prob_oos_loss']:.0%} of the splits.")
        slope = pbo.get("degradation_slope")
        if isinstance(slope, (int, float)) and math.isfinite(slope):
            out.append(f"Degradation slope {slope:.2f}: each extra unit of in-sample Sharpe came with {slope:+.2f} "
                       "out of sample; " + ("a negative slope means the best in sample tend to do worse after: "
                                             "the search selects noise." if slope < 0 else
                                             "some of the in-sample edge persists."))
    return out


def _overfitting_words(rep: Report) -> None:
    sentences = overfitting_sentences(rep.results.summary)
    rep.blocks.append('<ul class="verdict">' + "".join(f"<li>{_esc(s)}</li>" for s in sentences) + "</ul>")


def _monte_carlo_band(res: Results, trials: pl.DataFrame, explicit) -> tuple[pl.DataFrame | None, str]:
    """The summary of a Monte Carlo study of the same configurations, and a sentence about it."""
    ids = set(trials["config_id"].to_list())
    fp = (res.manifest.get("data") or {}).get("fingerprint")
    cands: list[tuple[Path, dict[str, Any], pl.DataFrame]] = []
    if explicit is not None:
        other = read_results(explicit)
        if other.kind != "monte_carlo":
            raise SweepError(f"--monte-carlo {explicit}: a {other.kind} results folder, not a monte_carlo one")
        cands.append((other.folder, other.manifest, other.tables["summary"]))
    else:
        here = res.folder.resolve()
        for sib in sorted(p for p in here.parent.iterdir() if p.is_dir() and p != here):
            try:  # only summary.parquet is needed: the samples may be large
                m = json.loads((sib / "manifest.json").read_text())
                kind, data_fp = (m.get("study") or {}).get("kind"), (m.get("data") or {}).get("fingerprint")
                if kind != "monte_carlo" or data_fp != fp:
                    continue
                cands.append((sib, m, pl.read_parquet(sib / "summary.parquet")))
            except (ValueError, OSError, AttributeError, pl.exceptions.PolarsError):
                continue  # a neighbour's broken or unrelated folder is not this report's business
    best, overlap = None, 0
    for folder, m, s in cands:
        if not {"config_id", "q05", "q95"} <= set(s.columns):
            continue
        if "objective" in s.columns and s.height and s["objective"][0] != res.objective:
            continue
        k = len(ids & set(s["config_id"].to_list()))
        if k > overlap:
            best, overlap = (folder, m, s), k
    if best is None:
        if explicit is not None:
            return None, (f"No Monte Carlo band: {explicit} shares no configuration with this study "
                          f"(or ranks by another objective).")
        return None, ("No Monte Carlo band: no monte_carlo results folder beside this one covers these "
                      "configurations (run one, or pass --monte-carlo FOLDER).")
    folder, m, summary = best
    mcm = m.get("monte_carlo") or {}
    w = m.get("evaluation_window") or {}
    note = (f"Monte Carlo band (shaded): the 5 %..95 % range of {res.objective} over {mcm.get('n_samples', '?')} "
            f"{mcm.get('method', '?')} samples from {folder.name} ({w.get('start', '?')} .. {w.get('end', '?')}), "
            f"for the {overlap} configurations it shares with this study.")
    return summary, note


# --- rerunning the best configurations


def _candidates(rel: Path, anchors: list[Path]) -> list[Path]:
    if rel.is_absolute():
        return [rel]
    return [rel] + [a / rel for a in anchors]


def load_study_panel(res: Results, data=None, funding=None):
    """The panel the study ran on, or a sentence saying why it cannot be had.

    Relative paths are looked up as ``sweep run`` does (current folder, the study
    file's folder and its parent), and also from the results folder's parent's
    parent (``results/<name>`` sits in the project root); the fingerprint must match.
    """
    from ._panel import load_panel

    m = res.manifest
    d = m.get("data") or {}
    study_path = Path((m.get("study") or {}).get("path") or ".")
    root = Path(__file__).resolve().parent.parent
    anchors = [study_path.parent, study_path.parent.parent, res.folder.parent.parent, res.folder.parent, root]
    if data is not None:
        dpath = Path(data)
    else:
        names = [Path(d["path"])] if d.get("path") else []
        if res.study_table.get("data"):
            names.append(Path(res.study_table["data"]))
        found = [c for n in names for c in _candidates(n, anchors) if c.is_file()]
        if not found:
            return None, (f"The study's data {d.get('path', '?')} is not found from here: pass --data "
                          "to rerun the best configurations.")
        dpath = found[0]
    fpath = None
    if funding is not None:
        fpath = Path(funding)
    elif res.study_table.get("funding"):
        rel = Path(res.study_table["funding"])
        found = [c for c in _candidates(rel, anchors) if c.is_file()]
        if not found:
            return None, f"The study's funding table {rel} is not found from here: pass --funding."
        fpath = found[0]
    try:
        panel = load_panel(dpath, fpath)
    except SweepError as exc:
        return None, f"The study's data could not be loaded ({exc}); the best configurations are not rerun."
    want = d.get("fingerprint")
    if want and panel.fingerprint != want:
        return None, (f"{dpath}: the data changed since the study ran (fingerprint {panel.fingerprint}, the "
                      f"study's {want}); rerun the study, or pass the original data with --data"
                      + (" and --funding" if fpath or res.study_table.get("funding") else "") + ".")
    return panel, ""


def _row_params(row: dict[str, Any], res: Results) -> dict[str, Any]:
    from ._params import PARAMS

    return {k: row[k] for k in res.params if k in PARAMS and k in row and row[k] is not None}


def rerun_best(res: Results, trials: pl.DataFrame, panel, k: int = TOP_EQUITY):
    """The top ``k`` configurations by the objective, rerun over the evaluation window:
    ``[(label, params, Result, row)]``."""
    from ._backtest import backtest

    start, end = res.window
    best = _finite_rows(trials, res.objective).sort(res.objective, descending=not res.lower).head(k)
    runs = []
    for i, row in enumerate(best.iter_rows(named=True), 1):
        params = _row_params(row, res)
        result = backtest(panel, start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end),
                          return_weights=True, **params)
        runs.append((f"#{i}", params, result, row))
    return runs


def yearly_returns(result) -> list[tuple[int, str, str, float]]:
    """Calendar-year compounded net returns: ``(year, first day, last day, return)``."""
    r = result.returns.select(pl.col("date").dt.year().alias("year"), "date", "ret")
    out = []
    for (year,), g in r.group_by("year", maintain_order=True):
        out.append((int(year), str(g["date"][0]), str(g["date"][-1]), float(np.prod(1.0 + g["ret"].to_numpy()) - 1.0)))
    return out


def _equity_section(rep: Report, trials: pl.DataFrame, names: list[str], data, funding) -> None:
    res = rep.results
    panel, why = load_study_panel(res, data, funding)
    if panel is None:
        rep.chart("equity_drawdown", f"No equity curves or yearly returns: {why}")
        return
    runs = rerun_best(res, trials, panel)
    if not runs:
        rep.chart("equity_drawdown", f"No equity curves: no configuration has a finite {res.objective}.")
        return
    for label, _, result, row in runs:
        got, want = result.metrics.get(res.objective), row[res.objective]
        if not (abs(got - want) <= 1e-9 * max(1.0, abs(want))):
            rep.p(f"Warning: rerun, configuration {label} ({row['config_id']}) gives {res.objective} {got:.6g}, "
                  f"the results table {want:.6g}: the engine changed since the study ran; rerun the study.",
                  "skipped")
    for label, params, result, _ in runs:
        warning = bust_sentence(label, _short(params, names), result, res.objective)
        if warning:
            rep.p(warning, "skipped")
    rep.chart("equity_drawdown", equity_chart(res, [(lab, p, r) for lab, p, r, _ in runs], names))
    _yearly_table(rep, runs, names)


def bust_sentence(label: str, short: str, result, objective: str) -> str | None:
    """A warning when a rerun configuration lost ``BUST`` of its NAV or had a day beyond +-100 %."""
    R = result.returns["ret"].to_numpy()
    if R.size == 0:
        return None
    nav, dd = _nav(R)
    dates = result.returns["date"]
    big = int(np.argmax(np.abs(R)))
    if dd.min() > -BUST and abs(R[big]) <= 1.0:
        return None
    low = int(np.argmin(nav))
    parts = [f"Warning: {label} ({short}) is not a book to trade: its NAV fell to {nav[low]:.3g} "
             f"(start 1) on {dates[low]}"]
    if result.weights is not None:
        gross = np.abs(result.weights.drop("date").to_numpy()).sum(axis=1)
        g = int(np.argmax(gross))
        if gross[g] > 3.0:
            parts.append(f"its drifted weights reached {gross[g]:,.0f} x NAV on {dates[g]}")
    if abs(R[big]) > 1.0:
        parts.append(f"one day returned {R[big]:+,.0%} ({dates[big]})")
    return (", ".join(parts) + f". Its {objective} describes a book that was all but wiped out, not an edge; "
            "judge the configurations that never lost most of their capital.")


def _yearly_table(rep: Report, runs, names: list[str]) -> None:
    years: dict[int, dict[str, tuple[str, str, float]]] = {}
    for label, _, result, row in runs:
        for year, first, last, ret in yearly_returns(result):
            years.setdefault(year, {})[row["config_id"]] = (first, last, ret)
    head = "<tr><th>year</th>" + "".join(
        f"<th>{_esc(label)} {_esc(_short(p, names))}</th>" for label, p, _, _ in runs) + "</tr>"
    body = []
    for year in sorted(years):
        spans = {v[:2] for v in years[year].values()}
        first, last = min(s[0] for s in spans), max(s[1] for s in spans)
        part = ""
        if first != f"{year}-01-01" or last != f"{year}-12-31":
            part = f" ({first[5:]} .. {last[5:]})"
        cells = []
        for _, _, _, row in runs:
            v = years[year].get(row["config_id"])
            cells.append(f'<td data-config="{_esc(row["config_id"])}" data-year="{year}" '
                         f'data-value="{v[2]!r}" class="{"neg" if v[2] < 0 else "pos"}">{v[2]:.1%}</td>'
                         if v else "<td>-</td>")
        body.append(f"<tr><th>{year}{_esc(part)}</th>{''.join(cells)}</tr>")
    total = "".join(f"<td>{_fmt(r.metrics['total_return'], 'total_return')}</td>" for _, _, r, _ in runs)
    cagr = "".join(f"<td>{_fmt(r.metrics['cagr'], 'cagr')}</td>" for _, _, r, _ in runs)
    gross = "".join(f"<td>{_fmt(float(np.prod(1 + r.returns['ret_pre_cost'].to_numpy()) - 1), 'total_return')}</td>"
                    for _, _, r, _ in runs)
    start, end = rep.results.window
    rep.p(f"Calendar-year net returns (compounded daily returns net of fees, slippage and funding), "
          f"{start} .. {end}; a partial year shows its dates.")
    rep.blocks.append(f'<table class="data" id="yearly-returns">{head}{"".join(body)}'
                      f'<tr class="total"><th>whole window, net</th>{total}</tr>'
                      f'<tr class="total"><th>whole window, gross of fees and slippage</th>{gross}</tr>'
                      f'<tr class="total"><th>CAGR, net</th>{cagr}</tr></table>')


# --------------------------------------------------------------------------- walk-forward


def oos_equity_chart(res: Results, folds: pl.DataFrame, oos: pl.DataFrame, shown: list[str]) -> Chart | str:
    if oos.height == 0:
        return "No out-of-sample equity: oos_returns.parquet has no rows."
    oos = oos.sort("date")
    dates = _dates(oos["date"].to_numpy())
    nav, dd = _nav(oos["ret"].to_numpy())
    fig = _figure(12, 6.5)
    ax, axd = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1])
    ax.plot(dates, nav, color="tab:blue", linewidth=1.4, label="out-of-sample NAV (net)")
    axd.plot(dates, dd, color="tab:red", linewidth=1.0)
    positive = bool((nav > 0).all())
    if positive:
        ax.set_yscale("log")
    ax.axhline(1.0, color="grey", linewidth=0.7, linestyle=":")
    first_day = {int(f): d for f, d in oos.group_by("fold").agg(pl.col("date").min()).iter_rows()}
    annotate = folds.height <= 14
    for row in folds.sort("fold").iter_rows(named=True):
        d0 = first_day.get(int(row["fold"]))
        if d0 is None:
            continue
        x = np.datetime64(d0, "D")
        for a in (ax, axd):
            a.axvline(x, color="black", linewidth=0.8, linestyle="--", alpha=0.6)
        if annotate:
            ax.annotate(f"fold {row['fold']}: {_short(row, shown)}", xy=(x, 0.98),
                        xycoords=("data", "axes fraction"), xytext=(2, 0), textcoords="offset points",
                        va="top", ha="left", fontsize=7, rotation=90, color="0.2",
                        bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.7})
    ax.set_ylabel("NAV (1 = start" + (", log scale)" if positive else ")"))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    axd.set_ylabel("drawdown from peak (%)")
    _percent_axis(axd.yaxis, "max_drawdown")
    axd.set_xlabel("date (dashed: first test day of each fold)")
    axd.set_title("drawdown from the running peak", fontsize=10)
    axd.grid(True, alpha=0.3)
    ax.set_title(_wrap(f"{res.name}: stitched out-of-sample NAV of the walk-forward, {oos['date'][0]} .. "
                       f"{oos['date'][-1]}, {folds.height} folds", 12), fontsize=11)
    caption = ("Each fold trades, fresh and flat, the configuration chosen on its train window alone; the "
               "dashed lines mark the first test day of each fold, labelled with its choice. Net of fees, "
               "slippage and funding.")
    return Chart("oos_equity", "Out-of-sample equity", fig, caption)


def train_test_chart(res: Results, folds: pl.DataFrame) -> Chart | str:
    obj = res.objective
    tr, te = f"train_{obj}", f"test_{obj}"
    if folds.height == 0:
        return "No train/test chart: folds.parquet has no rows."
    folds = folds.sort("fold")
    x = np.arange(folds.height)
    fig = _figure(max(7.0, 0.7 * folds.height + 3), 4.4)
    ax = fig.subplots()
    ax.bar(x - 0.2, folds[tr].to_numpy(), width=0.4, label="train window (where it was chosen)", color="tab:grey")
    ax.bar(x + 0.2, folds[te].to_numpy(), width=0.4, label="test window (out of sample)", color="tab:blue")
    ax.axhline(0.0, color="black", linewidth=0.7)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{f}\n{str(d)[:7]}" for f, d in zip(folds["fold"], folds["test_start"])], fontsize=8)
    ax.set_xlabel("fold (and the month its test window starts)")
    ax.set_ylabel(metric_label(obj))
    _percent_axis(ax.yaxis, obj)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(_wrap(f"{res.name}: {METRIC_LABELS.get(obj, (obj,))[0]} of each fold's choice, train vs "
                       f"test, {folds['train_start'].min()} .. {folds['test_end'].max()}",
                       fig.get_figwidth()), fontsize=11)
    caption = ("The configuration chosen in each fold, scored on the train window it was chosen on and on "
               "the test window that followed. A test bar far below its train bar is the search's optimism.")
    return Chart("train_vs_test", "Train against test, per fold", fig, caption)


def _walk_forward_report(rep: Report) -> None:
    res = rep.results
    folds, oos = res.tables["folds"], res.tables["oos_returns"]
    obj = res.objective
    shown = [c for c in res.axes if c in folds.columns]
    s = res.summary or {}
    rep.h2("Out of sample")
    m = s.get("metrics") or {}
    if m:
        ratio = s.get("oos_is_sharpe_ratio")
        rep.p(f"Out of sample ({s.get('oos_start')} .. {s.get('oos_end')}, {s.get('oos_days', '?')} days): "
              f"Sharpe {_fmt(m.get('sharpe'))}, total return {_fmt(m.get('total_return'), 'total_return')}, "
              f"CAGR {_fmt(m.get('cagr'), 'cagr')}, max drawdown {_fmt(m.get('max_drawdown'), 'max_drawdown')}. "
              f"The choices averaged a Sharpe of {_fmt(s.get('is_sharpe_mean'))} on their train windows: "
              f"the out-of-sample Sharpe is {_fmt(ratio)} times that"
              + (" (a search that picks skill keeps a good part of it; one that picks noise gives about 0 or "
                 "less)." if isinstance(ratio, float) else "."))
        if "mean_test_rank" in s and "n_candidates" in folds.columns and folds.height:
            n = int(folds["n_candidates"].max())
            rep.p(f"On the test windows the choice ranked {s['mean_test_rank']:.1f} of {n} on average "
                  f"(1 = best; a random pick would average {(n + 1) / 2:.1f}).")
    else:
        rep.p("No summary.json in the folder: no out-of-sample metrics in words (the chart below uses "
              "oos_returns.parquet).")
    rep.chart("oos_equity", oos_equity_chart(res, folds, oos, shown))
    rep.h2("Train against test")
    rep.chart("train_vs_test", train_test_chart(res, folds))
    rep.h2("Folds and their choices")
    cols = ["fold", "train_start", "train_end", "test_start", "test_end", *shown, f"train_{obj}", f"test_{obj}"]
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols + ["test rank"])
    body = []
    for row in folds.sort("fold").iter_rows(named=True):
        rank = str(row.get("test_rank", "-")) + (f"/{row['n_candidates']}" if "n_candidates" in row else "")
        cells = [_fmt(row[c], obj if c.endswith(obj) else None) for c in cols] + [rank]
        body.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    rep.blocks.append(f'<table class="data" id="folds"><tr>{head}</tr>{"".join(body)}</table>')


# --------------------------------------------------------------------------- monte carlo


def distribution_chart(res: Results, summary: pl.DataFrame, samples: pl.DataFrame, shown: list[str]) -> Chart | str:
    obj = res.objective
    top = summary.filter(pl.col("median").is_not_null() & pl.col("median").is_not_nan()) \
        .sort("median", descending=not res.lower).head(TOP_BOXES)
    if top.height == 0:
        return f"No distribution chart: no configuration has a finite median {obj}."
    data, labels = [], []
    for row in top.iter_rows(named=True):
        v = samples.filter(pl.col("config_id") == row["config_id"])[obj].to_numpy()
        data.append(v[np.isfinite(v)])
        labels.append(_short(row, shown) if shown else row["config_id"])
    # Best at the top: boxplot draws the first position lowest.
    data, labels = data[::-1], labels[::-1]
    fig = _figure(11, 1.0 + 0.38 * len(data) + 1.2)
    ax = fig.subplots()
    ax.boxplot(data, orientation="horizontal", whis=(5, 95), tick_labels=labels, showfliers=True,
               flierprops={"markersize": 2, "alpha": 0.5}, medianprops={"color": "tab:red"})
    if obj not in LOWER_IS_BETTER:
        ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel(metric_label(obj))
    _percent_axis(ax.xaxis, obj)
    ax.set_ylabel("configuration (" + ", ".join(shown) + ")" if shown else "configuration")
    ax.grid(True, axis="x", alpha=0.3)
    mc = res.manifest.get("monte_carlo") or {}
    start, end = res.window
    ax.set_title(_wrap(f"{res.name}: {METRIC_LABELS.get(obj, (obj,))[0]} over {mc.get('n_samples', '?')} "
                       f"{mc.get('method', '?')} samples, top {top.height} of {summary.height} by median, "
                       f"{start} .. {end}", 9), fontsize=11)
    caption = ("Box: the middle half of the samples, red line the median; whiskers at the 5 % and 95 % "
               "quantiles (summary.parquet's q05, q95); dots beyond them. "
               + {"block_bootstrap": "Samples are stationary block-bootstrap resamples of whole days.",
                  "phase": "Samples are the rebalance phases 0 .. k-1 of each configuration.",
                  "subperiod": "Samples are random subperiods of the evaluation window."}.get(mc.get("method"), ""))
    return Chart("distribution", "Distribution over the samples", fig, caption)


def _monte_carlo_report(rep: Report) -> None:
    res = rep.results
    summary, samples = res.tables["summary"], res.tables["samples"]
    shown = swept(summary, res.axes)
    obj = res.objective
    rep.h2("How much is luck")
    top = summary.filter(pl.col("median").is_not_null() & pl.col("median").is_not_nan()) \
        .sort("median", descending=not res.lower)
    if top.height:
        b = top.row(0, named=True)
        straddle = b["q05"] is not None and b["q95"] is not None and b["q05"] < 0 < b["q95"]
        rep.p(f"Best by median: {_short(b, shown)}, median {obj} {_fmt(b['median'], obj)}, 90 % of samples "
              f"between {_fmt(b['q05'], obj)} and {_fmt(b['q95'], obj)}"
              + (f", P({obj} > 0) {b['p_positive']:.0%}" if b.get("p_positive") is not None else "")
              + (f", best of its sample {b['p_best']:.0%} of the time" if b.get("p_best") is not None else "")
              + (". Its range straddles zero: the sign of the result is not established." if straddle and
                 obj not in LOWER_IS_BETTER else "."))
    rep.chart("distribution", distribution_chart(res, summary, samples, shown))
    rep.h2("Median against the rebalance period")
    rep.chart("objective_vs_rebalance_days", lines_chart(res, summary, "median", band_from_table=True))
    rep.h2("Summary per configuration")
    cols = shown + ["mean", "median", "q05", "q95", "p_positive", "p_best", "n_samples"]
    cols = [c for c in cols if c in summary.columns]
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    body = []
    for row in top.head(MAX_TABLE_ROWS).iter_rows(named=True):
        cells = [_fmt(row[c], obj if c in ("mean", "median", "q05", "q95") else None) for c in cols]
        body.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    if top.height > MAX_TABLE_ROWS:
        rep.p(f"The {MAX_TABLE_ROWS} best of {top.height} configurations by median; summary.parquet has all.")
    rep.blocks.append(f'<table class="data" id="mc-summary"><tr>{head}</tr>{"".join(body)}</table>')


# --------------------------------------------------------------------------- HTML and files

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1250px;
 padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.3em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
table.meta th,table.meta td{text-align:left}table.meta th{background:#f4f4f4;white-space:nowrap}
table.data tr:nth-child(even){background:#fafafa}table.data th{background:#f0f0f0}
td.neg{color:#b00020}td.pos{color:#1b6e20}tr.total td,tr.total th{font-weight:600}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#555;margin-top:.3em}p.skipped{color:#8a5a00;font-style:italic}
ul.verdict li{margin:.3em 0}pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}
footer{margin-top:3em;font-size:.8em;color:#777}
"""


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": "sweep"})
    return buf.getvalue()


def render_html(rep: Report, images: dict[str, bytes], charts_dir: str) -> str:
    parts = []
    for b in rep.blocks:
        if isinstance(b, Chart):
            uri = "data:image/png;base64," + base64.b64encode(images[b.name]).decode("ascii")
            parts.append(f'<figure id="{b.name}"><img src="{uri}" alt="{_esc(b.title)}">'
                         f"<figcaption>{_esc(b.caption)} ({_esc(charts_dir)}/{b.name}.png)</figcaption></figure>")
        else:
            parts.append(b)
    from . import __version__

    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    title = f"{rep.results.name}: {rep.results.kind} report"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_esc(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts)
            + f"\n<footer>Written by sweep {__version__} on {now} from {_esc(rep.results.folder)}; the charts are "
              f"also in {_esc(charts_dir)}/ as PNG files.</footer>\n</body></html>\n")


def _write_bytes(data: bytes, path: Path) -> None:
    # Atomic, as sweep._io's writers: a reader sees the old file or the new one.
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def charts_folder(out_html: Path) -> Path:
    """Where the PNG files of a report go: ``<stem>_charts/`` beside the HTML."""
    return out_html.with_name(out_html.stem + CHARTS_SUFFIX)


def write_report(folder: str | Path, out_html: str | Path | None = None, *, data: str | Path | None = None,
                 funding: str | Path | None = None, monte_carlo: str | Path | None = None) -> Path:
    """Write the HTML report of a results folder and its charts as PNG files; return the HTML's path.

    Default ``out_html``: ``<folder>/report.html``; the PNG files go to
    ``<stem>_charts/`` beside it (PNG files of an earlier report there that this
    one does not produce are removed, so the folder matches the page).
    """
    rep = build_report(folder, data=data, funding=funding, monte_carlo=monte_carlo)
    out = Path(out_html) if out_html is not None else rep.results.folder / "report.html"
    if out.is_dir():
        raise SweepError(f"--out {out} is a folder; give the HTML file to write (e.g. {out / 'report.html'})")
    if not out.parent.exists():
        raise SweepError(f"--out {out}: no such folder {out.parent}")
    cdir = charts_folder(out)
    try:
        cdir.mkdir(exist_ok=True)
        images = {name: _png(c.figure) for name, c in rep.charts.items()}
        for name, png in images.items():
            _write_bytes(png, cdir / f"{name}.png")
        for old in cdir.glob("*.png"):
            if old.stem not in images:
                old.unlink()
        _write_bytes(render_html(rep, images, cdir.name).encode("utf-8"), out)
    except OSError as exc:
        raise SweepError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None
    return out


# --------------------------------------------------------------------------- command line


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``sweep report`` to the CLI's subparsers (their ``parser_class`` raises ``SweepError``)."""
    p = subparsers.add_parser(
        "report", help="write an HTML report with charts of a results folder",
        description="Write one self-contained HTML page (charts embedded, no network needed) of a results "
                    "folder of any kind, with the charts also as PNG files in <name>_charts/ beside it.")
    p.add_argument("results", help="results folder (what `sweep run` wrote)")
    p.add_argument("--out", metavar="FILE.html", help="HTML file to write (default RESULTS/report.html)")
    p.add_argument("--data", help="the study's data file, if it moved since the run (to rerun the best)")
    p.add_argument("--funding", help="the study's separate funding table, if it had one and it moved")
    p.add_argument("--monte-carlo", metavar="FOLDER", dest="monte_carlo",
                   help="monte_carlo results folder whose q05..q95 band to draw (default: a sibling folder "
                        "on the same data sharing configurations)")
    return p


def command(args) -> int:
    """Run ``sweep report``; print where the page went and which charts were skipped."""
    out = write_report(args.results, getattr(args, "out", None), data=getattr(args, "data", None),
                       funding=getattr(args, "funding", None), monte_carlo=getattr(args, "monte_carlo", None))
    n = len(list(charts_folder(out).glob("*.png")))
    print(f"wrote {out} ({n} chart{'s' if n != 1 else ''}, also as PNG in {charts_folder(out)}/)")
    return 0
