"""Which resolved parameters change a configuration's backtest: what a live configuration keeps."""

from __future__ import annotations

from typing import Any

from sweep import factors


def live_params(p: dict[str, Any]) -> dict[str, Any]:
    """The resolved parameters that change this configuration's backtest (``weighting`` as
    ``weighting_method``); e.g. ``q`` only with quantile selection, ``vol_window`` only with
    risk parity, ``window`` not for size."""
    return {("weighting_method" if k == "weighting" else k): (list(p[k]) if k == "exclude" else p[k])
            for k in relevant(p)}


def relevant(p: dict[str, Any]) -> list[str]:
    """Names (sweep spelling) of the resolved parameters that matter for ``p``, in display order."""
    f = factors.get(p["factor"])
    long_short = f.long is not None
    reads = f.args(p)  # the parameters the factor's feature reads (window, market, ...)
    keep = {
        "rebalance_days": True,
        "weighting": True,
        "window": "window" in reads,
        "long": long_short,
        "selection": long_short,
        "q": long_short and p["selection"] == "quantile",
        "top_n": long_short and p["selection"] == "top_n",
        "vol_window": p["weighting"] == "risk_parity",
        "hold": True,
        "buffer": True,
        "long_allocation": True,
        "short_allocation": True,
        "fee_bps": True,
        "slippage_bps": True,
        "exclude": True,
        "top_by_market_cap": True,
        "phase": True,
        "max_days": not long_short,
        "market": "market" in reads,
        "market_symbol": "market_symbol" in reads,
    }
    return [k for k, v in keep.items() if v]
