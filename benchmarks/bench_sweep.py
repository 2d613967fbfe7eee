"""Speed and memory of the engine, measured side by side in one run.

    python benchmarks/bench_sweep.py                 # print the figures
    python benchmarks/bench_sweep.py --write-readme  # also replace the README's figures
    python benchmarks/bench_sweep.py --write-readme --ten-million  # and run ten million configurations

Agreement is checked before anything is timed: the fast path against the
independent reference of the tests (when ``tests/reference.py`` is present)
and the runner's table against one-off backtests. Every figure is a median of
repeated runs; the machine, the versions and the date are printed with them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import sweep  # noqa: E402
from sweep.engine.workspace import Workspace, compile_configs, kernel_panels  # noqa: E402
from kernels.metrics import N_SERIES  # noqa: E402
from kernels.portfolio import simulate  # noqa: E402

from bench_pbo import bench_pbo  # noqa: E402  (benchmarks/, the script's own folder)
from measure import replace_readme_block, run_peak  # noqa: E402
from million import bench_million  # noqa: E402
from peers import bench_peers  # noqa: E402

EXCLUDE = '["USDT", "USDC", "BUSD", "DAI", "FRAX", "WBTC", "STETH", "AMPL"]'
WINDOWS = [10, 20, 30, 45, 60, 90, 120, 180]


def sweep_study(data: Path, name: str, n_rebalance: int = 60) -> str:
    """The rebalance sweep: 2 factors (volatility, kurtosis) x rebalance_days 1..60 x 8 windows
    x 2 weightings x 2 holds = 3,840 configurations, with costs and stablecoins excluded."""
    return f"""[study]
name = "{name}"
data = "{data}"
[backtest]
fee_bps = 10
slippage_bps = 5
exclude = {EXCLUDE}
[grid]
factor = ["volatility", "kurtosis"]
rebalance_days = {list(range(1, n_rebalance + 1))}
window = {WINDOWS}
weighting = ["equal", "risk_parity"]
hold = ["drift", "constant"]
"""


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def check_agreement() -> str:
    from conftest import assert_close  # noqa: F401  (tests/ on the path)
    from reference import reference_backtest

    panel = sweep.synth(n_symbols=20, n_days=260, seed=7)
    checked = 0
    for factor in ("volatility", "kurtosis"):
        for weighting, hold in (("equal", "drift"), ("risk_parity", "constant")):
            res = sweep.backtest(panel, start=panel.dates[40], factor=factor, window=12, vol_window=10,
                                 weighting=weighting, hold=hold, rebalance_days=3, fee_bps=10)
            p = dict(res.params, exclude=[], top_by_market_cap=None)
            ref = reference_backtest(panel.dates, list(panel.symbols), panel.close, panel.fields["market_cap"],
                                     panel.fields["funding_rate"], p, 40, panel.shape[0] - 1)
            for m, v in ref["metrics"].items():
                assert_close(res.metrics[m], v, f"{m} of {factor}/{weighting}/{hold}")
            checked += 1
    return f"fast path = independent reference to 1e-9 on {checked} configurations"


def run_inside(study_text: str, jobs: int, repeat: int) -> tuple[float, int]:
    """Median configurations/s of the runner's compute phase (data loaded, features built)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.toml"
        path.write_text(study_text)
        study = sweep.load_study(path)
        rates = []
        for _ in range(repeat):
            s = sweep.run_study(study, out=Path(tmp) / "out", jobs=jobs, progress=False, force=True)
            rates.append(s.configs_per_second)
        return statistics.median(rates), s.n_configs


def run_cli(args: list[str], env: dict | None = None) -> float:
    """Wall time of one `sweep` process, start to exit."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sweep", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=ROOT)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"sweep {' '.join(args)} failed: {proc.stderr.strip()}")
    return wall


def _time_python(code: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return time.perf_counter() - t


def peak_rss_of(args: list[str]) -> int:
    """Peak resident memory of a fresh process running `sweep` (benchmarks/measure.py)."""
    return run_peak(args)[1]


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba

    return (f"{dt.date.today()}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numba {numba.__version__}, polars {pl.__version__}, numpy {np.__version__}, sweep {sweep.__version__}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-readme", action="store_true", help="replace the figures in README.md")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--ten-million", action="store_true", help="also run 10,000,000 configurations (~10 min)")
    args = ap.parse_args()
    rows: list[tuple[str, str, str]] = []

    def report(what: str, value: str, target: str = "") -> None:
        rows.append((what, value, target))
        print(f"{what:<62} {value:>14}   {target}", flush=True)

    print(machine())
    print(check_agreement())
    embedded = ROOT / "data" / "crypto_daily.parquet"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synth_path = tmp / "synth_200x3650.parquet"
        sweep.synth_panel(n_symbols=200, n_days=3650, seed=0).write_parquet(synth_path)

        # One backtest: the full API call (features included) and the recursion alone.
        panel = sweep.load_panel(embedded)
        kw = dict(factor="volatility", window=30, rebalance_days=7, fee_bps=10, weighting="risk_parity")
        sweep.backtest(panel, **kw)
        t_api = median_time(lambda: sweep.backtest(panel, **kw), 7)
        p = sweep.backtest(panel, **kw).params
        comp = compile_configs(Workspace(panel), [p])
        q, f = kernel_panels(panel)
        s, e = 30, panel.shape[0] - 1
        series = np.empty((N_SERIES, e - s + 1))
        ip, fp = comp.ip[0], comp.fp[0]
        ranking = (comp.order_stack[0], comp.count_stack[0], comp.ivol_stack[0], np.empty((0, 0)))
        call = lambda: simulate((q, f), ranking, ip, fp, s, e, series, np.empty((0, 0)))  # noqa: E731
        call()
        t_kernel = median_time(call, 51)
        report("one backtest, embedded data, sweep.backtest() (features incl.)", f"{t_api * 1e3:.1f} ms")
        report("one backtest, embedded data, recursion over cached ranking", f"{t_kernel * 1e3:.3f} ms")

        for label, data in (("embedded 76 x 2534", embedded), ("synthetic 200 x 3650", synth_path)):
            for jobs in sorted({1, args.jobs}):
                rate, n = run_inside(sweep_study(data, "bench"), jobs, args.repeat)
                target = ">= 10,000/s" if "embedded" in label else ">= 1,000/s"
                report(f"sweep of {n} configs, {label}, inside the runner, jobs={jobs}", f"{rate:,.0f}/s",
                       target if jobs == args.jobs else "")

        # The fixed part of every run: interpreter, imports, Numba's first call.
        start = [_time_python("import numpy as np, sweep\nfrom kernels.returns import simple_returns\n"
                              "simple_returns(np.ones((2, 1)))") for _ in range(args.repeat)]
        report("start-up alone: interpreter, imports, Numba's first call", f"{statistics.median(start):.2f} s")

        # End to end, process start included (warm Numba cache); the 1,920-configuration half of
        # the same sweep (one factor) gives the cost of each further configuration.
        walls = {}
        for name, text in (("half", sweep_study(embedded, "half").replace('["volatility", "kurtosis"]',
                                                                          '["volatility"]')),
                           ("bench", sweep_study(embedded, "bench"))):
            study = tmp / f"{name}.toml"
            study.write_text(text)
            out = tmp / name
            run_cli(["run", str(study), "--out", str(out), "--force", "--quiet"])
            walls[name] = (sweep.load_study(study).n_configs, statistics.median(
                run_cli(["run", str(study), "--out", str(out), "--force", "--quiet", "--jobs", str(args.jobs)])
                for _ in range(max(7, args.repeat))))  # a difference of medians: more runs than elsewhere
        (n_half, w_half), (n, w_full) = walls["half"], walls["bench"]
        report(f"sweep of {n} configs, embedded, end to end (`sweep run`)", f"{n / w_full:,.0f}/s", ">= 2,500/s")
        report(f"  each further config ({n} minus {n_half} configs, end to end)",
               f"{(w_full - w_half) / (n - n_half) * 1e3:.3f} ms", "<= 0.1 ms")

        one = tmp / "one.toml"
        one.write_text(f'[study]\nname = "one"\ndata = "{embedded}"\n[backtest]\nfactor = "volatility"\n'
                       'window = 30\nrebalance_days = 7\nfee_bps = 10\n')
        run_cli(["run", str(one), "--out", str(tmp / "one"), "--force", "--quiet"])
        fixed = statistics.median(run_cli(["run", str(one), "--out", str(tmp / "one"), "--force", "--quiet"])
                                  for _ in range(max(5, args.repeat)))
        report("fixed cost: `sweep run` of one configuration, warm cache", f"{fixed:.2f} s", "< 0.6 s")
        helps = statistics.median(run_cli(["--help"]) for _ in range(max(5, args.repeat)))
        report("`sweep --help`", f"{helps:.2f} s", "< 0.3 s")

        # Memory of a 10,000-configuration sweep on 200 x 3650.
        big = tmp / "big.toml"
        big.write_text(sweep_study(synth_path, "big", n_rebalance=125)
                       .replace('factor = ["volatility", "kurtosis"]', 'factor = ["volatility"]')
                       .replace('hold = ["drift", "constant"]', 'buffer = [0.0, 0.1, 0.2, 0.3, 0.5]'))
        n_big = sweep.load_study(big).n_configs
        rss = peak_rss_of(["run", str(big), "--out", str(tmp / "big"), "--force", "--quiet"])
        report(f"peak memory, {n_big:,} configs on synthetic 200 x 3650", f"{rss / 2**20:,.0f} MiB", "< 500 MB")
        wall_big = statistics.median(run_cli(["run", str(big), "--out", str(tmp / "big"), "--force", "--quiet",
                                              "--jobs", str(args.jobs)]) for _ in range(args.repeat))
        report(f"sweep of {n_big:,} configs, synthetic 200 x 3650, end to end", f"{n_big / wall_big:,.0f}/s",
               ">= 1,500/s")

        # The README's main job: first ever (empty Numba cache, compilation included) and warm.
        main_out = tmp / "main"
        first = run_cli(["run", "studies/volatility_rebalance.toml", "--out", str(main_out), "--quiet"],
                           env={"NUMBA_CACHE_DIR": str(tmp / "numba-cache")})
        report("`sweep run studies/volatility_rebalance.toml`, first ever", f"{first:.1f} s", "<= 20 s")
        warm = statistics.median(
            run_cli(["run", "studies/volatility_rebalance.toml", "--out", str(main_out), "--force", "--quiet"])
            for _ in range(args.repeat))
        report("`sweep run studies/volatility_rebalance.toml`, warm", f"{warm:.2f} s", "<= 3 s")

        bench_search_and_robustness(report, embedded, tmp, args.jobs)
        bench_compare(report, embedded, tmp, args.jobs, args.repeat)
        bench_pbo(report)
        bench_peers(report, embedded, tmp, args.jobs, repeat=args.repeat)
        bench_million(report, embedded, tmp, args.jobs, ten=args.ten_million)

    if args.write_readme:
        write_readme(rows, " --ten-million" if args.ten_million else "")


def bench_search_and_robustness(report, embedded: Path, tmp: Path, jobs: int) -> None:
    """The block bootstrap and Optuna's cost per trial (PBO: benchmarks/bench_pbo.py)."""
    from sweep.engine.workspace import Evaluator

    mc = tmp / "mc.toml"
    mc.write_text(sweep_study(embedded, "mc", n_rebalance=5)
                  .replace('factor = ["volatility", "kurtosis"]', 'factor = ["volatility"]')
                  .replace("rebalance_days = [1, 2, 3, 4, 5]", "rebalance_days = [1, 3, 7, 14, 30]")
                  .replace(f"window = {WINDOWS}", "window = [30, 60, 90]")
                  .replace('hold = ["drift", "constant"]', "")
                  .replace('[study]', '[study]\nkind = "monte_carlo"')
                  + "[monte_carlo]\nmethod = \"block_bootstrap\"\nblock_days = 20\nn_samples = 1000\nseed = 0\n")
    t0 = time.perf_counter()
    s = sweep.run_study(sweep.load_study(mc), out=tmp / "mc", jobs=jobs, progress=False, force=True)
    report(f"block bootstrap, 1,000 samples x {s.n_configs // 1000} configs, embedded, jobs={jobs}",
           f"{time.perf_counter() - t0:.1f} s", "<= 60 s")

    opt = tmp / "optuna.toml"
    opt.write_text((ROOT / "studies" / "volatility_optuna.toml").read_text()
                   .replace('data = "data/crypto_daily.parquet"', f'data = "{embedded}"'))
    study = sweep.load_study(opt)
    s = sweep.run_study(study, out=tmp / "optuna", jobs=1, progress=False, force=True)
    per_trial = s.compute_time / s.n_configs
    trials = pl.read_parquet(tmp / "optuna" / "trials.parquet")
    panel = sweep.load_panel(embedded)
    start = panel.day_index(s.start, "start")
    params = [c for c in trials.columns if c in sweep.PARAMETERS]
    configs = [sweep.engine.params.resolve({k: (tuple(v) if isinstance(v, list) else v) for k, v in r.items()})
               for r in trials.select(params).head(50).iter_rows(named=True)]
    ev = Evaluator(panel)
    ev.run(configs, start, panel.shape[0] - 1)  # features and rankings cached, as in a long search
    one = median_time(lambda: [ev.run([c], start, panel.shape[0] - 1) for c in configs], 3) / len(configs)
    report(f"Optuna TPE trial, journal storage included ({s.n_configs} trials, jobs=1)",
           f"{per_trial * 1e3:.1f} ms")
    report("  of which the backtest (features cached)", f"{one * 1e3:.1f} ms",
           "overhead below the backtest's own time")


def bench_compare(report, embedded: Path, tmp: Path, jobs: int, repeat: int) -> None:
    """`sweep compare` on rebalance_days 1..30 x every phase (465 books): reruns, tranches, bootstrap."""
    from sweep.stats.compare import compare, tranche_slice

    study = tmp / "phases.toml"
    study.write_text(sweep_study(embedded, "phases", n_rebalance=30)
                     .replace('factor = ["volatility", "kurtosis"]', 'factor = ["volatility"]')
                     .replace(f"window = {WINDOWS}", "window = [30]")
                     .replace('weighting = ["equal", "risk_parity"]', 'phase = "all"')
                     .replace('hold = ["drift", "constant"]', ""))
    out = tmp / "phases"
    s = sweep.run_study(sweep.load_study(study), out=out, jobs=jobs, progress=False, force=True)
    # Agreement first: a tranche NAV is the mean of the phase books' NAVs from one-off backtests.
    tr = tranche_slice(out, "rebalance_days").tranches[6]  # 7 days, 7 phases
    panel = sweep.load_panel(embedded)
    navs = [np.cumprod(1 + sweep.backtest(panel, start=s.start, end=s.end, **{**tr.params, "phase": p})
                       .returns["ret"].to_numpy()) for p in range(tr.value)]
    err = float(np.max(np.abs(tr.nav - np.mean(navs, axis=0))))
    if err > 1e-12:
        raise SystemExit(f"compare's tranche NAV differs from the mean of the phase NAVs by {err:.2e}")
    print(f"tranche NAV = mean of {tr.value} one-off phase NAVs to {err:.1e}")
    t = median_time(lambda: compare(out, "rebalance_days"), repeat)
    report(f"`compare` on {s.n_configs} books (30 periods x every phase), embedded, "
           f"{len(tr.returns):,} days", f"{t:.2f} s", "seconds")


def write_readme(rows: list[tuple[str, str, str]], options: str = "") -> None:
    table = ["| measurement | figure | target |", "| --- | ---: | --- |"]
    table += [f"| {w} | {v} | {t} |" for w, v, t in rows]
    block = ("<!-- bench:start -->\n"
             f"Measured by `python benchmarks/bench_sweep.py --write-readme{options}` on {machine()}:\n\n"
             + "\n".join(table) + "\n<!-- bench:end -->")
    replace_readme_block("bench", block)


if __name__ == "__main__":
    main()
