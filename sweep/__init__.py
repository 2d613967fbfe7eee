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
kept stable.

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
from sweep.core.version import __version__  # noqa: E402

from kernels.metrics import METRICS  # noqa: E402

from sweep.engine.backtest import Result, backtest  # noqa: E402
from sweep.core.errors import SweepError  # noqa: E402
from sweep.data.panel import Panel, load_panel, panel_from_arrays, panel_from_frame  # noqa: E402
from sweep.engine.params import FACTORS, PARAMS as PARAMETERS  # noqa: E402
from sweep.run.summary import RunSummary  # noqa: E402
from sweep.study import Study, load_study, run_study  # noqa: E402  (registers the built-in kinds)
import sweep.book  # noqa: E402,F401  (registers the portfolio kind)
from sweep.data.synth import synth_panel  # noqa: E402
from sweep.factors.user import FactorPanel, factor  # noqa: E402  (a researcher's own factors)


def synth(n_symbols: int = 200, n_days: int = 3650, seed: int = 0) -> Panel:
    """A synthetic panel with funding (see ``synth_panel``), ready to backtest."""
    return panel_from_frame(synth_panel(n_symbols=n_symbols, n_days=n_days, seed=seed),
                            f"synth(n_symbols={n_symbols}, n_days={n_days}, seed={seed})")


__all__ = [
    "__version__", "FACTORS", "METRICS", "PARAMETERS", "FactorPanel", "Panel", "Result", "RunSummary", "Study",
    "SweepError", "backtest", "factor", "load_panel", "load_study", "panel_from_arrays", "panel_from_frame",
    "run_study", "synth", "synth_panel",
]
