"""``sweep compare`` (SEMANTICS §10): tranche books, ranks, the paired bootstrap, the verdict,
the JSON shape and the one-line errors."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import polars as pl
import pytest

import sweep
from kernels.metrics import METRICS, N_METRICS, compute_metrics
from sweep.cli.main import main
from sweep.stats.compare import (
    SERIES, Slice, Tranche, compare, series_metric, summarise, tranche_returns, tranche_slice,
)

GRID = """
[study]
name = "{name}"
kind = "grid"
objective = "sharpe"
data = "{data}"

[backtest]
{backtest}

[grid]
{grid}
"""


def _run(tmp, data, name, backtest, grid):
    path = tmp / f"{name}.toml"
    path.write_text(GRID.format(name=name, data=data, backtest=backtest, grid=grid))
    out = tmp / name
    sweep.run_study(sweep.load_study(path), out=out, progress=False, jobs=1)
    return out


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("cmp") / "synth.parquet"
    sweep.synth_panel(n_symbols=15, n_days=200, seed=5).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def grid(synth_data):
    """Two windows x rebalance_days 1..5 x every phase = 30 books, with costs."""
    return _run(synth_data.parent, synth_data, "vol", 'factor = "volatility"\nfee_bps = 10\nslippage_bps = 5',
                'window = [5, 10]\nrebalance_days = [1, 2, 3, 4, 5]\nphase = "all"')


def _window(folder):
    m = json.loads((folder / "manifest.json").read_text())["evaluation_window"]
    return dt.date.fromisoformat(m["start"]), dt.date.fromisoformat(m["end"])


def _kernel_metrics(R, R_pre):
    """Section 9 by the engine's own kernel (an implementation independent of the numpy one)."""
    n = len(R)
    z = np.zeros(n)
    out = np.empty(N_METRICS)
    compute_metrics(np.stack([R, R_pre, z, z, z, z, z, z, z]).astype(np.float64), 0, out)
    return dict(zip(METRICS, out))


# ---- tranche books ---------------------------------------------------------------

def test_tranche_returns_hand_worked():
    # Phase 1 is ruined on day 2; phase 2 drifts. V1 = 1.1, 0, 0, 0; V2 = 1, 1.1, 0.55, 0.66.
    R = tranche_returns(np.array([[0.1, -1.0, 0.0, 0.0], [0.0, 0.1, -0.5, 0.2]]))
    np.testing.assert_allclose(R, [0.05, 0.55 / 1.05 - 1, -0.5, 0.2], rtol=0, atol=1e-15)
    # Every phase ruined: the tranche is ruined that day and earns 0 after it (V_{t-1} = 0).
    np.testing.assert_allclose(tranche_returns(np.array([[0.2, -1.0, 0.0], [-0.1, -1.0, 0.0]])),
                               [0.05, -1.0, 0.0], rtol=0, atol=1e-15)


def test_tranche_book_is_the_mean_of_the_phase_books(grid, synth_data):
    panel = sweep.load_panel(synth_data)
    start, end = _window(grid)
    sl = tranche_slice(grid, "rebalance_days", where={"window": "10"})
    assert [t.value for t in sl.tranches] == [1, 2, 3, 4, 5]
    for tr in sl.tranches:
        assert tr.phases == list(range(tr.value))
        runs = [sweep.backtest(panel, start=start, end=end, **{**tr.params, "phase": p}) for p in tr.phases]
        nav = np.mean([np.cumprod(1 + r.returns["ret"].to_numpy()) for r in runs], axis=0)
        nav_pre = np.mean([np.cumprod(1 + r.returns["ret_pre_cost"].to_numpy()) for r in runs], axis=0)
        np.testing.assert_allclose(tr.nav, nav, rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.cumprod(1 + tr.returns_pre_cost), nav_pre, rtol=0, atol=1e-12)
        # Section 9 on the tranche returns, by the kernel; the other metrics are phase means.
        ref = _kernel_metrics(tr.returns, tr.returns_pre_cost)
        for m in METRICS:
            if m in SERIES or m == "sharpe_pre_cost":
                assert math.isclose(tr.metrics[m], ref[m], rel_tol=1e-9, abs_tol=1e-12), (tr.value, m)
            elif m == "ruined":
                assert tr.metrics[m] == float(all(r.metrics["ruined"] == 1.0 for r in runs))
            else:
                want = np.mean([r.metrics[m] for r in runs])
                assert math.isclose(tr.metrics[m], want, rel_tol=1e-12, abs_tol=1e-12), (tr.value, m)


def test_pre_cost_series_is_the_reference_pre_cost_book(grid, synth_data):
    from reference import reference_backtest

    panel = sweep.load_panel(synth_data)
    start, _ = _window(grid)
    s = panel.day_index(start, "start")
    tr = tranche_slice(grid, "rebalance_days", where={"window": "5"}).tranches[2]  # 3 days, 3 phases
    navs = []
    for p in tr.phases:
        params = sweep.engine.params.resolve({**tr.params, "phase": p})
        ref = reference_backtest(panel.dates, list(panel.symbols), panel.close, panel.fields["market_cap"],
                                 panel.fields["funding_rate"], {**params, "exclude": [], "top_by_market_cap": None},
                                 s, panel.shape[0] - 1)
        navs.append(np.cumprod(1 + np.asarray(ref["R_pre"])))
    np.testing.assert_allclose(np.cumprod(1 + tr.returns_pre_cost), np.mean(navs, axis=0), rtol=1e-9, atol=1e-12)


def test_series_metrics_match_the_kernel():
    rng = np.random.default_rng(3)
    rows = [rng.normal(0.001, 0.02, 50), np.zeros(50), np.full(50, 0.001),
            np.r_[rng.normal(0, 0.03, 20), -1.0, np.zeros(29)], np.r_[np.zeros(10), rng.normal(0, 0.01, 40)]]
    R = np.array(rows)
    for name in SERIES:
        got = series_metric(name, R)
        for j, row in enumerate(rows):
            want = _kernel_metrics(row, row)[name]
            assert (math.isnan(got[j]) and math.isnan(want)) or math.isclose(got[j], want, rel_tol=1e-9,
                                                                            abs_tol=1e-12), (name, j)


# ---- ranks, spreads, P(best) -------------------------------------------------------

def test_ranks_and_phase_spread_follow_from_the_trials_table(grid):
    trials = pl.read_parquet(grid / "trials.parquet").filter(pl.col("window") == 5)
    stats = (trials.group_by("rebalance_days").agg(pl.col("sharpe").mean().alias("mean"),
                                                   pl.col("sharpe").min().alias("min"),
                                                   pl.col("sharpe").max().alias("max"))
             .sort("rebalance_days"))
    out = compare(grid, "rebalance_days", where={"window": "5"})
    for row, st in zip(out["values"], stats.iter_rows(named=True)):
        assert row["value"] == st["rebalance_days"]
        assert math.isclose(row["phase_mean"], st["mean"], rel_tol=1e-12)
        assert row["phase_min"] == st["min"] and row["phase_max"] == st["max"]
    objective = pl.Series([r["objective"] for r in out["values"]])
    assert [r["rank"] for r in out["values"]] == (-objective).rank("min").cast(int).to_list()
    # Turnover is not computed from R: the tranche's is the phase mean, ranked lowest first.
    out = compare(grid, "rebalance_days", where={"window": "5"}, by="turnover")
    mean = trials.group_by("rebalance_days").agg(pl.col("turnover").mean()).sort("rebalance_days")
    np.testing.assert_allclose([r["objective"] for r in out["values"]], mean["turnover"], rtol=1e-12)
    assert [r["rank"] for r in out["values"]] == mean["turnover"].rank("min").cast(int).to_list()
    assert all(r["p_best"] is None and r["diff_q05"] is None for r in out["values"])
    assert "no bootstrap interval" in out["verdict"]


def test_single_phase_books_rank_as_in_the_trials_table(synth_data):
    folder = _run(synth_data.parent, synth_data, "one_phase", 'factor = "volatility"\nwindow = 10',
                  "rebalance_days = [1, 2, 3, 5, 8]")
    trials = pl.read_parquet(folder / "trials.parquet").sort("rebalance_days")
    out = compare(folder, "rebalance_days")
    np.testing.assert_allclose([r["objective"] for r in out["values"]], trials["sharpe"], rtol=1e-9)
    assert [r["rank"] for r in out["values"]] == (-trials["sharpe"]).rank("min").cast(int).to_list()
    assert all(r["n_phases"] == 1 for r in out["values"])
    assert "timing luck is not measured" in compare(folder, "rebalance_days", value="5")["verdict"]
    assert "timing luck" not in compare(folder, "rebalance_days", value="1")["verdict"]  # one phase exists


def test_p_best_sums_to_one_and_the_best_differs_from_itself_by_zero(grid):
    out = compare(grid, "rebalance_days")
    p = [r["p_best"] for r in out["values"]]
    assert math.isclose(sum(p), 1.0, abs_tol=1e-12) and all(0 <= x <= 1 for x in p)
    best = next(r for r in out["values"] if r["value"] == out["best"])
    assert best["rank"] == 1 and best["diff_q05"] == 0.0 and best["diff_q95"] == 0.0
    assert all(r["diff_q05"] <= r["diff_q95"] for r in out["values"])


def test_other_parameters_are_held_at_the_best_variant(grid):
    best = {}
    for w in ("5", "10"):
        sl = tranche_slice(grid, "rebalance_days", where={"window": w})
        ok = [t.metrics["sharpe"] for t in sl.tranches if t.metrics["ruined"] == 0.0]
        best[int(w)] = max(ok)
    out = compare(grid, "rebalance_days")
    assert out["where"] == {"window": max(best, key=best.get)}


def test_ruined_values_rank_last_and_never_win():
    rng = np.random.default_rng(0)
    R = rng.normal(0.002, 0.01, (3, 300))
    R[2, 150:] = 0.0
    R[2, 149] = -1.0  # ruined, but with the best Sharpe before that
    R[2, :149] = np.abs(R[2, :149]) + 0.05
    rows = lambda k, ruined: [{"phase": 0, "rebalance_days": k, "ruined": ruined,  # noqa: E731
                               "sharpe": float(series_metric("sharpe", R[k - 1])[0])}]
    trs = [Tranche(k, {"rebalance_days": k}, rows(k, 1.0 if k == 3 else 0.0), R[k - 1], R[k - 1]) for k in (1, 2, 3)]
    for t in trs:
        t.metrics = {"sharpe": t.rows[0]["sharpe"], "ruined": t.rows[0]["ruined"]}
    assert trs[2].metrics["sharpe"] > max(trs[0].metrics["sharpe"], trs[1].metrics["sharpe"])
    out = summarise(Slice(None, "rebalance_days", "sharpe", {}, np.arange(300), trs))
    assert out["values"][2]["rank"] == 3 and out["values"][2]["p_best"] == 0.0 and out["best"] != 3
    assert math.isclose(sum(r["p_best"] for r in out["values"]), 1.0)
    assert "1 of the 3 values was ruined and rank last" in out["verdict"]


# ---- a planted winner ---------------------------------------------------------------

@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Yesterday's winners keep winning for exactly one day (MA(1) returns): rebalancing every
    day and following 1-day momentum earns it all, a longer period only its first day."""
    rng = np.random.default_rng(11)
    days, n = 320, 20
    e = rng.normal(0.0, 0.02, (days + 1, n))
    r = e[1:] + 0.6 * e[:-1]
    close = 100.0 * np.cumprod(1.0 + r, axis=0)
    start = np.datetime64("2020-01-01")
    df = pl.DataFrame({"date": np.repeat(np.arange(start, start + days), n),
                       "symbol": [f"S{i:02d}" for i in range(n)] * days,
                       "close": close.ravel()}).with_columns(pl.col("date").cast(pl.Date))
    tmp = tmp_path_factory.mktemp("planted")
    df.write_parquet(tmp / "planted.parquet")
    return _run(tmp, tmp / "planted.parquet", "planted", 'factor = "momentum"\nwindow = 1',
                'rebalance_days = [1, 4, 7]\nphase = "all"')


def test_a_planted_winner_is_told_apart(planted):
    out = compare(planted, "rebalance_days")
    assert out["best"] == 1
    others = [r for r in out["values"] if r["value"] != 1]
    assert all(r["diff_q95"] < 0 for r in others)
    assert out["values"][0]["p_best"] == 1.0
    assert "excludes zero: on these data 1 is better than" in out["verdict"]
    assert "2 of the other 2 values are told apart" in out["verdict"]
    v7 = compare(planted, "rebalance_days", value="7")
    assert v7["verdict"].startswith("rebalance_days = 7 ranks ")
    assert "excludes zero: on these data 1 is better than 7" in v7["verdict"]
    assert "Phase alone moves 7's Sharpe from " in v7["verdict"]


def test_the_verdict_follows_the_interval(grid):
    out = compare(grid, "rebalance_days")
    for row in out["values"]:
        if row["value"] == out["best"]:
            continue
        v = compare(grid, "rebalance_days", value=str(row["value"]))["verdict"]
        apart = row["diff_q05"] > 0 or row["diff_q95"] < 0
        assert ("excludes zero" in v) == apart and ("cannot tell them apart" in v) == (not apart)
        assert f"ranks {row['rank']}" in v


# ---- the command line ----------------------------------------------------------------

VALUE_KEYS = {"value": int, "n_phases": int, "objective": float, "phase_mean": float, "phase_min": float,
              "phase_max": float, "rank": int, "p_best": float, "diff_q05": float, "diff_q95": float,
              "ruined": bool}


def test_json_has_the_documented_shape(grid, capsys):
    assert main(["compare", str(grid), "--param", "rebalance_days", "--where", "window=10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"schema_version", "param", "objective", "where", "best", "n_resamples", "block_days",
                        "seed", "values", "verdict"}
    assert (out["schema_version"], out["param"], out["objective"]) == (1, "rebalance_days", "sharpe")
    assert out["where"] == {"window": 10}
    assert (out["n_resamples"], out["block_days"], out["seed"]) == (2000, 20, 0)
    assert isinstance(out["best"], int) and isinstance(out["verdict"], str) and out["verdict"]
    assert [r["value"] for r in out["values"]] == [1, 2, 3, 4, 5]
    for row in out["values"]:
        assert set(row) == set(VALUE_KEYS)
        for key, typ in VALUE_KEYS.items():
            assert row[key] is None or type(row[key]) is typ, (key, row[key])
    assert out == compare(grid, "rebalance_days", where={"window": 10})


def test_table_fits_100_columns(grid, capsys):
    assert main(["compare", str(grid), "--param", "rebalance_days", "--value", "3"]) == 0
    text = capsys.readouterr().out
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 100
    assert "rebalance_days" in text and "P(best)" in text and "rebalance_days = 3 ranks" in text


@pytest.mark.parametrize("args, says", [
    (["--param", "windw"], "--param windw: not a parameter of the study"),
    (["--param", "phase"], "--param phase"),
    (["--param", "rebalance_days", "--where", "windw=10"], "--where windw: not a parameter"),
    (["--param", "rebalance_days", "--where", "window=abc"], "--where window=abc: not a value of type"),
    (["--param", "rebalance_days", "--where", "window=11"], "--where window=11: the study ran window = 5, 10"),
    (["--param", "rebalance_days", "--where", "window"], "expected KEY=VALUE"),
    (["--param", "rebalance_days", "--where", "rebalance_days=2"], "--where rebalance_days"),
    (["--param", "rebalance_days", "--value", "9"], "--value 9: not a value of rebalance_days"),
    (["--param", "rebalance_days", "--by", "sharp"], "--by 'sharp' is not a metric"),
])
def test_bad_input_is_one_line_and_exit_2(grid, capsys, args, says):
    assert main(["compare", str(grid), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sweep: error: ") and says in err, err


def test_a_non_grid_folder_is_refused_naming_its_kind(grid, tmp_path, capsys):
    import shutil

    other = tmp_path / "wf"
    shutil.copytree(grid, other)
    m = json.loads((other / "manifest.json").read_text())
    m["study"]["kind"] = "walk_forward"
    (other / "manifest.json").write_text(json.dumps(m))
    assert main(["compare", str(other), "--param", "rebalance_days"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a walk_forward study" in err and "grid results only" in err
