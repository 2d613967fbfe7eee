"""The reports of a walk-forward, a Monte Carlo study and a portfolio, each opening with its
answer and one verdict by a rule it states (see ``sweep.report.page``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from kernels.metrics import METRICS

from sweep.core.errors import SweepError
from sweep.engine.params import LOWER_IS_BETTER
from sweep.report.base import (
    KEY_METRICS,
    MAX_TABLE_ROWS,
    SIGNED,
    Report,
    Results,
    coverage_sentence,
    esc,
    fmt,
    html_table,
    load_study_panel,
    ruined_mask,
    set_aside_sentence,
    short,
    swept,
    window_days,
)
from sweep.report.charts import (
    book_equity_chart,
    distribution_chart,
    lines_chart,
    oos_equity_chart,
    train_test_chart,
)
from sweep.report.search import key_metrics_table, verdict_block, yearly_table
from sweep.results.schema import read_manifest
from sweep.stats.verdict import DSR_BAR, PBO_BAR, RULE, Verdict, overall_verdict

WF_RULE = ("Rule: the walk-forward holds up when the stitched out-of-sample Sharpe is above 0 and the choices "
           "ranked better than a random pick on their test windows (mean test rank below (n + 1) / 2, n "
           "candidates); mixed when one of the two holds; it does not hold up when neither does.")
MC_RULE = ("Rule: the sign of the best configuration's result is established when 95 % of the samples keep it "
           "(q05 above 0); doubtful when only the median is above 0; not established otherwise.")
PF_RULE = ("Rule: a leg is credible when its deflated Sharpe (deflated by its own factor's trials) is at least "
           f"{DSR_BAR} and its PBO below {PBO_BAR}; doubtful when one of the two fails; not credible when both fail. "
           "The book is only as credible as its least credible leg.")
LABEL_ORDER = ("credible", "doubtful", "not credible", "not assessed")


def pct(v: Any) -> str:
    return f"{v:.0%}" if isinstance(v, (int, float)) and math.isfinite(v) else "-"


def _answer(rep: Report, lead: str, metrics: dict[str, Any] | None, objective: str, set_aside: str | None,
            label: str, sentence: str, rule: str) -> None:
    out = ['<section id="answer">', f'<p class="best">{esc(lead)}</p>']
    if metrics:
        out.append(key_metrics_table(metrics, objective))
    if set_aside:
        out.append(f'<p class="setaside">{esc(set_aside)}</p>')
    out.append(verdict_block(label, sentence, rule))
    out.append("</section>")
    rep.answer.extend(out)
    rep.verdict = label


# --------------------------------------------------------------------------- walk-forward


def walk_forward_verdict(s: dict[str, Any], folds: pl.DataFrame) -> tuple[str, str, str]:
    """``(label, sentence, rule)``: the search's own verdict when the summary carries the
    overfitting statistics, else the out-of-sample rule ``WF_RULE``."""
    if isinstance(s.get("overfitting"), dict):
        v = overall_verdict(s)
        return v.label, v.sentence, RULE
    sharpe = (s.get("metrics") or {}).get("sharpe")
    rank = s.get("mean_test_rank")
    n = int(folds["n_candidates"].max()) if "n_candidates" in folds.columns and folds.height else None
    if not isinstance(sharpe, (int, float)) or not isinstance(rank, (int, float)) or n is None:
        return "not assessed", "Not assessed: no out-of-sample Sharpe or test ranks in summary.json.", WF_RULE
    random_rank = (n + 1) / 2
    tests = [(sharpe > 0, f"out-of-sample Sharpe {sharpe:.2f} {'>' if sharpe > 0 else '<='} 0"),
             (rank < random_rank, f"mean test rank {rank:.1f} {'<' if rank < random_rank else '>='} "
                                  f"{random_rank:.1f} (random)")]
    ok = [t for good, t in tests if good]
    bad = [t for good, t in tests if not good]
    label = "holds up" if not bad else "mixed" if ok else "does not hold up"
    sentence = (f"{label[0].upper() + label[1:]}: " + "; ".join(ok + bad)
                + (f" (fails {'; '.join(bad)})" if bad and ok else "") + ".")
    return label, sentence, WF_RULE


def walk_forward_report(rep: Report, data, funding) -> None:
    res = rep.results
    folds, oos = res.tables["folds"], res.tables["oos_returns"]
    obj = res.objective
    shown = [c for c in res.axes if c in folds.columns]
    s = res.summary or {}
    m = s.get("metrics") or {}
    label, sentence, rule = walk_forward_verdict(s, folds)
    n_ruined = folds.filter(ruined_mask(folds, "test_ruined")).height
    set_aside = (f"{n_ruined} of {folds.height} folds' test books were ruined (NAV to zero, SEMANTICS §8)."
                 if n_ruined else None)
    _answer(rep, f"The out-of-sample book: each fold's choice, made on its train window alone, traded on its "
                 f"test window ({s.get('oos_start', '?')} .. {s.get('oos_end', '?')}, {s.get('oos_days', '?')} "
                 "days), net of costs.", m or None, obj, set_aside, label, sentence, rule)
    panel, _ = load_study_panel(res, data, funding)
    rep.first_chart_note = coverage_sentence(res, panel)
    rep.h2("Out of sample")
    if m:
        ratio = s.get("oos_is_sharpe_ratio")
        rep.p(f"The choices averaged a Sharpe of {fmt(s.get('is_sharpe_mean'))} on their train windows: the "
              f"out-of-sample Sharpe {fmt(m.get('sharpe'))} is {fmt(ratio)} times that"
              + (" (a search that picks skill keeps a good part of it; one that picks noise gives about 0 or "
                 "less)." if isinstance(ratio, float) else "."))
        if "mean_test_rank" in s and "n_candidates" in folds.columns and folds.height:
            n = int(folds["n_candidates"].max())
            rep.p(f"On the test windows the choice ranked {s['mean_test_rank']:.1f} of {n} on average "
                  f"(1 = best; a random pick would average {(n + 1) / 2:.1f}).")
    else:
        rep.p("No summary.json in the folder: no out-of-sample metrics in words (the chart below uses "
              "oos_returns.parquet).")
    rep.chart("oos_equity", oos_equity_chart(res, folds, oos))
    rep.h2("Train against test")
    rep.chart("train_vs_test", train_test_chart(res, folds))
    rep.h2("Folds and their choices")
    cols = ["fold", "test_start", "test_end", *[c for c in shown if folds[c].n_unique() > 1 or c == "factor"],
            f"train_{obj}", f"test_{obj}"]
    rows = []
    for row in folds.sort("fold").iter_rows(named=True):
        rank = str(row.get("test_rank", "-")) + (f"/{row['n_candidates']}" if "n_candidates" in row else "")
        cells = [fmt(row[c], obj if c.endswith(obj) else None) for c in cols] + [rank]
        if "test_ruined" in row:
            cells.append("ruined" if row["test_ruined"] == 1.0 else "")
        rows.append(cells)
    head = cols + ["test rank"] + (["test book"] if "test_ruined" in folds.columns else [])
    rep.p("Each fold's train window ends the day before its test window starts (folds.parquet has both).")
    rep.table(head, rows, "folds")


# --------------------------------------------------------------------------- monte carlo


def actual_values(res: Results, summary: pl.DataFrame, panel) -> dict[str, dict[str, float]]:
    """Each configuration rerun on the real data over the evaluation window (the value the
    samples perturb): config_id -> every metric."""
    from sweep.engine.workspace import Evaluator
    from sweep.engine.params import PARAMS, resolve

    params = [c for c in res.params if c in PARAMS and c in summary.columns]
    configs = [resolve({k: row[k] for k in params if row[k] is not None}, "summary.parquet")
               for row in summary.iter_rows(named=True)]
    s, e = window_days(res, panel)
    metrics, _ = Evaluator(panel).run(configs, s, e)
    return {cid: dict(zip(METRICS, map(float, metrics[i]))) for i, cid in enumerate(summary["config_id"])}


def monte_carlo_verdict(obj: str, b: dict[str, Any] | None) -> tuple[str, str]:
    if b is None:
        return "not assessed", "Not assessed: no configuration has a finite median."
    if obj not in SIGNED or obj in LOWER_IS_BETTER:
        return "not assessed", f"Not assessed: {obj} has no sign to establish."
    q05, med = b["q05"], b["median"]
    if q05 is not None and q05 > 0:
        return "established", f"Established: 95 % of the samples keep {obj} above 0 (q05 {q05:.2f})."
    if med is not None and med > 0:
        return "doubtful", (f"Doubtful: the median {obj} {med:.2f} is above 0 but q05 {q05:.2f} is not: one "
                            "sample in twenty or more turns it negative.")
    return "not established", f"Not established: the median {obj} {med:.2f} is not above 0."


def monte_carlo_report(rep: Report, data, funding) -> None:
    res = rep.results
    summary, samples = res.tables["summary"], res.tables["samples"]
    shown = swept(summary, res.axes)
    obj = res.objective
    panel, why = load_study_panel(res, data, funding)
    rep.first_chart_note = coverage_sentence(res, panel)
    actual = actual_values(res, summary, panel) if panel is not None else {}
    table = summary.with_columns(
        pl.Series("actual", [actual.get(c, {}).get(obj) for c in summary["config_id"]], dtype=pl.Float64),
        pl.Series("ruined", [actual.get(c, {}).get("ruined") for c in summary["config_id"]], dtype=pl.Float64))
    if "ruined" in samples.columns and "p_ruined" not in table.columns:
        p = samples.group_by("config_id").agg((pl.col("ruined") == 1.0).mean().alias("p_ruined"))
        table = table.join(p, on="config_id", how="left")
    finite = table.filter(pl.col("median").is_not_null() & pl.col("median").is_not_nan())
    n_ruined = finite.filter(ruined_mask(finite)).height
    top = finite.filter(~ruined_mask(finite)).sort("median", descending=not res.lower, maintain_order=True)
    b = top.row(0, named=True) if top.height else None
    label, sentence = monte_carlo_verdict(obj, b)
    key = None
    if b is not None and b["config_id"] in actual:
        key = {"median " + obj: b["median"], **{m: actual[b["config_id"]].get(m) for m in KEY_METRICS}}
    lead = (f"The best configuration by median {obj} over the samples, not ruined on the real data: "
            f"{short(b, shown) if b else '-'}: median {fmt(b['median'], obj) if b else '-'}, 90 % of samples "
            f"between {fmt(b['q05'], obj) if b else '-'} and {fmt(b['q95'], obj) if b else '-'}"
            + (f"; on the real data, unresampled: {obj} {fmt(b['actual'], obj)}" if b and b.get("actual") is not None
               else "") + (" (the table gives its key figures on the real data)." if key else "."))
    _answer(rep, lead, key, "median " + obj, set_aside_sentence(n_ruined, summary.height) if actual else None,
            label, sentence, MC_RULE)
    if not actual:
        rep.p(f"The actual (unresampled) values are not shown: {why}", "skipped")
    rep.h2("Distribution over the samples")
    rep.chart("distribution", distribution_chart(res, top, samples, shown,
                                                 {c: v.get(obj) for c, v in actual.items()} or None))
    rep.h2("Median against the rebalance period")
    bands = {r["config_id"]: (r["q05"], r["q95"]) for r in summary.iter_rows(named=True)
             if r["q05"] is not None and r["q95"] is not None}
    rep.chart("objective_vs_rebalance_days",
              lines_chart(res, table.filter(~ruined_mask(table)), "median",
                          lambda ids: bands.get(ids[0]) if len(ids) == 1 else None,
                          band_label="q05..q95 over the samples", median=True))
    rep.h2("Summary per configuration")
    cols = shown + ["actual", "median", "q05", "q95", "p_positive", "p_best", "p_ruined"]
    cols = [c for c in cols if c in top.columns and (c != "actual" or actual)]
    rows = [[fmt(row[c], obj if c in ("actual", "median", "q05", "q95") else None) for c in cols]
            for row in top.head(MAX_TABLE_ROWS).iter_rows(named=True)]
    if top.height > MAX_TABLE_ROWS:
        rep.p(f"The {MAX_TABLE_ROWS} best of {top.height} configurations by median; summary.parquet has all.")
    rep.p(f"'actual': {obj} of the configuration on the real data over the whole window (not resampled); "
          "median, q05, q95: over the samples.")
    rep.table(cols, rows, "mc-summary")


# --------------------------------------------------------------------------- portfolio


def _leg_verdict(st: dict[str, Any]) -> Verdict:
    """A leg's verdict by ``PF_RULE`` from its deflated Sharpe and PBO (portfolio.json carries
    them); a portfolio.json without them falls back on its study's overall verdict."""
    dsr, pbo = st.get("dsr"), st.get("pbo")
    if "dsr" not in st and "pbo" not in st:
        folder = Path(str(st.get("results") or ""))
        try:
            read_manifest(folder, required=True)
            return overall_verdict(json.loads((folder / "summary.json").read_text()))
        except (SweepError, OSError, ValueError):
            return overall_verdict(None)
    passed, failed, missing = [], [], []
    if isinstance(dsr, (int, float)):
        (passed if dsr >= DSR_BAR else failed).append(f"deflated Sharpe {dsr:.3f}")
    else:
        missing.append("the deflated Sharpe")
    if isinstance(pbo, (int, float)):
        (passed if pbo < PBO_BAR else failed).append(f"PBO {pbo:.2f}")
    else:
        missing.append("the PBO")
    if missing:
        return Verdict("not assessed", passed, failed, missing)
    return Verdict("credible" if not failed else "doubtful" if passed else "not credible", passed, failed)


def portfolio_report(rep: Report, data, funding) -> None:
    res = rep.results
    doc = res.summary or {}
    rets = res.tables["returns"]
    strategies = doc.get("strategies") or []
    names = [c for c in rets.columns if c not in ("date", "book", "schema_version")]
    verdicts = [(st.get("factor", "?"), _leg_verdict(st)) for st in strategies]
    worst = max((v.label for _, v in verdicts), key=LABEL_ORDER.index, default="not assessed")
    sentence = (f"{worst[0].upper() + worst[1:]}: the least credible leg decides; "
                + "; ".join(f"{f}: {v.label}" for f, v in verdicts) + ".")
    m = doc.get("metrics") or {}
    w = doc.get("weights") or {}
    lead = (f"The book: {len(strategies)} sleeve{'s' if len(strategies) != 1 else ''} ("
            + ", ".join(f"{k} {v:.0%}" for k, v in w.items() if isinstance(v, (int, float)))
            + f"), {doc.get('weights_method', '?')} weights"
            + (f" re-estimated every {doc['walk_forward_days']} days" if doc.get("walk_forward_days") else "")
            + ", net of costs.")
    ruined_note = ("The book was ruined: its NAV reached zero (SEMANTICS §8)." if m.get("ruined") == 1.0 else None)
    _answer(rep, lead, m or None, "sharpe", ruined_note, worst, sentence, PF_RULE)
    panel, _ = load_study_panel(res, data, funding)
    rep.first_chart_note = coverage_sentence(res, panel)
    for wtext in doc.get("warnings") or []:
        rep.p(f"Warning: {wtext}", "notice")
    rep.h2("Equity of the book and its sleeves")
    rep.chart("book_equity", book_equity_chart(res, rets, names))
    series = [(c, c, rets["date"].to_numpy(), rets[c].to_numpy()) for c in ["book"] + names]
    yearly_table(rep, [], [], series)
    rep.h2("The sleeves")
    rows = []
    for (factor, v), st in zip(verdicts, strategies):
        sm = st.get("metrics") or {}
        params = st.get("params") or {}
        rows.append([factor, short(params, ["rebalance_days", "window", "phase", "weighting_method"]),
                     pct(w.get(factor)), fmt(sm.get("sharpe")), fmt(sm.get("cagr"), "cagr"),
                     fmt(sm.get("max_drawdown"), "max_drawdown"), fmt(st.get("dsr")), fmt(st.get("pbo")),
                     str(st.get("n_trials", "-")), v.label])
    rep.p("Each sleeve is its factor's chosen configuration (the best of its study not ruined), rerun over the "
          "common window. Deflated Sharpe and PBO: of the leg among its own factor's trials, over its study's "
          "window; 'verdict': the leg's, by the rule above.")
    rep.table(["factor", "configuration", "weight", "Sharpe", "CAGR", "max drawdown", "deflated Sharpe", "PBO",
               "trials", "verdict"], rows, "sleeves")
    corr = doc.get("correlation") or {}
    if corr.get("matrix"):
        labels = corr.get("strategies") or names
        crow = [[a] + [fmt(x) for x in r] for a, r in zip(labels, corr["matrix"])]
        rep.p("Correlation of the sleeves' daily net returns over the window (Pearson).")
        rep.table([""] + labels, crow, "correlation")
    if doc.get("periods"):
        prow = [[p["start"], p["end"]] + [pct(p["weights"].get(n)) for n in names]
                + [p.get("note") or ""] for p in doc["periods"]]
        rep.p("The weights of each walk-forward period, estimated from the returns before it.")
        rep.table(["start", "end"] + names + ["note"], prow, "periods")
    rep.provenance.append("<details><summary>Each sleeve's parameters and source</summary>"
                          + html_table(["factor", "study", "results", "config", "parameters"],
                                       [[st.get("factor", "?"), st.get("study", "?"), st.get("results", "?"),
                                         st.get("config_id", "?"),
                                         ", ".join(f"{k}={v}" for k, v in (st.get("params") or {}).items())]
                                        for st in strategies], "sleeve-params") + "</details>")
