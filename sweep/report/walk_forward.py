"""The report of a walk-forward study: the stitched out-of-sample book first, with one
verdict by ``WF_RULE`` (or the search's own when the summary has the overfitting
statistics), then train against test per fold and the folds' choices."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sweep.report.answer import kind_answer
from sweep.report.base import Chart, Report, fmt, metric_label, metric_name, ruined_mask
from sweep.report.equity import oos_equity_chart
from sweep.report.figures import WIDTH, below_legend, new_figure, percent_axis, wrap
from sweep.report.folder import (
    Results,
    coverage_sentence,
    load_study_panel,
    read_parquet,
    require,
)
from sweep.stats.verdict import RULE, overall_verdict

CHARTS = ("oos_equity", "train_vs_test")
WF_RULE = ("Rule: the walk-forward holds up when the stitched out-of-sample Sharpe is above 0 and the choices "
           "ranked better than a random pick on their test windows (mean test rank below (n + 1) / 2, n "
           "candidates); mixed when one of the two holds; it does not hold up when neither does.")


def read_tables(folder: Path, objective: str) -> tuple[dict[str, pl.DataFrame], None]:
    p = folder / "folds.parquet"
    folds = read_parquet(p)
    require(folds, p, ["fold", "test_start", "test_end", f"train_{objective}", f"test_{objective}"])
    p = folder / "oos_returns.parquet"
    oos = read_parquet(p)
    require(oos, p, ["date", "fold", "ret"])
    return {"folds": folds, "oos_returns": oos}, None


def counts(res: Results) -> str:
    wf = res.manifest.get("walk_forward") or {}
    return (f"{wf.get('candidates', '?')} candidates x {wf.get('folds', '?')} folds (train "
            f"{wf.get('train_days', '?')} days, test {wf.get('test_days', '?')}, step "
            f"{wf.get('step_days', '?')}{', anchored' if wf.get('anchored') else ''}; inner "
            f"{wf.get('inner', 'grid')})")


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


def section(rep: Report, *, data=None, funding=None, monte_carlo=None) -> None:
    """The report of a walk-forward study."""
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
    kind_answer(rep, f"The out-of-sample book: each fold's choice, made on its train window alone, traded on its "
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
    below_legend(fig, *ax.get_legend_handles_labels(), ncols=2)
    ax.set_title(wrap(f"{res.name}: {metric_name(obj)} of each fold's choice, train vs test, "
                      f"{folds['train_start'].min()} .. {folds['test_end'].max()}", fig.get_figwidth()), fontsize=11)
    caption = ("The configuration chosen in each fold, scored on the train window it was chosen on and on "
               "the test window that followed. A test bar far below its train bar is the search's optimism.")
    return Chart("train_vs_test", "Train against test, per fold", fig, caption)
