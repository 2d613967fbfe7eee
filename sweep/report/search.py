"""The report of a search (a grid or an Optuna study): the answer first (the best book that
was not ruined, its key figures, its alpha and beta to the benchmarks and one overall
verdict), then the best strategies' equity beside the benchmarks (``sweep.report.risk``), their
rolling Sharpe and volatility, the best book's monthly returns and exposure, the ranking,
the overfitting statistics in words, each factor on its own, and the charts over the swept
parameters."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kernels.metrics import DAYS_PER_YEAR
from sweep.report.answer import key_metrics_table, verdict_block
from sweep.report.base import (
    KEY_METRICS,
    TOP_EQUITY,
    TOP_TABLE,
    Report,
    dedup,
    esc,
    fmt,
    html_table,
    metric_name,
    ranked,
    ruined_mask,
    set_aside_sentence,
    short,
    show,
    swept,
)
from sweep.report.equity import equity_chart, yearly_table
from sweep.report.folder import (
    Results,
    coverage_sentence,
    load_study_panel,
    read_parquet,
    require,
    window_days,
)
from sweep.report.heatmap import heatmap_chart
from sweep.report.lines import lines_chart, monte_carlo_band
from sweep.report.risk import (
    benchmark_sentence,
    benchmark_table,
    benchmarks,
    exposure_chart,
    monthly_chart,
    monthly_table,
    rolling_chart,
)
from sweep.stats.verdict import DSR_BAR, PBO_BAR, RULE, overall_verdict, sampled_splits

CHARTS = ("equity_drawdown", "rolling_risk", "monthly_returns", "exposure", "heatmap",
          "objective_vs_rebalance_days")
MAX_FACTOR_CURVES = 4  # a multi-factor equity chart: the best strategy of at most this many factors


def read_tables(folder: Path, objective: str) -> tuple[dict[str, pl.DataFrame], None]:
    p = folder / "trials.parquet"
    trials = read_parquet(p)
    require(trials, p, ["config_id", objective])
    return {"trials": trials}, None


def counts(res: Results) -> str:
    m = res.manifest
    count = m.get("configurations")
    text = f"{count:,} configurations" if isinstance(count, int) else "?"
    if res.kind == "optuna":
        text += f" from {m.get('n_trials', '?')} trials ({(m.get('optuna') or {}).get('sampler', '?')} sampler)"
    return text


def section(rep: Report, *, data=None, funding=None, monte_carlo=None) -> None:
    """The report of a grid or an Optuna study (the registry's ``report`` of both kinds)."""
    res = rep.results
    trials = dedup(res.tables["trials"])
    names = swept(trials, res.axes)
    by_factor = "factor" in names
    best, n_ruined = ranked(trials, res.objective, res.lower)
    panel, why = load_study_panel(res, data, funding)
    rep.first_chart_note = coverage_sentence(res, panel)
    runs, bench, bench_note = [], [], ""
    if panel is None:
        no_runs = f"No equity curves or yearly returns: {why}"
    elif best.height == 0:
        no_runs = f"No equity curves: no book that was not ruined has a finite {res.objective}."
    else:
        no_runs = ""
        runs = rerun(res, strategies(best, names, by_factor), panel, weights=1)
        s, e = window_days(res, panel)
        bench, bench_note = benchmarks(panel, s, e, runs[0][2].params.get("market_symbol", "BTC"))
    answer(rep, best.row(0, named=True) if best.height else None, names,
           set_aside_sentence(n_ruined, trials.height), overall_verdict(res.summary),
           benchmark_sentence(runs[0][2], bench) if runs else "")
    rep.h2("Equity, drawdown and yearly returns of the best strategies")
    if not runs:
        rep.chart("equity_drawdown", no_runs)
    else:
        check_reruns(rep, runs)
        rep.chart("equity_drawdown", equity_chart(res, [(lab, p, r) for lab, p, r, _ in runs], names, bench))
        rep.blocks.extend(benchmark_table(runs, bench, names, bench_note))
        yearly_table(rep, runs, names)
    risk_section(rep, runs, names, no_runs)
    rep.h2("Best configurations")
    best_table(rep, best, trials.height, names)
    rep.h2("Skill or luck: the verdict in detail")
    rep.blocks.append('<ul class="detail">' + "".join(f"<li>{esc(s)}</li>" for s in
                                                      overfitting_sentences(res.summary)) + "</ul>")
    if by_factor:
        rep.h2("Each factor on its own")
        factor_sections(rep, trials, best, panel, why, names)
    rep.h2("Objective over the swept parameters")
    rep.chart("heatmap", heatmap_chart(res, trials))
    rep.h2("Objective against the rebalance period")
    band, note = (None, "")
    if "rebalance_days" in names:
        band, note = monte_carlo_band(res, monte_carlo)
    rep.chart("objective_vs_rebalance_days", lines_chart(res, trials, res.objective, band,
                                                         note=note if band is not None else ""))
    if band is None and "rebalance_days" in names:
        rep.p(note)


# --------------------------------------------------------------------------- the first screen


def risk_section(rep: Report, runs, names: list[str], no_runs: str) -> None:
    """Rolling Sharpe and volatility of the shown strategies; the monthly returns and the
    exposure of the best (``sweep.report.risk``)."""
    res = rep.results
    rep.h2("Rolling risk, monthly returns and exposure of the best")
    if not runs:
        why = no_runs.replace("No equity curves or yearly returns: ", "").replace("No equity curves: ", "")
        for name, what in (("rolling_risk", "rolling Sharpe or volatility"), ("monthly_returns", "monthly returns"),
                           ("exposure", "exposure chart")):
            rep.chart(name, f"No {what}: {why}")
        return
    rep.chart("rolling_risk", rolling_chart(res, runs, names))
    rep.chart("monthly_returns", monthly_chart(res, runs[0], names))
    rep.p(f"Monthly net returns of the best book {runs[0][0]}, {res.window[0]} .. {res.window[1]} (hover a cell "
          "for the days it covers; 'closed': the book was ruined in an earlier month).")
    rep.blocks.append(monthly_table(runs[0]))
    rep.chart("exposure", exposure_chart(res, runs[0], names))


def answer(rep: Report, row: dict[str, Any] | None, names: list[str], set_aside: str, verdict,
           bench: str = "") -> None:
    """The first screen: the best book not ruined, its key figures, and the overall verdict."""
    res = rep.results
    start, end = res.window
    out = ['<section id="answer">']
    if row is None:
        out.append(f"<p>No book that was not ruined has a finite {esc(res.objective)}: there is no best.</p>")
    else:
        out.append(f'<p class="best">The best book that was not ruined, by {esc(metric_name(res.objective))} '
                   f"over {esc(start)} .. {esc(end)}: <b>{esc(short(row, names or ['factor']))}</b> "
                   f"(config <code>{esc(row['config_id'])}</code>).</p>")
        out.append(key_metrics_table(row, res.objective))
        if bench:
            out.append(f'<p class="benchmark">{esc(bench)}</p>')
    out.append(f'<p class="setaside">{esc(set_aside)}</p>')
    out.append(verdict_block(verdict.label, verdict.sentence, RULE))
    out.append("</section>")
    rep.answer.extend(out)
    rep.verdict = verdict.label


# --------------------------------------------------------------------------- strategies and reruns


def strategies(best: pl.DataFrame, names: list[str], by_factor: bool) -> list[dict[str, Any]]:
    """The rows whose books the equity chart shows: distinct strategies, never one strategy at
    several phases. With a swept ``factor``: the best of each of the best factors; otherwise
    the best rows that differ in something other than ``phase``."""
    out, seen = [], set()
    cap = MAX_FACTOR_CURVES if by_factor else TOP_EQUITY
    variant = ["factor"] if by_factor else [c for c in names if c != "phase"]
    for row in best.iter_rows(named=True):
        k = tuple(show(row[c]) for c in variant)
        if k in seen:
            continue
        seen.add(k)
        out.append(row)
        if len(out) == cap:
            break
    return out



def row_params(row: dict[str, Any], res: Results) -> dict[str, Any]:
    from sweep.engine.params import PARAMS

    return {k: row[k] for k in res.params if k in PARAMS and k in row and row[k] is not None}



def rerun(res: Results, rows: list[dict[str, Any]], panel, weights: int = 0):
    """Each row's configuration rerun over the evaluation window: ``[(label, params, Result, row)]``;
    the first ``weights`` results keep their daily weights (``Result.weights``)."""
    from sweep.engine.backtest import backtest

    start, end = res.window
    out = []
    for i, row in enumerate(rows, 1):
        params = row_params(row, res)
        result = backtest(panel, start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end),
                          return_weights=i <= weights, **params)
        out.append((f"#{i}", params, result, row))
    return out



def check_reruns(rep: Report, runs) -> None:
    obj = rep.results.objective
    for label, _, result, row in runs:
        got, want = result.metrics.get(obj), row[obj]
        if not (abs(got - want) <= 1e-9 * max(1.0, abs(want))):
            rep.p(f"Warning: rerun, configuration {label} ({row['config_id']}) gives {obj} {got:.6g}, the results "
                  f"table {want:.6g}: the engine changed since the study ran; rerun the study.", "notice")


# --------------------------------------------------------------------------- the ranking and its statistics


def best_table(rep: Report, best: pl.DataFrame, n_all: int, names: list[str]) -> None:
    res = rep.results
    top = best.head(TOP_TABLE)
    shown = [m for m in dict.fromkeys((res.objective,) + KEY_METRICS + ("sharpe_pre_cost",)) if m in best.columns]
    rows = [[str(i)] + [show(row[c]) for c in names] + [fmt(row[m], m) for m in shown]
            for i, row in enumerate(top.iter_rows(named=True), 1)]
    start, end = res.window
    rep.p(f"Top {top.height} of the {best.height} books not ruined (of {n_all} distinct configurations) by "
          f"{res.objective}, {start} .. {end}, net of fees, slippage and funding (sharpe_pre_cost: before fees "
          "and slippage).")
    rep.table(["#"] + names + shown, rows, "best")



def overfitting_sentences(summary: dict[str, Any] | None) -> list[str]:
    """``summary.json``'s overfitting statistics as sentences, each test marked as passing or
    failing by the same bars as the overall verdict (``sweep.stats.verdict``), so none contradicts it."""
    if summary is None:
        return ["No summary.json in the folder: no deflated Sharpe ratio or PBO to report "
                "(rerun the study with this version of sweep to get them)."]
    o = summary.get("overfitting")
    if not isinstance(o, dict) or "dsr" not in o:
        return [f"No overfitting statistics in summary.json: {summary.get('note', 'none were computed')}."]
    n = o.get("n_trials", "?")
    sr, emax = o.get("best_sharpe_annual", float("nan")), o.get("expected_max_sharpe_annual", float("nan"))
    dsr, psr = o["dsr"], o.get("psr", float("nan"))
    out = []
    if isinstance(dsr, (int, float)):
        ok = dsr >= DSR_BAR
        out.append(f"Deflated Sharpe {dsr:.3f} ({'passes' if ok else 'fails'}: the bar is {DSR_BAR}): after {n} "
                   f"tries, the best Sharpe is {sr:.2f} a year, while the best of {n} tries of pure luck would be "
                   f"expected near {emax:.2f}; the probability that the best beats luck is {dsr:.1%}.")
    if isinstance(psr, (int, float)) and math.isfinite(psr):
        out.append(f"For reference, not a test: PSR {psr:.3f} against zero, without deflation"
                   + (" (had this been the only configuration tried, its Sharpe would be convincing; the search "
                      "is what takes that away)." if psr >= 0.95 and not (isinstance(dsr, float) and dsr >= DSR_BAR)
                      else "."))
    years, have = o.get("min_backtest_years"), o.get("backtest_years")
    if isinstance(years, (int, float)) and isinstance(have, (int, float)) and math.isfinite(years):
        out.append(f"Minimum backtest length ({'passes' if have >= years else 'fails'}): a Sharpe of {sr:.2f} "
                   f"found among {n} tries needs {years:.1f} years of data to be told from luck; the window has "
                   f"{have:.1f}.")
    pbo = o.get("pbo")
    if isinstance(pbo, dict) and isinstance(pbo.get("pbo"), (int, float)):
        p = pbo["pbo"]
        splits = pbo.get("n_valid", pbo.get("n_combinations"))
        out.append(f"PBO {p:.2f} ({'passes' if p < PBO_BAR else 'fails'}: the bar is below {PBO_BAR}): in {p:.0%} "
                   "of the " + (f"{splits:,} " if isinstance(splits, int) else "")
                   + f"splits of the window into halves ({pbo.get('n_blocks', '?')} blocks), the in-sample winner "
                   "ranked below the median out of sample."
                   + (f" The splits are {sampled_splits(pbo)}: all of them would cost more than the backtests."
                      if pbo.get("splits_sampled") else ""))
        if "prob_oos_loss" in pbo:
            out.append(f"The in-sample winner lost money out of sample in {pbo['prob_oos_loss']:.0%} of the splits.")
        slope = pbo.get("degradation_slope")
        if isinstance(slope, (int, float)) and math.isfinite(slope):
            out.append(f"Degradation slope {slope:.2f} ({'passes' if slope > 0 else 'fails'}: it must be above "
                       f"0): each extra unit of in-sample Sharpe came with {slope:+.2f} out of sample"
                       + ("; the best in sample tend to do worse after." if slope < 0 else "."))
    if (o.get("kurtosis") or 0) > 10 or abs(o.get("skewness") or 0) > 2:
        out.append(f"The best's daily returns are far from normal (skewness {o.get('skewness', 0):.1f}, "
                   f"kurtosis {o.get('kurtosis', 0):.0f}): a few days carry its Sharpe, which the deflated Sharpe "
                   "counts against it.")
    return out


# --------------------------------------------------------------------------- each factor


def moments(r: np.ndarray) -> tuple[float, float, float]:
    """Per-day Sharpe (ddof 1), skewness and RAW kurtosis (population moments), as the DSR wants."""
    if len(r) < 2:
        return math.nan, math.nan, math.nan
    sd = float(np.std(r, ddof=1))
    d = r - r.mean()
    m2 = float(np.mean(d * d))
    if not sd > 0.0 or not m2 > 0.0:
        return math.nan, math.nan, math.nan
    return float(r.mean()) / sd, float(np.mean(d ** 3)) / m2 ** 1.5, float(np.mean(d ** 4)) / m2 ** 2



def factor_dsr(returns: np.ndarray, group_sharpes: np.ndarray, all_sharpes: np.ndarray) -> tuple[float, float]:
    """The deflated Sharpe of a factor's best book: deflated by that factor's own trials
    (``group_sharpes``, annualised) and by every trial of the study (pooled)."""
    from sweep.stats.overfit import deflated_sharpe_ratio

    sr, skew, kurt = moments(np.asarray(returns, dtype=np.float64))
    out = []
    for s in (group_sharpes, all_sharpes):
        per = s[np.isfinite(s)] / math.sqrt(DAYS_PER_YEAR)
        var = float(np.var(per, ddof=1)) if len(per) >= 2 else math.nan
        out.append(deflated_sharpe_ratio(sr, len(s), var, len(returns), skew, kurt)
                   if math.isfinite(sr) else math.nan)
    return out[0], out[1]



def factor_sections(rep: Report, trials: pl.DataFrame, best: pl.DataFrame, panel, why: str,
                    names: list[str]) -> None:
    res = rep.results
    others = [c for c in names if c != "factor"]
    rep.p("Each factor's best book that was not ruined, with two deflated Sharpe ratios: 'within the factor' "
          "deflates by that factor's own trials only (the question 'is this factor's best period real?'); "
          "'pooled' deflates by every trial of the study (the question 'is the best of the whole search "
          f"real?'). Both use the factor's best daily returns; the bar is {DSR_BAR}.")
    if panel is None:
        rep.p(f"No deflated Sharpe per factor: {why}", "skipped")
    all_sharpes = trials["sharpe"].to_numpy().astype(float) if "sharpe" in trials.columns else None
    for factor in sorted({row["factor"] for row in trials.iter_rows(named=True)}, key=str):
        group = trials.filter(pl.col("factor") == factor)
        mine = best.filter(pl.col("factor") == factor)
        n_ruined = group.filter(ruined_mask(group)).height
        rep.h3(f"{factor}")
        if mine.height == 0:
            rep.p(f"Every one of the {group.height} books of {factor} was ruined or has no finite {res.objective}: "
                  "no best.")
            continue
        row = mine.row(0, named=True)
        text = (f"Best of its {group.height} books" + (f" ({n_ruined} ruined, set aside)" if n_ruined else "")
                + f": {short(row, others)}, "
                f"{res.objective} {fmt(row[res.objective], res.objective)}, CAGR {fmt(row.get('cagr'), 'cagr')}, "
                f"max drawdown {fmt(row.get('max_drawdown'), 'max_drawdown')}.")
        rep.p(text)
        if panel is None or all_sharpes is None:
            continue
        (_, _, result, _), = rerun(res, [row], panel)
        within, pooled = factor_dsr(result.returns["ret"].to_numpy(), group["sharpe"].to_numpy().astype(float),
                                    all_sharpes)
        rows = [["within the factor", f"{group.height}", fmt(within), "passes" if within >= DSR_BAR else "fails"],
                ["pooled (the whole study)", f"{trials.height}", fmt(pooled),
                 "passes" if pooled >= DSR_BAR else "fails"]]
        rep.blocks.append(html_table(["deflated Sharpe", "trials deflated for", "value", f"bar {DSR_BAR}"], rows,
                                     f"dsr-{factor}"))
