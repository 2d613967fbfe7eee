"""Walk-forward studies: choose a configuration on each train window, judge it on the next test window.

Convention: fold ``k`` trains on days ``[a_k, b_k]`` and tests on ``[c_k, d_k]``
(day indices into the panel, both ends inclusive, ``c_k = b_k + 1``). The first
train window starts at the evaluation start ``s0`` of SEMANTICS §7 (``W``, the
largest window of any candidate, or ``[study] start``); each fold moves by
``step_days``; with ``anchored = true`` every train window starts at ``s0`` and
grows. A fold whose test window would pass the evaluation end ``e`` is dropped
(not cut), so every test window holds exactly ``test_days`` days and the
folds' test metrics compare like with like.

In each fold every candidate starts flat on ``a_k`` and is scored on the train
window alone; the best by the study's objective is chosen (maximised, except
``ann_vol``, ``turnover`` and ``cost_paid``, which are minimised; a NaN never
wins; ties go to the earlier candidate; if every candidate is NaN the first
is taken). The chosen one then runs fresh over the test window: flat at
``c_k``, so the cost of entering is paid and nothing it held in an earlier
fold is carried (or charged for leaving). Features are trailing and the
recursion is causal, so nothing from day ``b_k + 1`` on can reach the choice.

The stitched out-of-sample series keeps each day once, from the latest fold
whose test window starts on or before it: with ``step_days < test_days`` fold
``k`` contributes ``[c_k, c_{k+1} - 1]``, which is exactly the start of its
fresh run (the recursion is causal). With ``step_days > test_days`` the days
between test windows are absent from the series (not counted as flat days).

Files in ``<out>``: ``folds.parquet`` (one row per fold: its dates, the chosen
parameters and ``config_id``, every §9 metric of the choice on the train window
(``train_*``) and the test window (``test_*``), its ``test_rank`` among all
candidates on the test window (1 = best, ties share the better rank, NaN
last) and ``n_candidates``); ``oos_returns.parquet`` (``date, fold, ret``);
``summary.json`` (§9 metrics of the stitched series, ``is_sharpe_mean``: the
mean train Sharpe of the choices over the folds where it is finite,
``oos_sharpe`` and ``oos_is_sharpe_ratio``); ``manifest.json`` last.

Folds are independent and run on a thread pool (the kernels release the GIL);
each fold's result depends on its windows only, so ``jobs`` changes nothing.
Only ``inner = "grid"`` is implemented: the candidates are the study's
``[grid]`` (fixed parameters from ``[backtest]``).
"""

from __future__ import annotations

import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from kernels.metrics import METRICS, N_METRICS, compute_metrics

from sweep.engine.backtest import backtest
from sweep.engine.workspace import Evaluator
from sweep.core.errors import SweepError
from sweep.core.io import write_json, write_parquet
from sweep.engine.params import LOWER_IS_BETTER, MAX_INT, closest, config_id
from sweep.study.grid import (SCHEMA_VERSION, Plan, RunSummary, _already_complete, _manifest,
                      _Progress, plan)
from sweep.study.file import Study

KEYS = ("train_days", "test_days", "step_days", "anchored", "inner")
INNER = ("grid", "optuna")
FILES = ("folds.parquet", "oos_returns.parquet", "summary.json")


@dataclass(frozen=True)
class Settings:
    """The checked ``[walk_forward]`` table."""

    train_days: int
    test_days: int
    step_days: int
    anchored: bool = False
    inner: str = "grid"


@dataclass(frozen=True)
class Fold:
    """Day indices of one fold, ends inclusive; ``keep_end`` ends its share of the stitched series."""

    fold: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int
    keep_end: int


def settings(study: Study) -> Settings:
    """Check ``[walk_forward]``: every problem is one line naming the file, the key and the value."""
    where = f"{study.path}: [walk_forward]"
    if "walk_forward" not in study.tables:
        raise SweepError(f"{study.path}: a study of kind 'walk_forward' needs a [walk_forward] table "
                         "with train_days and test_days")
    table = study.tables["walk_forward"]
    for key in table:
        if key not in KEYS:
            raise SweepError(f"{where} unknown key '{key}'{closest(key, KEYS)}")

    def integer(key: str, minimum: int, why: str = "") -> int:
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise SweepError(f"{where} {key} = {value!r} must be an integer")
        if value < minimum:
            raise SweepError(f"{where} {key} = {value} must be at least {minimum}{why}")
        if value > MAX_INT:
            raise SweepError(f"{where} {key} = {value} is above the maximum {MAX_INT:,}")
        return value

    for key in ("train_days", "test_days"):
        if key not in table:
            raise SweepError(f"{where} needs {key} (an integer number of days)")
    train = integer("train_days", 2, " (a Sharpe ratio needs two days)")
    test = integer("test_days", 1)
    step = integer("step_days", 1) if "step_days" in table else test
    anchored = table.get("anchored", False)
    if not isinstance(anchored, bool):
        raise SweepError(f"{where} anchored = {anchored!r} must be true or false")
    inner = table.get("inner", "grid")
    if not isinstance(inner, str) or inner not in INNER:
        hint = closest(inner, INNER) if isinstance(inner, str) else ""
        raise SweepError(f"{where} inner = {inner!r} is not one of {', '.join(INNER)}{hint}")
    return Settings(train, test, step, anchored, inner)


def validate(study: Study) -> None:
    """Refuse a bad ``[walk_forward]`` table, or tables it does not read, before any data is read."""
    cfg = settings(study)
    if cfg.inner == "optuna":
        _optuna_space(study)
        if study.axes:
            raise SweepError(f"{study.path}: [grid] does not apply with [walk_forward] inner = 'optuna' "
                             "(the candidates come from [space])")
    for table in ("space", "optuna"):
        if table in study.tables and cfg.inner != "optuna":
            raise SweepError(f"{study.path}: [{table}] applies only with [walk_forward] inner = 'optuna'")
    if study.start and study.end:
        span = (study.end - study.start).days + 1
        if cfg.train_days + cfg.test_days > span:
            raise SweepError(_no_fold(study, cfg, span))


def _optuna_space(study: Study) -> tuple[list, Any, list[dict[str, Any]]]:
    """``[space]``, ``[optuna]`` and the corners of the space, checked as an Optuna study checks them."""
    from sweep.study.optuna import corners, parse_options, parse_space

    for table in ("space", "optuna"):
        if table not in study.tables:
            raise SweepError(f"{study.path}: [walk_forward] inner = 'optuna' needs a [{table}] table")
    space = parse_space(study)
    options = parse_options(study)
    if options.storage:
        raise SweepError(f"{study.path}: [optuna] storage = {options.storage!r} does not apply to a "
                         "walk-forward: each fold runs its own search in memory")
    return space, options, corners(study, space)


def parameter_columns(study: Study) -> list[str]:
    """The parameters a fold's choice is shown with: the grid's axes, or the search space's
    names, then the fixed ones."""
    if settings(study).inner == "optuna":
        names = list(study.tables["space"])
        return names + [k for k in study.fixed if k not in names]
    return study.columns


def _no_fold(study: Study, cfg: Settings, span: int, start: Any = None, end: Any = None) -> str:
    window = f" ({start} .. {end})" if start is not None else ""
    return (f"{study.path}: [walk_forward] train_days = {cfg.train_days} and test_days = {cfg.test_days} "
            f"need {cfg.train_days + cfg.test_days} days, but the evaluation window{window} has {span}; "
            "no fold fits")


def fold_windows(s0: int, e: int, train_days: int, test_days: int, step_days: int,
                 anchored: bool = False) -> list[Fold]:
    """The folds over evaluation days ``s0 .. e``; an incomplete last test window is dropped.

    >>> [(f.train_start, f.train_end, f.test_start, f.test_end) for f in fold_windows(10, 40, 10, 5, 5)]
    [(10, 19, 20, 24), (15, 24, 25, 29), (20, 29, 30, 34), (25, 34, 35, 39)]
    """
    bounds = []
    k = 0
    while True:
        b = s0 + k * step_days + train_days - 1
        c, d = b + 1, b + test_days
        if d > e:
            break
        bounds.append((s0 if anchored else s0 + k * step_days, b, c, d))
        k += 1
    return [Fold(k, a, b, c, d, min(d, bounds[k + 1][2] - 1) if k + 1 < len(bounds) else d)
            for k, (a, b, c, d) in enumerate(bounds)]


def choose(values: np.ndarray, minimise: bool, ruined: np.ndarray | None = None) -> int:
    """Index of the best value among candidates not ruined on the train window; NaN never
    wins, ties go to the first. When every candidate was ruined (or has no value), the best
    finite value of all of them, else index 0: a fold must trade something, and its
    ``train_ruined`` column says so."""
    v = -values if minimise else values
    ok = ~np.isnan(v)
    if ruined is not None and (ok & ~(ruined > 0)).any():
        ok &= ~(ruined > 0)
    if not ok.any():
        return 0
    return int(np.flatnonzero(ok & (v == v[ok].max()))[0])


def rank_of(values: np.ndarray, j: int, minimise: bool) -> int:
    """1 + the number of candidates strictly better than ``j`` (NaN ranks below every number)."""
    v = -values if minimise else values
    ok = ~np.isnan(v)
    if not ok[j]:
        return int(ok.sum()) + 1
    return int((ok & (v > v[j])).sum()) + 1


@dataclass
class _FoldResult:
    fold: Fold
    candidates: list[dict[str, Any]]  # the grid, or what this fold's search tried
    chosen: int
    train: np.ndarray  # (N_METRICS,) of the chosen candidate on the train window
    test: np.ndarray  # (N_METRICS,) of the chosen candidate on the test window
    test_rank: int
    series: list[np.ndarray]  # compute_metrics' nine daily series, test_start .. keep_end
    n_rebalances: int  # rebalance days in test_start .. keep_end


class _Folds:
    """Runs one fold: candidates on the train window, the choice, candidates and the choice on the test window."""

    def __init__(self, evaluator: Evaluator, configs: list[dict[str, Any]], objective: str,
                 study: Study | None = None):
        self.evaluator = evaluator
        self.configs = configs
        self.j = METRICS.index(objective)
        # The grid's summary minimises the same metrics; max_drawdown (<= 0) is maximised.
        self.minimise = objective in LOWER_IS_BETTER
        self.search = None
        if study is not None and settings(study).inner == "optuna":
            self.study = study
            self.space, self.options, _ = _optuna_space(study)
            self.search = self._search

    def _search(self, f: Fold) -> list[dict[str, Any]]:
        """An in-memory Optuna search scored on the train window alone; the distinct
        configurations it tried, in trial order. Seeded by (seed, fold): the same
        whatever thread runs the fold."""
        import optuna

        from sweep.study.optuna import _make_sampler
        from sweep.engine.params import resolve

        optuna.logging.set_verbosity(optuna.logging.ERROR)  # NaN objectives fail quietly
        sampler = _make_sampler(self.options.sampler, self.options.seed, f.fold)
        search = optuna.create_study(direction="minimize" if self.minimise else "maximize", sampler=sampler)
        tried: dict[str, dict[str, Any]] = {}
        where = f"{self.study.path}: [space]"

        def objective(trial) -> float:
            p = resolve({**self.study.fixed, **{d.name: d.suggest(trial) for d in self.space}}, where,
                        checked=True)
            tried.setdefault(config_id(p), p)
            value = self.evaluator.run([p], f.train_start, f.train_end)[0][0, self.j]
            return float(value) if math.isfinite(value) else float("nan")

        search.optimize(objective, n_trials=self.options.n_trials)
        return list(tried.values())

    def series(self, p: dict[str, Any], s: int, e: int) -> tuple[list[np.ndarray], int]:
        """Configuration ``p`` flat on day ``s``: the daily series ``compute_metrics`` reads, and its
        rebalance count, over ``s .. e`` (the public single backtest, which reports them all)."""
        dates = self.evaluator.panel.dates
        res = backtest(self.evaluator.panel, start=dates[s], end=dates[e], return_weights=True, **p)
        r = res.returns
        w = res.weights.drop("date").to_numpy().reshape(e - s + 1, -1)
        series = [r[c].to_numpy().astype(np.float64) for c in ("ret", "ret_pre_cost", "turnover", "cost", "funding")]
        series += [(w > 0).sum(axis=1).astype(np.float64), (w < 0).sum(axis=1).astype(np.float64),
                   w.sum(axis=1), np.abs(w).sum(axis=1)]
        return series, int(res.metrics["n_rebalances"])

    def run(self, f: Fold) -> _FoldResult:
        candidates = self.search(f) if self.search else self.configs
        # The choice reads the train window's metrics and nothing else.
        train, _ = self.evaluator.run(candidates, f.train_start, f.train_end)
        chosen = choose(train[:, self.j], self.minimise, train[:, METRICS.index("ruined")])
        test, _ = self.evaluator.run(candidates, f.test_start, f.test_end)
        # The causal recursion makes the run over test_start .. keep_end the start of the
        # run over the whole test window: the stitched series' share of this fold.
        series, n_reb = self.series(candidates[chosen], f.test_start, f.keep_end)
        return _FoldResult(f, candidates, chosen, train[chosen].copy(), test[chosen].copy(),
                           rank_of(test[:, self.j], chosen, self.minimise), series, n_reb)


def _json_number(v: float) -> float | None:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _metrics_dict(values: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {m: _json_number(float(v)) for m, v in zip(METRICS, values)}
    out["n_rebalances"] = int(values[METRICS.index("n_rebalances")])
    return out


def _folds_table(study: Study, pl_: Plan, results: list[_FoldResult]) -> pl.DataFrame:
    dates = pl_.panel.dates
    configs = [r.candidates[r.chosen] for r in results]

    def day(attr: str) -> pl.Series:
        return pl.Series(attr, dates[[getattr(r.fold, attr) for r in results]])

    cols: dict[str, Any] = {"fold": pl.Series("fold", [r.fold.fold for r in results], dtype=pl.Int32)}
    for attr in ("train_start", "train_end", "test_start", "test_end"):
        cols[attr] = day(attr)
    for name in parameter_columns(study):
        values = [p[name] for p in configs]
        cols[name] = [list(v) for v in values] if name == "exclude" else values
    cols["config_id"] = [config_id(p) for p in configs]
    for prefix, attr in (("train_", "train"), ("test_", "test")):
        block = np.array([getattr(r, attr) for r in results]).reshape(len(results), N_METRICS)
        for m in METRICS:  # all of SEMANTICS §9, train_ and test_
            col = block[:, METRICS.index(m)]
            cols[prefix + m] = col.astype(np.int64) if m == "n_rebalances" else col
    cols["test_rank"] = pl.Series("test_rank", [r.test_rank for r in results], dtype=pl.Int32)
    cols["n_candidates"] = pl.Series("n_candidates", [len(r.candidates) for r in results], dtype=pl.Int32)
    df = pl.DataFrame(cols)
    return df.with_columns(pl.lit(SCHEMA_VERSION, dtype=pl.Int32).alias("schema_version"))


def _stitch(results: list[_FoldResult]) -> tuple[list[np.ndarray], int]:
    """The out-of-sample book: the folds' test series end to end.

    It is one book: once it is ruined in a fold (SEMANTICS §8), it stays closed,
    so the later folds' series are zeroed rather than restarted from a NAV of 0
    (the pre-cost series by its own ruin day).
    """
    series = [np.concatenate([r.series[i] for r in results]) for i in range(9)]
    for i, closes in ((0, 0), (1, 1)):
        ruin = np.flatnonzero(series[closes] == -1.0)
        if ruin.size:
            after = slice(ruin[0] + 1, None)
            for j in ((0, 2, 3, 4, 5, 6, 7, 8) if i == 0 else (1,)):
                series[j][after] = 0.0
    return series, sum(r.n_rebalances for r in results)


def _oos_table(pl_: Plan, results: list[_FoldResult]) -> pl.DataFrame:
    dates = pl_.panel.dates
    days = np.concatenate([np.arange(r.fold.test_start, r.fold.keep_end + 1) for r in results])
    folds = np.concatenate([np.full(r.fold.keep_end - r.fold.test_start + 1, r.fold.fold, dtype=np.int32)
                            for r in results])
    return pl.DataFrame({"date": pl.Series("date", dates[days]), "fold": folds,
                         "ret": np.concatenate([r.series[0] for r in results])})


def _summary(study: Study, cfg: Settings, pl_: Plan, results: list[_FoldResult]) -> dict[str, Any]:
    series, n_reb = _stitch(results)
    out = np.empty(N_METRICS)
    compute_metrics(*series, n_reb, out)
    dates = pl_.panel.dates
    sharpe = METRICS.index("sharpe")
    is_sharpes = np.array([r.train[sharpe] for r in results])
    finite = is_sharpes[np.isfinite(is_sharpes)]
    is_mean = float(finite.mean()) if finite.size else float("nan")
    oos = float(out[sharpe])
    ratio = oos / is_mean if is_mean != 0 and math.isfinite(is_mean) and math.isfinite(oos) else float("nan")
    chosen: dict[str, int] = {}
    for r in results:
        cid = config_id(r.candidates[r.chosen])
        chosen[cid] = chosen.get(cid, 0) + 1
    return {
        "schema_version": SCHEMA_VERSION,
        "study": study.name,
        "objective": study.objective,
        "objective_minimised": study.objective in LOWER_IS_BETTER,
        "walk_forward": asdict(cfg),
        "folds": len(results),
        "candidates": max(len(r.candidates) for r in results),
        "oos_start": str(dates[results[0].fold.test_start]),
        "oos_end": str(dates[results[-1].fold.keep_end]),
        "oos_days": int(series[0].shape[0]),
        # SEMANTICS §9 over the stitched series, each fold entering from flat.
        "metrics": _metrics_dict(out),
        "is_sharpe_mean": _json_number(is_mean),
        "oos_sharpe": _json_number(oos),
        "oos_is_sharpe_ratio": _json_number(ratio),
        "mean_test_rank": float(np.mean([r.test_rank for r in results])),
        "chosen_counts": dict(sorted(chosen.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def prepare(study: Study, data: str | Path | None = None,
            funding: str | Path | None = None) -> tuple[Settings, Plan, list[Fold]]:
    """Load the data, resolve the candidates and lay out the folds; refuse a study where none fits."""
    validate(study)
    cfg = settings(study)
    pl_ = plan(study, data, funding, _optuna_space(study)[2] if cfg.inner == "optuna" else None)
    folds = fold_windows(pl_.s, pl_.e, cfg.train_days, cfg.test_days, cfg.step_days, cfg.anchored)
    if not folds:
        raise SweepError(_no_fold(study, cfg, pl_.e - pl_.s + 1, pl_.start, pl_.end))
    return cfg, pl_, folds


def run(study: Study, *, data: str | Path | None = None, funding: str | Path | None = None,
        out: str | Path | None = None, jobs: int = 1, force: bool = False,
        progress: bool | None = None, on_chunk: Callable[[int], None] | None = None) -> RunSummary:
    """Run a walk-forward study; write folds.parquet, oos_returns.parquet, summary.json, manifest.json.

    ``n_configs`` counts candidate evaluations on train windows (candidates x
    folds). ``on_chunk(n_folds_done)`` is called after each fold is computed;
    folds are not kept on disk one by one (they are cheap), so an interrupted
    run starts again.
    """
    t0 = time.perf_counter()
    cfg, pl_, folds = prepare(study, data, funding)
    jobs = max(1, int(jobs or 1))
    out = Path(out) if out is not None else Path("results") / study.name
    # Candidate evaluations per fold: the grid, or the search's trials.
    per_fold = _optuna_space(study)[1].n_trials if cfg.inner == "optuna" else len(pl_.configs)
    n_configs = per_fold * len(folds)
    fp_ = pl_.fingerprint(False)
    if _already_complete(out, fp_, force, FILES):
        return RunSummary(out, n_configs, 0, n_configs, time.perf_counter() - t0, 0.0, pl_.start, pl_.end)

    evaluator = Evaluator(pl_.panel, jobs)
    t_run = time.perf_counter()
    # Every feature and ranking is filled in before the threads read the shared caches.
    evaluator.prepare(pl_.configs)
    runner = _Folds(evaluator, pl_.configs, study.objective, study)
    # Compile (or load from Numba's cache) here, so no two workers do it at once.
    evaluator.run(pl_.configs[:1], pl_.s, pl_.s)
    runner.series(pl_.configs[0], pl_.s, pl_.s)
    bar = _Progress(n_configs, 0, sys.stderr.isatty() if progress is None else progress)
    results: list[_FoldResult | None] = [None] * len(folds)
    pool = ThreadPoolExecutor(max_workers=min(jobs, len(folds)))
    try:
        futures = {pool.submit(runner.run, f): f.fold for f in folds}
        done = 0
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            done += 1
            bar.advance(per_fold, done * per_fold)
            if on_chunk is not None:
                on_chunk(done)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
    compute_time = time.perf_counter() - t_run
    final: list[_FoldResult] = [r for r in results if r is not None]

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"cannot create {out}: {exc.strerror}") from None
    manifest_path = out / "manifest.json"
    # The manifest goes last: a folder without one (or with another run's) is not complete.
    manifest_path.unlink(missing_ok=True)
    write_parquet(_folds_table(study, pl_, final), out / "folds.parquet")
    write_parquet(_oos_table(pl_, final), out / "oos_returns.parquet")
    write_json(_summary(study, cfg, pl_, final), out / "summary.json")
    summary = RunSummary(out, n_configs, n_configs, 0, time.perf_counter() - t0, compute_time,
                         pl_.start, pl_.end)
    manifest = _manifest(pl_, fp_, summary)
    manifest["parameters"] = parameter_columns(study)
    manifest["walk_forward"] = {**asdict(cfg), "folds": len(folds), "candidates": per_fold,
                                "first_train_start": str(pl_.panel.dates[folds[0].train_start]),
                                "last_test_end": str(pl_.panel.dates[folds[-1].test_end])}
    write_json(manifest, manifest_path)
    return summary
