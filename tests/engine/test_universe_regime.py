"""SEMANTICS §5's min_volume liquidity filter and regime filter, §7's warm-up and §8's funding switch.

Hand-worked cases for the volume window rule (``ceil(v / 2)`` finite values, days
before the panel non-finite, a volume of 0 counted) and the regime averages (an
exact tie holds neither; each window summed afresh), checked against the kernels,
the independent reference and the engine's ``Workspace``; the regime checked on
rebalance days only; no lookahead; bad values one line (exit 2 from the CLI);
every study kind takes the new parameters; the kurtosis_bear_liquid study runs.
The agreement with the reference on every factor is in ``test_backtest.py``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import reference
from conftest import assert_close

import sweep
from kernels.regime import BEAR, BULL, equal_weight_level, regime_holds
from kernels.selection import volume_mean
from sweep.core.errors import SweepError
from sweep.engine.params import config_id, resolve, warmup_days
from sweep.engine.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
nan = np.nan
DATES = np.arange(np.datetime64("2021-01-01"), np.datetime64("2021-01-01") + 13)


def _panel(close: dict[str, list[float]], **fields: dict[str, list[float]]):
    symbols = sorted(close)
    T = len(close[symbols[0]])
    arr = lambda d: np.array([d[s] for s in symbols], dtype=np.float64).T.copy()  # noqa: E731
    return sweep.panel_from_arrays(DATES[:T], symbols, arr(close), **{k: arr(v) for k, v in fields.items()})


# ---- the volume window (SEMANTICS §5, universe filter 2) ---------------------------------------

VOL = [10.0, nan, 30.0, nan, nan, 0.0]


def test_volume_window_hand_worked():
    v = np.array(VOL)[:, None]
    # v = 4 needs 2 finite values; day 0 and 1 see days -3 .. 1, which count as non-finite.
    expected4 = [nan, nan, 20.0, 20.0, nan, 15.0]  # day 5: 30 and a real 0 over days 2 .. 5
    # v = 5 needs ceil(5 / 2) = 3: never reached.
    np.testing.assert_array_equal(volume_mean(v, 4)[:, 0], expected4)
    assert np.isnan(volume_mean(v, 5)).all()
    # v = 1 needs 1: the day's own value.
    np.testing.assert_array_equal(volume_mean(v, 1)[:, 0], VOL)
    # pandas with min_periods = ceil(v / 2) says the same.
    np.testing.assert_array_equal(pd.Series(VOL).rolling(4, min_periods=2).mean().to_numpy(), expected4)
    # The reference: the mean is compared with >=, so a mean of exactly X passes.
    for X, passing in ((20.0, [2, 3]), (15.0, [2, 3, 5]), (20.5, [])):
        got = [t for t in range(6) if reference.is_liquid(t, 0, v, 4, X)]
        assert got == passing, X
        assert np.flatnonzero(volume_mean(v, 4)[:, 0] >= X).tolist() == passing


def test_universe_filters_in_order_exclude_volume_market_cap():
    """exclude, then min_volume, then the top K market caps among the liquid ones."""
    close = {s: [1.0] * 6 for s in ("AAA", "BBB", "CCC", "DDD")}
    volume = {"AAA": [1e6] * 6, "BBB": [1e3] * 6, "CCC": VOL, "DDD": [5e5] * 6}
    cap = {"AAA": [1.0] * 6, "BBB": [9.0] * 6, "CCC": [5.0] * 6, "DDD": [3.0] * 6}
    ws = Workspace(_panel(close, volume=volume, market_cap=cap))
    p = resolve({"factor": "momentum", "min_volume": 15.0, "volume_window": 4})
    # Day 0 holds one known volume of the 4-day window (2 needed): nobody passes. Then BBB's mean
    # 1e3 passes 15; CCC passes on days 2, 3, 5 (hand-worked above).
    expect = np.array([[0, 0, 0, 0], [1, 1, 0, 1]] + [[1, 1, 1, 1]] * 2 + [[1, 1, 0, 1], [1, 1, 1, 1]],
                      dtype=bool)
    np.testing.assert_array_equal(ws.universe_mask(p), expect)
    p = resolve({"factor": "momentum", "min_volume": 2e3, "volume_window": 4, "top_by_market_cap": 2,
                 "exclude": ["DDD"]})
    # DDD excluded, BBB (largest cap) and CCC (5e1) illiquid: the top 2 of what is left is AAA alone.
    np.testing.assert_array_equal(ws.universe_mask(p), np.array([[0, 0, 0, 0]] + [[1, 0, 0, 0]] * 5, dtype=bool))
    p = resolve({"factor": "momentum", "min_volume": 15.0, "volume_window": 4, "top_by_market_cap": 2})
    # Without the liquidity filter CCC (cap 5) would be second to BBB every day; it is kept only when liquid.
    expect = np.array([[0, 0, 0, 0], [0, 1, 0, 1]] + [[0, 1, 1, 0]] * 2 + [[0, 1, 0, 1], [0, 1, 1, 0]],
                      dtype=bool)
    np.testing.assert_array_equal(ws.universe_mask(p), expect)
    # The reference agrees on every day of every case.
    for params in ({"min_volume": 15.0, "volume_window": 4, "top_by_market_cap": 2},
                   {"min_volume": 2e3, "volume_window": 4, "top_by_market_cap": 2, "exclude": ["DDD"]}):
        mask = ws.universe_mask(resolve({"factor": "momentum", **params}))
        for t in range(6):
            ref = reference.universe(t, ws.panel.symbols, params, ws.panel.fields["market_cap"],
                                     ws.panel.fields["volume"])
            assert np.flatnonzero(mask[t]).tolist() == ref, (params, t)


# ---- the regime averages (SEMANTICS §5, regime filter) ---------------------------------------------

# fast = 2, slow = 4. Day 3: A_4 = (4+1+2+3)/4 = 2.5 = A_2 = (2+3)/2, a tie; days 4, 5 and 12: A_2 > A_4
# (4 > 2.75, 3 > 2.75, 5 > 3.5); day 6: 0.75 < 2.375; days 7 .. 10 read the missing day 7;
# day 11 (2, 2, 2, 2) ties again; days 0 .. 2 have no slow average yet.
BTC = [4.0, 1.0, 2.0, 3.0, 5.0, 1.0, 0.5, nan, 2.0, 2.0, 2.0, 2.0, 8.0]
BULL_DAYS = [4, 5, 12]
BEAR_DAYS = [6]


def test_regime_averages_hand_worked():
    level = np.array(BTC)
    assert np.flatnonzero(regime_holds(level, 2, 4, BULL)).tolist() == BULL_DAYS
    assert np.flatnonzero(regime_holds(level, 2, 4, BEAR)).tolist() == BEAR_DAYS
    for regime, days in (("bull", BULL_DAYS), ("bear", BEAR_DAYS), ("all", list(range(13)))):
        params = {"regime": regime, "regime_fast": 2, "regime_slow": 4}
        assert [t for t in range(13) if reference.regime_holds(t, params, level)] == days
    # The engine reads the close of market_symbol.
    panel = _panel({"BTC": BTC, "AAA": [1.0] * 13})
    ws = Workspace(panel)
    for regime, days in (("bull", BULL_DAYS), ("bear", BEAR_DAYS)):
        p = resolve({"factor": "momentum", "regime": regime, "regime_fast": 2, "regime_slow": 4})
        assert np.flatnonzero(ws.regime_mask(p)).tolist() == days
    assert ws.regime_mask(resolve({"factor": "momentum", "market_symbol": "ZZZ"})).all()  # "all" reads no market


def test_regime_tie_is_kept_by_summing_each_window_afresh():
    """A running sum carried from day to day loses the small levels after a huge one and
    breaks the tie of day 5 (four levels of 1: A_2 = A_4 = 1). Day 3 still holds 1e17: bear."""
    level = np.array([1e17, 1.0, 1.0, 1.0, 1.0, 1.0])
    running = np.cumsum(level)
    a4 = (running[5] - running[1]) / 4
    assert a4 != 1.0  # what a running sum gives
    assert not regime_holds(level, 2, 4, BULL)[5] and not regime_holds(level, 2, 4, BEAR)[5]
    params = {"regime": "bull", "regime_fast": 2, "regime_slow": 4}
    assert np.flatnonzero(regime_holds(level, 2, 4, BEAR)).tolist() == [3]
    assert not regime_holds(level, 2, 4, BULL).any()
    assert [t for t in range(6) if reference.regime_holds(t, params, level)] == []
    assert [t for t in range(6) if reference.regime_holds(t, {**params, "regime": "bear"}, level)] == [3]


def test_equal_weight_level_hand_worked():
    r = np.array([[nan, nan], [0.1, nan], [nan, nan], [0.2, -0.1], [nan, 0.5]])
    # M_0 = 1; day 1: 1.1; day 2 (no finite r): unchanged; day 3: mean 0.05; day 4: 0.5.
    expected = [1.0, 1.1, 1.1, 1.1 * 1.05, 1.1 * 1.05 * 1.5]
    np.testing.assert_allclose(equal_weight_level(r), expected, rtol=1e-15)
    close = np.array([[1.0, 2.0], [1.1, nan], [nan, nan], [1.2, 1.8], [nan, 2.7]])
    ref = reference.market_level({"market": "equal_weight"}, close, reference.simple_returns(close), ["A", "B"])
    np.testing.assert_allclose(ref, equal_weight_level(reference.simple_returns(close)), rtol=1e-15)


# ---- the regime on rebalance days only, flat elsewhere (SEMANTICS §5, §8) ----------------------

def test_regime_sells_to_flat_and_is_read_on_rebalance_days_only(small_panel):
    T = small_panel.shape[0]
    s = 40
    base = {"factor": "momentum", "window": 10, "rebalance_days": 5, "fee_bps": 20.0, "regime_fast": 8,
            "regime_slow": 40, "market": "equal_weight"}
    free = sweep.backtest(small_panel, start=small_panel.dates[s], return_weights=True, **base)
    bear = sweep.backtest(small_panel, start=small_panel.dates[s], return_weights=True, regime="bear", **base)
    mask = Workspace(small_panel).regime_mask(resolve({**base, "regime": "bear"}))
    wf = free.weights.drop("date").to_numpy()
    wb = bear.weights.drop("date").to_numpy()
    tau = bear.returns["turnover"].to_numpy()
    cost = bear.returns["cost"].to_numpy()
    reb = [t for t in range(s, T) if (t - s) % 5 == 0]
    sold = crossed = 0
    for t in range(s, T):
        d = t - s
        if t in reb:
            if mask[t]:
                np.testing.assert_array_equal(wb[d], wf[d])  # the same targets as without the filter
            else:
                assert not wb[d].any()  # flat
                if d > 0 and wb[d - 1].any():
                    sold += 1  # sold to flat that day, turnover and cost charged
                    prev = wb[d - 1]
                    q = small_panel.carried_returns[t]
                    g = 1.0 + np.nansum(prev * np.where(np.isfinite(q), q, 0.0)) + bear.returns["funding"][d]
                    drifted = prev * (1.0 + np.where(np.isfinite(q), q, 0.0)) / g
                    assert_close(tau[d], float(np.abs(drifted).sum()), f"turnover on day {t}")
                    assert_close(cost[d], tau[d] * 20.0 / 10_000, f"cost on day {t}")
        else:
            held_before = wb[d - 1].any()
            assert wb[d].any() == held_before  # no trade between rebalance days
            if mask[t] != mask[max(r for r in reb if r <= t)]:
                crossed += 1  # the averages crossed since the last rebalance: the book ignores it
    assert sold > 0 and crossed > 0


# ---- no lookahead ----------------------------------------------------------------------------------

@pytest.mark.parametrize("market", [{"market_symbol": "S004"}, {"market": "equal_weight"}])
def test_no_lookahead_in_the_new_filters(small_panel, market):
    params = {"factor": "kurtosis", "window": 12, "rebalance_days": 2, "min_volume": 3e5, "volume_window": 9,
              "regime": "bull", "regime_fast": 8, "regime_slow": 40, "funding": False, **market}
    start = small_panel.dates[40]
    base = sweep.backtest(small_panel, start=start, return_weights=True, **params)
    rng = np.random.default_rng(5)
    for t in (60, 150, small_panel.shape[0] - 3):
        fields = {name: arr.copy() for name, arr in small_panel.fields.items()}
        for arr in fields.values():
            future = arr[t + 1:]
            future[:] = np.where(np.isfinite(future), np.abs(future) * rng.lognormal(0, 0.8, future.shape), future)
        close = fields.pop("close")
        alt = sweep.backtest(sweep.panel_from_arrays(small_panel.dates, small_panel.symbols, close, **fields),
                             start=start, return_weights=True, **params)
        d = t - 40 + 1
        assert np.array_equal(base.weights.drop("date").to_numpy()[:d], alt.weights.drop("date").to_numpy()[:d])
        assert np.array_equal(base.returns["ret"].to_numpy()[:d], alt.returns["ret"].to_numpy()[:d])
        # The filters themselves, day by day up to t, are unchanged.
        ws0, ws1 = Workspace(small_panel), Workspace(alt_panel := sweep.panel_from_arrays(
            small_panel.dates, small_panel.symbols, close, **fields))
        p = resolve(params)
        assert alt_panel.shape == small_panel.shape
        np.testing.assert_array_equal(ws0.universe_mask(p)[:t + 1], ws1.universe_mask(p)[:t + 1])
        np.testing.assert_array_equal(ws0.regime_mask(p)[:t + 1], ws1.regime_mask(p)[:t + 1])
    assert base.metrics["avg_gross_exposure"] > 0  # the filters leave something to hold


# ---- warm-up (SEMANTICS §7) and the funding switch (§8) ----------------------------------------

def test_warmup_counts_volume_window_and_regime_slow(small_panel):
    cases = [({}, 30), ({"volume_window": 90}, 30), ({"min_volume": 1.0, "volume_window": 90}, 90),
             ({"min_volume": 1.0, "volume_window": 10}, 30), ({"regime_slow": 300}, 30),
             ({"regime": "bear"}, 200), ({"regime": "bull", "regime_fast": 5, "regime_slow": 20}, 30),
             ({"regime": "bull", "regime_slow": 120, "min_volume": 1.0, "volume_window": 150}, 150)]
    for extra, w in cases:
        assert warmup_days(resolve({"factor": "volatility", "window": 30, **extra})) == w, extra
    res = sweep.backtest(small_panel, factor="volatility", window=10, regime="bear", regime_fast=10,
                         regime_slow=45, market="equal_weight")
    assert res.returns["date"][0] == small_panel.dates[45]


def test_funding_false_ignores_the_column(small_panel):
    """F = 0 in the net and pre-cost series; the path is the funding-free panel's path."""
    params = {"factor": "momentum", "window": 10, "rebalance_days": 3, "fee_bps": 10.0}
    off = sweep.backtest(small_panel, funding=False, **params)
    fields = {k: v for k, v in small_panel.fields.items() if k not in ("close", "funding_rate")}
    bare = sweep.backtest(sweep.panel_from_arrays(small_panel.dates, small_panel.symbols, small_panel.close,
                                                  **fields), **params)
    on = sweep.backtest(small_panel, **params)
    assert on.metrics["funding_return"] != 0.0
    assert off.metrics["funding_return"] == 0.0
    for name in ("ret", "ret_pre_cost", "funding"):
        np.testing.assert_array_equal(off.returns[name].to_numpy(), bare.returns[name].to_numpy())
    assert off.config_id != on.config_id


# ---- bad values: one line, exit 2 ------------------------------------------------------------------

@pytest.mark.parametrize("params, words", [
    ({"min_volume": -1.0}, "min_volume = -1.0 is below the minimum 0"),
    ({"min_volume": float("nan")}, "min_volume = nan must be finite"),
    ({"volume_window": 0}, "volume_window = 0 is below the minimum 1"),
    ({"volume_window": 2.5}, "volume_window = 2.5 must be an integer"),
    ({"regime": "bearish"}, "regime = 'bearish' is not one of all, bear, bull (did you mean 'bear'?)"),
    ({"regime_fast": 0}, "regime_fast = 0 is below the minimum 1"),
    ({"regime_fast": 200, "regime_slow": 50}, "regime_fast = 200 must be below regime_slow = 50"),
    ({"regime_fast": 50, "regime_slow": 50, "regime": "bull"}, "regime_fast = 50 must be below regime_slow = 50"),
    ({"funding": "no"}, "funding = 'no' must be true or false"),
    ({"funding": 0}, "funding = 0 must be true or false"),
    ({"factor": "carry", "funding": False}, "the carry factor ranks funding rates, which funding = false ignores"),
    ({"regime": "bear", "market_symbol": "BTC"}, "regime = 'bear' reads the close of market_symbol = 'BTC', "
                                                 "which is not a symbol of"),
])
def test_bad_values_are_one_line(small_panel, params, words):
    with pytest.raises(SweepError) as exc:
        sweep.backtest(small_panel, **{"factor": "momentum", **params})
    msg = str(exc.value)
    assert words in msg and "\n" not in msg, msg


def test_min_volume_without_a_volume_column_is_refused_before_any_day(small_panel):
    fields = {k: v for k, v in small_panel.fields.items() if k not in ("close", "volume")}
    panel = sweep.panel_from_arrays(small_panel.dates, small_panel.symbols, small_panel.close, **fields)
    with pytest.raises(SweepError, match="min_volume = 1e\\+06 .* needs the column 'volume'"):
        sweep.backtest(panel, factor="momentum", min_volume=1e6)
    sweep.backtest(panel, factor="momentum", min_volume=0.0, volume_window=5)  # off: no volume needed


def _study_text(data: Path, backtest: str, grid: str = "", kind: str = "grid", extra: str = "") -> str:
    return (f'[study]\nname = "s"\nkind = "{kind}"\nobjective = "sharpe"\ndata = "{data}"\n\n'
            f'[backtest]\nfactor = "momentum"\nwindow = 10\n{backtest}\n\n'
            + (f"[grid]\n{grid}\n\n" if grid else "") + extra)


@pytest.fixture(scope="module")
def synth_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ur") / "synth.parquet"
    sweep.synth_panel(n_symbols=15, n_days=300, seed=3).write_parquet(path)
    return path


@pytest.mark.parametrize("backtest, grid, words", [
    ('regime = "sideways"', "", "regime = 'sideways' is not one of all, bear, bull"),
    ("funding = 1", "", "funding = 1 must be true or false"),
    ("", "regime_fast = [50, 300]", "regime_fast=300"),
    ("min_volume = 1e6", 'regime = ["all", "bear"]', "market_symbol = 'BTC', which is not a symbol"),
    ('factor = "carry"', "funding = [true, false]", "funding = false ignores"),
])
def test_cli_refuses_bad_study_values_in_one_line(tmp_path, synth_file, backtest, grid, words):
    text = _study_text(synth_file, backtest, grid).replace('factor = "momentum"\n', "") \
        if "factor" in backtest else _study_text(synth_file, backtest, grid)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "sweep", "validate", str(path)], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and str(path) in lines[0], proc.stderr


# ---- every study kind takes the new parameters ------------------------------------------------------

NEW = 'regime_fast = 10\nregime_slow = 30\nmarket = "equal_weight"\nvolume_window = 7\nrebalance_days = 3'


def test_grid_axes_over_the_new_parameters(tmp_path, synth_file):
    grid = 'min_volume = [0, 2e5]\nregime = ["all", "bear", "bull"]\nfunding = [true, false]'
    path = tmp_path / "g.toml"
    path.write_text(_study_text(synth_file, NEW, grid))
    study = sweep.load_study(path)
    assert study.n_configs == 12
    sweep.run_study(study, out=tmp_path / "out", progress=False)
    trials = pl.read_parquet(tmp_path / "out" / "trials.parquet")
    panel = sweep.load_panel(synth_file)
    start = json.loads((tmp_path / "out" / "manifest.json").read_text()).get("start")
    assert trials.height == 12 and set(trials["regime"]) == {"all", "bear", "bull"}
    assert trials["funding"].dtype == pl.Boolean and trials["min_volume"].dtype == pl.Float64
    sharpes = set()
    for row in trials.iter_rows(named=True):
        p = {k: row[k] for k in study.columns}
        res = sweep.backtest(panel, start=start or panel.dates[30], **{**study.fixed, **p})
        assert_close(row["sharpe"], res.metrics["sharpe"], f"sharpe of {p}")
        assert row["config_id"] == config_id(resolve({**study.fixed, **p}))
        sharpes.add(round(row["sharpe"], 12))
    assert len(sharpes) == 12  # each value of each new axis changes the book


def test_optuna_and_walk_forward_search_the_new_parameters(tmp_path, synth_file):
    space = ('[space]\nmin_volume = {low = 0.0, high = 4e5}\nregime = ["all", "bear", "bull"]\n'
             'funding = [true, false]\n\n[optuna]\nn_trials = 12\nseed = 0\n')
    path = tmp_path / "o.toml"
    path.write_text(_study_text(synth_file, NEW, kind="optuna", extra=space))
    sweep.run_study(sweep.load_study(path), out=tmp_path / "o", progress=False)
    trials = pl.read_parquet(tmp_path / "o" / "trials.parquet")
    panel = sweep.load_panel(synth_file)
    study = sweep.load_study(path)
    assert {"min_volume", "regime", "funding"} <= set(trials.columns)
    for row in trials.iter_rows(named=True):
        p = {**study.fixed, "min_volume": row["min_volume"], "regime": row["regime"], "funding": row["funding"]}
        # Every trial runs on the study's window, whose warm-up counts the corners (volume_window, slow).
        res = sweep.backtest(panel, start=panel.dates[30], **p)
        assert_close(row["sharpe"], res.metrics["sharpe"], f"sharpe of trial {row}")

    wf = ('[walk_forward]\ntrain_days = 90\ntest_days = 60\ninner = "grid"\n')
    grid = 'min_volume = [0, 2e5]\nregime = ["all", "bull"]\nfunding = [true, false]'
    path = tmp_path / "w.toml"
    path.write_text(_study_text(synth_file, NEW, grid, kind="walk_forward", extra=wf))
    study = sweep.load_study(path)
    sweep.run_study(study, out=tmp_path / "w", progress=False)
    folds = pl.read_parquet(tmp_path / "w" / "folds.parquet")
    # A resolved configuration, minus the values that stand for "the factor's default".
    configs = {config_id(p): {k: v for k, v in p.items() if v is not None} for p in study.resolved_configs()}
    assert folds.height >= 2 and (folds["n_candidates"] == 8).all()
    for row in folds.iter_rows(named=True):
        res = sweep.backtest(panel, start=row["test_start"], end=row["test_end"], **configs[row["config_id"]])
        assert_close(row["test_total_return"], res.metrics["total_return"], "test_total_return")


# ---- the kurtosis_bear_liquid study ------------------------------------------------------------

def test_kurtosis_bear_liquid_study_validates_and_runs(tmp_path):
    path = ROOT / "studies" / "kurtosis_bear_liquid.toml"
    data = ROOT / "data" / "crypto_daily.parquet"
    if not data.exists():
        pytest.skip(f"embedded data absent ({data})")
    study = sweep.load_study(path)
    p = study.resolved_configs()[0]
    assert (p["factor"], p["long"], p["regime"], p["regime_fast"], p["regime_slow"], p["market"],
            p["market_symbol"]) == ("kurtosis", "high", "bear", 50, 200, "symbol", "BTC")
    assert p["min_volume"] > 0 and "USDT" in p["exclude"]
    proc = subprocess.run([sys.executable, "-m", "sweep", "validate", str(path)], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    sweep.run_study(study, out=tmp_path / "out", progress=False)
    trials = pl.read_parquet(tmp_path / "out" / "trials.parquet")
    assert trials.height == study.n_configs
    # A bear-only book: in the market some of the time, flat the rest.
    assert (trials["avg_gross_exposure"] > 0.05).all() and (trials["avg_gross_exposure"] < 0.9).all()
    # One row against a fresh backtest, and the regime is what keeps it flat.
    panel = sweep.load_panel(data)
    row = trials.row(0, named=True)
    cfg = {k: row[k] for k in study.columns}
    s = panel.day_index(study.start, "start")
    res = sweep.backtest(panel, start=study.start, return_weights=True, **{**study.fixed, **cfg})
    assert_close(row["sharpe"], res.metrics["sharpe"], "sharpe")
    mask = Workspace(panel).regime_mask(resolve({**study.fixed, **cfg}))
    gross = np.abs(res.weights.drop("date").to_numpy()).sum(axis=1)
    reb = np.arange(s + cfg.get("phase", 0), panel.shape[0], cfg["rebalance_days"])
    assert mask[reb].any() and not mask[reb].all()
    assert not gross[reb[~mask[reb]] - s].any() and gross[reb[mask[reb]] - s].all()
    assert math.isfinite(row["sharpe"])
