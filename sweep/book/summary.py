"""A portfolio's summary on screen (``sweep portfolio`` and ``sweep show`` of its folder)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from kernels.metrics import METRICS

from sweep.core.errors import SweepError

_PCT = ("total_return", "cagr", "ann_vol", "max_drawdown", "win_rate", "mean_return_share",
        "total_return_contribution", "weight")


def _fmt(v: Any, name: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if not math.isfinite(v):
            return "nan"
        if name in _PCT:
            return f"{v:.1%}"
        if name == "n_rebalances":
            return f"{v:.0f}"
        return f"{v:.3f}"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v)) or "-"
    return str(v)


def print_portfolio(doc: dict[str, Any], out: Path | None = None) -> None:
    """The summary of a portfolio (its ``portfolio.json`` document) as rich tables."""
    from rich.console import Console
    from rich.table import Table

    names = [s["factor"] for s in doc["strategies"]]
    win = doc["evaluation_window"]
    console = Console(width=max(160, 14 * (len(names) + 2)))
    wf = f", walk-forward every {doc['walk_forward_days']} days" if doc["walk_forward_days"] else ""
    shown = ["rebalance_days", "weighting_method", "window", "phase"]
    t = Table(title=f"portfolio of {len(names)} strategies, {win['start']} .. {win['end']} ({win['days']} days), "
                    f"weights {doc['weights_method']}{wf}", title_justify="left")
    for col in ["factor", "study", *shown, "weight", "sharpe", "cagr", "max_drawdown", "mean_return_share"]:
        t.add_column(col, justify="left" if col in ("factor", "study", "weighting_method") else "right")
    contrib = doc["contributions"]["strategies"]
    for s in doc["strategies"]:
        f, m = s["factor"], s["metrics"]
        t.add_row(f, s["study"], *[_fmt(s["params"].get(k)) for k in shown],
                  _fmt(contrib[f]["weight"], "weight"), _fmt(m["sharpe"]), _fmt(m["cagr"], "cagr"),
                  _fmt(m["max_drawdown"], "max_drawdown"),
                  _fmt(contrib[f]["mean_return_share"], "mean_return_share"))
    console.print(t)
    for part, title in ((METRICS[:9], "the book (SEMANTICS §9 on R_book = sum_s w_s R_s)"),
                        (METRICS[9:], "turnover, cost and funding: the strategies' weighted sums; "
                                      "exposures: the combined holdings")):
        mt = Table(title=title, title_justify="left")
        for m in part:
            mt.add_column(m, justify="right")
        mt.add_row(*[_fmt(doc["metrics"][m], m) for m in part])
        console.print(mt)
    ct = Table(title="correlation of daily net returns", title_justify="left")
    ct.add_column("")
    for name in names:
        ct.add_column(name, justify="right")
    for name, row in zip(names, doc["correlation"]["matrix"]):
        ct.add_row(name, *[_fmt(v) for v in row])
    console.print(ct)
    if doc["periods"]:
        pt = Table(title=f"walk-forward weights ({len(doc['periods'])} periods, each from the returns before it)",
                   title_justify="left")
        for col in ["start", "end", *names, "note"]:
            pt.add_column(col, justify="left" if col in ("start", "end", "note") else "right")
        for p in doc["periods"]:
            pt.add_row(p["start"], p["end"], *[_fmt(p["weights"][n], "weight") for n in names], p["note"])
        console.print(pt)
    c = doc["contributions"]
    console.print(f"Sum of weight x total return {_fmt(c['buy_and_hold_total_return'], 'total_return')} "
                  f"(strategies bought once, never re-mixed); the daily re-mix adds "
                  f"{_fmt(c['rebalancing_effect'], 'total_return')}.")
    for w in doc.get("warnings", []):
        console.print(f"[bold yellow]warning:[/] {w}")
    if out is not None:
        console.print(f"-> {out}/portfolio.json, {out}/portfolio_returns.parquet")


def show(folder: str | Path) -> int:
    """``sweep show`` of a portfolio folder: its summary, from ``portfolio.json``."""
    path = Path(folder) / "portfolio.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise SweepError(f"{path}: unreadable ({exc}); run the portfolio again") from None
    print_portfolio(doc)
    return 0


def ending(study, folder: str | Path, data=None) -> tuple[list[str], list[str]]:
    """What ``sweep run`` of a portfolio study ends with: the book in one sentence and its
    warnings (no further commands beyond ``show`` and ``report``)."""
    path = Path(folder) / "portfolio.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise SweepError(f"{path}: unreadable ({exc}); run the portfolio again") from None
    m, win = doc.get("metrics", {}), doc.get("evaluation_window", {})
    names = [s["factor"] for s in doc.get("strategies", [])]
    line = (f"The book of {len(names)} strateg{'y' if len(names) == 1 else 'ies'} ({', '.join(names)}), "
            f"weights {doc.get('weights_method')}, "
            f"{win.get('start')} .. {win.get('end')}: Sharpe {_fmt(m.get('sharpe'))}, CAGR "
            f"{_fmt(m.get('cagr'), 'cagr')}, max drawdown {_fmt(m.get('max_drawdown'), 'max_drawdown')}.")
    return [line] + [f"warning: {w}" for w in doc.get("warnings") or []], []
