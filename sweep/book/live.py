"""``sweep export`` and ``sweep check``: from chosen configurations to a live trading
configuration, and back.

A live configuration is a JSON object::

    {"strategy_weights": {"<factor>": w, ...},
     "params": {"<factor>": {"rebalance_days": 7, "weighting_method": "equal", ...}, ...},
     "provenance": {"study": [...], "data_fingerprint": ..., "evaluation_window": {...},
                    "sweep_version": ..., "weights": "equal", ...}}

``export`` writes, per factor, the resolved parameters that change its backtest
(``_portfolio.relevant``) and the strategy weights of ``sweep portfolio
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

import datetime as dt
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sweep import __version__
from sweep.core.errors import SweepError
from sweep.engine.params import CHOICES, FACTORS, PARAMS, check_value, closest, config_id, resolve
from sweep.book.portfolio import (WEIGHT_METHODS, Choice, equal_weights, judge_legs, live_params, load_data, relevant, rerun,
                         select, static_weights)

WEIGHT_TOL = 0.005
TOP_KEYS = ("strategy_weights", "params", "provenance")

# Other spellings -> sweep's name. Every PARAMS name is also accepted as itself.
KEY_ALIASES = {
    "weighting_method": "weighting",
    "weights_method": "weighting",
    "rebalance_period": "rebalance_days",
    "rebalance_freq": "rebalance_days",
}
VALUE_ALIASES = {
    "weighting": {"equal_weight": "equal", "ew": "equal", "inverse_vol": "risk_parity",
                  "inverse_volatility": "risk_parity", "rp": "risk_parity"},
    "hold": {"buy_and_hold": "drift"},
}
# What export writes for a parameter (sweep's name otherwise).
EXPORT_KEY = {"weighting": "weighting_method"}


# ---- export -----------------------------------------------------------------------------------


def backtest_weights(choices: list[Choice], sources, start, end, method: str, data=None, funding=None) -> np.ndarray:
    """The strategy weights ``sweep portfolio --weights method`` gives (static, on the window)."""
    if method not in WEIGHT_METHODS:
        raise SweepError(f"--weights {method!r} is not one of {', '.join(WEIGHT_METHODS)}"
                         f"{closest(str(method), WEIGHT_METHODS)}")
    if method == "equal":  # needs no data
        return equal_weights(len(choices))
    sl = rerun(load_data(sources, data, funding), choices, start, end)
    return static_weights(sl.R, method, sl.names)


def live_config(results: list[str | Path], weights: str = "equal", data=None, funding=None) -> dict[str, Any]:
    """The live configuration of the studies' chosen configurations (see the module docstring)."""
    sources, choices, (start, end) = select(results)
    w = backtest_weights(choices, sources, start, end, weights, data, funding)
    # Each leg's deflated Sharpe and PBO travel with it: live trading should know how
    # much of a leg's Sharpe the search that found it can explain.
    warnings = judge_legs(load_data(sources, data, funding), choices)
    folders = list(dict.fromkeys(c.source.folder for c in choices))
    names = {c.source.folder: c.source.name for c in choices}
    return {
        "strategy_weights": {c.factor: float(x) for c, x in zip(choices, w)},
        "params": {c.factor: live_params(c.params) for c in choices},
        "provenance": {
            "study": [names[f] for f in folders],
            "results": [str(f) for f in folders],
            "data_fingerprint": sources[0].fingerprint,
            "evaluation_window": {"start": str(start), "end": str(end)},
            "sweep_version": __version__,
            "weights": weights,
            "chosen": {c.factor: {"study": c.source.name, "config_id": c.config_id,
                                  "objective": c.source.objective, "value": _num(c.value)} for c in choices},
            "legs": {c.factor: {"dsr": c.stats.get("dsr"), "pbo": c.stats.get("pbo"),
                                "n_trials": c.stats.get("n_trials"), "ruined_set_aside": c.set_aside}
                     for c in choices},
            "warnings": warnings,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        },
    }


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


# ---- reading a live file ---------------------------------------------------------------------


@dataclass
class LiveValue:
    key: str  # as written in the file
    raw: Any  # as written in the file
    value: Any  # read as sweep's parameter
    note: str = ""  # which spelling was read, if not sweep's own


@dataclass
class LiveConfig:
    path: Path
    params: dict[str, dict[str, LiveValue]]  # factor -> sweep name -> value
    weights: dict[str, LiveValue] | None
    provenance: dict[str, Any]
    unknown: list[tuple[str, str, Any, str]] = field(default_factory=list)  # (factor or "-", key, value, hint)


def _bad(path: Path, key: str, msg: str) -> SweepError:
    return SweepError(f"{path}: {key} {msg}")


def _number(raw: Any, whole: bool, path: Path, key: str) -> tuple[float | int, str]:
    """A JSON number, or a string holding one; a whole-number parameter takes only whole values."""
    what = "a whole number" if whole else "a number"
    if isinstance(raw, bool):
        raise _bad(path, key, f"= {json.dumps(raw)} must be {what}")
    note = ""
    if isinstance(raw, (int, float)):
        v = raw
    elif isinstance(raw, str):
        try:
            v = float(raw.strip())
        except ValueError:
            raise _bad(path, key, f"= {json.dumps(raw)} must be {what}") from None
        note = f"read the string {json.dumps(raw)} as a number"
    else:
        raise _bad(path, key, f"= {json.dumps(raw)} must be {what}")
    if not math.isfinite(v):
        raise _bad(path, key, f"= {json.dumps(raw)} must be finite")
    if whole:
        if isinstance(v, float):
            if not v.is_integer():
                raise _bad(path, key, f"= {json.dumps(raw)} must be {what}")
            note = note or f"read {json.dumps(raw)} as {int(v)}"
            v = int(v)
    else:
        v = float(v)
    return v, note


def read_value(name: str, raw: Any, path: Path, key: str) -> LiveValue:
    """One live value read as sweep's parameter ``name`` (spellings accepted, and noted)."""
    kind = PARAMS[name][0]
    note = ""
    if kind in ("int", "float"):
        value, note = _number(raw, kind == "int", path, key)
    elif kind == "choice":
        if not isinstance(raw, str):
            raise _bad(path, key, f"= {json.dumps(raw)} must be one of {', '.join(CHOICES[name])}")
        word = raw.strip().lower()
        value = VALUE_ALIASES.get(name, {}).get(word, word)
        if value not in CHOICES[name]:
            valid = list(CHOICES[name]) + list(VALUE_ALIASES.get(name, {}))
            raise _bad(path, key, f"= {json.dumps(raw)} is not one of {', '.join(CHOICES[name])}"
                                  f"{closest(word, valid)}")
        if value != raw:
            note = f"read {raw!r} as {value!r}"
    elif kind == "strlist":
        if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
            raise _bad(path, key, f"= {json.dumps(raw)} must be a list of symbols")
        value = raw
    else:
        value = raw
    try:
        value = check_value(name, value, f"{path}: {key}")
    except SweepError as exc:  # a minimum, a maximum: the message already names file and key
        raise SweepError(str(exc)) from None
    return LiveValue(key.rsplit(".", 1)[-1], raw, value, note)


def read_live(path: str | Path) -> LiveConfig:
    """Read and check a live configuration file; a malformed one raises ``SweepError``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SweepError(f"{path}: cannot read the live configuration ({exc.strerror})") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        msg = getattr(exc, "msg", str(exc))
        where = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
        raise SweepError(f"{path}: not valid JSON ({msg}{where})") from None
    if not isinstance(doc, dict):
        raise SweepError(f"{path}: the live configuration must be a JSON object with a 'params' key")
    unknown = [("-", k, doc[k], closest(k, TOP_KEYS)) for k in doc if k not in TOP_KEYS]
    if "params" not in doc:
        raise SweepError(f"{path}: missing key 'params' (the parameters per factor)")
    if not isinstance(doc["params"], dict):
        raise _bad(path, "params", "must be an object of factor -> parameters")
    params: dict[str, dict[str, LiveValue]] = {}
    for factor, given in doc["params"].items():
        if factor not in FACTORS:
            raise _bad(path, f"params.{factor}", f"is not a factor{closest(factor, FACTORS)}")
        if not isinstance(given, dict):
            raise _bad(path, f"params.{factor}", "must be an object of parameter -> value")
        read: dict[str, LiveValue] = {}
        for key, raw in given.items():
            where = f"params.{factor}.{key}"
            if key == "factor":
                if raw != factor:
                    raise _bad(path, where, f"= {json.dumps(raw)} contradicts its key '{factor}'")
                continue
            name = KEY_ALIASES.get(key, key)
            if name not in PARAMS:
                unknown.append((factor, key, raw, closest(key, list(PARAMS) + list(KEY_ALIASES))))
                continue
            if name in read:
                raise _bad(path, where, f"and params.{factor}.{read[name].key} both set {name}; keep one")
            v = read_value(name, raw, path, where)
            if key != name and key != EXPORT_KEY.get(name):
                v.note = f"read key '{key}' as {name}" + (f"; {v.note}" if v.note else "")
            read[name] = v
        params[factor] = read
    weights = None
    if "strategy_weights" in doc:
        sw = doc["strategy_weights"]
        if not isinstance(sw, dict):
            raise _bad(path, "strategy_weights", "must be an object of factor -> weight")
        weights = {}
        for factor, raw in sw.items():
            if factor not in FACTORS:
                raise _bad(path, f"strategy_weights.{factor}", f"is not a factor{closest(factor, FACTORS)}")
            v, note = _number(raw, False, path, f"strategy_weights.{factor}")
            weights[factor] = LiveValue(factor, raw, v, note)
    prov = doc.get("provenance", {})
    if not isinstance(prov, dict):
        raise _bad(path, "provenance", "must be an object")
    return LiveConfig(path, params, weights, prov, unknown)


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
        rows.append(Row(f, key, None, json.dumps(raw)[:40], "UNKNOWN",
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


# ---- the command line ---------------------------------------------------------------------------


def add_parser(subparsers) -> None:
    """``sweep export RESULTS... --live-config FILE.json`` and ``sweep check LIVE.json RESULTS...``."""
    ex = subparsers.add_parser(
        "export", help="write the chosen parameters and strategy weights as a live configuration",
        description="Write each factor's chosen configuration (best by the study's objective) and the "
                    "strategy weights as a live trading configuration (JSON).")
    ex.add_argument("results", nargs="+", help="results folders of grid or Optuna studies (same data)")
    ex.add_argument("--live-config", required=True, metavar="FILE.json", help="the file to write")
    ex.add_argument("--weights", default="equal", choices=WEIGHT_METHODS,
                    help="strategy weights, as in `sweep portfolio` (default equal)")
    ex.add_argument("--data", help="the studies' data file, if it moved since the runs")
    ex.add_argument("--funding", help="the studies' funding table, if any")

    ck = subparsers.add_parser(
        "check", help="compare a live configuration with the studies' chosen configurations",
        description="Compare a live configuration with the studies' chosen configurations: one row per "
                    "factor and parameter; exit code 1 when anything differs, 0 when all match.")
    ck.add_argument("live", metavar="LIVE.json", help="the live configuration")
    ck.add_argument("results", nargs="+", help="results folders of grid or Optuna studies (same data)")
    ck.add_argument("--weights", choices=WEIGHT_METHODS,
                    help="how the studies' strategy weights are computed (default: the live file's "
                         "provenance.weights, else equal)")
    ck.add_argument("--weight-tol", type=float, default=WEIGHT_TOL,
                    help=f"largest |live - backtest| strategy weight that still matches (default {WEIGHT_TOL})")
    ck.add_argument("--data", help="the studies' data file, if it moved since the runs")
    ck.add_argument("--funding", help="the studies' funding table, if any")


def command(args) -> int:
    from sweep.core.io import write_json

    if args.command == "export":
        out = Path(args.live_config)
        if out.is_dir():
            raise SweepError(f"--live-config {out} is a folder, not a file")
        if not out.parent.exists():
            raise SweepError(f"--live-config {out}: no such folder {out.parent}")
        cfg = live_config(args.results, args.weights, args.data, args.funding)
        write_json(cfg, out)
        w = ", ".join(f"{f} {x:.3f}" for f, x in cfg["strategy_weights"].items())
        print(f"wrote {out}: {len(cfg['params'])} strategies, weights {args.weights} ({w}), "
              f"window {cfg['provenance']['evaluation_window']['start']} .. "
              f"{cfg['provenance']['evaluation_window']['end']}")
        for warning in cfg["provenance"]["warnings"]:
            print(f"warning: {warning}", file=sys.stderr)
        return 0
    live = read_live(args.live)
    report = check_live(live, args.results, args.weights, args.weight_tol, args.data, args.funding)
    print_report(report, live)
    return 1 if report.n_differences else 0
