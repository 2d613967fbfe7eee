"""``manifest.json`` of a run of configurations (grid; walk-forward and Monte Carlo add their
own keys): the study, the data, the window, the counts, the times and the versions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sweep.results.meta import manifest_head, versions
from sweep.run.plan import Plan, representatives
from sweep.run.summary import RunSummary


def run_manifest(pl_: Plan, fp_: str, summary: RunSummary) -> dict[str, Any]:
    return {
        **manifest_head(pl_.study, pl_.panel, fp_, summary.start, summary.end, pl_.days),
        "configurations": summary.n_configs,
        "configurations_run": summary.n_run,
        "configurations_resumed": summary.n_resumed,
        "wall_time_s": round(summary.wall_time, 4),
        "compute_time_s": round(summary.compute_time, 4),
        "configs_per_second": round(summary.configs_per_second, 1) if summary.n_run else None,
        "versions": versions(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "factors": sorted({p["factor"] for p in representatives(pl_.configs)}),
        "parameters": pl_.study.columns,
    }
