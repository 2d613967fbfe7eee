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
from kernels import rolling, selection
from kernels.returns import equal_weight_market

from ._errors import SweepError
from ._panel import Panel
from ._params import FACTORS


def feature_key(p: dict[str, Any]) -> tuple:
    """What a configuration's feature panel depends on, and nothing else."""
    f = FACTORS[p["factor"]]
    if f.feature == "size":
        return ("size",)
    if f.feature == "beta":
        market = p["market_symbol"] if p["market"] == "symbol" else None
        return ("beta", p["window"], p["market"], market)
    return (f.feature, p["window"])


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
        f = FACTORS[p["factor"]]
        if f.needs:
            self.panel.field(f.needs, f"the {p['factor']} factor ({where})")
        if p["top_by_market_cap"] > 0:
            self.panel.field("market_cap", f"top_by_market_cap ({where})")
        if f.feature == "beta" and p["market"] == "symbol" and p["market_symbol"] not in self.panel.symbols:
            raise SweepError(f"{where}: market_symbol = '{p['market_symbol']}' is not a symbol of "
                             f"{self.panel.source}")

    def feature(self, key: tuple) -> np.ndarray:
        if key not in self._features:
            self._features[key] = self._compute(key)
        return self._features[key]

    def _compute(self, key: tuple) -> np.ndarray:
        panel = self.panel
        name = key[0]
        if name == "size":
            return panel.field("market_cap", "the size factor")
        if name == "carry":
            return rolling.rolling_mean(panel.field("funding_rate", "the carry factor"), key[1])
        if name == "days_from_high":
            return rolling.days_from_high(panel.close, key[1])
        l = panel.log_returns
        if name == "volatility":
            return rolling.rolling_std(l, key[1])
        if name == "skewness":
            return rolling.rolling_skew(l, key[1])
        if name == "kurtosis":
            return rolling.rolling_kurt(l, key[1])
        if name == "momentum":
            return rolling.rolling_sum(l, key[1])
        if name == "beta":
            _, w, market, symbol = key
            if market == "symbol":
                m = np.ascontiguousarray(l[:, panel.symbols.index(symbol)])
            else:
                m = equal_weight_market(panel.simple_returns)
            return rolling.rolling_beta(l, m, w)
        raise AssertionError(name)

    def vol(self, window: int) -> np.ndarray:
        return self.feature(("volatility", window))

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
        features = {k[0] for k in keys} | {("volatility", k[1]) for k in keys if k[1]}
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
        if FACTORS[p["factor"]].long is None:
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
    order_stack = np.empty((len(ranks), T, N), dtype=np.int32)
    count_stack = np.empty((len(ranks), T), dtype=np.int32)
    for key, j in ranks.items():
        order_stack[j], count_stack[j] = ws.ranking(key)
    # Risk parity reads 1 / volatility: dividing once per study, not per target.
    ivol_stack = np.empty((len(vols), T, N))
    for window, j in vols.items():
        vol = ws.vol(window)
        np.divide(1.0, vol, out=ivol_stack[j], where=vol > 0.0)
        ivol_stack[j][~(vol > 0.0)] = np.nan
    feature_stack = np.empty((len(feats), T, N))
    for key, j in feats.items():
        feature_stack[j] = ws.feature(key)
    return Compiled(ip, fp, order_stack, count_stack, ivol_stack, feature_stack)


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
