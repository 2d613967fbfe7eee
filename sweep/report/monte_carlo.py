"""The report of a Monte Carlo study: the best configuration by its median over the samples
(not ruined on the real data) with one verdict by ``MC_RULE``, the distribution over the
samples against the actual (unresampled) value, and the median against the period."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kernels.metrics import METRICS
from sweep.report.answer import kind_answer
from sweep.report.base import (
    KEY_METRICS,
    MAX_TABLE_ROWS,
    TOP_BOXES,
    Chart,
    Report,
    fmt,
    is_signed,
    lower_is_better,
    metric_label,
    metric_name,
    ruined_mask,
    set_aside_sentence,
    short,
    swept,
)
from sweep.report.figures import WIDTH, below_legend, new_figure, percent_axis, wrap
from sweep.report.folder import (
    Results,
    coverage_sentence,
    load_study_panel,
    read_parquet,
    require,
    window_days,
)
from sweep.report.lines import lines_chart

CHARTS = ("distribution", "objective_vs_rebalance_days")
MC_RULE = ("Rule: the sign of the best configuration's result is established when 95 % of the samples keep it "
           "(q05 above 0); doubtful when only the median is above 0; not established otherwise.")


def read_tables(folder: Path, objective: str) -> tuple[dict[str, pl.DataFrame], None]:
    p = folder / "summary.parquet"
    summary = read_parquet(p)
    require(summary, p, ["config_id", "median", "q05", "q95"])
    p = folder / "samples.parquet"
    samples = read_parquet(p)
    require(samples, p, ["config_id", "sample", objective])
    return {"summary": summary, "samples": samples}, None


def counts(res: Results) -> str:
    m = res.manifest
    count, mc = m.get("configurations"), m.get("monte_carlo") or {}
    text = f"{count:,} configurations" if isinstance(count, int) else "?"
    return text + (f" x {mc.get('method', '?')} samples = {m.get('backtests', '?'):,} backtests"
                   if isinstance(m.get("backtests"), int) else "")


def actual_values(res: Results, summary: pl.DataFrame, panel) -> dict[str, dict[str, float]]:
    """Each configuration rerun on the real data over the evaluation window (the value the
    samples perturb): config_id -> every metric."""
    from sweep.engine.params import PARAMS, resolve
    from sweep.engine.workspace import Evaluator

    params = [c for c in res.params if c in PARAMS and c in summary.columns]
    configs = [resolve({k: row[k] for k in params if row[k] is not None}, "summary.parquet")
               for row in summary.iter_rows(named=True)]
    s, e = window_days(res, panel)
    metrics, _ = Evaluator(panel).run(configs, s, e)
    return {cid: dict(zip(METRICS, map(float, metrics[i]))) for i, cid in enumerate(summary["config_id"])}



def monte_carlo_verdict(obj: str, b: dict[str, Any] | None) -> tuple[str, str]:
    if b is None:
        return "not assessed", "Not assessed: no configuration has a finite median."
    if not is_signed(obj) or lower_is_better(obj):
        return "not assessed", f"Not assessed: {obj} has no sign to establish."
    q05, med = b["q05"], b["median"]
    if q05 is not None and q05 > 0:
        return "established", f"Established: 95 % of the samples keep {obj} above 0 (q05 {q05:.2f})."
    if med is not None and med > 0:
        return "doubtful", (f"Doubtful: the median {obj} {med:.2f} is above 0 but q05 {q05:.2f} is not: one "
                            "sample in twenty or more turns it negative.")
    return "not established", f"Not established: the median {obj} {med:.2f} is not above 0."


def section(rep: Report, *, data=None, funding=None, monte_carlo=None) -> None:
    """The report of a Monte Carlo study."""
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
    kind_answer(rep, lead, key, "median " + obj, set_aside_sentence(n_ruined, summary.height) if actual else None,
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
    if not lower_is_better(obj):
        ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel(metric_label(obj))
    percent_axis(ax.xaxis, obj)
    ax.set_ylabel("configuration (" + ", ".join(shown) + ")" if shown else "configuration")
    ax.grid(True, axis="x", alpha=0.3)
    below_legend(fig, handles, names, ncols=2)
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
