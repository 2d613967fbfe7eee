"""The factor diagnostics grid (studies/all_factors_diagnostics.toml: 9 factors x 5 windows x
horizons 1, 5, 10, 20 on the embedded data): first checks one configuration's daily IC and
quantile mean returns against a pandas computation from the same factor panel and closes, then
times ``sweep run`` of the study as a whole process (median of ``--repeat``) and prints it.

    python benchmarks/bench_diagnostics.py [--repeat 3] [--write-readme]

``--write-readme`` replaces the ``<!-- diagnostics:start --> ... <!-- diagnostics:end -->``
block of README.md with the figures.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from measure import replace_readme_block  # noqa: E402

STUDY = ROOT / "studies" / "all_factors_diagnostics.toml"
CHECK = {"factor": "volatility", "window": 40}  # the configuration checked against pandas


def run_once(out: Path) -> float:
    """Seconds of ``python -m sweep run STUDY --out OUT --force`` as a whole process."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sweep", "run", str(STUDY), "--out", str(out), "--force"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def check_against_pandas(out: Path) -> str:
    """One configuration's IC and quantile means, every horizon, against pandas; raises on a difference."""
    import pandas as pd
    import polars as pl

    import sweep
    from sweep.engine.params import config_id
    from sweep.engine.workspace import Workspace
    from sweep.run.plan import plan
    from sweep.study import diagnostics as diag

    study = sweep.load_study(STUDY)
    pl_ = plan(study)
    s, e, panel = pl_.s, pl_.e, pl_.panel
    p = next(c for c in diag.unique_configs(pl_.configs) if all(c[k] == v for k, v in CHECK.items()))
    cid = config_id(p)
    x = pd.DataFrame(diag.factor_panel(Workspace(panel), p))
    close = pd.DataFrame(panel.close)
    q = int(p["q"])
    labels = pd.DataFrame(np.nan, index=x.index, columns=x.columns)
    for t in range(s, e + 1):
        row = x.iloc[t].dropna()
        labels.loc[t, row.index] = pd.qcut(row, q, labels=False) + 1
    ic_table = pl.read_parquet(out / "ic.parquet").filter(pl.col("config_id") == cid)
    qt = pl.read_parquet(out / "quantiles.parquet").filter(pl.col("config_id") == cid)
    worst = 0.0
    for h in study.tables["diagnostics"]["horizons"]:
        fwd = close.shift(-h) / close - 1
        fwd.iloc[e - h + 1:] = np.nan
        both = x.notna() & fwd.notna()
        rx, ry = x.where(both).rank(axis=1), fwd.where(both).rank(axis=1)  # Spearman: Pearson of ranks
        ic = rx.iloc[s:e + 1].corrwith(ry.iloc[s:e + 1], axis=1).to_numpy()
        ours = ic_table.filter(pl.col("horizon") == h).sort("date")["ic"].to_numpy()
        np.testing.assert_allclose(ours, ic, rtol=1e-9, atol=1e-12, err_msg=f"IC, horizon {h}")
        long = pd.DataFrame({"t": np.repeat(np.arange(len(x)), x.shape[1]), "k": labels.to_numpy().ravel(),
                             "r": fwd.to_numpy().ravel()}).dropna()
        daily = long[(long.t >= s) & (long.t <= e)].groupby(["t", "k"]).r.mean()
        by_q = daily.groupby(level="k").agg(["mean", "std", "count"])
        mine = qt.filter(pl.col("horizon") == h).sort("quantile")
        np.testing.assert_allclose(mine["mean"].to_numpy(), by_q["mean"].to_numpy(), rtol=1e-9, atol=1e-14,
                                   err_msg=f"quantile means, horizon {h}")
        np.testing.assert_allclose(mine["stderr"].to_numpy(), (by_q["std"] / np.sqrt(by_q["count"])).to_numpy(),
                                   rtol=1e-9, atol=1e-14, err_msg=f"quantile standard errors, horizon {h}")
        worst = max(worst, float(np.nanmax(np.abs(ours - ic))))
    return f"{p['factor']}({p['window']}): IC and quantile means equal pandas' (largest IC difference {worst:.1e})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write-readme", action="store_true")
    args = ap.parse_args()
    from bench_sweep import machine

    import polars as pl

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        first = run_once(out)  # also fills Numba's cache: not counted
        print(f"first run (compiles or loads the kernels): {first:.2f} s", flush=True)
        print(check_against_pandas(out), flush=True)
        times = [run_once(out) for _ in range(args.repeat)]
        summary = pl.read_parquet(out / "summary.parquet")
        n_configs = summary["config_id"].n_unique()
        n_days = pl.read_parquet(out / "ic.parquet")["date"].n_unique()
    wall = statistics.median(times)
    print(f"sweep run {STUDY.relative_to(ROOT)}: {wall:.2f} s (median of {args.repeat}: "
          f"{', '.join(f'{t:.2f}' for t in times)})")
    block = ("<!-- diagnostics:start -->\n"
             f"Measured by `python benchmarks/bench_diagnostics.py --write-readme` on {machine()}, median of "
             f"{args.repeat}: `sweep run studies/all_factors_diagnostics.toml` ({n_configs} configurations = 9 "
             f"factors x 5 windows, size having none; 4 horizons; {n_days:,} days x 76 symbols; every table "
             f"written) takes **{wall:.2f} s** as a whole process, start-up and data loading included. The "
             "script first checks one configuration's daily IC and quantile mean returns against pandas.\n"
             "<!-- diagnostics:end -->")
    print(block)
    if args.write_readme:
        replace_readme_block("diagnostics", block)


if __name__ == "__main__":
    main()
