"""From resolved configurations to kernel inputs, with every shared array computed once.

A study's configurations differ mostly in schedule, weighting and costs; they
share a handful of features and daily rankings. ``Workspace`` computes each
distinct feature, volatility, universe and ranking once and hands the kernels
integer indices into stacks of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kernels import portfolio as K
from kernels import selection
from kernels.batch import run_batch

from sweep import factors, metrics
from sweep.data.panel import Panel


def feature_key(p: dict[str, Any]) -> tuple:
    """What a configuration's feature panel depends on, and nothing else (its factor's cache key)."""
    return factors.get(p["factor"]).cache_key(p)


def ranking_key(p: dict[str, Any]) -> tuple:
    vol = p["vol_window"] if p["weighting"] == "risk_parity" else None
    return (feature_key(p), vol, p["exclude"], p["top_by_market_cap"])


class Workspace:
    """Caches of the panels one study needs: features, volatilities, universes, rankings."""

    def __init__(self, panel: Panel):
        self.panel = panel
        self._features: dict[tuple, np.ndarray] = {}
        self._universes: dict[tuple, np.ndarray] = {}
        self._rankings: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def check(self, p: dict[str, Any], where: str) -> None:
        """Refuse a configuration the data cannot serve (a missing column or symbol)."""
        factors.get(p["factor"]).validate(self.panel, p, where)
        if p["top_by_market_cap"] > 0:
            self.panel.field("market_cap", f"top_by_market_cap ({where})")

    def feature(self, key: tuple) -> np.ndarray:
        if key not in self._features:
            self._features[key] = factors.compute(self.panel, key)
        return self._features[key]

    def vol(self, window: int) -> np.ndarray:
        # Shared with the volatility factor's feature of the same window.
        return self.feature(factors.get("volatility").cache_key({"window": window}))

    def inverse_vol(self, window: int) -> np.ndarray:
        """``1 / volatility(window)`` (NaN where not positive): risk parity divides once
        per study, not once per target."""
        key = ("inverse_volatility", window)
        if key not in self._features:
            vol = self.vol(window)
            with np.errstate(divide="ignore", invalid="ignore"):
                self._features[key] = np.where(vol > 0.0, 1.0 / vol, np.nan)
        return self._features[key]

    def excluded(self, exclude: tuple[str, ...]) -> np.ndarray:
        ex = set(exclude)
        return np.array([s in ex for s in self.panel.symbols], dtype=np.bool_)

    def universe(self, exclude: tuple[str, ...], top_k: int) -> np.ndarray:
        key = (exclude, top_k)
        if key not in self._universes:
            mcap = self.panel.field("market_cap", "top_by_market_cap") if top_k > 0 else np.empty((0, 0))
            self._universes[key] = selection.universe(mcap, self.excluded(exclude), top_k)
        return self._universes[key]

    def ranking(self, key: tuple) -> tuple[np.ndarray, np.ndarray]:
        if key not in self._rankings:
            fkey, vol_window, exclude, top_k = key
            if vol_window:
                order, count = self.ranking((fkey, None, exclude, top_k))
                self._rankings[key] = selection.restrict_ranking(order, count, self.vol(vol_window))
            else:
                self._rankings[key] = selection.rank_eligible(
                    self.feature(fkey), self.panel.close, np.empty((0, 0)), self.excluded(exclude),
                    self.universe(exclude, top_k))
        return self._rankings[key]

    def prepare(self, configs: list[dict[str, Any]], jobs: int = 1) -> None:
        """Compute every feature and ranking the configurations need, ``jobs`` at a time.

        The kernels release the GIL, so threads share the panel without copies.
        Stages run in dependency order (features, then plain rankings, then the
        risk-parity rankings derived from them), each stage in parallel.
        """
        keys = {ranking_key(p) for p in configs}
        vol = factors.get("volatility")
        features = {k[0] for k in keys} | {vol.cache_key({"window": k[1]}) for k in keys if k[1]}
        plain = {(k[0], None, k[2], k[3]) for k in keys}
        self.panel.log_returns  # noqa: B018  (computed once, before the threads read it)
        for exclude, top_k in {(k[2], k[3]) for k in keys}:
            self.universe(exclude, top_k)
        for stage, fn in ((features, self.feature), (plain, self.ranking), (keys - plain, self.ranking)):
            todo = sorted(stage, key=repr)
            if jobs > 1 and len(todo) > 1:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(min(jobs, len(todo))) as pool:
                    list(pool.map(fn, todo))
            else:
                for k in todo:
                    fn(k)


@dataclass
class Compiled:
    """Kernel inputs for a list of configurations: parameter rows plus shared stacks."""

    ip: np.ndarray  # (C, N_INT) int64
    fp: np.ndarray  # (C, N_FLOAT) float64
    order_stack: np.ndarray  # (R, T, N) int32
    count_stack: np.ndarray  # (R, T) int32
    ivol_stack: np.ndarray  # (V, T, N) float64: 1 / volatility(vol_window)
    feature_stack: np.ndarray  # (F, T, N) float64, threshold features only

    def stacks(self) -> tuple:
        return self.order_stack, self.count_stack, self.ivol_stack, self.feature_stack


def compile_configs(ws: Workspace, configs: list[dict[str, Any]], jobs: int = 1) -> Compiled:
    """Encode resolved configurations as kernel parameter rows and build the shared stacks."""
    ws.prepare(configs, jobs)
    T, N = ws.panel.shape
    ranks: dict[tuple, int] = {}
    vols: dict[int, int] = {}
    feats: dict[tuple, int] = {}
    int_rows = []
    float_rows = []
    for p in configs:
        int_row = [0] * K.N_INT
        int_row[K.I_RANK] = ranks.setdefault(ranking_key(p), len(ranks))
        int_row[K.I_VOL] = vols.setdefault(p["vol_window"], len(vols)) if p["weighting"] == "risk_parity" else -1
        if factors.get(p["factor"]).long is None:
            int_row[K.I_MODE] = K.MODE_THRESHOLD
            int_row[K.I_FEAT] = feats.setdefault(feature_key(p), len(feats))
        else:
            int_row[K.I_MODE] = K.MODE_QUANTILE if p["selection"] == "quantile" else K.MODE_TOP_N
            int_row[K.I_FEAT] = -1
        int_row[K.I_Q] = p["q"]
        int_row[K.I_TOP_N] = p["top_n"]
        int_row[K.I_LONG_LOW] = 1 if p["long"] == "low" else 0
        int_row[K.I_K] = p["rebalance_days"]
        int_row[K.I_PHASE] = p["phase"]
        int_row[K.I_DRIFT] = 1 if p["hold"] == "drift" else 0
        float_row = [0.0] * K.N_FLOAT
        float_row[K.F_LONG] = p["long_allocation"]
        float_row[K.F_SHORT] = p["short_allocation"]
        float_row[K.F_BUFFER] = p["buffer"]
        float_row[K.F_COST] = (p["fee_bps"] + p["slippage_bps"]) / 10_000.0
        float_row[K.F_MAX_DAYS] = p["max_days"]
        int_rows.append(int_row)
        float_rows.append(float_row)
    # One conversion at the end: assigning numpy scalars field by field was the slow part.
    ip = np.array(int_rows, dtype=np.int64).reshape(len(configs), K.N_INT)
    fp = np.array(float_rows, dtype=np.float64).reshape(len(configs), K.N_FLOAT)
    rankings = [ws.ranking(key) for key in ranks]  # dicts keep insertion order = index order
    return Compiled(ip, fp, _stack([o for o, _ in rankings], (T, N), np.int32),
                    _stack([c for _, c in rankings], (T,), np.int32),
                    _stack([ws.inverse_vol(w) for w in vols], (T, N), np.float64),
                    _stack([ws.feature(k) for k in feats], (T, N), np.float64))


def _stack(arrays: list[np.ndarray], shape: tuple[int, ...], dtype) -> np.ndarray:
    # One array is a view with a leading axis (no copy: one Optuna trial, one
    # walk-forward choice); several are copied into one block for the kernel.
    if len(arrays) == 1:
        return arrays[0][np.newaxis]
    return np.stack(arrays) if arrays else np.empty((0, *shape), dtype=dtype)


def kernel_panels(panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    """``(q, funding)`` as the recursion reads them: non-finite values as 0 (SEMANTICS §8).

    Cleaning once here keeps finiteness tests out of the recursion's inner
    loops; without a funding column the funding panel is an empty array.
    """
    q = panel.carried_returns
    q = np.where(np.isfinite(q), q, 0.0)
    f = panel.fields.get("funding_rate")
    f = np.where(np.isfinite(f), f, 0.0) if f is not None else np.empty((0, 0))
    return q, f


NO_BLOCKS = (np.empty((0, 0)), np.empty((0, 0)))  # run_batch without block moments


def run_metrics(panels: tuple[np.ndarray, np.ndarray], comp: Compiled, idx: np.ndarray | slice, s: int, e: int,
                returns_out: np.ndarray, blocks: tuple[np.ndarray, np.ndarray] = NO_BLOCKS) -> np.ndarray:
    """Every metric of ``sweep.metrics.names()`` for configurations ``idx`` of ``comp``: ``(C, M)``.

    The kernel's metrics come first (``kernels.batch.run_batch``, arguments as
    there), then each registered extra metric, computed from the configurations'
    daily net returns: with extra metrics the returns are kept even when
    ``returns_out`` has no rows (one chunk's ``C x n`` matrix at a time).
    """
    extra = metrics.extra()
    C = comp.ip[idx].shape[0]
    rets = returns_out
    if extra and returns_out.shape[0] == 0:
        rets = np.empty((C, e - s + 1))
    out = run_batch(panels, comp.stacks(), comp.ip[idx], comp.fp[idx], s, e, rets, blocks)
    if not extra:
        return out
    values = metrics.compute_extra(rets)
    return np.hstack([out, np.column_stack([values[m.name] for m in extra])])


class Evaluator:
    """Runs resolved configurations on one panel over any evaluation window.

    The building block of every study kind: a grid runs all its configurations
    once, a walk-forward runs candidates on train windows and the chosen one on
    each test window, an Optuna search one trial at a time. Features and
    rankings are computed once per panel and shared by every call.
    """

    def __init__(self, panel: Panel, jobs: int = 1):
        self.panel = panel
        self.jobs = jobs
        self.workspace = Workspace(panel)
        self.q, self.funding = kernel_panels(panel)

    def prepare(self, configs: list[dict[str, Any]]) -> None:
        """Compute the features and rankings of ``configs`` ahead of time (in parallel)."""
        self.workspace.prepare(configs, self.jobs)

    def run(self, configs: list[dict[str, Any]], s: int, e: int,
            returns: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Metrics ``(C, N_METRICS)`` over days ``s .. e`` and, with ``returns``, the
        daily net returns ``(C, e - s + 1)``. Every configuration starts flat on day ``s``."""
        metrics, rets, _ = self.run_blocks(configs, s, e, 0, returns)
        return metrics, rets

    def run_blocks(self, configs: list[dict[str, Any]], s: int, e: int, n_blocks: int,
                   returns: bool = False) -> tuple[np.ndarray, np.ndarray | None, tuple | None]:
        """``run`` plus the per-block sums and sums of squares of the net returns
        (``n_blocks`` contiguous blocks, as ``kernels.cscv.block_moments``)."""
        comp = compile_configs(self.workspace, configs, 1)
        C = len(configs)
        rets = np.empty((C, e - s + 1)) if returns else np.empty((0, 0))
        blocks = (np.empty((C, n_blocks)), np.empty((C, n_blocks))) if n_blocks else NO_BLOCKS
        out = run_batch((self.q, self.funding), comp.stacks(), comp.ip, comp.fp, s, e, rets, blocks)
        return out, (rets if returns else None), (blocks if n_blocks else None)
