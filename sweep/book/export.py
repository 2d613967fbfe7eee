"""``sweep export``: the studies' chosen configurations as a live trading configuration (the
format is in ``sweep.book.live``'s docstring)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np

from sweep.core.version import __version__
from sweep.book.combine import judge_legs
from sweep.book.relevant import live_params
from sweep.book.series import rerun
from sweep.book.sources import Choice, load_data, select
from sweep.book.weights import check_method, equal_weights, static_weights

def backtest_weights(choices: list[Choice], sources, start, end, method: str, data=None, funding=None) -> np.ndarray:
    """The strategy weights ``sweep portfolio --weights method`` gives (static, on the window)."""
    check_method(method)
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


