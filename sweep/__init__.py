r"""sweep: a Polars + Numba parameter-sweep engine for cross-sectional crypto factor research.

The public API is small:

* ``load_panel(path, funding=None) -> Panel``: a long table as dense ``(T, N)`` arrays.
* ``backtest(panel, **params) -> Result``: one configuration, its metrics and daily returns.
* ``load_study(path) -> Study`` and ``run_study(study, ...) -> RunSummary``: a study of any
  kind (grid, optuna, walk_forward, monte_carlo, portfolio), its tables written to a folder.
* ``synth(...) -> Panel`` and ``synth_panel(...) -> polars.DataFrame``: a seeded synthetic panel.
* ``PARAMETERS``, ``FACTORS``, ``METRICS``: what the engine accepts and reports.

The folders below ``sweep`` (one per concept: ``data``, ``engine``, ``study``,
``results``, ``run``, ``stats``, ``book``, ``report``, ``cli``, ...) are the
implementation; their public names may be used, but only the names above are
kept stable. Each name is imported on first use (``import sweep`` itself loads neither
Polars nor Numba), so a command pays only for what it uses.

One backtest:

>>> import sweep
>>> panel = sweep.synth(n_symbols=12, n_days=200, seed=1)
>>> res = sweep.backtest(panel, factor="momentum", window=10, rebalance_days=5)
>>> res.returns.height  # days 10 .. 199: the 10-day window is complete on day 10
190
>>> res.metrics["ruined"], res.metrics["n_rebalances"]  # 10, 15, ..., 195
(0.0, 38)

A grid study, written to a folder and read back:

>>> import tempfile, pathlib, polars as pl
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> sweep.synth_panel(n_symbols=12, n_days=200, seed=1).write_parquet(tmp / "panel.parquet")
>>> _ = (tmp / "study.toml").write_text(
...     '[study]\nname = "demo"\ndata = "panel.parquet"\n'
...     '[backtest]\nfactor = "volatility"\n[grid]\nrebalance_days = [1, 7]\nwindow = [10, 20]\n')
>>> summary = sweep.run_study(sweep.load_study(tmp / "study.toml"), out=tmp / "out", progress=False)
>>> trials = pl.read_parquet(tmp / "out" / "trials.parquet")
>>> trials.height, "sharpe" in trials.columns, "ruined" in trials.columns
(4, True, True)
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from sweep.core.version import __version__
import sweep.book  # noqa: E402,F401  (registers the portfolio kind, and through sweep.study the others, by name)

if TYPE_CHECKING:
    from sweep.data.panel import Panel

# Public name -> (module, name there): imported on first use (PEP 562).
_LAZY = {
    "METRICS": ("kernels.metrics", "METRICS"),
    "Result": ("sweep.engine.backtest", "Result"),
    "backtest": ("sweep.engine.backtest", "backtest"),
    "SweepError": ("sweep.core.errors", "SweepError"),
    "Panel": ("sweep.data.panel", "Panel"),
    "load_panel": ("sweep.data.panel", "load_panel"),
    "panel_from_arrays": ("sweep.data.panel", "panel_from_arrays"),
    "panel_from_frame": ("sweep.data.panel", "panel_from_frame"),
    "FACTORS": ("sweep.engine.params", "FACTORS"),
    "PARAMETERS": ("sweep.engine.params", "PARAMS"),
    "RunSummary": ("sweep.run.summary", "RunSummary"),
    "Study": ("sweep.study.file", "Study"),
    "load_study": ("sweep.study.file", "load_study"),
    "run_study": ("sweep.study.kind", "run_study"),
    "synth_panel": ("sweep.data.synth", "synth_panel"),
    "FactorPanel": ("sweep.factors.user", "FactorPanel"),
    "factor": ("sweep.factors.user", "factor"),
}


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'sweep' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def synth(n_symbols: int = 200, n_days: int = 3650, seed: int = 0) -> Panel:
    """A synthetic panel with funding (see ``synth_panel``), ready to backtest."""
    from sweep.data.panel import panel_from_frame
    from sweep.data.synth import synth_panel

    return panel_from_frame(synth_panel(n_symbols=n_symbols, n_days=n_days, seed=seed),
                            f"synth(n_symbols={n_symbols}, n_days={n_days}, seed={seed})")


__all__ = [
    "__version__", "FACTORS", "METRICS", "PARAMETERS", "FactorPanel", "Panel", "Result", "RunSummary", "Study",
    "SweepError", "backtest", "factor", "load_panel", "load_study", "panel_from_arrays", "panel_from_frame",
    "run_study", "synth", "synth_panel",
]
