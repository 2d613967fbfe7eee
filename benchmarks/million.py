"""A million configurations of the embedded data, end to end, and memory as the count grows.

    python benchmarks/million.py [--ten-million]   # print the figures
    (benchmarks/bench_sweep.py calls ``bench_million`` and puts them in the README)

The grid: 2 factors x rebalance_days 1..100 x 10 windows x 2 weightings x 2 holds x
5 buffers x 5 quantile counts x 5 fee levels = 1,000,000 configurations. The same
grid cut to 100,000 (rebalance_days 1..10) shows whether memory grows with the count.
Before timing, the streamed table is checked against one-off backtests of a sample of
its rows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import polars as pl

from measure import run_peak

ROOT = Path(__file__).resolve().parent.parent
EXCLUDE = '["USDT", "USDC", "BUSD", "DAI", "FRAX", "WBTC", "STETH", "AMPL"]'


def million_study(data: Path, name: str, n_rebalance: int = 100, ten: bool = False) -> str:
    """The million grid; ``n_rebalance`` cuts it (10: 100,000), ``ten`` widens it to 10,000,000
    (rebalance_days 1..125, 10 buffers, 10 values of q, 10 fee levels)."""
    if ten:
        return (million_study(data, name, 125)
                .replace("buffer = [0.0, 0.05, 0.1, 0.2, 0.3]",
                         "buffer = [0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4]")
                .replace("q = [3, 4, 5, 6, 8]", "q = [2, 3, 4, 5, 6, 7, 8, 9, 10, 12]")
                .replace("fee_bps = [0, 5, 10, 20, 30]", "fee_bps = [0, 2, 5, 7, 10, 15, 20, 25, 30, 40]"))
    return f"""[study]
name = "{name}"
data = "{data}"
[backtest]
slippage_bps = 5
exclude = {EXCLUDE}
[grid]
factor = ["volatility", "kurtosis"]
rebalance_days = {list(range(1, n_rebalance + 1))}
window = [10, 20, 30, 45, 60, 90, 120, 150, 180, 240]
weighting = ["equal", "risk_parity"]
hold = ["drift", "constant"]
buffer = [0.0, 0.05, 0.1, 0.2, 0.3]
q = [3, 4, 5, 6, 8]
fee_bps = [0, 5, 10, 20, 30]
"""


def check_rows(data: Path, out: Path, n: int = 12) -> str:
    """A seeded sample of the table's rows equals one-off ``sweep.backtest`` calls (to 1e-12)."""
    import sweep

    trials = pl.read_parquet(out / "trials.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    panel = sweep.load_panel(data)
    window = manifest["evaluation_window"]
    rows = np.random.default_rng(0).choice(trials.height, n, replace=False)
    params = manifest["parameters"]
    worst = 0.0
    for i in rows:
        row = trials.row(int(i), named=True)
        p = {k: (tuple(row[k]) if isinstance(row[k], list) else row[k]) for k in params}
        res = sweep.backtest(panel, start=window["start"], end=window["end"], **p)
        for m in ("sharpe", "cagr", "turnover", "max_drawdown"):
            a, b = res.metrics[m], row[m]
            if not (np.isnan(a) and np.isnan(b)):
                worst = max(worst, abs(a - b))
    if worst > 1e-12:
        raise SystemExit(f"the million-row table differs from one-off backtests by {worst:.2e}")
    return f"{n} sampled rows of the streamed table = one-off backtests to {worst:.1e}"


def bench_million(report, data: Path, tmp: Path, jobs: int, ten: bool = False) -> None:
    """``report(what, value, target)`` rows: 100,000 and 1,000,000 configurations end to end, and
    with ``ten`` 10,000,000 (about ten minutes more)."""
    sizes = [(10, "100,000"), (100, "1,000,000")] + ([(1250, "10,000,000")] if ten else [])
    for n_reb, label in sizes:
        study = tmp / f"million_{n_reb}.toml"
        study.write_text(million_study(data, f"million_{n_reb}", min(n_reb, 125), ten=n_reb == 1250))
        out = tmp / f"million_{n_reb}"
        wall, rss = run_peak(["run", str(study), "--out", str(out), "--force", "--quiet", "--jobs", str(jobs),
                              "--max-configs", "20000000"])
        if n_reb == 100:
            print(check_rows(data, out))
        summary = json.loads((out / "summary.json").read_text())
        pbo = summary["overfitting"]["pbo"]
        n = summary["n_configurations"]
        target = {10: "memory flat as the count grows", 100: "< 2 min, < 1 GB",
                  1250: "< 20 min in the same memory"}[n_reb]
        report(f"grid of {label} configs, embedded, end to end (`sweep run`, jobs={jobs})",
               f"{wall:.0f} s, {n / wall:,.0f}/s", target)
        report(f"  peak memory of that run ({pbo['n_splits_used']:,} of {pbo['n_combinations_total']:,} "
               f"CSCV splits)", f"{rss / 2**20:,.0f} MiB", "")
        if n_reb == 100:
            for what, args in (("show", ["show", str(out)]),
                               ("compare", ["compare", str(out), "--param", "rebalance_days"])):
                t, peak = run_peak(args)
                report(f"  `sweep {what}` of that table", f"{t:.1f} s, {peak / 2**20:,.0f} MiB", "seconds")
        (out / "trials.parquet").unlink()  # the next run needs the disk more than this table


if __name__ == "__main__":
    import tempfile

    def _print(what: str, value: str, target: str = "") -> None:
        print(f"{what:<72} {value:>18}   {target}", flush=True)

    with tempfile.TemporaryDirectory() as d:
        bench_million(_print, ROOT / "data" / "crypto_daily.parquet", Path(d), 2, ten="--ten-million" in sys.argv)
