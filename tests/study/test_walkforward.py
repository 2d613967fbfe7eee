"""Walk-forward studies: fold layout, the choice on train windows only, the stitched
out-of-sample series, determinism across --jobs, and one-line refusals of bad tables.

Every expected value is computed another way: fold boundaries by hand, choices
and ranks from one-off ``sweep.backtest`` runs (on a panel cut at the train
end, so no later data exists), the stitched series from fresh backtests of
each fold's test window, and the summary from those series with numpy.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import assert_close
from polars.testing import assert_frame_equal

import sweep
from sweep.engine.params import config_id
from sweep.study.walk_forward import choose, fold_windows, prepare, rank_of, settings

ROOT = Path(__file__).resolve().parents[2]
BASE_WF = {"train_days": 90, "test_days": 40}
BASE_GRID = {"factor": ["volatility", "momentum"], "window": [5, 20], "rebalance_days": [1, 5]}


# ---- helpers -------------------------------------------------------------------


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def write_study(path: Path, data: Path, *, wf=None, grid=None, backtest=None, study=None,
                extra: str = "") -> Path:
    """A walk-forward study on ``data``; ``wf=None`` leaves out [walk_forward]."""
    head = {"name": path.stem, "kind": "walk_forward", "objective": "sharpe", "data": str(data),
            **(study or {})}
    sections = {"study": head, "backtest": {"fee_bps": 10, **(backtest or {})},
                "grid": BASE_GRID if grid is None else grid}
    if wf is not None:
        sections["walk_forward"] = wf
    text = "".join(f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in body.items()) + "\n"
                   for name, body in sections.items() if body)
    path.write_text(text + extra)
    return path


def run(study_path: Path, out: Path, **kw) -> sweep.RunSummary:
    return sweep.run_study(sweep.load_study(study_path), out=out, progress=False, **kw)


def cut(panel: sweep.Panel, last: int) -> sweep.Panel:
    """The panel's days ``0 .. last`` only: whatever reads it cannot see a later day."""
    fields = {k: v[:last + 1] for k, v in panel.fields.items() if k != "close"}
    return sweep.panel_from_arrays(panel.dates[:last + 1], panel.symbols, panel.close[:last + 1], **fields)


def objective_of(panel, start: int, end: int, cfg: dict, objective: str) -> float:
    res = sweep.backtest(panel, start=panel.dates[start], end=panel.dates[end], **cfg)
    return res.metrics[objective]


@pytest.fixture(scope="module")
def synth_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wf") / "synth.parquet"
    sweep.synth_panel(n_symbols=15, n_days=400, seed=3).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def synth_run(tmp_path_factory, synth_file):
    """One walk-forward on the synthetic panel, shared by the read-only checks."""
    root = tmp_path_factory.mktemp("synth_run")
    study = write_study(root / "wf.toml", synth_file, wf=BASE_WF)
    summary = run(study, root / "out", jobs=2)
    return study, root / "out", summary


# ---- folds -----------------------------------------------------------------------


def test_fold_windows_hand_worked():
    def bounds(*args, **kw):
        return [(f.train_start, f.train_end, f.test_start, f.test_end, f.keep_end)
                for f in fold_windows(*args, **kw)]

    # s0 = 10, e = 40, train 10, test 5, step 5: the fifth test window (40..44) would pass e.
    assert bounds(10, 40, 10, 5, 5) == [(10, 19, 20, 24, 24), (15, 24, 25, 29, 29),
                                        (20, 29, 30, 34, 34), (25, 34, 35, 39, 39)]
    # Anchored: same test windows, every train window starts at s0.
    assert bounds(10, 40, 10, 5, 5, anchored=True) == [(10, 19, 20, 24, 24), (10, 24, 25, 29, 29),
                                                      (10, 29, 30, 34, 34), (10, 34, 35, 39, 39)]
    # A test window ending exactly on e is kept.
    assert bounds(10, 39, 10, 5, 5)[-1] == (25, 34, 35, 39, 39)
    assert bounds(10, 38, 10, 5, 5)[-1] == (20, 29, 30, 34, 34)
    # step 7 > test 5: days 25, 26 and 32, 33 belong to no test window.
    assert bounds(0, 40, 20, 5, 7) == [(0, 19, 20, 24, 24), (7, 26, 27, 31, 31), (14, 33, 34, 38, 38)]
    # step 2 < test 5: each fold keeps its days up to the next fold's test start.
    # The last fold keeps its whole test window.
    assert bounds(3, 20, 10, 5, 2) == [(3, 12, 13, 17, 14), (5, 14, 15, 19, 19)]
    assert bounds(3, 21, 10, 5, 2) == [(3, 12, 13, 17, 14), (5, 14, 15, 19, 16), (7, 16, 17, 21, 21)]
    # Exactly one fold fits; then none.
    assert bounds(5, 19, 10, 5, 5) == [(5, 14, 15, 19, 19)]
    assert bounds(5, 18, 10, 5, 5) == []


def test_choose_and_rank_hand_worked():
    v = np.array([np.nan, 1.0, 3.0, 3.0, -2.0])
    assert choose(v, minimise=False) == 2  # 3.0 twice: the first wins; NaN never
    assert choose(v, minimise=True) == 4
    assert choose(np.array([np.nan, np.nan]), minimise=False) == 0
    assert [rank_of(v, j, minimise=False) for j in range(5)] == [5, 3, 1, 1, 4]
    assert [rank_of(v, j, minimise=True) for j in range(5)] == [5, 2, 3, 3, 1]


def test_fold_dates_in_folds_table(tmp_path, synth_file):
    panel = sweep.load_panel(synth_file)
    start = panel.dates[50].item()  # after the warm-up of 20: the study's start wins
    study = write_study(tmp_path / "dates.toml", synth_file, study={"start": str(start)},
                        wf={"train_days": 60, "test_days": 30, "step_days": 45, "anchored": True})
    summary = run(study, tmp_path / "out", jobs=1)
    folds = pl.read_parquet(tmp_path / "out" / "folds.parquet")
    T = panel.shape[0]  # 400: e = 399; fold k tests 110 + 45k .. 139 + 45k while <= 399
    expect = [(50, 109 + 45 * k, 110 + 45 * k, 139 + 45 * k) for k in range(6)]
    assert 139 + 45 * 5 <= T - 1 < 139 + 45 * 6
    got = [tuple(int((np.datetime64(row[c]) - panel.dates[0]).astype(int))
                 for c in ("train_start", "train_end", "test_start", "test_end"))
           for row in folds.iter_rows(named=True)]
    assert got == expect
    assert folds["fold"].to_list() == list(range(6))
    assert summary.n_configs == 6 * 8 == summary.n_run
    assert (folds["n_candidates"] == 8).all()
    # Without a start date, s0 is W = 20, the longest window of any candidate.
    study2 = write_study(tmp_path / "w.toml", synth_file, wf=BASE_WF)
    _, pl_, wf_folds = prepare(sweep.load_study(study2))
    assert (pl_.s, wf_folds[0].train_start, wf_folds[0].test_start) == (20, 20, 110)


# ---- the choice --------------------------------------------------------------------


def planted_panel_file(path: Path) -> Path:
    """Calm coins trend up, wild coins trend down: long the low-volatility end wins by a mile."""
    rng = np.random.default_rng(11)
    T, N = 700, 20
    calm = np.arange(N) % 2 == 0
    drift = np.where(calm, 0.003, -0.003)
    vol = np.where(calm, 0.01, 0.05)
    close = 100.0 * np.exp(np.cumsum(drift + vol * rng.standard_normal((T, N)), axis=0))
    dates = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-01") + T)
    pl.DataFrame({"date": np.repeat(dates, N), "symbol": [f"C{i:02d}" for i in range(N)] * T,
                  "close": close.ravel()}).with_columns(pl.col("date").cast(pl.Date)).write_parquet(path)
    return path


def test_planted_best_configuration_is_chosen(tmp_path):
    data = planted_panel_file(tmp_path / "planted.parquet")
    # "high" first: a tie would go to the wrong side, so only the data can pick "low".
    study = write_study(tmp_path / "planted.toml", data, backtest={"factor": "volatility", "window": 20},
                        grid={"long": ["high", "low"], "rebalance_days": [1, 7]},
                        wf={"train_days": 120, "test_days": 60})
    run(study, tmp_path / "out", jobs=2)
    folds = pl.read_parquet(tmp_path / "out" / "folds.parquet")
    assert folds.height == (700 - 20 - 120) // 60  # 9
    assert (folds["long"] == "low").mean() >= 0.8
    # Out of sample the planted side keeps winning: ranked in the top half of 4 each time.
    assert (folds.filter(pl.col("long") == "low")["test_rank"] <= 2).all()


def _optuna_study(path: Path, data: Path, **wf) -> Path:
    study = write_study(path, data, backtest={"factor": "volatility", "window": 20}, grid={},
                        wf={"train_days": 120, "test_days": 60, "inner": "optuna", **wf})
    study.write_text(study.read_text() + '[space]\nlong = ["high", "low"]\nrebalance_days = {low = 1, high = 7}\n'
                     '\n[optuna]\nn_trials = 8\nsampler = "random"\nseed = 3\n')
    return study


def test_inner_optuna_search_chooses_on_the_train_window(tmp_path):
    """Each fold searches on its train window alone: the planted side wins, every fold's
    train score equals a backtest on a panel that ends at the train end, and --jobs
    does not change the searches (each is seeded by its fold)."""
    data = planted_panel_file(tmp_path / "planted.parquet")
    study_path = _optuna_study(tmp_path / "search.toml", data)
    run(study_path, tmp_path / "a", jobs=1)
    run(study_path, tmp_path / "b", jobs=2)
    folds = pl.read_parquet(tmp_path / "a" / "folds.parquet")
    assert_frame_equal(folds, pl.read_parquet(tmp_path / "b" / "folds.parquet"))
    assert folds.height == (700 - 20 - 120) // 60
    assert (folds["long"] == "low").mean() >= 0.8
    assert (folds["n_candidates"] <= 8).all() and (folds["n_candidates"] >= 2).all()
    panel = sweep.load_panel(data)
    _, _, wf_folds = prepare(sweep.load_study(study_path))
    for f, row in zip(wf_folds, folds.iter_rows(named=True)):
        cfg = {"factor": "volatility", "window": 20, "fee_bps": 10, "long": row["long"],
               "rebalance_days": row["rebalance_days"]}
        assert config_id(sweep.backtest(panel, **cfg).params) == row["config_id"]
        assert_close(row["train_sharpe"], objective_of(cut(panel, f.train_end), f.train_start, f.train_end, cfg,
                                                       "sharpe"), f"fold {f.fold}")
        assert_close(row["test_sharpe"], objective_of(panel, f.test_start, f.test_end, cfg, "sharpe"))


@pytest.mark.parametrize("objective", ["sharpe", "turnover"])
def test_choice_uses_the_train_window_only(tmp_path, synth_file, objective):
    """Each fold's choice equals the best of one-off backtests on a panel that ends at the train end."""
    study_path = write_study(tmp_path / "choice.toml", synth_file, study={"objective": objective},
                             wf={"train_days": 90, "test_days": 60})
    run(study_path, tmp_path / "out", jobs=2)
    folds = pl.read_parquet(tmp_path / "out" / "folds.parquet")
    study = sweep.load_study(study_path)
    configs = study.resolved_configs()
    panel = sweep.load_panel(synth_file)
    _, _, wf_folds = prepare(study)
    sign = -1.0 if objective == "turnover" else 1.0
    chosen_ids = set()
    for f, row in zip(wf_folds, folds.iter_rows(named=True)):
        past = cut(panel, f.train_end)
        train = [objective_of(past, f.train_start, f.train_end, p, objective) for p in configs]
        keyed = [sign * v if not math.isnan(v) else -math.inf for v in train]
        best = keyed.index(max(keyed))
        assert row["config_id"] == config_id(configs[best])
        assert_close(row[f"train_{objective}"], train[best], f"fold {f.fold} train {objective}")
        test = [objective_of(panel, f.test_start, f.test_end, p, objective) for p in configs]
        better = sum(1 for v in test if not math.isnan(v) and sign * v > sign * test[best])
        assert row["test_rank"] == better + 1, f"fold {f.fold}"
        assert_close(row[f"test_{objective}"], test[best], f"fold {f.fold} test {objective}")
        chosen_ids.add(row["config_id"])
    if objective == "sharpe":
        assert len(chosen_ids) > 1, "the choice should depend on the data for this check to bite"


def test_scrambling_a_test_window_changes_nothing_before_it(tmp_path, synth_file, synth_run):
    study_path, out, _ = synth_run
    base = pl.read_parquet(out / "folds.parquet")
    k = 2
    cut_date = base["test_start"][k]
    rng = np.random.default_rng(5)
    df = pl.read_parquet(synth_file)
    later = (df["date"] >= cut_date).to_numpy()
    noise = np.where(later, np.exp(rng.normal(0.0, 0.2, df.height)), 1.0)
    scrambled = df.with_columns([pl.col(c) * pl.Series(noise) for c in ("close", "market_cap", "funding_rate")])
    data = tmp_path / "scrambled.parquet"
    scrambled.write_parquet(data)
    study = write_study(tmp_path / "scrambled.toml", data, wf=BASE_WF)
    run(study, tmp_path / "out", jobs=2)
    new = pl.read_parquet(tmp_path / "out" / "folds.parquet")
    assert new.height == base.height
    train_cols = ["config_id"] + [c for c in base.columns if c.startswith("train_")]
    assert_frame_equal(new.head(k + 1).select(train_cols), base.head(k + 1).select(train_cols))
    # Earlier folds' test windows end before the scrambled days.
    assert_frame_equal(new.head(k), base.head(k))
    # The scramble did reach fold k's test window.
    assert new["test_total_return"][k] != base["test_total_return"][k]


# ---- the stitched out-of-sample series ------------------------------------------------


def test_stitched_series_equals_fresh_backtests(synth_run, synth_file):
    study_path, out, _ = synth_run
    folds = pl.read_parquet(out / "folds.parquet")
    oos = pl.read_parquet(out / "oos_returns.parquet")
    summary = json.loads((out / "summary.json").read_text())
    configs = {config_id(p): p for p in sweep.load_study(study_path).resolved_configs()}
    panel = sweep.load_panel(synth_file)
    parts = []
    for row in folds.iter_rows(named=True):
        res = sweep.backtest(panel, start=row["test_start"], end=row["test_end"], **configs[row["config_id"]])
        got = oos.filter(pl.col("fold") == row["fold"])
        assert got["date"].to_list() == res.returns["date"].to_list()
        np.testing.assert_allclose(got["ret"].to_numpy(), res.returns["ret"].to_numpy(), rtol=0, atol=1e-12)
        # The fold's test metrics (the candidate run) agree with its stitched days.
        assert_close(row["test_total_return"], float(np.prod(1 + got["ret"].to_numpy()) - 1), "test_total_return")
        parts.append(res)
    R = np.concatenate([r.returns["ret"].to_numpy() for r in parts])
    np.testing.assert_allclose(oos["ret"].to_numpy(), R, rtol=0, atol=1e-12)
    assert oos["date"].is_sorted() and oos["date"].n_unique() == oos.height
    m = summary["metrics"]
    assert_close(m["total_return"], float(np.prod(1 + oos["ret"].to_numpy()) - 1), "total_return")
    assert_close(m["sharpe"], float(R.mean() / R.std(ddof=1) * math.sqrt(365)), "sharpe")
    tau = np.concatenate([r.returns["turnover"].to_numpy() for r in parts])
    assert_close(m["turnover"], float(tau.sum() * 365 / len(R)), "turnover")
    assert_close(m["cost_paid"], float(np.concatenate([r.returns["cost"].to_numpy() for r in parts]).sum()), "cost")
    assert m["n_rebalances"] == sum(r.metrics["n_rebalances"] for r in parts) == folds["test_n_rebalances"].sum()
    is_mean = float(folds["train_sharpe"].mean())
    assert_close(summary["is_sharpe_mean"], is_mean, "is_sharpe_mean")
    assert_close(summary["oos_sharpe"], m["sharpe"], "oos_sharpe")
    assert_close(summary["oos_is_sharpe_ratio"], m["sharpe"] / is_mean, "ratio")
    assert summary["oos_days"] == oos.height == 40 * folds.height
    assert (folds["schema_version"] == sweep.results.SCHEMA_VERSION).all()


def test_overlapping_test_windows_keep_the_latest_fold(tmp_path, synth_file):
    study = write_study(tmp_path / "overlap.toml", synth_file,
                        wf={"train_days": 90, "test_days": 50, "step_days": 20})
    run(study, tmp_path / "out", jobs=2)
    folds = pl.read_parquet(tmp_path / "out" / "folds.parquet")
    oos = pl.read_parquet(tmp_path / "out" / "oos_returns.parquet")
    panel = sweep.load_panel(synth_file)
    configs = {config_id(p): p for p in sweep.load_study(study).resolved_configs()}
    # Days run without a gap from the first test start to the last test end, each once.
    first, last = folds["test_start"][0], folds["test_end"][-1]
    assert oos["date"].to_list() == pl.date_range(first, last, eager=True).to_list()
    starts = folds["test_start"].to_list()
    for row in folds.iter_rows(named=True):
        k = row["fold"]
        keep_end = folds["test_end"][k] if k + 1 == folds.height else starts[k + 1]
        mine = oos.filter(pl.col("fold") == k)
        n = (keep_end - row["test_start"]).days + (1 if k + 1 == folds.height else 0)
        assert mine.height == n
        full = sweep.backtest(panel, start=row["test_start"], end=row["test_end"], **configs[row["config_id"]])
        np.testing.assert_allclose(mine["ret"].to_numpy(), full.returns["ret"].to_numpy()[:n], rtol=0, atol=1e-12)


def test_results_do_not_depend_on_jobs(tmp_path, synth_file, synth_run):
    study_path, out2, _ = synth_run
    run(study_path, tmp_path / "out1", jobs=1)
    for name in ("folds.parquet", "oos_returns.parquet"):
        assert_frame_equal(pl.read_parquet(tmp_path / "out1" / name), pl.read_parquet(out2 / name))
    assert json.loads((tmp_path / "out1" / "summary.json").read_text()) == \
        json.loads((out2 / "summary.json").read_text())


def test_rerun_and_force(tmp_path, synth_file):
    study = write_study(tmp_path / "a.toml", synth_file, wf=BASE_WF)
    out = tmp_path / "out"
    first = run(study, out, jobs=2)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["walk_forward"]["folds"] == first.n_configs // 8
    assert manifest["study"]["kind"] == "walk_forward"
    again = run(study, out, jobs=2)
    assert (again.n_run, again.n_resumed) == (0, first.n_configs)
    other = write_study(tmp_path / "a.toml", synth_file, wf={**BASE_WF, "anchored": True})
    with pytest.raises(sweep.SweepError, match="different study"):
        run(other, out, jobs=2)
    forced = run(other, out, jobs=2, force=True)
    assert forced.n_run == first.n_configs
    assert json.loads((out / "manifest.json").read_text())["walk_forward"]["anchored"] is True


# ---- refusals --------------------------------------------------------------------------

BAD = {
    # case: ([walk_forward] table or None, extra TOML, what the one line must name)
    "missing_table": (None, "", ["[walk_forward]", "train_days"]),
    "missing_test_days": ({"train_days": 90}, "", ["[walk_forward]", "test_days"]),
    "train_days_1": ({"train_days": 1, "test_days": 40}, "", ["[walk_forward]", "train_days = 1", "at least 2"]),
    "test_days_0": ({"train_days": 90, "test_days": 0}, "", ["test_days = 0", "at least 1"]),
    "step_days_0": ({**BASE_WF, "step_days": 0}, "", ["step_days = 0", "at least 1"]),
    "train_days_string": ({"train_days": "90", "test_days": 40}, "", ["train_days = '90'", "integer"]),
    "train_days_float": ({"train_days": 90.0, "test_days": 40}, "", ["train_days = 90.0", "integer"]),
    "anchored_string": ({**BASE_WF, "anchored": "yes"}, "", ["anchored = 'yes'", "true or false"]),
    "unknown_key": ({**BASE_WF, "train_day": 5}, "", ["'train_day'", "did you mean 'train_days'"]),
    "inner_typo": ({**BASE_WF, "inner": "gird"}, "", ["inner = 'gird'", "did you mean 'grid'"]),
    "inner_optuna_without_space": ({**BASE_WF, "inner": "optuna"}, "", ["inner = 'optuna'", "[space]"]),
    "space_with_grid": (BASE_WF, "[space]\nwindow = [5, 20]\n", ["[space]", "inner = 'optuna'"]),
    "optuna_storage": ({**BASE_WF, "inner": "optuna"}, "[space]\nwindow = [5, 20]\n[optuna]\nn_trials = 3\n"
                       "storage = \"sqlite:///x.db\"\n", ["storage", "in memory"]),
    "no_fold_fits": ({"train_days": 300, "test_days": 100}, "", ["[walk_forward]", "train_days = 300",
                                                                 "test_days = 100", "no fold fits"]),
}


@pytest.fixture(scope="module")
def refusals(tmp_path_factory, synth_file):
    """Every bad study run through the CLI at once (each is a fresh interpreter)."""
    root = tmp_path_factory.mktemp("bad")

    def one(case):
        wf, extra, _ = BAD[case]
        folder = root / case
        folder.mkdir()
        study = write_study(folder / f"{case}.toml", synth_file, wf=wf, extra=extra)
        r = subprocess.run([sys.executable, "-m", "sweep", "run", str(study)], cwd=folder,
                           capture_output=True, text=True, timeout=300)
        return case, (r, study, sorted(p.name for p in folder.iterdir()))

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, BAD))


@pytest.mark.parametrize("case", list(BAD))
def test_bad_walk_forward_tables_are_refused(refusals, case):
    r, study, files = refusals[case]
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for needle in [str(study)] + BAD[case][2]:
        assert needle in lines[0], f"{needle!r} is not named in: {lines[0]}"
    assert files == [study.name], "a refused run wrote files"


# ---- the shipped study -------------------------------------------------------------------


def test_shipped_study_validates_and_runs(tmp_path):
    path = ROOT / "studies" / "volatility_walk_forward.toml"
    study = sweep.load_study(path)
    assert (study.kind, study.objective) == ("walk_forward", "sharpe")
    cfg = settings(study)
    assert (cfg.train_days, cfg.test_days, cfg.step_days, cfg.anchored, cfg.inner) == (730, 180, 180, False, "grid")
    assert study.fixed["exclude"] == sweep.load_study(ROOT / "studies" / "volatility_rebalance.toml").fixed["exclude"]
    assert (study.fixed["fee_bps"], study.fixed["slippage_bps"]) == (10, 5)
    assert study.axes == {"rebalance_days": [1, 3, 7, 14, 30], "window": [14, 30, 60, 90],
                          "weighting": ["equal", "risk_parity"]}
    _, pl_, folds = prepare(study)
    # W = 90; (2534 days - 90 - 730) // 180 = 9 complete test windows.
    assert pl_.panel.shape[0] == 2534 and pl_.s == 90
    assert len(folds) == (2534 - 90 - 730) // 180 == 9
    summary = run(path, tmp_path / "out", jobs=2)
    assert summary.n_configs == 40 * 9
    assert pl.read_parquet(tmp_path / "out" / "folds.parquet").height == 9
