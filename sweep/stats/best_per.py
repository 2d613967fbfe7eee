"""``sweep show --best-per COLUMN``: each group's best configuration, deflated for the
search, and a bootstrap interval of how much better it is than its runner-up.

Ruined books (SEMANTICS §8) are never the best nor the runner-up; a group
whose books are all ruined is reported as such. The runner-up is the best
configuration of the group with a different ``rebalance_days`` (when the
study sweeps it; otherwise the second best), so the interval answers "is 3
days really better than the next best period?". The interval comes from a
stationary bootstrap of the paired daily returns of the two configurations
(same resampled days for both), so their correlation is kept.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kernels.metrics import DAYS_PER_YEAR

from sweep.core.errors import SweepError
from sweep.engine.params import PARAMS, resolve
from sweep.metrics import lower_is_better

BOOT_SAMPLES = 1000
BOOT_BLOCK_DAYS = 20  # mean block length: keeps a few weeks of autocorrelation
BOOT_SEED = 0


def stationary_indices(n: int, samples: int, block: float, rng: np.random.Generator) -> np.ndarray:
    """Politis-Romano stationary bootstrap: ``(samples, n)`` day indices; each day starts a
    new block with probability ``1 / block``, else follows the previous day (wrapping)."""
    starts = rng.integers(0, n, size=(samples, n))
    new_block = rng.random((samples, n)) < 1.0 / block
    new_block[:, 0] = True
    idx = np.empty((samples, n), dtype=np.int64)
    for d in range(n):  # a loop over days, vectorised over samples
        idx[:, d] = np.where(new_block[:, d], starts[:, d], (idx[:, d - 1] + 1) % n if d else 0)
    return idx


def _sharpe_rows(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, x.mean(axis=1) / sd * math.sqrt(DAYS_PER_YEAR), np.nan)


def _moments(r: np.ndarray) -> tuple[float, float]:
    """Skewness and RAW kurtosis (population moments, as in the DSR paper)."""
    d = r - r.mean()
    m2 = (d * d).mean()
    return float((d ** 3).mean() / m2 ** 1.5), float((d ** 4).mean() / m2 ** 2)


def best_per(folder: Path, column: str, data: str | None = None, by: str | None = None) -> pl.DataFrame:
    """One row per value of ``column``: the best configuration not ruined (by ``by``, default
    the study's objective), its Sharpe, the DSR within its group, and the 90 % bootstrap
    interval of its Sharpe minus the runner-up's (also chosen among books not ruined).

    ``n_ruined`` counts the group's ruined books with a finite ``by`` (set aside); a group
    whose books are all ruined keeps its row with ``config_id`` and the statistics null.
    """
    from sweep.engine.workspace import Evaluator
    from sweep.stats.overfit import deflated_sharpe_ratio
    from sweep.data.panel import load_panel
    from sweep.results.schema import read_manifest

    manifest = read_manifest(folder)
    trials = pl.read_parquet(folder / "trials.parquet").unique("config_id", keep="first", maintain_order=True)
    if column not in trials.columns:
        raise SweepError(f"--best-per {column}: the study has no parameter column '{column}' "
                         f"(columns: {', '.join(c for c in manifest.get('parameters', []))})")
    objective = by or manifest["study"]["objective"]
    params = [c for c in manifest.get("parameters", []) if c in PARAMS]
    swept = [k for k in params if k != column and trials[k].n_unique() > 1]
    panel = load_panel(data or manifest["data"]["path"])
    if panel.fingerprint != manifest["data"]["fingerprint"]:
        raise SweepError(f"{panel.source}: the data changed since the study ran (fingerprint "
                         f"{panel.fingerprint} != {manifest['data']['fingerprint']}); rerun the study")
    window = manifest["evaluation_window"]
    s = panel.day_index(window["start"], "start")
    e = panel.day_index(window["end"], "end")
    evaluator = Evaluator(panel)
    rng = np.random.default_rng(BOOT_SEED)
    idx = stationary_indices(e - s + 1, BOOT_SAMPLES, BOOT_BLOCK_DAYS, rng)
    ruined = pl.col("ruined") == 1.0 if "ruined" in trials.columns else pl.lit(False)
    rows: list[dict[str, Any]] = []
    for (value,), group in trials.group_by(column, maintain_order=True):
        group = group.filter(pl.col(objective).cast(pl.Float64).is_finite())
        if group.height == 0:
            continue
        alive = group.filter(~ruined).sort(objective, descending=not lower_is_better(objective),
                                           maintain_order=True)
        row: dict[str, Any] = {column: value, **{k: None for k in swept}, "config_id": None, "sharpe": None,
                               "dsr": None, "n_configs": group.height, "n_ruined": group.height - alive.height}
        if alive.height == 0:  # every book of the group was ruined: nothing to choose
            rows.append(row)
            continue
        best = alive.row(0, named=True)
        others = alive.filter(pl.col("rebalance_days") != best["rebalance_days"]) \
            if "rebalance_days" in params and group["rebalance_days"].n_unique() > 1 else alive.slice(1)
        runner = others.row(0, named=True) if others.height else None
        configs = [resolve({k: r[k] for k in params}) for r in ([best, runner] if runner else [best])]
        _, rets = evaluator.run(configs, s, e, returns=True)
        # Every book tried counts in the deflation, ruined or not: the search made those tries.
        sr_day = group["sharpe"].to_numpy() / math.sqrt(DAYS_PER_YEAR)
        skew, kurt = _moments(rets[0])
        dsr = deflated_sharpe_ratio(best["sharpe"] / math.sqrt(DAYS_PER_YEAR), group.height,
                                    float(np.nanvar(sr_day, ddof=1)) if group.height > 1 else 0.0,
                                    e - s + 1, skew, kurt)
        row.update({k: best[k] for k in swept})
        row.update(config_id=best["config_id"], sharpe=best["sharpe"], dsr=dsr)
        if objective != "sharpe":
            row[objective] = best[objective]
        if runner:
            diff = _sharpe_rows(rets[0][idx]) - _sharpe_rows(rets[1][idx])
            row.update(runner_up_rebalance_days=runner.get("rebalance_days"), runner_up_sharpe=runner["sharpe"],
                       diff_q05=float(np.nanquantile(diff, 0.05)), diff_q95=float(np.nanquantile(diff, 0.95)))
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)
