"""``sweep show`` of a diagnostics study (does the factor predict?) and the end of its ``sweep
run`` (the kind registry's ``show``): the IC table ranked by |IR|, one row per configuration x
horizon, then one sentence per factor (the words are ``sweep.report.diagnostics_text``'s, shared
with the report)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sweep.cli.common import (
    console_of,
    fit_table,
    id_length,
    print_table,
    read,
    term_width,
)
from sweep.core.errors import SweepError

# Header -> summary.parquet column; the first ones always, the rest as the width allows.
HEADERS = {"h": "horizon", "IC": "ic_mean", "IR": "ic_ir", "t": "ic_t", "p": "ic_p", "IC>0": "ic_positive",
           "days": "n_days", "spread": "spread_mean", "ac1": "rank_autocorr_1", "turn": "turnover_top"}
FIXED = ("h", "IC", "IR", "t")
LEGEND = ("h: horizon in days; IC: mean daily rank IC; IR: IC / its std; t = IR x sqrt(days); p: two-sided; "
          "IC>0: share of days; spread: top minus bottom quantile's mean h-day return; ac1: lag-1 rank "
          "autocorrelation; turn: the top quantile's daily turnover.")


def _rows(folder: Path):
    from sweep.report.diagnostics_text import shown_params
    from sweep.results.schema import read_manifest

    summary = read(folder / "summary.parquet")
    missing = [c for c in ("config_id", "horizon", "ic_mean", "ic_ir") if c not in summary.columns]
    if missing:
        raise SweepError(f"{folder / 'summary.parquet'}: not a diagnostics table (no column {', '.join(missing)}); "
                         "rerun the study")
    manifest = read_manifest(folder, required=False)
    params = manifest.get("parameters") or [c for c in ("factor", "window") if c in summary.columns]
    return summary, manifest, shown_params(summary, params)


def _cell(v, col: str) -> str:
    from sweep.report.diagnostics_text import cell

    return cell(v, col)


def show(folder: Path, args) -> int:
    """``sweep show`` of a diagnostics folder: the strongest configuration x horizon pairs by |IR|
    (``--by COLUMN``: by |COLUMN|), then what each factor predicts in one sentence."""
    from sweep.report.diagnostics_text import factor_sentences, ranked

    summary, manifest, shown = _rows(folder)
    by = getattr(args, "by", None) or "ic_ir"
    if by not in summary.columns or not summary[by].dtype.is_numeric():
        numeric = [c for c in summary.columns if summary[c].dtype.is_numeric() and c != "schema_version"]
        raise SweepError(f"--by {by}: not a number column of {folder / 'summary.parquet'} "
                         f"(one of {', '.join(numeric)})")
    rows = ranked(summary, by)
    n_id = id_length(summary["config_id"])
    prefix = getattr(args, "config", None)
    if prefix:
        rows = rows.filter(rows["config_id"].str.starts_with(prefix))
        ids = rows["config_id"].unique()
        if ids.len() != 1:
            raise SweepError(f"--config {prefix}: {'no' if ids.len() == 0 else ids.len()} configurations of "
                             f"{folder / 'summary.parquet'} start with it")
        top = rows.sort("horizon")
    else:
        top = rows.head(max(1, args.top))
    width = term_width()
    name = ((manifest.get("study") or {}).get("name")) or folder.name
    w = manifest.get("evaluation_window") or {}
    n_conf = summary["config_id"].n_unique()
    what = (f"configuration {top['config_id'][0]}, every horizon" if prefix else
            f"the {top.height} strongest of {summary.height} configuration x horizon pairs by |{'IR' if by == 'ic_ir' else by}|")
    console_of(width).print(f"{name}: does the factor predict? Rank IC of {n_conf} configurations, "
                            f"{w.get('start', '?')} .. {w.get('end', '?')}; {what}", highlight=False)
    params = [c for c in shown if c in summary.columns]
    heads = {"#": "right", "config_id": "left", **{c: "left" for c in params},
             **{h: "right" for h, col in HEADERS.items() if col in summary.columns}}
    table = []
    for i, r in enumerate(top.iter_rows(named=True), 1):
        cells = {"#": str(i), "config_id": r["config_id"][:n_id], **{c: _cell(r[c], c) for c in params}}
        cells.update({h: _cell(r[col], col) for h, col in HEADERS.items() if col in summary.columns})
        table.append(cells)
    optional = [h for h in HEADERS if h in heads and h not in FIXED]
    print_table(fit_table(heads, table, ["#", "config_id", *params, *[h for h in FIXED if h in heads]],
                          optional, width), width)
    print(textwrap.fill(LEGEND, width, break_on_hyphens=False))
    print()
    print("What each factor predicts (its strongest configuration and horizon):")
    for s in factor_sentences(top if prefix else rows, shown):
        print(textwrap.fill(s, width, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False))
    return 0


def ending(study, folder: Path, data: str | None) -> tuple[list[str], list[str]]:
    """The end of ``sweep run``: the strongest factor and horizon by |IR| and whether it is
    significant (after the correction for the pairs tested), in one paragraph."""
    import shlex

    from sweep.report.diagnostics_text import (
        finite,
        label,
        n_tests,
        p_is,
        ranked,
        sentence,
        significance,
    )

    summary, _, shown = _rows(folder)
    rows = ranked(summary)
    if rows.height == 0 or not finite(rows["ic_ir"][0]):
        return [("No configuration has a finite IC at any horizon: too few names ranked on each day, or a "
                "factor constant across names.")], []
    b = rows.row(0, named=True)
    tests = n_tests(summary)
    verdict, why = significance(b, tests)
    cid = b["config_id"][:id_length(summary["config_id"])]
    lines = [f"Strongest by |IR|: {label(b, shown)} at {b['horizon']}-day returns (config {cid}): IR "
             f"{b['ic_ir']:.3f}, {p_is(b.get('ic_p'))}: {verdict}. " + sentence(b, shown),
             why]
    return lines, [f"sweep show {shlex.quote(str(folder))} --config {cid}"]
