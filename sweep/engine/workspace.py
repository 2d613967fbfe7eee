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
from kernels import regime as regimes
from kernels import selection
from kernels.batch import run_batch

from sweep import factors, metrics
from sweep.core.errors import SweepError
from sweep.data.panel import Panel
from sweep.factors import trend  # SEMANTICS §11 trend rules


def feature_key(p: dict[str, Any]) -> tuple:
    """What a configuration's feature panel depends on, and nothing else (its factor's cache key)."""
    return factors.get(p["factor"]).cache_key(p)


def universe_key(p: dict[str, Any]) -> tuple:
    """What a configuration's universe (SEMANTICS §5 filters) depends on: ``(exclude, min_volume,
    volume_window, top_by_market_cap)``, the volume window only where the filter is on."""
    liquid = p["min_volume"] > 0
    return (p["exclude"], p["min_volume"] if liquid else 0.0, p["volume_window"] if liquid else 0,
            p["top_by_market_cap"])


def regime_key(p: dict[str, Any]) -> tuple | None:
    """What a configuration's regime filter depends on; None for ``regime = "all"`` (no filter)."""
    if p["regime"] == "all":
        return None
    symbol = p["market_symbol"] if p["market"] == "symbol" else None
    return (p["regime"], p["regime_fast"], p["regime_slow"], p["market"], symbol)


# SEMANTICS §11 trend rules: a trend configuration's "ranking" is its target panel, under the key
# ``(TREND, feature key, sizing key, universe key, regime key)`` (no factor key is this string).
TREND = "§11 trend"


def ranking_key(p: dict[str, Any]) -> tuple:
    """``(feature key, risk-parity vol window or None, universe key, regime key or None)``."""
    if trend.is_trend(p["factor"]):  # SEMANTICS §11 trend rules: sized symbol by symbol, not ranked
        return (TREND, feature_key(p), trend.sizing_key(p), universe_key(p), regime_key(p))
    vol = p["vol_window"] if p["weighting"] == "risk_parity" else None
    return (feature_key(p), vol, universe_key(p), regime_key(p))


class Workspace:
    """Caches of the panels one study needs: features, volatilities, universes, rankings."""

    def __init__(self, panel: Panel):
        self.panel = panel
        self._features: dict[tuple, np.ndarray] = {}
        self._universes: dict[tuple, np.ndarray] = {}
        self._regimes: dict[tuple, np.ndarray] = {}
        self._rankings: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._targets: dict[tuple, np.ndarray] = {}  # SEMANTICS §11: target panels by trend key

    def check(self, p: dict[str, Any], where: str) -> None:
        """Refuse a configuration the data cannot serve (a missing column or symbol)."""
        factors.get(p["factor"]).validate(self.panel, p, where)
        if p["top_by_market_cap"] > 0:
            self.panel.field("market_cap", f"top_by_market_cap ({where})")
        # SEMANTICS §5 universe and regime, §8 funding switch.
        if p["min_volume"] > 0:
            self.panel.field("volume", f"min_volume = {p['min_volume']:g} ({where})")
        if p["regime"] != "all" and p["market"] == "symbol" and p["market_symbol"] not in self.panel.symbols:
            raise SweepError(f"{where}: regime = '{p['regime']}' reads the close of market_symbol = "
                             f"'{p['market_symbol']}', which is not a symbol of {self.panel.source} "
                             f"(or set market = \"equal_weight\")")
        if not p["funding"] and "funding_rate" in factors.get(p["factor"]).needs:
            raise SweepError(f"{where}: the {p['factor']} factor ranks funding rates, which funding = false "
                             f"ignores; set funding = true")

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

    def universe(self, key: tuple) -> np.ndarray:
        """The universe of ``universe_key`` as ``rank_eligible`` reads it: ``(T, N)``, or ``(0, N)``
        where no filter beyond ``exclude`` is set."""
        if key not in self._universes:
            exclude, min_volume, volume_window, top_k = key
            if top_k <= 0 and min_volume <= 0:
                # What selection.universe returns without filters; not calling it spares its
                # compilation (0.8 s of a first run) and a cache load per run.
                self._universes[key] = np.empty((0, len(self.panel.symbols)), dtype=np.bool_)
                return self._universes[key]
            mcap = self.panel.field("market_cap", "top_by_market_cap") if top_k > 0 else np.empty((0, 0))
            liquid = np.empty((0, 0), dtype=np.bool_)
            if min_volume > 0:
                mean = self.volume_mean(volume_window)
                liquid = mean >= min_volume  # NaN (too few finite days) compares False
            self._universes[key] = selection.universe(mcap, self.excluded(exclude), liquid, top_k)
        return self._universes[key]

    def volume_mean(self, window: int) -> np.ndarray:
        """Mean traded value over ``window`` days (SEMANTICS §5's ``min_volume`` rule), once per window."""
        key = ("volume_mean", window)
        if key not in self._features:
            volume = self.panel.field("volume", "min_volume")
            self._features[key] = selection.volume_mean(volume, window)
        return self._features[key]

    def universe_mask(self, p: dict[str, Any]) -> np.ndarray:
        """Day ``t``'s universe of configuration ``p`` (SEMANTICS §5: exclude, min_volume,
        top_by_market_cap, in that order) as a full bool ``(T, N)`` array (True = a member)."""
        mask = self.universe(universe_key(p))
        if mask.shape[0] == 0:
            mask = np.broadcast_to(~self.excluded(p["exclude"]), self.panel.shape)
        return mask

    def regime_mask(self, p: dict[str, Any]) -> np.ndarray:
        """Days ``(T,)`` on which configuration ``p``'s regime (SEMANTICS §5) holds; all True for
        ``regime = "all"``. The engine reads it on rebalance days only."""
        return self.regime(regime_key(p))

    def regime(self, key: tuple | None) -> np.ndarray:
        """The regime mask of ``regime_key`` (None: every day holds)."""
        if key is None:
            return np.ones(self.panel.shape[0], dtype=np.bool_)
        if key not in self._regimes:
            name, fast, slow, market, symbol = key
            if market == "symbol":
                if symbol not in self.panel.symbols:
                    raise SweepError(f"regime = '{name}': market_symbol = '{symbol}' is not a symbol of "
                                     f"{self.panel.source}")
                level = np.ascontiguousarray(self.panel.close[:, self.panel.symbols.index(symbol)])
            else:
                level = regimes.equal_weight_level(self.panel.simple_returns)
            sign = regimes.BEAR if name == "bear" else regimes.BULL
            self._regimes[key] = regimes.regime_holds(level, fast, slow, sign)
        return self._regimes[key]

    def target(self, key: tuple) -> np.ndarray:
        """SEMANTICS §11.8: the target panel ``w*`` ``(T, N)`` of trend key ``key`` (``ranking_key``)."""
        self.ranking(key)
        return self._targets[key]

    def trend_ranking(self, key: tuple) -> tuple[np.ndarray, np.ndarray]:
        """SEMANTICS §11.6-§11.8: the target panel of trend key ``key`` and its non-zero symbols
        per day, as ``(order, count)`` for ``portfolio.simulate``'s ``MODE_TARGET``."""
        if key not in self._rankings:
            _, fkey, sizing, ukey, rkey = key
            allowed = self.universe(ukey)
            if allowed.shape[0] == 0:
                allowed = np.ascontiguousarray(np.broadcast_to(~self.excluded(ukey[0]), self.panel.shape))
            target, order, count = trend.targets(self.panel, (fkey, self.feature(fkey)), sizing,
                                                 (allowed, self.regime(rkey)), ukey)
            self._targets[key] = target
            self._rankings[key] = (order, count)
        return self._rankings[key]

    def ranking(self, key: tuple) -> tuple[np.ndarray, np.ndarray]:
        if key[0] == TREND:
            return self.trend_ranking(key)
        if key not in self._rankings:
            fkey, vol_window, ukey, rkey = key
            if rkey is not None:
                # SEMANTICS §5: where the regime does not hold nothing is eligible, so every
                # selection mode (quantile, top_n, threshold) gives k = 0: flat.
                order, count = self.ranking((fkey, vol_window, ukey, None))
                self._rankings[key] = (order, np.where(self.regime(rkey), count, 0).astype(np.int32))
            elif vol_window:
                order, count = self.ranking((fkey, None, ukey, None))
                self._rankings[key] = selection.restrict_ranking(order, count, self.vol(vol_window))
            else:
                self._rankings[key] = selection.rank_eligible(
                    self.feature(fkey), self.panel.close, np.empty((0, 0)), self.excluded(ukey[0]),
                    self.universe(ukey))
        return self._rankings[key]

    def prepare(self, configs: list[dict[str, Any]], jobs: int = 1) -> None:
        """Compute every feature and ranking the configurations need, ``jobs`` at a time.

        The kernels release the GIL, so threads share the panel without copies.
        Stages run in dependency order (features, then plain rankings, then the
        risk-parity rankings derived from them, then the regime-filtered ones),
        each stage in parallel.
        """
        keys = {ranking_key(p) for p in configs}
        trend_keys = {k for k in keys if k[0] == TREND}  # SEMANTICS §11: targets, after the features
        keys -= trend_keys
        vol = factors.get("volatility")
        features = {k[0] for k in keys} | {vol.cache_key({"window": k[1]}) for k in keys if k[1]}
        features |= {k[1] for k in trend_keys}
        plain = {(k[0], None, k[2], None) for k in keys}
        unfiltered = {(k[0], k[1], k[2], None) for k in keys}
        self.panel.log_returns  # noqa: B018  (computed once, before the threads read it)
        for ukey in {k[2] for k in keys}:
            self.universe(ukey)
        for rkey in {k[3] for k in keys}:
            self.regime(rkey)
        for stage, fn in ((features, self.feature), (plain, self.ranking), (unfiltered - plain, self.ranking),
                          (keys - unfiltered, self.ranking), (trend_keys, self.ranking)):
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
        if trend.is_trend(p["factor"]):  # SEMANTICS §11.8: targets read on rebalance days
            int_row[K.I_VOL] = -1
            int_row[K.I_MODE] = K.MODE_TARGET
            int_row[K.I_FEAT] = feats.setdefault(ranking_key(p), len(feats))
        elif factors.get(p["factor"]).long is None:
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
        int_row[K.I_FUNDING] = 1 if p["funding"] else 0  # SEMANTICS §8 funding switch
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
                    _stack([ws.target(k) if k[0] == TREND else ws.feature(k) for k in feats], (T, N), np.float64))


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
