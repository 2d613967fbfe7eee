"""What every part of ``sweep report`` shares: labels and number formats, the page being
built, and the choice of the best book among those not ruined (see ``sweep.report.page``
for the page itself). Metric words, units, percent and direction come from ``sweep.metrics``."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from sweep.core.errors import SweepError
from sweep.metrics import get as get_metric

TOP_EQUITY = 3  # distinct strategies rerun for the equity curves and the yearly table
TOP_TABLE = 10  # rows of the best-configurations table
TOP_BOXES = 15  # configurations in the Monte Carlo box plot
MAX_PANELS = 12  # more values than this of the panel parameter: averaged over instead
MAX_LINES = 10  # more values than this of the line parameter: a scatter instead
MAX_TABLE_ROWS = 60
DPI = 110
# The four figures the first screen gives for a book, beside the objective.
KEY_METRICS = ("sharpe", "cagr", "max_drawdown", "turnover")
# Statistics of a Monte Carlo summary (not metrics) whose sign is the news, as a signed metric's.
SIGNED_STATS = frozenset({"median", "mean", "q05", "q95"})
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


def _metric(m: str | None):
    """The row of ``sweep.metrics`` for ``m``, or None for a name that is no metric."""
    try:
        return get_metric(m) if m else None
    except SweepError:
        return None


def is_percent(m: str | None) -> bool:
    """A metric that is a fraction shown as a percent."""
    row = _metric(m)
    return bool(row and row.percent)


def is_signed(m: str | None) -> bool:
    """A metric (or Monte Carlo statistic) whose sign is the news: drawn on a diverging scale centred on 0."""
    row = _metric(m)
    return bool(row and row.signed) or m in SIGNED_STATS


def lower_is_better(m: str | None) -> bool:
    row = _metric(m)
    return bool(row and row.lower_is_better)


def metric_label(m: str) -> str:
    row = _metric(m)
    what, unit = (row.label, row.unit) if row else (m, "")
    return f"{what} ({unit})" if unit else what


def metric_name(m: str) -> str:
    row = _metric(m)
    return row.label if row else m


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
    """A metric's value as text: a percent for a percent metric, 3 decimals otherwise."""
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "nan" if v != v else ("inf" if v > 0 else "-inf")
        if is_percent(metric):
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

    results: Any  # sweep.report.folder.Results
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
