"""``sweep compare``: the values of one parameter of a grid study, each as a tranche book
over the phases the study ran (SEMANTICS §10), ranked, with a paired bootstrap of days.

A book that rebalances every ``k`` days owes part of its result to the day of
the cycle it started on. Comparing single-phase books compares that luck as
well as the period; the tranche book (capital split equally over the phase
books, never moved between them) averages it out, and the spread of the
phase books' objectives shows how large it was.

Everything is rerun from the results folder: the trials table says which
configurations ran, the panel is reloaded (its fingerprint must match) and
the slice's phase books are rerun for their daily returns, net and pre-cost
(SEMANTICS §8: the pre-cost series is the same book with ``fee_bps =
slippage_bps = 0``, funding kept).
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kernels.metrics import DAYS_PER_YEAR, METRICS
from sweep.core.errors import SweepError
from sweep.engine.params import PARAMS, closest, resolve
from sweep.metrics import lower_is_better
from sweep.results.lazy import STREAMING, matching, varying
from sweep.stats.best_per import stationary_indices
from sweep.stats.compare_verdict import PRE_COST, SERIES, from_returns, verdict

SCHEMA_VERSION = 1  # of the JSON object `compare` returns
N_RESAMPLES = 2000
BLOCK_DAYS = 20
SEED = 0
CHUNK = 256  # configurations per kernel call: bounds the (configs x days) return matrix


# --------------------------------------------------------------------------- section 9 on rows

assert set(SERIES) | set(PRE_COST) <= set(METRICS)


def series_metric(name: str, R: np.ndarray) -> np.ndarray:
    """Section 9's ``name`` (one of ``SERIES``) of each row of ``R`` (``(B, n)`` daily returns),
    vectorised over rows: the tranche books' metrics and every bootstrap resample's."""
    R = np.atleast_2d(R)
    n = R.shape[1]
    root = math.sqrt(DAYS_PER_YEAR)
    with np.errstate(divide="ignore", invalid="ignore"):
        if name in ("total_return", "cagr", "calmar"):
            growth = np.prod(1.0 + R, axis=1)
            if name == "total_return":
                return growth - 1.0
            cagr = growth ** (DAYS_PER_YEAR / n) - 1.0
            if name == "cagr":
                return cagr
        if name in ("max_drawdown", "calmar"):
            nav = np.cumprod(1.0 + R, axis=1)
            # The peak starts at the initial NAV of 1 (section 9's max(1, ...)).
            mdd = (nav / np.maximum(np.maximum.accumulate(nav, axis=1), 1.0) - 1.0).min(axis=1)
            return mdd if name == "max_drawdown" else np.where(mdd != 0, cagr / np.abs(mdd), np.nan)
        if name in ("ann_vol", "sharpe"):
            sd = R.std(axis=1, ddof=1) if n > 1 else np.full(R.shape[0], np.nan)
            # A constant series has a std of exactly 0 (as kernels.metrics.mean_std), not ~1e-17.
            sd = np.where((R == R[:, :1]).all(axis=1) & (n > 1), 0.0, sd)
            return sd * root if name == "ann_vol" else np.where(sd > 0, R.mean(axis=1) / sd * root, np.nan)
        if name == "sortino":
            down = np.sqrt((np.minimum(R, 0.0) ** 2).mean(axis=1))
            return np.where(down > 0, R.mean(axis=1) / down * root, np.nan)
        if name == "win_rate":
            nonzero = (R != 0).sum(axis=1)
            return np.where(nonzero > 0, (R > 0).sum(axis=1) / nonzero, np.nan)
    raise KeyError(name)


# --------------------------------------------------------------------------- tranche books

def tranche_nav(phase_returns: np.ndarray) -> np.ndarray:
    """``V_t = (1/m) sum_p V^p_t`` from the phase books' daily returns ``(m, n)``."""
    return np.cumprod(1.0 + np.atleast_2d(phase_returns), axis=1).mean(axis=0)


def tranche_returns(phase_returns: np.ndarray) -> np.ndarray:
    """``R_t = V_t / V_{t-1} - 1`` (``V_{s-1} = 1``; 0 where ``V_{t-1} = 0``)."""
    phase_returns = np.atleast_2d(phase_returns)
    if phase_returns.shape[0] == 1:
        return phase_returns[0].copy()  # one phase: the book itself, without a rounding round trip
    nav = tranche_nav(phase_returns)
    prev = np.concatenate(([1.0], nav[:-1]))
    out = np.zeros_like(nav)
    np.divide(nav, prev, out=out, where=prev > 0)
    return np.where(prev > 0, out - 1.0, 0.0)


@dataclass
class Tranche:
    """One value of the compared parameter: its phase books and their tranche book."""

    value: Any
    params: dict[str, Any]  # the variant's parameters (phase excluded)
    rows: list[dict[str, Any]]  # the phase books' trials rows, by phase
    returns: np.ndarray | None = None  # (n,) tranche net returns
    returns_pre_cost: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def phases(self) -> list[int]:
        return [int(r.get("phase") or 0) for r in self.rows]

    @property
    def nav(self) -> np.ndarray:
        return np.cumprod(1.0 + self.returns)


@dataclass
class Slice:
    """The variants compared: one per value of ``param``, the other parameters held."""

    folder: Path
    param: str
    objective: str
    where: dict[str, Any]  # the other swept parameters' values, held
    dates: np.ndarray
    tranches: list[Tranche]  # in ascending order of the value


def _key(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _phase_stats(rows: list[dict[str, Any]], metric: str) -> tuple[float, float, float]:
    x = np.array([np.nan if r[metric] is None else r[metric] for r in rows], dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    return float(x.mean()), float(x.min()), float(x.max())


def _all_ruined(rows: list[dict[str, Any]]) -> bool:
    return all(r["ruined"] == 1.0 for r in rows)


def _sort_key(value: float, ruined: bool, lower: bool) -> tuple:
    """Smaller is better: books not ruined first, then a finite objective, best first."""
    nan = math.isnan(value)
    return (ruined, nan, 0.0 if nan else value if lower else -value)


# --------------------------------------------------------------------------- reading a folder

def _read(folder: str | Path):
    from sweep.results import ResultsFolder

    folder = Path(folder)
    if folder.suffix == ".parquet" and not folder.is_dir():
        folder = folder.parent
    if not folder.is_dir():
        raise SweepError(f"{folder}: no such results folder")
    res = ResultsFolder(folder)
    manifest = res.manifest()
    kind = (manifest.get("study") or {}).get("kind")
    if kind != "grid":
        raise SweepError(f"{folder}: a {kind} study; sweep compare reads grid results only "
                         "(run the parameter as a [grid] axis)")
    return folder, manifest, res


def _load_panel(folder: Path, manifest: dict[str, Any], data: str | None):
    """The panel the study ran on (its fingerprint checked) and the evaluation window ``s, e``."""
    from sweep.results.data import load_study_panel

    panel, why = load_study_panel(manifest, folder, data)
    if panel is None:
        raise SweepError(why)
    window = manifest["evaluation_window"]
    return panel, panel.day_index(window["start"], "evaluation start"), panel.day_index(window["end"], "evaluation end")


def _parse(column: pl.Series, text: str, what: str) -> Any:
    """``text`` as a value of ``column``'s dtype (a value given from Python is taken as it is),
    and one the study ran."""
    dtype = column.dtype
    try:
        if not isinstance(text, str):
            value: Any = list(text) if isinstance(text, tuple) else text
        elif dtype.is_integer():
            value = int(text)
        elif dtype.is_float():
            value = float(text)
        elif isinstance(dtype, pl.List):
            value = sorted({t.strip() for t in text.split(",") if t.strip()})
        else:
            value = text
    except ValueError:
        raise SweepError(f"{what}={text}: not a value of type {dtype} (the column '{column.name}')") from None
    ran = sorted({_key(v) for v in column.to_list()}, key=repr)
    if _key(value) not in ran:
        shown = ", ".join(str(list(v) if isinstance(v, tuple) else v) for v in sorted(ran, key=_order_key)[:12])
        raise SweepError(f"{what}={text}: the study ran {column.name} = {shown}")
    return value


def _order_key(v: Any) -> tuple:
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, repr(v))


# --------------------------------------------------------------------------- running books

class _Runner:
    def __init__(self, panel, s: int, e: int):
        from sweep.engine.workspace import Evaluator
        from sweep.run.pool import default_jobs

        self.jobs = default_jobs()
        self.evaluator = Evaluator(panel, self.jobs)
        self.s, self.e = s, e

    def returns(self, configs: list[dict[str, Any]]) -> np.ndarray:
        """Daily net returns ``(C, n)`` of ``configs``, chunks in parallel threads."""
        n = self.e - self.s + 1
        if not configs:
            return np.empty((0, n))
        self.evaluator.prepare(configs)
        size = max(1, min(CHUNK, math.ceil(len(configs) / self.jobs)))
        chunks = [configs[i:i + size] for i in range(0, len(configs), size)]
        run = lambda c: self.evaluator.run(c, self.s, self.e, returns=True)[1]
        if len(chunks) == 1:
            return run(chunks[0])
        with ThreadPoolExecutor(min(self.jobs, len(chunks))) as pool:
            return np.concatenate(list(pool.map(run, chunks)))


def _config(row: dict[str, Any], params: list[str]) -> dict[str, Any]:
    return resolve({k: row[k] for k in params if row.get(k) is not None})


def _pre_cost(p: dict[str, Any]) -> dict[str, Any]:
    return {**p, "fee_bps": 0.0, "slippage_bps": 0.0}


def _tranche_series(runner: _Runner, groups: list[list[dict[str, Any]]], params: list[str],
                    net: bool = True, pre: bool = True) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    """Tranche net and pre-cost return series of each group of phase rows."""
    configs = [_config(r, params) for g in groups for r in g]
    costly = any(p["fee_bps"] or p["slippage_bps"] for p in configs)
    R = runner.returns(configs) if net or (pre and not costly) else None
    # Without costs the pre-cost series is the net one (SEMANTICS §8): no second run.
    R_pre = (runner.returns([_pre_cost(p) for p in configs]) if costly else R) if pre else None
    out, i = [], 0
    for g in groups:
        j = i + len(g)
        out.append((tranche_returns(R[i:j]) if net else None, tranche_returns(R_pre[i:j]) if pre else None))
        i = j
    return out


def _metrics(tr: Tranche) -> dict[str, float]:
    """Every METRICS value of a tranche book (SEMANTICS §10)."""
    out: dict[str, float] = {}
    for m in METRICS:
        if m in SERIES:
            out[m] = float(series_metric(m, tr.returns)[0])
        elif m in PRE_COST:
            out[m] = float(series_metric(PRE_COST[m], tr.returns_pre_cost)[0])
        elif m == "ruined":
            out[m] = 1.0 if _all_ruined(tr.rows) else 0.0
        else:
            out[m] = _phase_stats(tr.rows, m)[0]
    return out


# --------------------------------------------------------------------------- the slice

def tranche_slice(folder: str | Path, param: str, where: dict[str, Any] | None = None, by: str | None = None,
                  data: str | None = None) -> Slice:
    """The variants compared, each with its tranche book's daily series and metrics.

    ``where`` maps parameter names to values, as typed on the command line
    (``"30"``) or as values (``30``); the other parameters are held at the reference variant's
    values: the best tranche objective among variants not ruined (SEMANTICS §10).
    """
    folder, manifest, res = _read(folder)
    # Lazily: a ten-million-row table is narrowed in Polars to the slice before any row is made.
    lf = res.scan("trials.parquet")
    names = lf.collect_schema().names()
    objective = by or manifest["study"]["objective"]
    if objective not in METRICS or objective == "ruined":
        raise SweepError(f"--by {objective!r} is not a metric to compare by"
                         f"{closest(objective, METRICS)}")
    params = [c for c in manifest.get("parameters", []) if c in names and c in PARAMS]
    if param == "phase":
        raise SweepError("--param phase: phases are pooled into each tranche book; compare another "
                         "parameter (e.g. rebalance_days)")
    if param not in params:
        raise SweepError(f"--param {param}: not a parameter of the study (parameters: "
                         f"{', '.join(params)}){closest(param, params)}")
    if param not in varying(lf, [param]):
        first = lf.select(param).head(1).collect()[param][0]
        raise SweepError(f"--param {param}: the study ran one value ({first}); nothing to compare")
    fixed: dict[str, Any] = {}
    for key, text in (where or {}).items():
        if key not in params:
            raise SweepError(f"--where {key}: not a parameter of the study (parameters: "
                             f"{', '.join(params)}){closest(key, params)}")
        if key in (param, "phase"):
            why = "the compared parameter" if key == param else "pooled into each tranche book"
            raise SweepError(f"--where {key}: {why}, it cannot be fixed")
        fixed[key] = _parse(lf.select(pl.col(key).unique()).collect()[key], text, f"--where {key}")

    # Variants: rows that differ only in phase, among those --where keeps.
    others = [c for c in params if c not in (param, "phase")]
    swept = [c for c in others if c in varying(lf, others) or c in fixed]
    lf = matching(lf, fixed)
    lower = lower_is_better(objective)
    panel, s, e = _load_panel(folder, manifest, data)
    runner = _Runner(panel, s, e)
    differ = varying(lf, others)
    if differ:
        phased = "phase" in params and "phase" in varying(lf, ["phase"])
        lf = matching(lf, _reference(lf, differ, param, objective, lower, runner, params, phased))
    trials = lf.collect(engine=STREAMING)
    variants: dict[tuple, list[dict[str, Any]]] = {}
    for row in trials.iter_rows(named=True):
        variants.setdefault(tuple(_key(row[c]) for c in [*others, param]), []).append(row)
    for rows in variants.values():
        rows.sort(key=lambda r: r.get("phase") or 0)
    groups = sorted(variants.values(), key=lambda g: _order_key(_key(g[0][param])))
    series = _tranche_series(runner, groups, params)
    tranches = []
    for g, (R, R_pre) in zip(groups, series):
        tr = Tranche(value=g[0][param], params={c: g[0][c] for c in [*others, param]}, rows=g,
                     returns=R, returns_pre_cost=R_pre)
        tr.metrics = _metrics(tr)
        tranches.append(tr)
    held = {c: groups[0][0][c] for c in swept}
    return Slice(folder, param, objective, held, panel.dates[s:e + 1], tranches)


def _reference(lf: pl.LazyFrame, varying: list[str], param: str, objective: str, lower: bool,
               runner: _Runner, params: list[str], phased: bool) -> dict[str, Any]:
    """The values of the ``varying`` other parameters of the variant whose tranche objective is best,
    among variants not ruined (all of them if every one was ruined); the first such on ties.

    Without phases each row is a variant and the best is found by a streaming scan (no frame of
    the table); with phases, variants are grouped in Polars and only those of several phases are
    run again as tranche books (when the objective is computed from the returns)."""
    keys = [*varying, param]
    score = pl.col(objective).cast(pl.Float64)
    if not phased:
        g = lf.select(*keys, (pl.col("ruined") == 1.0).fill_null(False).alias("_ruined"),
                      score.fill_null(float("nan")).alias("_score"))
        return _first_best(g, varying, lower)
    g = lf.group_by(keys, maintain_order=True).agg(
        pl.len().alias("_n"), (pl.col("ruined") == 1.0).all().alias("_ruined"),
        score.fill_nan(None).mean().fill_null(float("nan")).alias("_score")).collect(engine=STREAMING)
    scores = g["_score"].to_numpy().copy()
    if from_returns(objective) and (g["_n"] > 1).any():
        multi = g.with_row_index("_g").filter(pl.col("_n") > 1).select("_g", *keys)
        rows_of: dict[tuple, list[dict[str, Any]]] = {}
        for row in lf.join(multi.drop("_g").lazy(), on=keys, how="semi").collect().iter_rows(named=True):
            rows_of.setdefault(tuple(_key(row[c]) for c in keys), []).append(row)
        index = {tuple(_key(v) for v in r[1:]): r[0] for r in multi.iter_rows()}
        groups = list(rows_of.items())
        pre = objective in PRE_COST
        for i in range(0, len(groups), CHUNK):
            part = groups[i:i + CHUNK]
            series = _tranche_series(runner, [sorted(rows, key=lambda r: r.get("phase") or 0) for _, rows in part],
                                     params, net=not pre, pre=pre)
            for (k, _), (R, R_pre) in zip(part, series):
                scores[index[k]] = float(series_metric(PRE_COST.get(objective, objective), R_pre if pre else R)[0])
    return _first_best(g.with_columns(pl.Series("_score", scores)).lazy(), varying, lower)


def _first_best(g: pl.LazyFrame, varying: list[str], lower: bool) -> dict[str, Any]:
    """``varying`` of the first variant of ``g`` (columns ``_ruined``, ``_score``) that is smallest by
    ``_sort_key``: not ruined first, then a score that is not NaN, then the best score."""
    for flag in (~pl.col("_ruined"), ~pl.col("_score").is_nan()):  # narrow to the best class there is
        if g.select(flag.any()).collect(engine=STREAMING).item():
            g = g.filter(flag)
    best = (pl.col("_score").arg_min() if lower else pl.col("_score").arg_max()).alias("_i")
    i = g.select(best).collect(engine=STREAMING).item()
    row = g.slice(0 if i is None else i, 1).collect(engine=STREAMING).row(0, named=True)
    return {c: row[c] for c in varying}


# --------------------------------------------------------------------------- the comparison

def compare(folder: str | Path, param: str, value: Any = None, where: dict[str, Any] | None = None,
            by: str | None = None, data: str | None = None) -> dict[str, Any]:
    """The comparison of ``param``'s values as a JSON-ready object (NaN as None), ``verdict`` included.

    ``value`` (as typed, or a value) names the value the verdict is about;
    without it the verdict is about the best value against the runner-up.
    """
    return summarise(tranche_slice(folder, param, where, by, data), value)


def summarise(sl: Slice, value: Any = None) -> dict[str, Any]:
    """``compare``'s object for a slice already built."""
    lower = lower_is_better(sl.objective)
    trs = sl.tranches
    obj = np.array([tr.metrics[sl.objective] for tr in trs])
    ruined = np.array([tr.metrics["ruined"] == 1.0 for tr in trs])
    keys = [_sort_key(o, r, lower) for o, r in zip(obj, ruined)]
    ranks = [1 + sum(other < k for other in keys) for k in keys]  # ties share the lower rank
    best = min(range(len(trs)), key=lambda j: keys[j])
    p_best = q05 = q95 = np.full(len(trs), np.nan)  # a metric not computed from R: no resampling
    if from_returns(sl.objective):
        idx = stationary_indices(len(sl.dates), N_RESAMPLES, BLOCK_DAYS, np.random.default_rng(SEED))
        pre = sl.objective in PRE_COST
        boot = np.array([series_metric(PRE_COST.get(sl.objective, sl.objective),
                                       (tr.returns_pre_cost if pre else tr.returns)[idx]) for tr in trs])
        p_best = _p_best(boot, ~ruined if (~ruined).any() else np.ones(len(trs), dtype=bool), lower)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row's quantiles are NaN
            q05, q95 = np.nanquantile(boot - boot[best], [0.05, 0.95], axis=1)
    rows = []
    for j, tr in enumerate(trs):
        mean, lo, hi = _phase_stats(tr.rows, sl.objective)
        rows.append({"value": _plain(tr.value), "n_phases": len(tr.rows), "objective": _num(obj[j]),
                     "phase_mean": _num(mean), "phase_min": _num(lo), "phase_max": _num(hi),
                     "rank": int(ranks[j]), "p_best": _num(p_best[j]), "diff_q05": _num(q05[j]),
                     "diff_q95": _num(q95[j]), "ruined": bool(ruined[j])})
    target = best
    if value is not None:
        match = [j for j, r in enumerate(rows) if _key(r["value"]) == _key(value) or str(r["value"]) == str(value)]
        if not match:
            raise SweepError(f"--value {value}: not a value of {sl.param} in the slice "
                             f"({', '.join(str(r['value']) for r in rows)})")
        target = match[0]
    out = {"schema_version": SCHEMA_VERSION, "param": sl.param, "objective": sl.objective,
           "where": {k: _plain(v) for k, v in sl.where.items()}, "best": _plain(trs[best].value),
           "n_resamples": N_RESAMPLES, "block_days": BLOCK_DAYS, "seed": SEED, "values": rows}
    periods = [int(tr.rows[0].get("rebalance_days") or PARAMS["rebalance_days"][1]) for tr in trs]
    out["verdict"] = verdict(out, best, target, ranks, periods)
    return out


def _p_best(boot: np.ndarray, contenders: np.ndarray, lower: bool) -> np.ndarray:
    """The share of resamples in which each value is the best contender, ties split equally."""
    score = -boot if lower else boot.copy()
    score[np.isnan(score) | ~contenders[:, None]] = -np.inf  # a NaN objective never beats a number
    winners = contenders[:, None] & (score == score[contenders].max(axis=0))
    return (winners / winners.sum(axis=0)).mean(axis=1)


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v.item() if isinstance(v, np.generic) else v


def _num(x: float) -> float | None:
    return None if math.isnan(float(x)) else float(x)
