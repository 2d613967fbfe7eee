"""What a run reports back: counts, times and the evaluation window."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path


@dataclass
class RunSummary:
    out: Path
    n_configs: int
    n_run: int  # configurations (or backtests) computed by this invocation
    n_resumed: int  # found done on disk
    wall_time: float
    compute_time: float
    start: dt.date
    end: dt.date

    @property
    def configs_per_second(self) -> float:
        return self.n_run / self.compute_time if self.compute_time > 0 else float("nan")
