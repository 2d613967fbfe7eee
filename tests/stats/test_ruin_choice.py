"""A ruined book is never "the best" (issue: answers a researcher can act on, point 2).

The objective here is ``turnover`` (lower is better): a book closed by ruin
trades nothing after its ruin day, so by turnover a ruined book would win
every ranking that let it in. Every kind's choice is checked against the
trials table read back and ranked in the test with numpy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import sweep
from sweep.stats.choose import best_index
from sweep.study.walk_forward import choose

GRID = """
[study]
name = "{name}"
kind = "{kind}"
objective = "turnover"
data = "{data}"

[backtest]
factor = "momentum"
q = 3
{backtest}

[{table}]
{body}
"""
# A fee of 200 % of the traded value ruins a book by cost on its first rebalance (SEMANTICS §8);
# a gross exposure of 12 x NAV ruins some by price.
LEVER = "fee_bps = [10.0, 20000.0]\nlong_allocation = [0.5, 6.0]\nshort_allocation = [0.5, 6.0]\nrebalance_days = [1, 3]\nwindow = [3, 10]"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("ruin") / "panel.parquet"
    sweep.synth_panel(n_symbols=12, n_days=240, seed=3).write_parquet(path)
    return path


def _study(tmp: Path, data: Path, name: str, kind: str = "grid", table: str = "grid", body: str = LEVER,
           backtest: str = "") -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(GRID.format(name=name, kind=kind, data=data, table=table, body=body, backtest=backtest))
    return path


def _run(path: Path, out: Path) -> Path:
    sweep.run_study(sweep.load_study(path), out=out, progress=False, jobs=1)
    return out


def _best_not_ruined(df: pl.DataFrame, objective: str = "turnover") -> dict:
    ok = df.filter((pl.col("ruined") == 0.0) & pl.col(objective).is_not_nan())
    return ok.sort(objective, descending=False, maintain_order=True).row(0, named=True)


@pytest.fixture(scope="module")
def grid(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("grid")
    return _run(_study(tmp, data, "levered"), tmp / "levered")


def test_the_grid_has_ruined_books_that_would_win(grid):
    trials = pl.read_parquet(grid / "trials.parquet")
    ruined = trials.filter(pl.col("ruined") == 1.0)
    assert ruined.height > 0 and trials.filter(pl.col("ruined") == 0.0).height > 0
    # Without the rule, a ruined book would be the best by turnover: the test below is not hollow.
    assert trials.sort("turnover").row(0, named=True)["ruined"] == 1.0


def test_grid_summary_best_is_not_ruined(grid):
    trials = pl.read_parquet(grid / "trials.parquet")
    summary = json.loads((grid / "summary.json").read_text())
    assert summary["best"]["config_id"] == _best_not_ruined(trials)["config_id"]
    assert summary["n_ruined"] == trials.filter(pl.col("ruined") == 1.0).height


def test_best_index_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = rng.normal(size=8).round(1)
        v[rng.random(8) < 0.2] = np.nan
        ruined = (rng.random(8) < 0.3).astype(float)
        for objective, sign in (("sharpe", 1.0), ("turnover", -1.0)):
            ok = [i for i in range(8) if np.isfinite(v[i]) and ruined[i] == 0]
            want = -1 if not ok else min(ok, key=lambda i: (-sign * v[i], i))
            assert best_index(v, objective, ruined) == want


def test_walk_forward_fold_choice_skips_ruined_candidates():
    values = np.array([0.1, 0.5, 0.3])
    assert choose(values, minimise=True, ruined=np.array([1.0, 0.0, 0.0])) == 2
    assert choose(values, minimise=False, ruined=np.array([0.0, 1.0, 0.0])) == 2
    # Every candidate ruined: the best of them still trades (train_ruined says so).
    assert choose(values, minimise=False, ruined=np.ones(3)) == 1


def test_walk_forward_never_chooses_a_ruined_train_book(tmp_path, data):
    body = f"{LEVER}\n\n[walk_forward]\ntrain_days = 80\ntest_days = 40"
    out = _run(_study(tmp_path, data, "wf", kind="walk_forward", body=body), tmp_path / "wf")
    folds = pl.read_parquet(out / "folds.parquet")
    assert (folds["train_ruined"] == 0.0).all()
    # Rerun each fold's candidates on its train window: the choice is their best not ruined.
    panel = sweep.load_panel(data)
    study = sweep.load_study(tmp_path / "wf.toml")
    from sweep.engine.workspace import Evaluator
    from sweep.study.grid import plan
    configs = plan(study).configs
    ev = Evaluator(panel)
    j, r = sweep.METRICS.index("turnover"), sweep.METRICS.index("ruined")
    for row in folds.iter_rows(named=True):
        s = panel.day_index(row["train_start"], "start")
        e = panel.day_index(row["train_end"], "end")
        m, _ = ev.run(configs, s, e)
        want = best_index(m[:, j], "turnover", m[:, r])
        assert row["config_id"] == sweep.backtest(panel, start=row["train_start"], end=row["train_end"],
                                                  **configs[want]).config_id


def test_optuna_best_is_not_ruined_and_ruined_trials_fail(tmp_path, data):
    space = ("long_allocation = [0.5, 6.0]\nshort_allocation = [0.5, 6.0]\nrebalance_days = {low = 1, high = 4}"
             "\nwindow = [3, 10]\n\n[optuna]\nn_trials = 24\nsampler = \"random\"\nseed = 1")
    out = _run(_study(tmp_path, data, "opt", kind="optuna", table="space", body=space), tmp_path / "opt")
    trials = pl.read_parquet(out / "trials.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    assert trials.filter(pl.col("ruined") == 1.0).height > 0
    assert manifest["best"]["config_id"] == _best_not_ruined(trials)["config_id"]
    assert manifest["n_ruined"] == trials.filter(pl.col("ruined") == 1.0).height
    # A ruined trial is told to Optuna as failed: the sampler never learns from its ratios.
    import optuna
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(manifest["optuna"]["storage"]))
    states = {t.number: t.state.name for t in
              optuna.load_study(study_name=manifest["optuna"]["study_name"], storage=storage).trials}
    for row in trials.iter_rows(named=True):
        assert states[row["trial_number"]] == ("FAIL" if row["ruined"] == 1.0 else "COMPLETE"), row


def test_monte_carlo_p_best_counts_no_ruined_book(tmp_path, data):
    body = 'method = "subperiod"\nn_samples = 6\nsubperiod_days = 60\nseed = 2'
    text = LEVER.replace("rebalance_days = [1, 3]\n", "")
    path = _study(tmp_path, data, "mc", kind="monte_carlo", table="grid",
                  body=f"{text}\n\n[monte_carlo]\n{body}", backtest="rebalance_days = 2")
    out = _run(path, tmp_path / "mc")
    samples = pl.read_parquet(out / "samples.parquet")
    summary = pl.read_parquet(out / "summary.parquet")
    assert samples.filter(pl.col("ruined") == 1.0).height > 0
    want = {cid: 0.0 for cid in summary["config_id"]}
    n = samples["sample"].n_unique()
    for _, rows in samples.group_by("sample"):
        ok = rows.filter((pl.col("ruined") == 0.0) & pl.col("turnover").is_not_nan())
        if ok.height == 0:
            continue
        winners = ok.filter(pl.col("turnover") == ok["turnover"].min())["config_id"].to_list()
        for w in winners:
            want[w] += 1 / len(winners) / n
    for row in summary.iter_rows(named=True):
        assert row["p_best"] == pytest.approx(want[row["config_id"]], abs=1e-12)
        mine = samples.filter(pl.col("config_id") == row["config_id"])
        assert row["p_ruined"] == pytest.approx(mine["ruined"].mean(), abs=1e-12)


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweep", *map(str, args)], capture_output=True, text=True)


def test_portfolio_and_export_choose_no_ruined_leg(tmp_path, grid):
    trials = pl.read_parquet(grid / "trials.parquet")
    out = tmp_path / "pf"
    proc = _cli("portfolio", grid, "--out", out)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "portfolio.json").read_text())
    leg = doc["strategies"][0]
    assert leg["config_id"] == _best_not_ruined(trials)["config_id"]
    n_ruined = trials.filter(pl.col("ruined") == 1.0).height
    assert leg["ruined_set_aside"] == n_ruined
    assert f"{n_ruined} ruined configurations" in proc.stdout
    live = tmp_path / "live.json"
    proc = _cli("export", grid, "--live-config", live)
    assert proc.returncode == 0, proc.stderr
    prov = json.loads(live.read_text())["provenance"]
    assert prov["chosen"]["momentum"]["config_id"] == leg["config_id"]
    assert set(prov["legs"]["momentum"]) >= {"dsr", "pbo", "n_trials"}
    assert prov["legs"]["momentum"]["n_trials"] == trials.height
    dsr = prov["legs"]["momentum"]["dsr"]
    assert (dsr is None or dsr < 0.95) == ("deflated Sharpe" in proc.stderr)


def test_a_folder_whose_books_are_all_ruined_is_refused(tmp_path, data):
    body = "fee_bps = [20000.0]\nrebalance_days = [1]\nwindow = [3]"
    out = _run(_study(tmp_path, data, "doomed", body=body), tmp_path / "doomed")
    assert pl.read_parquet(out / "trials.parquet")["ruined"].to_list() == [1.0]
    for args in (("portfolio", out, "--out", tmp_path / "pf"), ("export", out, "--live-config", tmp_path / "x.json")):
        proc = _cli(*args)
        assert proc.returncode == 2
        assert "ruined" in proc.stderr and str(out) in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


def test_a_folder_of_the_old_schema_is_refused_with_a_rerun_hint(tmp_path, grid):
    import shutil
    old = tmp_path / "old"
    shutil.copytree(grid, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["schema_version"] = 1
    (old / "manifest.json").write_text(json.dumps(manifest))
    for args in (("portfolio", old, "--out", tmp_path / "pf"), ("show", old)):
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stdout)
        assert "schema_version 1" in proc.stderr and "rerun" in proc.stderr
