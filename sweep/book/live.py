"""``sweep export`` and ``sweep check``: from chosen configurations to a live trading
configuration, and back.

A live configuration is a JSON object::

    {"strategy_weights": {"<factor>": w, ...},
     "params": {"<factor>": {"rebalance_days": 7, "weighting_method": "equal", ...}, ...},
     "provenance": {"study": [...], "data_fingerprint": ..., "evaluation_window": {...},
                    "sweep_version": ..., "weights": "equal", ...}}

``export`` writes, per factor, the resolved parameters that change its backtest
(``sweep.book.relevant``) and the strategy weights of ``sweep portfolio
--weights`` (static, estimated on the common window; under walk-forward the
next period's weights would be the same estimate, from every day of the window).

``check`` reads a live file written by hand or by another system, so it accepts
the common spellings and says which one it read: keys ``weighting_method`` /
``weighting`` / ``weights_method`` and ``rebalance_days`` / ``rebalance_period``
/ ``rebalance_freq``; values ``equal_weight`` / ``equal`` / ``ew``,
``risk_parity`` / ``inverse_vol`` / ``inverse_volatility`` / ``rp``, ``drift`` /
``buy_and_hold`` (any letter case); numbers given as strings (``"7"``) or as
whole floats for whole-number parameters (``7.0``). Its rules:

* A parameter differs when the live value (after spelling) is not the
  backtest's; floats compare to 1e-9 relative. A parameter the live file
  omits is taken at sweep's default and differs only when that default is not
  the backtest's value. A live value of a parameter that does not apply to
  either configuration (``q`` with ``top_n`` selection) is shown as ignored.
* A strategy weight differs when ``|live - backtest| > WEIGHT_TOL`` (0.005,
  half a percentage point of the book: a hand-written file rounded to two
  decimals passes, a real reallocation does not); ``--weight-tol`` changes it.
  The backtest's weights use ``--weights``, else the live file's
  ``provenance.weights``, else ``equal``.
* A factor present on one side only differs; so does an unknown key (the
  live system reads something the backtest does not model).
* A malformed file (not JSON, no ``params`` object, a value that cannot be
  read as its parameter, an unknown factor) is a one-line ``SweepError``
  naming the file and the key: exit code 2.

Exit code of ``check``: 0 when nothing differs, 1 otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep.core.errors import SweepError
from sweep.engine.params import config_id, resolve
from sweep.book.export import backtest_weights, live_config
from sweep.book.livefile import EXPORT_KEY, LiveConfig, LiveValue, quote, read_live
from sweep.book.relevant import relevant
from sweep.book.sources import Choice, select
from sweep.book.weights import WEIGHT_METHODS

__all__ = ["WEIGHT_TOL", "Report", "Row", "check_live", "live_config", "print_report", "read_live"]

WEIGHT_TOL = 0.005


# ---- check --------------------------------------------------------------------------------------


@dataclass
class Row:
    factor: str
    parameter: str
    backtest: Any
    live: Any
    status: str  # match, MISMATCH, MISSING, ignored, UNKNOWN
    note: str = ""
    live_sharpe: float | None = None  # Sharpe of the configuration with the live value, when studied
    best_sharpe: float | None = None

    @property
    def differs(self) -> bool:
        return self.status in ("MISMATCH", "MISSING", "UNKNOWN")


@dataclass
class Report:
    rows: list[Row]
    method: str
    method_from: str
    tol: float
    notes: list[str]

    @property
    def n_differences(self) -> int:
        return sum(r.differs for r in self.rows)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _studied_sharpe(c: Choice, variant: dict[str, Any]) -> float | None:
    """Sharpe of ``variant`` (resolved) in the study that chose ``c``, if it ran it."""
    import polars as pl

    try:
        p = resolve(variant, "live", checked=True)
    except SweepError:
        return None
    hit = c.source.trials.filter(pl.col("config_id") == config_id(p))
    if hit.height == 0 or "sharpe" not in hit.columns:
        return None
    v = hit["sharpe"][0]
    return None if v is None or not math.isfinite(v) else float(v)


def _param_rows(c: Choice, given: dict[str, LiveValue], live: LiveConfig) -> tuple[list[Row], str | None]:
    factor = c.factor
    where = f"{live.path}: params.{factor}"
    try:
        lr = resolve({"factor": factor, **{n: v.value for n, v in given.items()}}, where)
    except SweepError as exc:
        raise SweepError(str(exc)) from None
    rel_bt, rel_live = relevant(c.params), relevant(lr)
    names = list(dict.fromkeys(rel_bt + [n for n in rel_live if n not in rel_bt] +
                               [n for n in given if n not in rel_bt and n not in rel_live]))
    best = c.row.get("sharpe")
    rows = []
    for name in names:
        bt, lv = c.params[name], lr[name]
        shown = EXPORT_KEY.get(name, name)
        if isinstance(bt, tuple):
            bt, lv = list(bt), list(lv)
        v = given.get(name)
        if v is None:
            if _same(bt, lv):
                rows.append(Row(factor, shown, bt, lv, "match", "absent: sweep's default"))
            else:
                rows.append(Row(factor, shown, bt, "absent", "MISMATCH", f"absent: sweep's default {lv!r} applies",
                                _studied_sharpe(c, {**c.params, name: lr[name]}), best))
        elif _same(bt, lv):
            rows.append(Row(factor, shown, bt, lv, "match", v.note))
        elif name not in rel_bt and name not in rel_live:
            rows.append(Row(factor, shown, bt, lv, "ignored", "does not apply to this configuration"))
        else:
            rows.append(Row(factor, shown, bt, lv, "MISMATCH", v.note,
                            _studied_sharpe(c, {**c.params, name: lr[name]}), best))
    whole = None
    if any(r.differs for r in rows):
        # Parameters that apply to neither side must not hide an identical backtest.
        variant = {**c.params, **{n: lr[n] for n in rel_live}}
        s = _studied_sharpe(c, variant)
        whole = (f"{factor}: the live configuration as a whole " +
                 (f"got Sharpe {s:.3f} in {c.source.name} (the chosen one {_show(best, 3)})" if s is not None
                  else f"is not among the configurations {c.source.name} ran"))
    return rows, whole


def check_live(live: LiveConfig, results: list[str | Path], weights: str | None = None,
               tol: float = WEIGHT_TOL, data=None, funding=None) -> Report:
    """Compare a live configuration with the studies' chosen configurations, row by row."""
    if not (tol >= 0 and math.isfinite(tol)):
        raise SweepError(f"--weight-tol = {tol} must be a non-negative number")
    sources, choices, (start, end) = select(results)
    if weights is not None:
        method, method_from = weights, "--weights"
    elif live.provenance.get("weights") in WEIGHT_METHODS:
        method, method_from = live.provenance["weights"], f"{live.path} provenance.weights"
    else:
        method, method_from = "equal", "the default (no --weights, no provenance.weights)"
    by_factor = {c.factor: c for c in choices}
    factors = list(by_factor) + [f for f in live.params if f not in by_factor]
    rows: list[Row] = []
    notes: list[str] = []
    for f in factors:
        if f not in live.params:
            rows.append(Row(f, "(factor)", "present", "absent", "MISSING", "the live file has no parameters for it"))
        elif f not in by_factor:
            rows.append(Row(f, "(factor)", "absent", "present", "MISSING",
                            "no study among the results chose a configuration for it"))
        else:
            r, whole = _param_rows(by_factor[f], live.params[f], live)
            rows += r
            if whole:
                notes.append(whole)
    bw = dict(zip(by_factor, backtest_weights(choices, sources, start, end, method, data, funding)))
    lw = live.weights or {}
    for f in list(bw) + [f for f in lw if f not in bw]:
        b, v = bw.get(f), lw.get(f)
        if b is None or v is None:
            rows.append(Row(f, "strategy_weight", b, v.value if v else "absent", "MISSING",
                            "no strategy_weights in the live file" if live.weights is None else ""))
        else:
            ok = abs(v.value - b) <= tol
            rows.append(Row(f, "strategy_weight", b, v.value, "match" if ok else "MISMATCH",
                            (v.note + "; " if v.note else "") + f"|diff| {abs(v.value - b):.4f} "
                            f"{'<=' if ok else '>'} {tol:g}"))
    for f, key, raw, hint in live.unknown:
        rows.append(Row(f, key, None, quote(raw)[:40], "UNKNOWN",
                        f"not a sweep parameter{hint}" if f != "-" else f"not a live-configuration key{hint}"))
    prov = live.provenance
    fp = sources[0].fingerprint
    if prov.get("data_fingerprint") not in (None, fp):
        notes.append(f"the live file was exported from other data (fingerprint {prov['data_fingerprint']}, "
                     f"the studies' {fp})")
    win = prov.get("evaluation_window") or {}
    if win and (win.get("start"), win.get("end")) != (str(start), str(end)):
        notes.append(f"the live file's evaluation window {win.get('start')} .. {win.get('end')} is not the "
                     f"studies' common window {start} .. {end}")
    return Report(rows, method, method_from, tol, notes)


def print_report(report: Report, live: LiveConfig) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=170)
    t = Table(title=f"{live.path} against the studies (strategy weights: {report.method}, from "
                    f"{report.method_from})", title_justify="left")
    for col in ("factor", "parameter", "backtest", "live", "status", "note", "sharpe (live value)",
                "sharpe (chosen)"):
        t.add_column(col, justify="right" if col.startswith("sharpe") else "left")
    style = {"match": "green", "ignored": "dim", "MISMATCH": "bold red", "MISSING": "bold red",
             "UNKNOWN": "bold yellow"}
    for r in report.rows:
        t.add_row(r.factor, r.parameter, _show(r.backtest), _show(r.live), f"[{style[r.status]}]{r.status}[/]",
                  r.note, *((_show(r.live_sharpe, 3), _show(r.best_sharpe, 3))
                            if r.status == "MISMATCH" and r.parameter != "strategy_weight" else ("", "")))
    console.print(t)
    for n in report.notes:
        console.print(n)
    n = report.n_differences
    console.print("the live configuration matches the studies" if n == 0 else
                  f"{n} difference{'s' if n != 1 else ''} between the live configuration and the studies")


def _show(v: Any, digits: int | None = None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if digits is not None:
            return f"{v:.{digits}f}"
        return f"{v:.4f}" if abs(v) < 1 else f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v)) or "[]"
    return str(v)
