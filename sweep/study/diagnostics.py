"""Factor diagnostics (``kind = "diagnostics"``): does the factor rank future returns at all?

For each configuration of the study's ``[grid]`` (the ``[backtest]`` parameters alone when
there is no grid) and each horizon ``h`` of ``[diagnostics] horizons`` (default 1, 5, 10,
20 days), on every day ``t`` of the evaluation window: the Spearman rank correlation
between the factor at ``t`` and the forward return from the close of ``t`` to the close of
``t + h`` (the information coefficient, IC), the mean forward return of each factor
quantile, the daily-rebalanced quantile books, the factor's rank autocorrelation at lags
``1 .. [diagnostics] lags`` (default 20) and the quantile turnover; the numbers of
alphalens' tear sheets, from Numba kernels (``kernels.diagnostics``).

The factor at ``t`` is the feature the strategy ranks (SEMANTICS §3-§5): after the
universe filters (exclude, min_volume, top_by_market_cap), eligible where the feature and
the close are finite; not sign-flipped (a factor whose book buys its lowest values
predicts with a negative IC). It uses data up to ``t`` only. A forward return is missing
(never 0) where a close is missing or ``t + h`` is past the window's end. Quantiles are
pandas' ``pd.qcut(x, q, labels=False) + 1`` over the day's eligible names (alphalens'
buckets); unlike alphalens, a name's bucket at ``t`` does not depend on whether its
forward return exists (alphalens drops a row with any missing forward return before
bucketing, which makes today's bucket depend on the future).

Only the parameters that change the factor's values, the universe or ``q`` matter (the
factor and its parameters, exclude, min_volume, volume_window, top_by_market_cap, q; and
``long``, which names the side the book buys in the summary). The strategy's other
parameters are accepted in ``[backtest]`` (so a strategy study's table can be copied) and
ignored; as a ``[grid]`` axis they are refused, since every value would repeat the same
numbers. Configurations that resolve to the same ``config_id`` (``size`` under a
``window`` axis: it has no window) are computed once.

Outputs in ``<out>``: ``summary.parquet`` (one row per configuration x horizon),
``ic.parquet``, ``quantiles.parquet``, ``books.parquet``, ``autocorr.parquet`` (columns in
``sweep.study.diagnostics_tables``) and ``manifest.json``. Chunks of configurations are
kept in ``<out>/.partial/`` as they finish, so an interrupted run resumes.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from sweep.core.errors import SweepError
from sweep.data.panel import Panel
from sweep.engine.params import closest, config_id
from sweep.engine.workspace import Workspace, feature_key, universe_key
from sweep.results import ResultsFolder
from sweep.run.manifest import run_manifest
from sweep.run.plan import plan
from sweep.run.pool import run_chunks
from sweep.run.summary import RunSummary
from sweep.study.diagnostics_tables import Inputs, chunk_tables, diagnose, forward_panels
from sweep.study.kind import StudyKind, data_line, register
from sweep.study.tables import config_frame

TABLES = ("summary.parquet", "ic.parquet", "quantiles.parquet", "books.parquet", "autocorr.parquet")
# Chunk file prefix of each table; the summary's is "chunk", written last (it marks a chunk done).
PREFIX = {"ic.parquet": "ic", "quantiles.parquet": "quantiles", "books.parquet": "books",
          "autocorr.parquet": "autocorr", "summary.parquet": "chunk"}
KEYS = ("horizons", "lags")
DEFAULT_HORIZONS = (1, 5, 10, 20)
DEFAULT_LAGS = 20
MAX_DAYS = 10_000  # a horizon or lag beyond any daily panel is a typo
# Parameters that change no diagnostic (schedule, weights, costs, regime, trend sizing): refused
# as [grid] axes, accepted and ignored in [backtest].
IGNORED = ("rebalance_days", "phase", "hold", "buffer", "fee_bps", "slippage_bps", "top_n", "max_days",
           "selection", "weighting", "vol_window", "long_allocation", "short_allocation", "regime",
           "regime_fast", "regime_slow", "forecast_scalar", "scalar_min_periods", "forecast_cap",
           "vol_target", "idm", "max_leverage", "long_only")


@dataclass(frozen=True)
class Spec:
    """The ``[diagnostics]`` table, checked."""

    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    lags: int = DEFAULT_LAGS

    def as_dict(self) -> dict[str, Any]:
        return {"horizons": list(self.horizons), "lags": self.lags}


def _days(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise SweepError(f"{where} = {value!r} must be a whole number of days from 1 to {MAX_DAYS}")
    return value


def spec(study: Any) -> Spec:
    """``[diagnostics]`` of ``study``, and its grid axes, checked; a bad key is one line."""
    table = study.tables.get("diagnostics", {})
    where = f"{study.path}: [diagnostics]"
    for key in table:
        if key not in KEYS:
            raise SweepError(f"{where} unknown key '{key}'{closest(key, KEYS)} (it reads {', '.join(KEYS)})")
    raw = table.get("horizons", list(DEFAULT_HORIZONS))
    if not isinstance(raw, list) or not raw:
        raise SweepError(f"{where} horizons = {raw!r} must be a non-empty list of days, e.g. [1, 5, 10, 20]")
    horizons = tuple(_days(h, f"{where} horizons") for h in raw)
    if len(set(horizons)) != len(horizons):
        raise SweepError(f"{where} horizons = {raw!r} repeats a value")
    lags = _days(table.get("lags", DEFAULT_LAGS), f"{where} lags")
    for key in study.axes:
        if key in IGNORED:
            raise SweepError(f"{study.path}: [grid] {key} changes no diagnostic (a diagnostics study reads the "
                             "factor and its parameters, the universe filters and q); remove the axis")
    return Spec(tuple(sorted(horizons)), lags)


def validate(study: Any) -> None:
    spec(study)


def unique_configs(configs: Any) -> list[dict[str, Any]]:
    """The study's configurations in grid order, each ``config_id`` once."""
    seen: dict[str, dict[str, Any]] = {}
    for p in configs:
        seen.setdefault(config_id(p), p)
    return list(seen.values())


def factor_panel(ws: Workspace, p: dict[str, Any]) -> np.ndarray:
    """Configuration ``p``'s factor as the diagnostics read it: its feature (SEMANTICS §3-§4)
    where the name is in the day's universe (§5) with a finite feature and close, else NaN."""
    feat = ws.feature(feature_key(p))
    ok = ws.universe_mask(p) & np.isfinite(feat) & np.isfinite(ws.panel.close)
    return np.ascontiguousarray(np.where(ok, feat, np.nan), dtype=np.float64)


def chunk_size(n: int) -> int:
    """Configurations per chunk: a function of the count alone, so a resumed run meets the same
    boundaries (a configuration costs a few milliseconds)."""
    return int(min(16, max(1, -(-n // 8))))


@dataclass
class Chunks:
    """A chunk ``[a, b)`` of the configurations to its rows of the five tables (on a pool thread:
    features and universes are computed beforehand, the kernels release the GIL)."""

    study: Any
    ws: Workspace
    configs: list[dict[str, Any]]
    inp: Inputs
    dates: np.ndarray

    def __call__(self, span: tuple[int, int]) -> dict[str, pl.DataFrame]:
        a, b = span
        part = self.configs[a:b]
        results = [diagnose(factor_panel(self.ws, p), int(p["q"]), self.inp) for p in part]
        return chunk_tables(config_frame(self.study, part), part, results, self.dates, self.inp)


def _prepare(ws: Workspace, configs: list[dict[str, Any]], jobs: int) -> None:
    """Every feature and universe the configurations read, computed once before the chunks."""
    features = {feature_key(p): p for p in configs}
    todo = sorted(features, key=repr)
    if jobs > 1 and len(todo) > 1:
        with ThreadPoolExecutor(min(jobs, len(todo))) as pool:
            list(pool.map(ws.feature, todo))
    else:
        for key in todo:
            ws.feature(key)
    for p in {universe_key(p): p for p in configs}.values():
        ws.universe_mask(p)


def _inputs(panel: Panel, sp: Spec, s: int, e: int, where: str) -> Inputs:
    if sp.horizons[-1] > e - s:
        raise SweepError(f"{where}: [diagnostics] horizons = {list(sp.horizons)}: {sp.horizons[-1]} days is not "
                         f"shorter than the evaluation window ({e - s + 1} days, {panel.dates[s]} .. "
                         f"{panel.dates[e]}): no forward return would end inside it")
    return Inputs(forward_panels(panel.close, sp.horizons, e), sp.horizons, sp.lags, s, e)


def run(study: Any, *, data=None, funding=None, out=None, jobs: int = 1, force: bool = False,
        progress: bool | None = None, on_chunk: Callable[[int], None] | None = None, **_: Any) -> RunSummary:
    """Run a diagnostics study and write its five tables and ``manifest.json`` into ``out``."""
    t0 = time.perf_counter()
    sp = spec(study)
    pl_ = plan(study, data, funding)
    panel, s, e = pl_.panel, pl_.s, pl_.e
    configs = unique_configs(pl_.configs)
    n = len(configs)
    jobs = max(1, jobs or 1)
    folder = ResultsFolder(Path(out) if out is not None else Path("results") / study.name, TABLES)
    fp = pl_.fingerprint("diagnostics", sp.as_dict())
    if folder.complete(fp, force):
        return RunSummary(folder.path, n, 0, n, time.perf_counter() - t0, 0.0, pl_.start, pl_.end)
    # Everything that can fail on the input happens before the first file is written.
    inp = _inputs(panel, sp, s, e, str(study.path))
    ws = Workspace(panel)
    _prepare(ws, configs, jobs)
    work = Chunks(study, ws, configs, inp, panel.dates[s:e + 1])
    work((0, 1))  # loads every kernel before the pool starts (no two threads read Numba's cache)
    with folder.claim():
        if folder.begin(fp, study.path, force):
            return RunSummary(folder.path, n, 0, n, time.perf_counter() - t0, 0.0, pl_.start, pl_.end)
        size = chunk_size(n)
        done = {int(f.stem.rsplit("-", 1)[1]) for f in folder.chunks()}
        pending = [(a, min(a + size, n)) for a in range(0, n, size) if a not in done]
        n_done = sum(min(a + size, n) - a for a in done)

        def finish(span: tuple[int, int], frames: dict[str, pl.DataFrame]) -> int:
            for name in TABLES[1:] + TABLES[:1]:  # the summary last: its file marks the chunk done
                folder.write_chunk(frames[name], span[0], PREFIX[name])
            return span[1] - span[0]

        compute_time = 0.0
        if pending:
            compute_time = run_chunks(pending, work, finish, jobs=jobs, total=n, done=n_done, progress=progress,
                                      on_chunk=on_chunk)
        firsts = [int(f.stem.rsplit("-", 1)[1]) for f in folder.chunks()]
        if firsts != list(range(0, n, size)):
            raise SweepError(f"{folder.partial}: the finished chunks do not cover every configuration; "
                             "rerun with --force")
        for name in TABLES:
            folder.put(name, pl.concat([pl.read_parquet(f) for f in folder.chunks(PREFIX[name])]))
        summary = RunSummary(folder.path, n, n - n_done, n_done, time.perf_counter() - t0, compute_time,
                             pl_.start, pl_.end)
        doc = run_manifest(pl_, fp, summary)
        doc.update({"diagnostics": sp.as_dict(), "horizons": list(sp.horizons), "lags": sp.lags})
        folder.commit(doc)
    return summary


def describe(study: Any, *, data=None, funding=None) -> list[str]:
    sp = spec(study)
    p = plan(study, data, funding)
    n = len(unique_configs(p.configs))
    return [data_line(p.panel), f"configs     {n}", f"horizons    {', '.join(map(str, sp.horizons))} days",
            f"lags        1 .. {sp.lags} days (rank autocorrelation)",
            f"evaluation  {p.start} .. {p.end} ({p.e - p.s + 1} days)"]


class DiagnosticsKind(StudyKind):
    name = "diagnostics"
    tables = TABLES
    reads = frozenset({"grid", "diagnostics"})
    show = "sweep.cli.kind_diagnostics:show"
    report = "sweep.report.diagnostics:section"

    def validate(self, study: Any) -> None:
        spec(study)

    def describe(self, study: Any, *, data=None, funding=None) -> list[str]:
        return describe(study, data=data, funding=funding)

    def run(self, study: Any, **options: Any) -> RunSummary:
        return run(study, **options)


KIND = register(DiagnosticsKind())

__all__ = ["DEFAULT_HORIZONS", "DEFAULT_LAGS", "DiagnosticsKind", "IGNORED", "KIND", "Spec", "TABLES",
           "factor_panel", "run", "spec", "unique_configs", "validate"]
