"""Peers side by side: sweep, vectorbt, a pandas-vectorized backtest and a plain loop.

    python benchmarks/peers.py [--jobs 2]   # standalone; bench_sweep.py calls bench_peers()

All four run the benchmark's volatility sweep of the embedded data (1,920
configurations: rebalance_days 1..60 x 8 windows x 2 weightings x 2 holds,
fees 10 bp + slippage 5 bp, stablecoins excluded; the volatility half of
``bench_sweep.sweep_study``). sweep runs all of it; the slower peers run an
evenly spaced subset, timed per configuration. Before anything is timed every
peer's Sharpe ratio is checked against the one sweep wrote for the same
configuration.

The peers need the ``bench`` extra (``pip install -e '.[bench]'``); without
it ``bench_peers`` prints one line and returns. The ``sweep`` package never
imports this module.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FEE_BPS, SLIPPAGE_BPS = 10, 5
EXCLUDE = ("USDT", "USDC", "BUSD", "DAI", "FRAX", "WBTC", "STETH", "AMPL")
WINDOWS = (10, 20, 30, 45, 60, 90, 120, 180)
REBALANCE = tuple(range(1, 61))
WEIGHTINGS = ("equal", "risk_parity")
HOLDS = ("drift", "constant")
VOL_WINDOW, Q, ALLOCATION = 30, 5, 0.5  # the volatility factor's defaults (README, SEMANTICS 4-6)
ANN = math.sqrt(365)
# vectorbt drops an order under 1e-12 units (its abs_tol): a large NAV keeps the small trades of
# a shrunken book above it, and returns do not depend on the scale.
INIT_CASH = 1e12


def study_text(data: Path, name: str = "peers") -> str:
    """The benchmark's volatility sweep; its axes in the order the runner writes its rows."""
    exclude = ", ".join(f'"{s}"' for s in EXCLUDE)
    return f"""[study]
name = "{name}"
data = "{data}"
[backtest]
factor = "volatility"
fee_bps = {FEE_BPS}
slippage_bps = {SLIPPAGE_BPS}
exclude = [{exclude}]
[grid]
rebalance_days = {list(REBALANCE)}
window = {list(WINDOWS)}
weighting = {list(WEIGHTINGS)}
hold = {list(HOLDS)}
"""


# ---------------------------------------------------------------------------
# The pandas-vectorized backtest (SEMANTICS 2, 3, 5-9; the volatility factor)
# ---------------------------------------------------------------------------


def load_close(data: Path):
    """Close (and funding when present) as (T, N) frames: every calendar day, symbols sorted (SEMANTICS 1)."""
    import pandas as pd

    long = pd.read_parquet(data, columns=None)
    long["date"] = pd.to_datetime(long["date"])
    days = pd.date_range(long["date"].min(), long["date"].max(), freq="D")
    wide = {c: long.pivot(index="date", columns="symbol", values=c).reindex(days).sort_index(axis=1)
            for c in ("close", "funding_rate") if c in long.columns}
    return wide["close"], wide.get("funding_rate")


class Features:
    """What a pandas user computes once per data set: returns and one rolling std per window."""

    def __init__(self, close, funding=None, windows=WINDOWS):
        import numpy as np

        self.close = close
        l = np.log(close / close.shift(1))  # SEMANTICS 2: NaN unless both closes are finite
        self.c = close.ffill()  # the close carried forward over gaps
        self.q = (self.c / self.c.shift(1) - 1).fillna(0.0)  # a gap earns 0, the return day the whole move
        self.funding = None if funding is None else funding.fillna(0.0)
        # min_periods = w: NaN unless all w returns are finite (SEMANTICS 3)
        self.vol = {w: l.rolling(w, min_periods=w).std(ddof=1) for w in {*windows, VOL_WINDOW}}
        self.tradable = ~close.columns.isin(EXCLUDE)


def pandas_targets(feat: Features, window: int, weighting: str, rows):
    """Target weights w* on the rebalance days ``rows`` (SEMANTICS 5, 6): long the lowest quintile."""
    f = feat.vol[window].iloc[rows]
    ok = f.notna() & feat.close.iloc[rows].notna() & feat.tradable
    if weighting == "risk_parity":
        vol = feat.vol[VOL_WINDOW].iloc[rows]
        ok &= vol > 0  # NaN compares False
    rank = f.where(ok).rank(axis=1, method="first")  # ties by symbol order
    n = ok.sum(axis=1)
    k = n // Q
    longs, shorts = rank.le(k, axis=0), rank.gt(n - k, axis=0)
    raw = 1.0 / vol if weighting == "risk_parity" else ok.astype(float)
    lw, sw = raw.where(longs), raw.where(shorts)
    return (ALLOCATION * lw.div(lw.sum(axis=1), axis=0)).fillna(0.0) \
        - (ALLOCATION * sw.div(sw.sum(axis=1), axis=0)).fillna(0.0)


def pandas_returns(feat: Features, target, s: int, e: int, k: int, hold: str):
    """Daily R and pre-cost R over [s, e] (SEMANTICS 7, 8; phase 0), ruin included.

    Drift is done in money per holding period: with the NAV at the last
    rebalance set to 1, holding i is worth ``w*_i * c_t / c_r`` and the cash
    ``1 - sum w*`` plus the funding received since, so 1 + P_t + F_t is the
    ratio of two consecutive period values, whatever the path before."""
    import numpy as np

    idx = feat.close.index[s:e + 1]
    reb = np.zeros(e - s + 1, dtype=bool)
    reb[::k] = True
    W = target.set_axis(idx[reb]).reindex(idx).ffill()  # weights after the close of t
    Wp = W.shift(1).fillna(0.0)  # weights that earn day t
    q = feat.q.iloc[s:e + 1]
    fund = None if feat.funding is None else feat.funding.iloc[s:e + 1]
    if hold == "constant":
        growth = 1.0 + (Wp * q).sum(axis=1)
        if fund is not None:
            growth -= (Wp * fund).sum(axis=1)
        tau = (W - Wp).abs().sum(axis=1)  # 0 off the rebalance days: W == Wp there
    else:
        c = feat.c.iloc[s:e + 1]
        base = c[reb].reindex(c.index).ffill().shift(1)  # close of the period's rebalance day
        g = c / base
        A = 1.0 - Wp.sum(axis=1) + (Wp * g).sum(axis=1)
        if fund is not None:
            seg = np.cumsum(np.r_[True, reb[:-1]])
            flow = -(Wp * (c.shift(1) / base) * fund).sum(axis=1)
            A += flow.groupby(seg).cumsum()
        first = np.r_[True, reb[:-1]]  # first day of a holding period: the previous value is 1
        A_prev = A.shift(1).where(~first, 1.0)
        growth = A / A_prev
        drifted = (Wp * g).div(A, axis=0).fillna(0.0)
        tau = (W - drifted).abs().sum(axis=1).where(reb, 0.0)
    cost = tau * (FEE_BPS + SLIPPAGE_BPS) / 10_000
    R = _ruin(growth * (1.0 - cost) - 1.0, (growth <= 0) | (cost >= 1))
    R_pre = _ruin(growth - 1.0, growth <= 0)
    return R, R_pre


def _ruin(R, bad):
    """SEMANTICS 8: the first day the NAV reaches zero has R = -1, every later day 0."""
    hit = bad.to_numpy().nonzero()[0]
    if len(hit) == 0:
        return R
    R = R.copy()
    R.iloc[hit[0]] = -1.0
    R.iloc[hit[0] + 1:] = 0.0
    return R


def sharpe(R) -> float:
    sd = R.std(ddof=1)
    return math.nan if not sd > 0 else float(R.mean() / sd * ANN)


def pandas_backtest(feat: Features, cfg: dict, s: int, e: int) -> tuple[float, float]:
    """(sharpe, sharpe_pre_cost) of one configuration, features cached."""
    rows = list(range(s, e + 1, cfg["rebalance_days"]))
    target = pandas_targets(feat, cfg["window"], cfg["weighting"], rows)
    R, R_pre = pandas_returns(feat, target, s, e, cfg["rebalance_days"], cfg["hold"])
    return sharpe(R), sharpe(R_pre)


# ---------------------------------------------------------------------------
# vectorbt, given the same target weights
# ---------------------------------------------------------------------------


def vbt_inputs(feat: Features, cfg: dict, s: int, e: int):
    """Target percents (NaN: no order) and fees per cell for ``Portfolio.from_orders``.

    Drift: an order on rebalance days only. Constant hold: an order every day
    back to the last target, free off the rebalance days (SEMANTICS 8's reset
    "at no cost"); vectorbt's fee then counts that day's drift too, which
    SEMANTICS does not (see the agreement line)."""
    import numpy as np

    rows = list(range(s, e + 1, cfg["rebalance_days"]))
    target = pandas_targets(feat, cfg["window"], cfg["weighting"], rows).to_numpy()
    size = np.full((e - s + 1, feat.close.shape[1]), np.nan)
    size[::cfg["rebalance_days"]] = target
    fees = np.zeros(e - s + 1)
    fees[::cfg["rebalance_days"]] = (FEE_BPS + SLIPPAGE_BPS) / 10_000
    if cfg["hold"] == "constant":
        idx = np.maximum.accumulate(np.where(np.isnan(size[:, 0]), 0, np.arange(len(size))))
        size = size[idx]
    return size, fees[:, None]


def vbt_close(feat: Features, s: int, e: int):
    """The carried-forward close: a gap earns 0 and a delisted holding is sold at its last price,
    as in SEMANTICS 2 (before its first close a symbol has no position: its first close backfilled)."""
    return feat.c.bfill().iloc[s:e + 1]


def vbt_backtest(close, size, fees, engine: str) -> float:
    import vectorbt as vbt

    pf = vbt.Portfolio.from_orders(close, size, size_type="targetpercent", fees=fees, min_size=0.0,
                                   init_cash=INIT_CASH, group_by=True, cash_sharing=True, call_seq="auto",
                                   freq="1D", engine=engine)
    return float(pf.sharpe_ratio())


def fee_on_trade_sharpe(feat: Features, size, fees, s: int, e: int) -> float:
    """vectorbt's cost convention in SEMANTICS 8's recursion, to show it is the only difference.

    vectorbt orders every target against the pre-cost NAV V(1 + P) and pays the fee out of cash,
    so after an order the positions are w* of the pre-cost NAV: w = w* / (1 - C) of the net one
    (SEMANTICS: w = w*). Same ``size`` and ``fees`` as given to vectorbt; no ruin, no funding."""
    import numpy as np

    q = feat.q.to_numpy()[s:e + 1]
    w = np.zeros(q.shape[1])
    R = np.empty(len(q))
    for j in range(len(q)):
        growth = 1.0 + w @ q[j]
        w = w * (1.0 + q[j]) / growth
        C = 0.0
        if not np.isnan(size[j, 0]):
            C = fees[j, 0] * np.abs(size[j] - w).sum()
            w = size[j] / (1.0 - C)
        R[j] = growth * (1.0 - C) - 1.0
    return float(R.mean() / R.std(ddof=1) * ANN)


def vbt_batch(close, inputs: list, engine: str):
    """vectorbt's own way to sweep: every configuration a group of columns of one simulation."""
    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    k, n = len(inputs), close.shape[1]
    wide = pd.DataFrame(np.tile(close.to_numpy(), (1, k)), index=close.index)
    size = np.hstack([sz for sz, _ in inputs])
    fees = np.hstack([np.broadcast_to(f, (len(close), n)) for _, f in inputs])
    pf = vbt.Portfolio.from_orders(wide, size, size_type="targetpercent", fees=fees, min_size=0.0,
                                   init_cash=INIT_CASH, group_by=np.repeat(np.arange(k), n), cash_sharing=True,
                                   call_seq="auto", freq="1D", engine=engine)
    return pf.sharpe_ratio().to_numpy()


# ---------------------------------------------------------------------------
# The plain loop: the tests' slow reference (tests/reference.py), one configuration per call
# ---------------------------------------------------------------------------


def loop_backtest(feat: Features, cfg: dict, s: int, e: int) -> tuple[float, float]:
    """SEMANTICS day by day and symbol by symbol, features included: the plain loop a researcher writes."""
    sys.path.insert(0, str(ROOT / "tests"))
    from reference import reference_backtest

    p = dict(factor="volatility", window=cfg["window"], vol_window=VOL_WINDOW, weighting=cfg["weighting"],
             selection="quantile", q=Q, long="low", long_allocation=ALLOCATION, short_allocation=ALLOCATION,
             rebalance_days=cfg["rebalance_days"], phase=0, hold=cfg["hold"], buffer=0.0, fee_bps=FEE_BPS,
             slippage_bps=SLIPPAGE_BPS, exclude=list(EXCLUDE), top_by_market_cap=None)
    fund = None if feat.funding is None else feat.funding.to_numpy()
    m = reference_backtest(feat.close.index, list(feat.close.columns), feat.close.to_numpy(), None, fund,
                           p, s, e)["metrics"]
    return m["sharpe"], m["sharpe_pre_cost"]


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------


def _rel(a: float, b: float) -> float:
    if math.isnan(a) and math.isnan(b):
        return 0.0
    return abs(a - b) / max(abs(b), 1e-12)


def _check(name: str, got: dict, want: dict, tol: float, what=("sharpe", "sharpe_pre_cost")) -> float:
    worst = 0.0
    for key, vals in got.items():
        for m, v in zip(what, vals):
            err = _rel(v, want[key][m])
            worst = max(worst, err)
            if not err <= tol:
                raise SystemExit(f"{name}: {m} of {key} is {v!r}, sweep has {want[key][m]!r} "
                                 f"(relative {err:.1e} > {tol:.0e})")
    return worst


def _sweep_run(cmd: list[str]) -> float:
    """Wall time of one `sweep run` process, start to exit."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[1:])} failed: {proc.stderr.strip()}")
    return wall


def _per_config(fn, items, repeat: int) -> float:
    """Seconds per configuration over the items (their mean: configurations differ in cost), median of runs."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        for it in items:
            fn(it)
        runs.append((time.perf_counter() - t) / len(items))
    return statistics.median(runs)


def bench_peers(report, data: Path, tmp: Path, jobs: int, repeat: int = 3) -> None:
    """Agreement of every peer's Sharpe with sweep's, then seconds per configuration side by side."""
    try:
        import pandas as pd
        import vectorbt as vbt
    except ImportError:
        print("peers skipped: install '.[bench]'")
        return
    import numba
    import numpy as np
    import polars as pl
    import sweep

    try:
        import vectorbt_rust  # noqa: F401  (vectorbt's optional compiled engine)
        engines = ["numba", "rust"]
    except ImportError:
        engines = ["numba"]
    print(f"peers: vectorbt {vbt.__version__} (engines: {', '.join(engines)}), pandas {pd.__version__}, "
          f"numba {numba.__version__}, numpy {np.__version__}, polars {pl.__version__}, sweep {sweep.__version__}")

    # sweep's table first (the run also warms the Numba cache); sweep is timed after the checks.
    study = tmp / "peers.toml"
    study.write_text(study_text(data))
    out = tmp / "peers"
    cmd = [sys.executable, "-m", "sweep", "run", str(study), "--out", str(out), "--force", "--quiet",
           "--jobs", str(jobs)]
    _sweep_run(cmd)
    trials = pl.read_parquet(out / "trials.parquet")
    n = trials.height
    keys = ("rebalance_days", "window", "weighting", "hold")
    want = {tuple(r[k] for k in keys): r for r in trials.iter_rows(named=True)}

    def cfg(key):
        return dict(zip(keys, key))

    close, funding = load_close(data)
    panel = sweep.load_panel(data)
    if list(close.columns) != list(panel.symbols) or close.shape != panel.shape:
        raise SystemExit("the peers' panel is not sweep's")
    start = json.loads((out / "manifest.json").read_text())["evaluation_window"]["start"]
    s, e = int(close.index.get_loc(pd.Timestamp(start))), close.shape[0] - 1
    t0 = time.perf_counter()
    feat = Features(close, funding)
    t_feat = time.perf_counter() - t0

    # Agreement before any timing, on configurations across every axis, ruined books included.
    probe = [(1, 10, "equal", "drift"), (7, 30, "risk_parity", "drift"), (13, 90, "equal", "constant"),
             (30, 180, "risk_parity", "constant"), (60, 45, "equal", "drift"), (4, 120, "risk_parity", "drift")]
    probe += [k for k in want if want[k]["ruined"] == 1.0][:2]
    n_ruined = sum(want[k]["ruined"] == 1.0 for k in probe)
    worst = _check("pandas", {k: pandas_backtest(feat, cfg(k), s, e) for k in probe}, want, 1e-9)
    print(f"pandas-vectorized = sweep: sharpe and sharpe_pre_cost of {len(probe)} configurations "
          f"({n_ruined} ruined) to {worst:.1e} relative (tolerance 1e-9)")
    has_loop = (ROOT / "tests" / "reference.py").exists()  # absent outside a checkout
    if has_loop:
        loop_probe = probe[1:3]
        worst = _check("plain loop", {k: loop_backtest(feat, cfg(k), s, e) for k in loop_probe}, want, 1e-9)
        print(f"plain loop (tests/reference.py) = sweep: {len(loop_probe)} configurations to {worst:.1e} "
              f"relative (tolerance 1e-9)")

    # vectorbt gets the pandas peer's target weights (checked above) and the carried-forward close,
    # so the full panel, gaps included, is compared. A ruined book trades on in vectorbt with a
    # negative NAV: only books sweep did not ruin are compared.
    close_v = vbt_close(feat, s, e)
    vbt_probe = [k for k in probe + list(want)[5::157] if want[k]["ruined"] == 0.0]
    conv = {}
    for k in vbt_probe:
        size, fees = vbt_inputs(feat, cfg(k), s, e)
        conv[k] = fee_on_trade_sharpe(feat, size, fees, s, e)
    for engine in engines:
        pre, net = {}, {}
        for k in vbt_probe:
            size, fees = vbt_inputs(feat, cfg(k), s, e)
            pre[k] = (vbt_backtest(close_v, size, 0.0 * fees, engine),)
            net[k] = (vbt_backtest(close_v, size, fees, engine),)
        w_pre = _check(f"vectorbt/{engine} pre-cost", pre, want, 1e-12, what=("sharpe_pre_cost",))
        w_conv = _check(f"vectorbt/{engine} net, its cost convention", net, {k: {"sharpe": v} for k, v in
                                                                             conv.items()}, 1e-12, what=("sharpe",))
        gap = max(abs(v[0] - want[k]["sharpe"]) for k, v in net.items())
        print(f"vectorbt ({engine} engine), {len(vbt_probe)} books sweep did not ruin: sharpe_pre_cost = sweep's "
              f"to {w_pre:.1e} relative (tolerance 1e-12); net sharpe = SEMANTICS 8 with vectorbt's cost "
              f"convention to {w_conv:.1e} (tolerance 1e-12), {gap:.1e} from sweep's (annualised)")
    print("  vectorbt's cost convention: an order targets w* of the pre-cost NAV and its fee is paid from "
          "cash, so the positions stay w* of the pre-cost NAV (SEMANTICS 8: C comes off the NAV and w = w* "
          "of the net NAV); with hold = constant the rebalance-day fee also counts the day's drift, which "
          "SEMANTICS resets for free. fees = 15 bp stand for fee_bps + slippage_bps (no slippage on price)")

    # Timing. sweep: one process per run, start to exit (warm cache), and its compute phase in the runner.
    walls = [_sweep_run(cmd) for _ in range(repeat)]
    loaded = sweep.load_study(study)
    inside = statistics.median(
        sweep.run_study(loaded, out=tmp / "peers-inside", jobs=jobs, progress=False, force=True).compute_time
        for _ in range(repeat))
    e2e, ins = statistics.median(walls) / n, inside / n
    # The peers, one configuration per call, on evenly spaced subsets of the sweep.
    every = list(want)
    sub_pd, sub_vbt, sub_loop = every[::20], every[::80], every[::320]  # 96, 24, 6 configurations
    t_pd = _per_config(lambda k: pandas_backtest(feat, cfg(k), s, e), sub_pd, repeat)
    inputs = {k: vbt_inputs(feat, cfg(k), s, e) for k in sub_vbt}
    t_vbt, t_batch = {}, {}
    for engine in engines:
        vbt_backtest(close_v, *inputs[sub_vbt[0]], engine)  # compiled (or loaded from vectorbt's cache)
        t_vbt[engine] = _per_config(lambda k, eng=engine: vbt_backtest(close_v, *inputs[k], eng), sub_vbt, repeat)
        t_batch[engine] = _per_config(lambda _, eng=engine: vbt_batch(close_v, list(inputs.values()), eng),
                                      [0], repeat) / len(sub_vbt)
    t_loop = _per_config(lambda k: loop_backtest(feat, cfg(k), s, e), sub_loop, 1) if has_loop else None

    report(f"sweep, {n} configs, embedded, end to end (`sweep run`, jobs={jobs})", f"{e2e * 1e3:.3f} ms/config")
    report(f"sweep, {n} configs, embedded, inside the runner (jobs={jobs})", f"{ins * 1e3:.3f} ms/config")
    rows = [(f"pandas-vectorized, features cached ({t_feat:.2f} s once), {len(sub_pd)} configs", t_pd)]
    rows += [(f"vectorbt {vbt.__version__}, {engine} engine, weights given, {len(sub_vbt)} configs",
              t_vbt[engine]) for engine in engines]
    rows += [(f"vectorbt, {engine} engine, the {len(sub_vbt)} configs as groups of one call", t_batch[engine])
             for engine in engines]
    if has_loop:
        rows += [(f"plain loop (tests/reference.py), {len(sub_loop)} configs", t_loop)]
    for label, t in rows:
        report(label, f"{t * 1e3:,.1f} ms/config", f"sweep {t / e2e:,.0f}x faster end to end, {t / ins:,.0f}x inside")


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "crypto_daily.parquet")
    args = ap.parse_args()

    def report(what: str, value: str, target: str = "") -> None:
        print(f"{what:<66} {value:>18}   {target}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        bench_peers(report, args.data, Path(tmp), args.jobs, args.repeat)


if __name__ == "__main__":
    main()
