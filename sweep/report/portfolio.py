"""The report of a portfolio: the book and its sleeves, their correlation and weights; the
verdict is the least credible leg's (``PF_RULE``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from sweep.core.errors import SweepError
from sweep.report.answer import kind_answer
from sweep.report.base import Report, fmt, html_table, short
from sweep.report.equity import book_equity_chart, yearly_table
from sweep.report.folder import (
    Results,
    coverage_sentence,
    load_study_panel,
    read_json,
    read_parquet,
    require,
)
from sweep.results.schema import read_manifest
from sweep.stats.verdict import DSR_BAR, PBO_BAR, Verdict, overall_verdict

CHARTS = ("book_equity",)
PF_RULE = ("Rule: a leg is credible when its deflated Sharpe (deflated by its own factor's trials) is at least "
           f"{DSR_BAR} and its PBO below {PBO_BAR}; doubtful when one of the two fails; not credible when both fail. "
           "The book is only as credible as its least credible leg.")
LABEL_ORDER = ("credible", "doubtful", "not credible", "not assessed")


def read_tables(folder: Path, objective: str) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """portfolio_returns.parquet, and portfolio.json as the summary."""
    ppath = folder / "portfolio.json"
    if not ppath.exists():
        raise SweepError(f"{ppath}: missing (the portfolio folder is incomplete); rerun the portfolio")
    doc = read_json(ppath)
    p = folder / "portfolio_returns.parquet"
    returns = read_parquet(p)
    require(returns, p, ["date", "book"])
    return {"returns": returns}, doc


def manifest_without_file(folder: Path) -> dict[str, Any] | None:
    """`sweep portfolio` writes no manifest.json: portfolio.json carries what the header needs."""
    ppath = folder / "portfolio.json"
    if not ppath.exists():
        return None
    doc = read_json(ppath)
    prov = doc.get("provenance") or {}
    return {"study": {"name": folder.name, "kind": "portfolio", "objective": "sharpe"},
            "data": prov.get("data") or {}, "evaluation_window": doc.get("evaluation_window") or {},
            "configurations": len(doc.get("strategies") or []), "created": prov.get("created"),
            "versions": {"sweep": prov.get("sweep_version", "?")}}


def counts(res: Results) -> str:
    count = res.manifest.get("configurations")
    return f"{count} sleeves" if isinstance(count, int) else "?"


def provenance_rows(res: Results) -> list[tuple[str, str]]:
    """Rows the provenance table adds after the kind: the results folders combined."""
    return [("results", ", ".join(str(r) for r in ((res.summary or {}).get("provenance") or {}).get("results", [])))]


def pct(v: Any) -> str:
    return f"{v:.0%}" if isinstance(v, (int, float)) and math.isfinite(v) else "-"


def leg_verdict(st: dict[str, Any]) -> Verdict:
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


def section(rep: Report, *, data=None, funding=None, monte_carlo=None) -> None:
    """The report of a portfolio (a ``sweep portfolio`` folder or a portfolio study's)."""
    res = rep.results
    doc = res.summary or {}
    rets = res.tables["returns"]
    strategies = doc.get("strategies") or []
    names = [c for c in rets.columns if c not in ("date", "book", "schema_version")]
    verdicts = [(st.get("factor", "?"), leg_verdict(st)) for st in strategies]
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
    kind_answer(rep, lead, m or None, "sharpe", ruined_note, worst, sentence, PF_RULE)
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
