"""A diagnostics results folder written by hand, exactly as the contract of issue 15 lays its
tables out (summary, ic, quantiles, books, autocorr + manifest.json), so ``sweep show`` and
``sweep report`` can be tested without running the kind, and on shapes a run rarely gives
(a configuration with no finite IC, a factor without a long side).

The numbers are made up but consistent with one another the way a run's are: summary.parquet's
IC statistics are computed here from ic.parquet's daily values (numpy, scipy's Student t for
the p-value), its spread is the top quantile's mean minus the bottom one's, its turnover the
quantile table's, its lag-1 autocorrelation the autocorr table's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import itertools
import json
import math
from pathlib import Path

import numpy as np
import polars as pl

LONG = {"volatility": "low", "momentum": "high", "size": "low", "days_from_high": "", "skewness": "low",
        "kurtosis": "high", "beta": "low", "mean_reversion": "low", "carry": "low"}
TABLES = ("summary.parquet", "ic.parquet", "quantiles.parquet", "books.parquet", "autocorr.parquet")


def ensure_kind() -> None:
    """Register the diagnostics kind by name when ``sweep.study`` does not yet (the registration
    line is engineer A's), so ``sweep show`` and ``sweep report`` find its sections."""
    from sweep.study import names, register
    from sweep.study.kind import LazyKind

    if "diagnostics" not in names():
        register(LazyKind("diagnostics", "sweep.study.diagnostics", TABLES, {"grid", "diagnostics"},
                          show="sweep.cli.kind_diagnostics:show", report="sweep.report.diagnostics:section"))


def _cid(p: dict) -> str:
    return hashlib.sha256(repr(sorted(p.items())).encode()).hexdigest()[:16]


def write_tables(folder: str | Path, *, factors=("volatility", "momentum"), windows=(5, 10),
                 horizons=(1, 5, 10, 20), q: int = 5, lags: int = 20, n_days: int = 200,
                 start: dt.date = dt.date(2021, 3, 1), seed: int = 0, name: str = "diag_tables",
                 dead: bool = False) -> Path:
    """Write a diagnostics results folder of ``factors`` x ``windows`` configurations; ``dead``
    adds one configuration (factor ``days_from_high``) whose IC is never finite."""
    ensure_kind()
    from scipy import stats

    from sweep.results.schema import SCHEMA_VERSION

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    dates = [start + dt.timedelta(days=i) for i in range(n_days)]
    configs = [{"factor": f, "window": w, "q": q} for f, w in itertools.product(factors, windows)]
    if dead:
        configs.append({"factor": "days_from_high", "window": windows[0], "q": q})
    summ, ic_rows, qrows, brows, arows = [], [], [], [], []
    for k, p in enumerate(configs):
        cid = _cid(p)
        long = LONG.get(p["factor"], "")
        sign = -1.0 if long == "low" else 1.0
        strength = 0.01 + 0.06 * rng.random()
        persist = 0.9 + 0.09 * rng.random()
        ac = persist ** np.arange(1, lags + 1) + rng.normal(0, 0.005, lags)
        arows.append(pl.DataFrame({"config_id": cid, "lag": np.arange(1, lags + 1, dtype=np.int32), "autocorr": ac}))
        turnover = np.clip(0.05 + 0.4 * (1 - persist) * 10 * rng.random(q), 0.0, 1.0)
        nav_r = sign * 0.0004 * (np.arange(1, q + 1) - (q + 1) / 2) + rng.normal(0, 0.02, (n_days - 1, q))
        nav = np.vstack([np.ones(q), np.cumprod(1 + nav_r, axis=0)])
        for j in range(q):
            brows.append(pl.DataFrame({"config_id": cid, "date": dates, "quantile": np.int32(j + 1), "nav": nav[:, j]}))
        for h in horizons:
            mu = sign * strength / math.sqrt(h) ** 0.5
            ic = np.clip(mu + rng.normal(0, 0.2, n_days), -1, 1)
            ic[n_days - h:] = np.nan  # the forward return runs past the window's end
            ic[rng.random(n_days) < 0.03] = np.nan
            if dead and p["factor"] == "days_from_high":
                ic[:] = np.nan
            ic_rows.append(pl.DataFrame({"config_id": cid, "date": dates, "horizon": np.int32(h), "ic": ic}))
            v = ic[np.isfinite(ic)]
            n = v.size
            m = float(v.mean()) if n else math.nan
            s = float(v.std(ddof=1)) if n > 1 else math.nan
            t = m / s * math.sqrt(n) if n > 1 else math.nan
            means = sign * 0.001 * h * (np.arange(1, q + 1) - (q + 1) / 2) * strength * 20 + rng.normal(0, 0.001, q)
            stderr = 0.002 * math.sqrt(h) * (0.5 + rng.random(q))
            qrows.append(pl.DataFrame({"config_id": cid, "horizon": np.int32(h),
                                       "quantile": np.arange(1, q + 1, dtype=np.int32), "mean": means,
                                       "stderr": stderr, "n_days": np.full(q, n_days - h, dtype=np.int64),
                                       "turnover": turnover}))
            summ.append({"config_id": cid, "factor": p["factor"], "window": p["window"], "q": q, "horizon": h,
                         "ic_mean": m, "ic_std": s, "ic_ir": m / s if n > 1 else math.nan, "ic_t": t,
                         "ic_p": float(2 * stats.t.sf(abs(t), n - 1)) if n > 1 else math.nan,
                         "ic_positive": float((v > 0).mean()) if n else math.nan, "n_days": n,
                         "spread_mean": float(means[-1] - means[0]),
                         "spread_stderr": float(math.hypot(stderr[-1], stderr[0])), "long_side": long,
                         "rank_autocorr_1": float(ac[0]), "turnover_top": float(turnover[-1]),
                         "turnover_bottom": float(turnover[0])})
    v = pl.lit(SCHEMA_VERSION, dtype=pl.Int32).alias("schema_version")
    summary = pl.DataFrame(summ, schema_overrides={"horizon": pl.Int32, "n_days": pl.Int64, "window": pl.Int64,
                                                   "q": pl.Int64}).with_columns(v)
    summary.write_parquet(folder / "summary.parquet")
    pl.concat(ic_rows).with_columns(pl.col("date").cast(pl.Date), v).write_parquet(folder / "ic.parquet")
    pl.concat(qrows).with_columns(v).write_parquet(folder / "quantiles.parquet")
    pl.concat(brows).with_columns(pl.col("date").cast(pl.Date), v).write_parquet(folder / "books.parquet")
    pl.concat(arows).with_columns(v).write_parquet(folder / "autocorr.parquet")
    grid_factors = sorted({p["factor"] for p in configs})
    text = (f'[study]\nname = "{name}"\nkind = "diagnostics"\ndata = "panel.parquet"\n\n[backtest]\nq = {q}\n\n'
            f"[grid]\nfactor = {json.dumps(grid_factors)}\nwindow = {list(windows)}\n\n"
            f"[diagnostics]\nhorizons = {list(horizons)}\nlags = {lags}\n")
    manifest = {
        "schema_version": SCHEMA_VERSION, "fingerprint": "0" * 16,
        "study": {"name": name, "kind": "diagnostics", "objective": "sharpe", "path": str(folder / f"{name}.toml"),
                  "fingerprint": "0" * 16, "text": text},
        "data": {"path": str(folder / "panel.parquet"), "fingerprint": "0" * 16, "days": n_days + 60,
                 "symbols": 30, "first_date": str(start - dt.timedelta(days=60)), "last_date": str(dates[-1]),
                 "columns": ["close"]},
        "evaluation_window": {"start": str(dates[0]), "end": str(dates[-1]), "days": n_days},
        "configurations": len(configs), "configurations_run": len(configs), "configurations_resumed": 0,
        "wall_time_s": 0.1, "compute_time_s": 0.1, "versions": {"sweep": "test"},
        "created": "2024-01-01T00:00:00+00:00", "factors": grid_factors,
        "parameters": ["factor", "window", "q"],
        "diagnostics": {"horizons": list(horizons), "lags": lags},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


STUDY = """
[study]
name = "diag_real"
kind = "diagnostics"
data = "{data}"

[backtest]
q = 4

[grid]
factor = ["volatility", "momentum"]
window = [5, 10]

[diagnostics]
horizons = [1, 5]
lags = 5
"""


def kind_runs() -> bool:
    return importlib.util.find_spec("sweep.study.diagnostics") is not None


def make_folder(base: Path) -> Path:
    """A real run on a small synthetic panel when the kind runs, else hand-written tables."""
    ensure_kind()
    if kind_runs():
        import sweep

        data = base / "panel.parquet"
        sweep.synth_panel(n_symbols=16, n_days=220, seed=4, start=dt.date(2020, 1, 1)).write_parquet(data)
        study = base / "diag.toml"
        study.write_text(STUDY.format(data=data))
        out = base / "results" / "diag"
        sweep.run_study(sweep.load_study(study), out=out, progress=False, jobs=1)
        return out
    return write_tables(base / "results" / "diag", horizons=(1, 5), lags=5, q=4)


def by_abs_ir(summary: pl.DataFrame) -> pl.DataFrame:
    """The ranking the page must follow, computed here: |ic_ir| descending, NaN last."""
    return (summary.with_row_index("row").with_columns(pl.col("ic_ir").fill_nan(None).abs().alias("a"))
            .sort(["a", "row"], descending=[True, False], nulls_last=True))
