"""A study's plan: its data loaded, every configuration checked against it, and the
evaluation window fixed, before any backtest runs (``sweep validate`` stops here)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sweep.core.paths import locate
from sweep.data.panel import Panel, load_panel
from sweep.engine.backtest import evaluation_window
from sweep.engine.params import warmup_days
from sweep.engine.workspace import Workspace
from sweep.results.schema import SCHEMA_VERSION

N_BLOCKS = 16  # blocks of the evaluation window for the PBO's cross-validation
DEFAULT_DATA = Path("data") / "crypto_daily.parquet"


def data_path(study: Any, data: str | Path | None) -> Path:
    """The data a study reads: ``--data``, else ``[study] data``, else the embedded set;
    a relative path found as ``sweep.core.paths`` documents."""
    if data is not None:
        return Path(data)
    return locate(study.data or DEFAULT_DATA, study=study.path)


def funding_path(study: Any, funding: str | Path | None) -> Path | None:
    """The funding table: ``--funding``, else ``[study] funding``, else none."""
    if funding is not None:
        return Path(funding)
    return locate(study.funding, study=study.path) if study.funding else None


@dataclass
class Plan:
    """Everything about a study run that is known before any backtest runs.

    ``study`` is a ``sweep.study.file.Study`` (read by attribute: this layer sits below it).
    """

    study: Any
    panel: Panel
    # A grid's ``sweep.engine.space.ConfigSpace`` (generated on demand), or a list.
    configs: Sequence[dict[str, Any]]
    s: int
    e: int

    @property
    def start(self) -> dt.date:
        return self.panel.dates[self.s].item()

    @property
    def end(self) -> dt.date:
        return self.panel.dates[self.e].item()

    @property
    def days(self) -> int:
        return self.e - self.s + 1

    def fingerprint(self, *extra: Any) -> str:
        """What the results depend on: the schema, the study's meaning, the data, the window
        and ``extra`` (a kind's own options)."""
        key = json.dumps([SCHEMA_VERSION, self.study.fingerprint(), self.panel.fingerprint,
                          self.s, self.e, *extra], default=str)
        return hashlib.sha256(key.encode()).hexdigest()[:16]


def _start_numba() -> None:
    # Numba's first call initialises its compiler target (~0.4 s, mostly Python);
    # Polars reads the data meanwhile without the GIL, so the two overlap.
    from kernels.returns import simple_returns

    simple_returns(np.ones((2, 1)))


def representatives(configs: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    """Configurations that between them need every column, symbol, feature and warm-up that
    ``configs`` need: a grid's structural combinations (``ConfigSpace.reps``), else all of them."""
    return getattr(configs, "reps", configs)


def plan(study: Any, data: str | Path | None = None, funding: str | Path | None = None,
         configs: list[dict[str, Any]] | None = None) -> Plan:
    """Load the data and check every configuration against it (``sweep validate``).

    ``configs`` replaces the grid's configurations (a search passes the corners
    of its space: they bound the warm-up and need the same columns).
    """
    with ThreadPoolExecutor(1) as pool:
        warming = pool.submit(_start_numba)
        panel = load_panel(data_path(study, data), funding_path(study, funding))
        configs = study.space() if configs is None else configs
        warming.result()
    ws = Workspace(panel)
    seen = set()
    for p in representatives(configs):
        needs = (p["factor"], p["top_by_market_cap"] > 0, p["market"], p["market_symbol"],
                 p["min_volume"] > 0, p["regime"] != "all", p["funding"])
        if needs not in seen:
            seen.add(needs)
            ws.check(p, str(study.path))
    warmup = max(warmup_days(p) for p in representatives(configs))
    s, e = evaluation_window(panel, warmup, study.start, study.end, f"{study.path}: [study]")
    return Plan(study, panel, configs, s, e)
