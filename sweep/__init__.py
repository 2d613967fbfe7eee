"""sweep: a Polars + Numba parameter-sweep engine for cross-sectional crypto factor research.

The public API is small:

* ``load_panel(path, funding=None) -> Panel``: a long table as dense ``(T, N)`` arrays.
* ``backtest(panel, **params) -> Result``: one configuration, its metrics and daily returns.
* ``load_study(path) -> Study`` and ``run_study(study, ...) -> RunSummary``: a grid study.
* ``synth(...) -> Panel`` and ``synth_panel(...) -> polars.DataFrame``: a seeded synthetic panel.
* ``PARAMETERS``, ``FACTORS``, ``METRICS``: what the engine accepts and reports.

Everything else lives in private modules and may change.
"""

__version__ = "0.1.0"

from kernels.metrics import METRICS  # noqa: E402

from sweep.engine.backtest import Result, backtest  # noqa: E402
from sweep.core.errors import SweepError  # noqa: E402
from sweep.data.panel import Panel, load_panel, panel_from_arrays, panel_from_frame  # noqa: E402
from sweep.engine.params import FACTORS, PARAMS as PARAMETERS  # noqa: E402
from sweep.study.grid import RunSummary, run_study  # noqa: E402
from sweep.study.file import Study, load_study  # noqa: E402
from sweep.data.synth import synth_panel  # noqa: E402


def synth(n_symbols: int = 200, n_days: int = 3650, seed: int = 0) -> Panel:
    """A synthetic panel with funding (see ``synth_panel``), ready to backtest."""
    return panel_from_frame(synth_panel(n_symbols=n_symbols, n_days=n_days, seed=seed),
                            f"synth(n_symbols={n_symbols}, n_days={n_days}, seed={seed})")


__all__ = [
    "FACTORS", "METRICS", "PARAMETERS", "Panel", "Result", "RunSummary", "Study", "SweepError",
    "backtest", "load_panel", "load_study", "panel_from_arrays", "panel_from_frame", "run_study", "synth", "synth_panel",
]
