"""The report of a diagnostics study (does the factor predict?): the strongest factor and
horizon by |IR| with ONE verdict by ``DIAG_RULE``, a plain sentence per factor, the IC table
ranked by |IR|, and the charts of ``sweep.report.diagnostics_charts`` (IC over time with a
rolling mean, IC decay by horizon, mean return by quantile, the quantile books, the rank
autocorrelation).

The words are ``sweep.report.diagnostics_text``'s, shared with ``sweep show`` and the end of
``sweep run`` (``sweep.cli.kind_diagnostics``).

Conventions of the numbers (computed by ``sweep.study.diagnostics``): the IC of day t is the
Spearman correlation of the factor at t (not sign-flipped: a factor whose book buys its
lowest values predicts with a negative IC) with the simple return from the close of t to the
close of t + h; IR = mean / std (ddof 1) of the daily ICs; t = IR x sqrt(days); p two-sided,
Student t with days - 1 degrees of freedom. "The sign is stable in x % of days" is the share of
days whose IC has the mean IC's sign (``ic_positive`` for a positive mean, 1 - ``ic_positive``
for a negative one).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sweep.report.answer import verdict_block
from sweep.report.base import MAX_TABLE_ROWS, Report, esc, html_table, param_label
from sweep.report.diagnostics_text import (
    TABLE_HEAD,
    cell,
    factor_sentences,
    finite,
    label,
    n_tests,
    ranked,
    sentence,
    shown_params,
    significance,
)
from sweep.report.folder import Results, read_parquet, require

CHARTS = ("ic_series", "ic_decay", "quantile_returns", "quantile_books", "rank_autocorr")
DIAG_RULE = ("Rule: the strongest configuration and horizon by |IR| predicts (established) when its IC's two-sided "
             "p-value stays below 0.05 after multiplying it by the number of configuration x horizon pairs tested "
             "(Bonferroni); doubtful when p < 0.05 only before that correction; not established otherwise. "
             "Forward returns of h > 1 days overlap from one day to the next, so their daily ICs are not "
             "independent and the t of a longer horizon overstates its evidence.")
TABLE_COLUMNS = {"summary.parquet": [
    "config_id", "horizon", "ic_mean", "ic_std", "ic_ir", "ic_t", "ic_p", "ic_positive", "n_days"],
    "ic.parquet": ["config_id", "date", "horizon", "ic"],
    "quantiles.parquet": ["config_id", "horizon", "quantile", "mean", "stderr"],
    "books.parquet": ["config_id", "date", "quantile", "nav"],
    "autocorr.parquet": ["config_id", "lag", "autocorr"]}


# --------------------------------------------------------------------------- the tables


def read_tables(folder: Path, objective: str) -> tuple[dict[str, pl.DataFrame], None]:
    tables = {}
    for name in ("summary.parquet", "ic.parquet", "quantiles.parquet", "books.parquet", "autocorr.parquet"):
        p = folder / name
        df = read_parquet(p)
        require(df, p, TABLE_COLUMNS[name])
        tables[name.removesuffix(".parquet")] = df
    return tables, None


def horizons(summary: pl.DataFrame) -> list[int]:
    return sorted(int(h) for h in summary["horizon"].unique().drop_nulls())


def counts(res: Results) -> str:
    s = res.tables["summary"]
    n, hs = s["config_id"].n_unique(), horizons(s)
    return f"{n:,} configurations x {len(hs)} horizons ({', '.join(map(str, hs))} days) = {s.height:,} IC series"


def provenance_rows(res: Results) -> list[tuple[str, str]]:
    d = res.manifest.get("diagnostics") or {}
    lags = res.tables["autocorr"]["lag"].max()
    hs = d.get("horizons") or horizons(res.tables["summary"])
    return [("diagnostics", f"horizons {', '.join(map(str, hs))} days; rank autocorrelation at lags 1..{lags}")]


# --------------------------------------------------------------------------- the page


def answer(rep: Report, top: pl.DataFrame, shown: list[str], tests: int) -> None:
    b = top.row(0, named=True) if top.height and finite(top["ic_ir"][0]) else None
    lab, verdict = significance(b, tests)
    if b is None:
        lead = "No configuration has a finite IC at any horizon: nothing to rank."
    else:
        lead = (f"The strongest prediction by |IR|: {label(b, shown)} at {b['horizon']}-day returns (config "
                f"{b['config_id']}). " + sentence(b, shown))
    out = ['<section id="answer">', f'<p class="best">{esc(lead)}</p>']
    if b is not None:
        cols = [c for c in ("horizon", "ic_mean", "ic_ir", "ic_t", "ic_p", "ic_positive", "spread_mean")
                if c in b]
        out.append(html_table([TABLE_HEAD[c] for c in cols], [[cell(b[c], c) for c in cols]], "key-metrics", "key"))
    out.append(verdict_block(lab, verdict, DIAG_RULE))
    out.append("</section>")
    rep.answer.extend(out)
    rep.verdict = lab


def section(rep: Report, *, data=None, funding=None, monte_carlo=None) -> None:
    """The report of a diagnostics study (reads only its tables: no data, no rerun)."""
    from sweep.report import diagnostics_charts as charts

    res = rep.results
    summary = res.tables["summary"]
    shown = shown_params(summary, res.params or [c for c in summary.columns if c in ("factor", "window")])
    top = ranked(summary)
    tests = n_tests(summary)
    d = res.manifest.get("data") or {}
    start, end = res.window
    rep.first_chart_note = (f"Data: {d.get('symbols', '?')} symbols, {d.get('first_date', '?')} .. "
                            f"{d.get('last_date', '?')}; evaluated {start} .. {end}.")
    answer(rep, top, shown, tests)
    rep.h2("What each factor predicts", "factors")
    rep.p("Each factor's strongest configuration and horizon by |IR|. The IC is the factor's own (not turned "
          "to the side the strategy buys): a factor whose book buys its lowest values predicts with a negative "
          "IC. 'Stable': the share of days whose IC has the mean's sign.")
    items = "".join(f"<li>{esc(s)}</li>" for s in factor_sentences(top, shown))
    rep.blocks.append(f'<ul class="detail" id="factor-sentences">{items}</ul>')
    strongest = list(dict.fromkeys(top.filter(pl.col("ic_ir").cast(pl.Float64).is_finite())["config_id"]))
    rep.h2("IC over time")
    rep.chart("ic_series", charts.ic_series_chart(res, top, res.tables["ic"], shown))
    rep.h2("IC decay by horizon")
    rep.chart("ic_decay", charts.ic_decay_chart(res, summary, strongest, shown))
    best = top.row(0, named=True) if strongest else None
    rep.h2("Mean return by quantile")
    rep.chart("quantile_returns", charts.quantile_chart(res, res.tables["quantiles"], best, shown))
    rep.h2("Quantile books")
    rep.chart("quantile_books", charts.books_chart(res, res.tables["books"], best, shown))
    rep.h2("Rank autocorrelation")
    rep.chart("rank_autocorr", charts.autocorr_chart(res, res.tables["autocorr"], strongest, summary, shown))
    rep.h2("IC table", "ic-table")
    cols = ["config_id", *[c for c in shown if c in summary.columns]] + [c for c in TABLE_HEAD if c in summary.columns]
    if top.height > MAX_TABLE_ROWS:
        rep.p(f"The {MAX_TABLE_ROWS} strongest of {top.height} configuration x horizon pairs by |IR|; "
              "summary.parquet has all.")
    rep.p("Ranked by |IR| (IR = mean IC / its standard deviation over days; t = IR x sqrt(days); p two-sided, "
          "Student t with days - 1 degrees of freedom). Spread: the mean over days of the top quantile's mean "
          "forward return minus the bottom one's. Turnover: the mean daily share of a quantile's names that "
          "were not in it the day before.")
    rows = [[cell(r[c], c) if c != "config_id" else r[c] for c in cols]
            for r in top.head(MAX_TABLE_ROWS).iter_rows(named=True)]
    rep.table([TABLE_HEAD.get(c, param_label(c) if c != "config_id" else c) for c in cols], rows, "ic-summary")
