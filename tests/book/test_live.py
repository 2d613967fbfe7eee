"""``sweep export`` / ``sweep check``: a live configuration written from the studies, read back
with other spellings, and every planted difference found."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

import sweep
from sweep.book import live as L
from sweep.core.errors import SweepError

from conftest import ROOT
from test_portfolio import FACTORS3, cli, run_grid


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("live")
    data = tmp / "panel.parquet"
    sweep.synth_panel(n_symbols=16, n_days=240, seed=21).write_parquet(data)
    multi = run_grid(tmp, data, "multi", 'factor = ["volatility", "momentum", "size"]\n'
                                         'rebalance_days = [1, 5]\nweighting = ["equal", "risk_parity"]')
    return {"tmp": tmp, "multi": multi, "panel": sweep.load_panel(data),
            "trials": pl.read_parquet(multi / "trials.parquet")}


@pytest.fixture(scope="module")
def exported(setup, tmp_path_factory):
    path = tmp_path_factory.mktemp("exp") / "live.json"
    cfg = L.live_config([setup["multi"]], "sharpe")
    path.write_text(json.dumps(cfg))
    return cfg


def write(tmp_path, doc, name="live.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def check(setup, path, **kw):
    return L.check_live(L.read_live(path), [setup["multi"]], **kw)


def differing(report):
    return [(r.factor, r.parameter, r.status) for r in report.rows if r.differs]


def best_row(trials, factor):
    return trials.filter(pl.col("factor") == factor).sort("sharpe", descending=True).row(0, named=True)


# ---- export ------------------------------------------------------------------------------------


def test_export_writes_the_chosen_parameters_and_weights(setup, tmp_path, capsys):
    path = tmp_path / "live.json"
    code, out, err = cli(["export", str(setup["multi"]), "--live-config", str(path), "--weights", "sharpe"], capsys)
    assert code == 0, err
    cfg = json.loads(path.read_text())
    assert list(cfg["params"]) == list(FACTORS3) == list(cfg["strategy_weights"])
    trials = setup["trials"]
    sharpes = []
    for f in FACTORS3:
        row = best_row(trials, f)
        p = cfg["params"][f]
        assert p["rebalance_days"] == row["rebalance_days"]
        assert p["weighting_method"] == row["weighting"]
        assert p["fee_bps"] == 10 and p["slippage_bps"] == 5 and p["exclude"] == ["S003"]
        # What applies, and nothing that does not.
        assert ("vol_window" in p) == (row["weighting"] == "risk_parity")
        assert ("window" in p) == (f != "size") and "top_n" not in p and "max_days" not in p
        assert p["q"] == 5 and p["phase"] == 0 and p["hold"] == "drift"
        # The same backtest as the study's row.
        params = {("weighting" if k == "weighting_method" else k): v for k, v in p.items()}
        assert sweep.backtest(setup["panel"], factor=f, **params).config_id == row["config_id"]
        sharpes.append(row["sharpe"])  # the study's window is the common window here
    w = np.maximum(sharpes, 0) / np.maximum(sharpes, 0).sum()
    np.testing.assert_allclose([cfg["strategy_weights"][f] for f in FACTORS3], w, rtol=1e-9)
    prov = cfg["provenance"]
    manifest = json.loads((setup["multi"] / "manifest.json").read_text())
    assert prov["study"] == ["multi"] and prov["data_fingerprint"] == manifest["data"]["fingerprint"]
    assert prov["evaluation_window"] == {k: manifest["evaluation_window"][k] for k in ("start", "end")}
    assert prov["sweep_version"] == sweep.__version__ and prov["weights"] == "sharpe"
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically: no temporary file left


def test_export_then_check_passes(setup, tmp_path, capsys):
    path = tmp_path / "live.json"
    assert cli(["export", str(setup["multi"]), "--live-config", str(path), "--weights", "inverse_vol"],
               capsys)[0] == 0
    code, out, err = cli(["check", str(path), str(setup["multi"])], capsys)
    assert code == 0, out + err
    assert "matches" in out and "MISMATCH" not in out
    # The weights method comes from the file's provenance.
    report = check(setup, path)
    assert report.method == "inverse_vol" and report.n_differences == 0
    assert sum(r.parameter == "strategy_weight" for r in report.rows) == 3


# ---- planted differences --------------------------------------------------------------------------


def test_spellings_of_a_matching_file_pass_and_are_reported(setup, exported, tmp_path):
    doc = copy.deepcopy(exported)
    alias = {"equal": "equal_weight", "risk_parity": "inverse_vol"}
    for f, p in doc["params"].items():
        p["weighting"] = alias[p.pop("weighting_method")]
        p["rebalance_period"] = str(p.pop("rebalance_days"))
        p["hold"] = "Buy_And_Hold"
        p["q"] = 5.0
    doc["strategy_weights"] = {f: str(round(w, 3)) for f, w in doc["strategy_weights"].items()}
    report = check(setup, write(tmp_path, doc))
    assert report.n_differences == 0, differing(report)
    notes = {(r.factor, r.parameter): r.note for r in report.rows}
    for f in FACTORS3:
        assert "'equal_weight' as 'equal'" in notes[(f, "weighting_method")] or \
               "'inverse_vol' as 'risk_parity'" in notes[(f, "weighting_method")]
        assert "'rebalance_period' as rebalance_days" in notes[(f, "rebalance_days")]
        assert "string" in notes[(f, "rebalance_days")]
        assert "'drift'" in notes[(f, "hold")] and "as 5" in notes[(f, "q")]
        assert "string" in notes[(f, "strategy_weight")]  # rounded to 3 decimals: within the tolerance


def test_rebalance_days_mismatch_with_the_live_values_sharpe(setup, exported, tmp_path, capsys):
    doc = copy.deepcopy(exported)
    f = "momentum"
    chosen = doc["params"][f]["rebalance_days"]
    other = 5 if chosen == 1 else 1
    doc["params"][f]["rebalance_days"] = other
    path = write(tmp_path, doc)
    report = check(setup, path)
    assert differing(report) == [(f, "rebalance_days", "MISMATCH")]
    row = next(r for r in report.rows if r.differs)
    assert (row.backtest, row.live) == (chosen, other)
    # The study ran the live value's configuration: its Sharpe is shown beside the chosen one's.
    trials = setup["trials"]
    best = best_row(trials, f)
    twin = trials.filter((pl.col("factor") == f) & (pl.col("rebalance_days") == other) &
                         (pl.col("weighting") == best["weighting"]))
    assert row.live_sharpe == twin["sharpe"][0] and row.best_sharpe == best["sharpe"]
    assert row.live_sharpe < row.best_sharpe
    code, out, _ = cli(["check", str(path), str(setup["multi"])], capsys)
    assert code == 1 and "MISMATCH" in out and "1 difference" in out


def test_weight_off_and_tolerance(setup, exported, tmp_path):
    doc = copy.deepcopy(exported)
    doc["strategy_weights"]["size"] += 0.004
    assert check(setup, write(tmp_path, doc)).n_differences == 0  # within 0.005
    doc["strategy_weights"]["size"] += 0.05
    report = check(setup, write(tmp_path, doc))
    assert differing(report) == [("size", "strategy_weight", "MISMATCH")]
    assert check(setup, write(tmp_path, doc), tol=0.1).n_differences == 0
    # Compared with another method's weights, the exported (sharpe) weights differ.
    assert check(setup, write(tmp_path, exported), weights="equal").n_differences > 0


def test_missing_factors_on_either_side(setup, exported, tmp_path):
    doc = copy.deepcopy(exported)
    del doc["params"]["size"], doc["strategy_weights"]["size"]
    doc["params"]["beta"] = {"rebalance_days": 7}
    doc["strategy_weights"]["beta"] = 0.1
    report = check(setup, write(tmp_path, doc))
    assert set(differing(report)) == {("size", "(factor)", "MISSING"), ("beta", "(factor)", "MISSING"),
                                      ("size", "strategy_weight", "MISSING"),
                                      ("beta", "strategy_weight", "MISSING")}


def test_unknown_key_absent_default_and_ignored_values(setup, exported, tmp_path):
    doc = copy.deepcopy(exported)
    p = doc["params"]["volatility"]
    p["rebalnce_days"] = p.pop("rebalance_days")  # a misspelt key: unknown, and rebalance_days absent
    p["top_n"] = 3  # with quantile selection: does not apply
    doc["leverage"] = 2
    report = check(setup, write(tmp_path, doc))
    rows = {(r.factor, r.parameter): r for r in report.rows}
    unknown = rows[("volatility", "rebalnce_days")]
    assert unknown.status == "UNKNOWN" and "did you mean 'rebalance_days'" in unknown.note
    assert rows[("-", "leverage")].status == "UNKNOWN"
    assert rows[("volatility", "top_n")].status == "ignored"
    chosen = exported["params"]["volatility"]["rebalance_days"]
    absent = rows[("volatility", "rebalance_days")]
    # Absent: sweep's default (1) applies, which differs only if the study chose another period.
    assert absent.status == ("match" if chosen == 1 else "MISMATCH")
    assert "default" in absent.note


def test_malformed_live_files_are_one_line_errors(setup, exported, tmp_path, capsys):
    good = copy.deepcopy(exported)
    bad_rebalance = copy.deepcopy(good)
    bad_rebalance["params"]["momentum"]["rebalance_days"] = "weekly"
    half_day = copy.deepcopy(good)
    half_day["params"]["momentum"]["rebalance_days"] = 2.5
    unknown_factor = copy.deepcopy(good)
    unknown_factor["params"]["volatilty"] = unknown_factor["params"].pop("volatility")
    bad_weighting = copy.deepcopy(good)
    bad_weighting["params"]["size"]["weighting_method"] = "cap_weighted"
    cases = {
        "not JSON": ('{"params": {', "not valid JSON"),
        "no params": ({"strategy_weights": {}}, "missing key 'params'"),
        "params a list": ({"params": []}, "params must be an object"),
        "rebalance_days text": (bad_rebalance, "params.momentum.rebalance_days = \"weekly\" must be a whole number"),
        "rebalance_days fraction": (half_day, "params.momentum.rebalance_days = 2.5 must be a whole number"),
        "unknown factor": (unknown_factor, "params.volatilty is not a factor (did you mean 'volatility'?)"),
        "bad weighting": (bad_weighting, "params.size.weighting_method = \"cap_weighted\" is not one of"),
    }
    for what, (doc, message) in cases.items():
        path = write(tmp_path, doc, "bad.json")
        code, out, err = cli(["check", str(path), str(setup["multi"])], capsys)
        assert code == 2, what
        assert out == "", what
        lines = err.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and message in lines[0], (what, err)
    with pytest.raises(SweepError, match="cannot read"):
        L.read_live(tmp_path / "absent.json")


def test_python_m_sweep_check(setup, exported, tmp_path):
    path = write(tmp_path, exported)
    proc = subprocess.run([sys.executable, "-m", "sweep", "check", str(path), str(setup["multi"])],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bad = write(tmp_path, {"params": {"momentum": {"rebalance_days": "seven"}}}, "bad.json")
    proc = subprocess.run([sys.executable, "-m", "sweep", "check", str(bad), str(setup["multi"])],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "params.momentum.rebalance_days" in proc.stderr
