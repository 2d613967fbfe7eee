"""What every part of ``sweep report`` shares: labels and number formats, the results folder
as read, the page being built, the choice of the best book among those not ruined, and
the small figure helpers (see ``sweep.report.page`` for the page itself)."""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sweep.core.errors import SweepError
from sweep.engine.params import LOWER_IS_BETTER
from sweep.results.schema import check_schema

# The charts each kind can have, in page order (file names without ".png").
CHARTS = {
    "grid": ("equity_drawdown", "heatmap", "objective_vs_rebalance_days"),
    "optuna": ("equity_drawdown", "heatmap", "objective_vs_rebalance_days"),
    "walk_forward": ("oos_equity", "train_vs_test"),
    "monte_carlo": ("distribution", "objective_vs_rebalance_days"),
    "portfolio": ("book_equity",),
}
TOP_EQUITY = 3  # distinct strategies rerun for the equity curves and the yearly table
TOP_TABLE = 10  # rows of the best-configurations table
TOP_BOXES = 15  # configurations in the Monte Carlo box plot
MAX_PANELS = 12  # more values than this of the panel parameter: averaged over instead
MAX_LINES = 10  # more values than this of the line parameter: a scatter instead
MAX_TABLE_ROWS = 60
DPI = 110
# The four figures the first screen gives for a book, beside the objective.
KEY_METRICS = ("sharpe", "cagr", "max_drawdown", "turnover")

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
    "ruined": ("ruined", "1 = the NAV reached zero"),
}
PERCENT = {"total_return", "cagr", "ann_vol", "max_drawdown", "win_rate", "cost_paid", "funding_return",
           "avg_net_exposure", "avg_gross_exposure"}
# Metrics whose sign is the news (a loss against a gain): drawn on a diverging scale centred on 0.
SIGNED = {"total_return", "cagr", "sharpe", "sharpe_pre_cost", "sortino", "calmar", "funding_return",
          "avg_net_exposure", "median", "mean", "q05", "q95"}
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


def metric_name(m: str) -> str:
    return METRIC_LABELS.get(m, (m,))[0]


def param_label(p: str) -> str:
    return PARAM_LABELS.get(p, p.replace("_", " "))


def show(v: Any) -> str:
    """A parameter value as text: ``7``, ``0.5``, ``a,b``."""
    if v is None:
        return "-"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v)) or "none"
    if isinstance(v, float):
        if v != v:
            return "nan"
        return str(int(v)) if v.is_integer() else f"{v:g}"
    return str(v)


def key(v: Any) -> Any:
    """A value usable as a dict key (a list column's value as a tuple)."""
    return tuple(v) if isinstance(v, list) else v


def fmt(v: Any, metric: str | None = None) -> str:
    """A metric's value as text: a percent for PERCENT metrics, 3 decimals otherwise."""
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "nan" if v != v else ("inf" if v > 0 else "-inf")
        if metric in PERCENT:
            return f"{v:.1%}"
        if metric in ("n_rebalances", "ruined"):
            return f"{v:.0f}"
        if metric == "turnover":
            return f"{v:.1f}"
        return f"{v:.3f}"
    return show(v)


def short(params: dict[str, Any], names: list[str]) -> str:
    """``rebal 7, win 30, equal``: a configuration in a legend or tick label."""
    parts = []
    for k in names:
        if k in params:
            tag = SHORT.get(k, k)
            parts.append(f"{tag} {show(params[k])}" if tag else show(params[k]))
    return ", ".join(parts) or "the configuration"


def esc(text: Any) -> str:
    # No "scheme://" may reach the page, even in text a study file brought along.
    return html.escape(str(text)).replace("://", ":&#47;&#47;")


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --------------------------------------------------------------------------- reading


def read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise SweepError(f"{path}: unreadable ({first_line(exc)}); rerun the study with --force") from None
    if not isinstance(obj, dict):
        raise SweepError(f"{path}: unreadable (not a JSON object); rerun the study with --force")
    return obj


def read_parquet(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise SweepError(f"{path}: missing (the results folder is incomplete); rerun the study")
    try:
        return pl.read_parquet(path)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise SweepError(f"{path}: unreadable ({first_line(exc)}); rerun the study with --force") from None


def require(df: pl.DataFrame, path: Path, columns: list[str]) -> None:
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
    summary: dict[str, Any] | None  # summary.json, or portfolio.json for a portfolio
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


def _portfolio_manifest(folder: Path, doc: dict[str, Any]) -> dict[str, Any]:
    # `sweep portfolio` writes no manifest.json: portfolio.json carries what the header needs.
    prov = doc.get("provenance") or {}
    return {"study": {"name": folder.name, "kind": "portfolio", "objective": "sharpe"},
            "data": prov.get("data") or {}, "evaluation_window": doc.get("evaluation_window") or {},
            "configurations": len(doc.get("strategies") or []), "created": prov.get("created"),
            "versions": {"sweep": prov.get("sweep_version", "?")}}


def read_results(folder: str | Path) -> Results:
    """Read a results folder (or a file inside it); raise ``SweepError`` naming the bad file."""
    folder = Path(folder)
    if folder.suffix in (".parquet", ".json") and not folder.is_dir():
        folder = folder.parent
    if not folder.exists():
        raise SweepError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise SweepError(f"{folder}: not a results folder (a file; give the folder `sweep run` wrote)")
    mpath, ppath = folder / "manifest.json", folder / "portfolio.json"
    doc = read_json(ppath) if ppath.exists() else None
    if mpath.exists():
        manifest = read_json(mpath)
        check_schema(manifest, mpath)
    elif doc is not None:
        manifest = _portfolio_manifest(folder, doc)
    else:
        raise SweepError(f"{folder}: not a results folder (no manifest.json; run a study into it first)")
    study = manifest.get("study")
    kind = study.get("kind") if isinstance(study, dict) else None
    if kind not in CHARTS:
        raise SweepError(f"{mpath}: not a sweep manifest (study kind {kind!r}); rerun the study")
    objective = study.get("objective") or "sharpe"
    tables: dict[str, pl.DataFrame] = {}
    summary = None
    if kind in ("grid", "optuna"):
        p = folder / "trials.parquet"
        tables["trials"] = read_parquet(p)
        require(tables["trials"], p, ["config_id", objective])
    elif kind == "walk_forward":
        p = folder / "folds.parquet"
        tables["folds"] = read_parquet(p)
        require(tables["folds"], p, ["fold", "test_start", "test_end", f"train_{objective}", f"test_{objective}"])
        p = folder / "oos_returns.parquet"
        tables["oos_returns"] = read_parquet(p)
        require(tables["oos_returns"], p, ["date", "fold", "ret"])
    elif kind == "monte_carlo":
        p = folder / "summary.parquet"
        tables["summary"] = read_parquet(p)
        require(tables["summary"], p, ["config_id", "median", "q05", "q95"])
        p = folder / "samples.parquet"
        tables["samples"] = read_parquet(p)
        require(tables["samples"], p, ["config_id", "sample", objective])
    else:
        if doc is None:
            raise SweepError(f"{ppath}: missing (the portfolio folder is incomplete); rerun the portfolio")
        p = folder / "portfolio_returns.parquet"
        tables["returns"] = read_parquet(p)
        require(tables["returns"], p, ["date", "book"])
        summary = doc
    spath = folder / "summary.json"
    if kind != "portfolio" and spath.exists():
        summary = read_json(spath)
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


def values(df: pl.DataFrame, col: str) -> list[Any]:
    """Distinct values of a column: numbers ascending, anything else by its text."""
    vals = {key(v): v for v in df[col].to_list()}
    keys = list(vals)
    if all(isinstance(k, (int, float)) and not isinstance(k, bool) for k in keys if k is not None):
        keys.sort(key=lambda k: (k is None, k if k is not None else 0))
    else:
        keys.sort(key=lambda k: show(k))
    return keys


def finite_rows(df: pl.DataFrame, col: str) -> pl.DataFrame:
    return df.filter(pl.col(col).is_not_null() & pl.col(col).is_finite())


def dedup(trials: pl.DataFrame) -> pl.DataFrame:
    # An Optuna search may try a configuration twice: count it once.
    return trials.unique("config_id", keep="first", maintain_order=True)


# --------------------------------------------------------------------------- ruin and the best


def ruined_mask(df: pl.DataFrame, column: str = "ruined") -> pl.Expr:
    """True for a ruined book (SEMANTICS §8: the metric ``ruined`` is 1.0), as
    ``sweep.stats.choose.usable`` reads it; a table without the column has none."""
    return (pl.col(column).cast(pl.Float64) > 0.0).fill_null(False) if column in df.columns else pl.lit(False)


def ranked(df: pl.DataFrame, objective: str, lower: bool, column: str = "ruined") -> tuple[pl.DataFrame, int]:
    """The rows with a finite objective that were not ruined, best first, and how many
    ruined rows were set aside."""
    finite = finite_rows(df, objective)
    ruined = finite.filter(ruined_mask(finite, column))
    kept = finite.filter(~ruined_mask(finite, column))
    return kept.sort(objective, descending=not lower, maintain_order=True), ruined.height


def set_aside_sentence(n_ruined: int, n_all: int, what: str = "configurations") -> str:
    """The one line a page prints about ruined books (never repeated)."""
    if n_ruined == 0:
        return f"No book was ruined: all {n_all:,} {what} are ranked."
    return (f"{n_ruined:,} of {n_all:,} {what} were ruined (their NAV reached zero, SEMANTICS §8) and are set "
            "aside: they are never chosen as the best, in the tables or the charts.")


# --------------------------------------------------------------------------- the page


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
    the page's HTML blocks in order (``Chart`` objects where a chart goes); ``answer``
    holds the first screen's blocks and ``provenance`` the closing ones."""

    results: Results
    charts: dict[str, Chart] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    blocks: list[Any] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    provenance: list[str] = field(default_factory=list)
    verdict: str = ""  # the overall verdict's label
    notices: set[str] = field(default_factory=set)
    first_chart_note: str = ""  # the panel's coverage, placed under the first chart

    def h2(self, text: str, anchor: str = "") -> None:
        self.blocks.append(f"<h2{f' id={anchor!r}' if anchor else ''}>{esc(text)}</h2>")

    def h3(self, text: str) -> None:
        self.blocks.append(f"<h3>{esc(text)}</h3>")

    def p(self, text: str, cls: str = "") -> None:
        if cls == "notice":  # a notice is printed once, however many parts raise it
            if text in self.notices:
                return
            self.notices.add(text)
        self.blocks.append(f"<p{f' class={cls!r}' if cls else ''}>{esc(text)}</p>")

    def table(self, head: list[str], rows: list[list[str]], table_id: str, cls: str = "data") -> None:
        """A table in a wrapper that scrolls sideways when the window is narrower than it."""
        self.blocks.append(html_table(head, rows, table_id, cls))

    def chart(self, name: str, built: Chart | str) -> None:
        if isinstance(built, str):
            self.skipped[name] = built
            self.p(built, "skipped")
        else:
            if not self.charts and self.first_chart_note:
                built.caption = f"{built.caption} {self.first_chart_note}".strip()
            self.charts[name] = built
            self.blocks.append(built)


def html_table(head: list[str], rows: list[list[str]], table_id: str, cls: str = "data",
               raw: bool = False) -> str:
    """``rows`` are texts (escaped here) unless ``raw``: then each cell is ready HTML (``<td ...>``)."""
    h = "".join(f"<th>{esc(c)}</th>" for c in head)
    body = "".join("<tr>" + ("".join(r) if raw else "".join(f"<td>{esc(c)}</td>" for c in r)) + "</tr>"
                   for r in rows)
    return f'<div class="scroll"><table class="{cls}" id="{table_id}"><tr>{h}</tr>{body}</table></div>'


# --------------------------------------------------------------------------- figures


def new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def wrap(text: str, width_in: float) -> str:
    """Wrap a title to the figure's width (about 10 characters an inch at 11 pt)."""
    import textwrap

    return "\n".join(textwrap.fill(part, max(30, int(width_in * 10))) for part in text.split("\n"))


def percent_axis(axis, metric: str) -> None:
    if metric in PERCENT:
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
    if metric in SIGNED:
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


def yearly_from_nav(dates, ret) -> list[tuple[int, str, str, float | None]]:
    """Calendar-year returns read off the NAV: ``NAV at the year's last day / NAV at the
    previous year's last day - 1`` (NAV 1 before the first day), as ``(year, first day,
    last day, return)``; ``None`` for a year that starts with the book already closed
    (NAV 0: ruined in an earlier year)."""
    d = as_dates(dates)
    nav, _ = nav_series(ret)
    years = d.astype("datetime64[Y]").astype(int) + 1970
    out = []
    prev = 1.0
    for y in np.unique(years):
        idx = np.flatnonzero(years == y)
        end = float(nav[idx[-1]])
        out.append((int(y), str(d[idx[0]]), str(d[idx[-1]]), end / prev - 1.0 if prev > 0 else None))
        prev = end
    return out


# --------------------------------------------------------------------------- the data


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
    from sweep.data.panel import load_panel

    m = res.manifest
    d = m.get("data") or {}
    study_path = Path((m.get("study") or {}).get("path") or ".")
    root = Path(__file__).resolve().parents[2]
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


def coverage_sentence(res: Results, panel) -> str:
    """The panel's coverage in one sentence: symbols, dates, and how many series end early."""
    start, end = res.window
    d = res.manifest.get("data") or {}
    if panel is None:
        return (f"Data: {d.get('symbols', '?')} symbols, {d.get('first_date', '?')} .. {d.get('last_date', '?')}; "
                f"evaluated {start} .. {end} (the data file is not found from here, so the series that end "
                "early are not counted).")
    close = panel.close
    has = np.isfinite(close)
    listed = has.any(axis=0)
    last = np.where(listed, close.shape[0] - 1 - np.argmax(has[::-1], axis=0), -1)
    early = int((listed & (last < close.shape[0] - 1)).sum())
    return (f"Data: {int(listed.sum())} symbols with prices, {panel.dates[0]} .. {panel.dates[-1]} "
            f"({close.shape[0]:,} days); {early} of them end before the last day (delisted or no longer "
            f"reported); evaluated {start} .. {end}.")


def window_days(res: Results, panel) -> tuple[int, int]:
    start, end = res.window
    return panel.day_index(dt.date.fromisoformat(start), "start"), panel.day_index(dt.date.fromisoformat(end), "end")
