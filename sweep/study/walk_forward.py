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

import json
import math
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from kernels.metrics import METRICS, N_METRICS, compute_metrics

from sweep.core.errors import SweepError
from sweep.core.io import write_json
from sweep.engine.backtest import backtest
from sweep.engine.params import MAX_INT, closest, config_id
from sweep.metrics import lower_is_better
from sweep.engine.workspace import Evaluator
from sweep.results import SCHEMA_VERSION, ResultsFolder
from sweep.run.manifest import run_manifest
from sweep.run.plan import Plan, plan
from sweep.run.cluster import open_cluster
from sweep.run.pool import run_chunks
from sweep.run.summary import RunSummary
from sweep.study.file import Study, load_code
from sweep.study.folds import Fold, FoldResult, choose, fold_windows, rank_of
from sweep.study.kind import StudyKind, data_line, register, window_lines

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
        inner_space(study)
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


def inner_space(study: Study) -> tuple[list, Any, list[dict[str, Any]]]:
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


class _Folds:
    """Runs one fold: candidates on the train window, the choice, candidates and the choice on the test window.

    Picklable: on a cluster every worker receives it once (the prepared evaluator with it)."""

    def __init__(self, evaluator: Evaluator, configs: list[dict[str, Any]], objective: str,
                 study: Study | None = None):
        self.evaluator = evaluator
        self.configs = configs
        self.j = METRICS.index(objective)
        # The grid's summary minimises the same metrics; max_drawdown (<= 0) is maximised.
        self.minimise = lower_is_better(objective)
        self.study = study
        self.searches = study is not None and settings(study).inner == "optuna"
        if self.searches:
            self.space, self.options, _ = inner_space(study)

    def setup(self) -> None:
        """On a cluster worker: the researcher's factor code (a search computes new features)."""
        if self.study is not None:
            load_code(self.study)

    def __call__(self, f: Fold) -> FoldResult:
        return self.run(f)

    def _search(self, f: Fold) -> list[dict[str, Any]]:
        """An in-memory Optuna search scored on the train window alone; the distinct
        configurations it tried, in trial order. Seeded by (seed, fold): the same
        whatever thread runs the fold."""
        import optuna

        from sweep.study.optuna import make_sampler
        from sweep.engine.params import resolve

        optuna.logging.set_verbosity(optuna.logging.ERROR)  # NaN objectives fail quietly
        sampler = make_sampler(self.options.sampler, self.options.seed, f.fold)
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

    def run(self, f: Fold) -> FoldResult:
        candidates = self._search(f) if self.searches else self.configs
        # The choice reads the train window's metrics and nothing else.
        train, _ = self.evaluator.run(candidates, f.train_start, f.train_end)
        chosen = choose(train[:, self.j], self.minimise, train[:, METRICS.index("ruined")])
        test, _ = self.evaluator.run(candidates, f.test_start, f.test_end)
        # The causal recursion makes the run over test_start .. keep_end the start of the
        # run over the whole test window: the stitched series' share of this fold.
        series, n_reb = self.series(candidates[chosen], f.test_start, f.keep_end)
        return FoldResult(f, candidates[chosen], config_id(candidates[chosen]), len(candidates),
                          train[chosen].copy(), test[chosen].copy(),
                          rank_of(test[:, self.j], chosen, self.minimise), series, n_reb)


def _json_number(v: float) -> float | None:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _metrics_dict(values: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {m: _json_number(float(v)) for m, v in zip(METRICS, values)}
    out["n_rebalances"] = int(values[METRICS.index("n_rebalances")])
    return out


def _folds_table(study: Study, pl_: Plan, results: list[FoldResult]) -> pl.DataFrame:
    dates = pl_.panel.dates
    configs = [r.choice for r in results]

    def day(attr: str) -> pl.Series:
        return pl.Series(attr, dates[[getattr(r.fold, attr) for r in results]])

    cols: dict[str, Any] = {"fold": pl.Series("fold", [r.fold.fold for r in results], dtype=pl.Int32)}
    for attr in ("train_start", "train_end", "test_start", "test_end"):
        cols[attr] = day(attr)
    for name in parameter_columns(study):
        values = [p[name] for p in configs]
        cols[name] = [list(v) for v in values] if name == "exclude" else values
    cols["config_id"] = [r.choice_id for r in results]
    for prefix, attr in (("train_", "train"), ("test_", "test")):
        block = np.array([getattr(r, attr) for r in results]).reshape(len(results), N_METRICS)
        for m in METRICS:  # all of SEMANTICS §9, train_ and test_
            col = block[:, METRICS.index(m)]
            cols[prefix + m] = col.astype(np.int64) if m == "n_rebalances" else col
    cols["test_rank"] = pl.Series("test_rank", [r.test_rank for r in results], dtype=pl.Int32)
    cols["n_candidates"] = pl.Series("n_candidates", [r.n_candidates for r in results], dtype=pl.Int32)
    df = pl.DataFrame(cols)
    return df.with_columns(pl.lit(SCHEMA_VERSION, dtype=pl.Int32).alias("schema_version"))


def _stitch(results: list[FoldResult]) -> tuple[list[np.ndarray], int]:
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


def _oos_table(pl_: Plan, results: list[FoldResult]) -> pl.DataFrame:
    dates = pl_.panel.dates
    days = np.concatenate([np.arange(r.fold.test_start, r.fold.keep_end + 1) for r in results])
    folds = np.concatenate([np.full(r.fold.keep_end - r.fold.test_start + 1, r.fold.fold, dtype=np.int32)
                            for r in results])
    return pl.DataFrame({"date": pl.Series("date", dates[days]), "fold": folds,
                         "ret": np.concatenate([r.series[0] for r in results])})


def _summary(study: Study, cfg: Settings, pl_: Plan, results: list[FoldResult]) -> dict[str, Any]:
    series, n_reb = _stitch(results)
    out = np.empty(N_METRICS)
    compute_metrics(np.stack(series), n_reb, out)
    dates = pl_.panel.dates
    sharpe = METRICS.index("sharpe")
    is_sharpes = np.array([r.train[sharpe] for r in results])
    finite = is_sharpes[np.isfinite(is_sharpes)]
    is_mean = float(finite.mean()) if finite.size else float("nan")
    oos = float(out[sharpe])
    ratio = oos / is_mean if is_mean != 0 and math.isfinite(is_mean) and math.isfinite(oos) else float("nan")
    chosen: dict[str, int] = {}
    for r in results:
        cid = r.choice_id
        chosen[cid] = chosen.get(cid, 0) + 1
    return {
        "schema_version": SCHEMA_VERSION,
        "study": study.name,
        "objective": study.objective,
        "objective_minimised": lower_is_better(study.objective),
        "walk_forward": asdict(cfg),
        "folds": len(results),
        "candidates": max(r.n_candidates for r in results),
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
    pl_ = plan(study, data, funding, inner_space(study)[2] if cfg.inner == "optuna" else None)
    folds = fold_windows(pl_.s, pl_.e, cfg.train_days, cfg.test_days, cfg.step_days, cfg.anchored)
    if not folds:
        raise SweepError(_no_fold(study, cfg, pl_.e - pl_.s + 1, pl_.start, pl_.end))
    return cfg, pl_, folds


def run(study: Study, *, data: str | Path | None = None, funding: str | Path | None = None,
        out: str | Path | None = None, jobs: int = 1, force: bool = False,
        progress: bool | None = None, on_chunk: Callable[[int], None] | None = None, cluster: str | None = None,
        **_: Any) -> RunSummary:
    """Run a walk-forward study; write folds.parquet, oos_returns.parquet, summary.json, manifest.json.

    ``n_configs`` counts candidate evaluations on train windows (candidates x
    folds). Each finished fold is kept in ``<out>/.partial/fold-<k>.json`` (its
    choice, metrics and test series) and ``on_chunk(n_folds_written)`` is called; a
    rerun after an interruption computes only the folds missing there.
    """
    t0 = time.perf_counter()
    cfg, pl_, folds = prepare(study, data, funding)
    jobs = max(1, int(jobs or 1))
    folder = ResultsFolder(Path(out) if out is not None else Path("results") / study.name, FILES)
    # Candidate evaluations per fold: the grid, or the search's trials.
    per_fold = inner_space(study)[1].n_trials if cfg.inner == "optuna" else len(pl_.configs)
    n_configs = per_fold * len(folds)
    fp_ = pl_.fingerprint(False)
    if folder.complete(fp_, force):
        return RunSummary(folder.path, n_configs, 0, n_configs, time.perf_counter() - t0, 0.0, pl_.start, pl_.end)
    evaluator = Evaluator(pl_.panel, jobs)
    # Every feature and ranking is filled in before the threads read the shared caches.
    evaluator.prepare(pl_.configs)
    runner = _Folds(evaluator, pl_.configs, study.objective, study)
    # Compiled (or loaded from Numba's cache) here before any worker starts, so no two threads
    # or processes compile or write the cache at once; a cluster's workers copy it.
    evaluator.run(pl_.configs[:1], pl_.s, pl_.s)
    runner.series(pl_.configs[0], pl_.s, pl_.s)
    resources = ExitStack()
    # The cluster is reached before the first file is written: an unreachable one writes nothing.
    where = resources.enter_context(open_cluster(cluster))
    with resources, folder.claim():
        if folder.begin(fp_, study.path, force):
            return RunSummary(folder.path, n_configs, 0, n_configs, time.perf_counter() - t0, 0.0,
                              pl_.start, pl_.end)
        kept = {int(p.stem.split("-")[1]) for p in folder.chunks("fold", "json")}
        pending = [f for f in folds if f.fold not in kept]
        compute_time = 0.0
        if pending:
            t_run = time.perf_counter()

            def finish(f: Fold, result: FoldResult) -> int:
                write_json(result.to_json(), folder.chunk_path(f.fold, "fold", "json"))
                return per_fold

            run_chunks(pending, runner, finish, jobs=min(jobs, len(pending)), total=n_configs,
                       done=per_fold * len(kept), progress=progress, on_chunk=on_chunk, cluster=where,
                       key=lambda f: f.fold)
            compute_time = time.perf_counter() - t_run
        resources.close()  # the cluster, if any: nothing more runs there
        final = [FoldResult.from_json(_read_fold(p)) for p in folder.chunks("fold", "json")]
        if [r.fold.fold for r in final] != [f.fold for f in folds]:
            raise SweepError(f"{folder.partial}: the finished folds do not match the study's; rerun with --force")
        folder.put("folds.parquet", _folds_table(study, pl_, final))
        folder.put("oos_returns.parquet", _oos_table(pl_, final))
        folder.put("summary.json", _summary(study, cfg, pl_, final))
        n_run = per_fold * len(pending)
        summary = RunSummary(folder.path, n_configs, n_run, n_configs - n_run, time.perf_counter() - t0,
                             compute_time, pl_.start, pl_.end)
        doc = run_manifest(pl_, fp_, summary)
        doc["parameters"] = parameter_columns(study)
        doc["walk_forward"] = {**asdict(cfg), "folds": len(folds), "candidates": per_fold,
                               "first_train_start": str(pl_.panel.dates[folds[0].train_start]),
                               "last_test_end": str(pl_.panel.dates[folds[-1].test_end])}
        folder.commit(doc)
    return summary


def _read_fold(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SweepError(f"{path}: unreadable ({exc}); rerun with --force") from None


class WalkForwardKind(StudyKind):
    name = "walk_forward"
    tables = FILES
    clusters = True
    reads = frozenset({"walk_forward", "grid", "space", "optuna"})
    counts = "backtests"
    show = "sweep.cli.kind_walk_forward:show"
    report = "sweep.report.walk_forward:section"

    def validate(self, study: Study) -> None:
        validate(study)

    def describe(self, study: Study, *, data=None, funding=None) -> list[str]:
        cfg, p, folds = prepare(study, data, funding)
        per_fold = (f"{inner_space(study)[1].n_trials} Optuna trials" if cfg.inner == "optuna"
                    else f"{len(p.configs)} grid configurations")
        return [data_line(p.panel),
                f"candidates  {per_fold} per fold, scored on its train window",
                f"folds       {len(folds)}: train {cfg.train_days} days, test {cfg.test_days}, step "
                f"{cfg.step_days}{', anchored' if cfg.anchored else ''}; first test day "
                f"{p.panel.dates[folds[0].test_start]}, last {p.panel.dates[folds[-1].test_end]}",
                *window_lines(study, p)]

    def run(self, study: Study, **options: Any) -> RunSummary:
        return run(study, **options)


KIND = register(WalkForwardKind())
