"""The built-in factors of SEMANTICS §4, registered on import of ``sweep.factors``."""

from __future__ import annotations

from typing import Any

import numpy as np

from kernels import rolling
from kernels.returns import equal_weight_market

from sweep.core.errors import SweepError
from sweep.data.panel import Panel
from sweep.factors.registry import Factor, register


def volatility(panel: Panel, window: int) -> np.ndarray:
    return rolling.rolling_std(panel.log_returns, window)


def skewness(panel: Panel, window: int) -> np.ndarray:
    return rolling.rolling_skew(panel.log_returns, window)


def kurtosis(panel: Panel, window: int) -> np.ndarray:
    return rolling.rolling_kurt(panel.log_returns, window)


def momentum(panel: Panel, window: int) -> np.ndarray:
    return rolling.rolling_sum(panel.log_returns, window)


def carry(panel: Panel, window: int) -> np.ndarray:
    return rolling.rolling_mean(panel.field("funding_rate", "the carry factor"), window)


def size(panel: Panel) -> np.ndarray:
    return panel.field("market_cap", "the size factor")


def days_from_high(panel: Panel, window: int) -> np.ndarray:
    return rolling.days_from_high(panel.close, window)


def beta(panel: Panel, window: int, market: str, market_symbol: str | None = None) -> np.ndarray:
    l = panel.log_returns
    if market == "symbol":
        m = np.ascontiguousarray(l[:, panel.symbols.index(market_symbol)])
    else:
        m = equal_weight_market(panel.simple_returns)
    return rolling.rolling_beta(l, m, window)


def _beta_reads(p: dict[str, Any]) -> tuple[str, ...]:
    # The market symbol matters only when the market is one symbol.
    return ("window", "market", "market_symbol") if p["market"] == "symbol" else ("window", "market")


def _beta_check(panel: Panel, p: dict[str, Any], where: str) -> None:
    if p["market"] == "symbol" and p["market_symbol"] not in panel.symbols:
        raise SweepError(f"{where}: market_symbol = '{p['market_symbol']}' is not a symbol of {panel.source}")


for _f in (
    Factor("volatility", volatility, window=30, long="low", min_window=2),
    Factor("kurtosis", kurtosis, window=30, long="high", min_window=4),
    Factor("skewness", skewness, window=30, long="low", min_window=3),
    Factor("beta", beta, window=90, long="low", min_window=2, params=("window", "market", "market_symbol"),
           reads=_beta_reads, check=_beta_check),
    Factor("carry", carry, window=1, long="low", needs=("funding_rate",)),
    Factor("size", size, window=None, long="low", needs=("market_cap",)),
    Factor("momentum", momentum, window=30, long="high"),
    Factor("mean_reversion", momentum, window=3, long="low", key="momentum"),
    Factor("days_from_high", days_from_high, window=200, long=None),
):
    register(_f)
