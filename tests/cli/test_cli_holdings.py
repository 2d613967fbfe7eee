"""``sweep show RESULTS --config ID --holdings DATE``: the holdings printed are the weights of
``sweep.backtest(..., return_weights=True)`` on that day, with the factor value by pandas;
``--holdings all --out FILE`` writes every day's non-zero weights; bad input is one line on
stderr, exit 2."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import polars as pl
import pytest

import sweep
from sweep.cli.main import main
from sweep.results.schema import SCHEMA_VERSION

LINE = re.compile(r"^\s+(\S+)\s+(long|short)\s+(-?\d+\.\d+)\s+(\S+)$")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("holdings")
    data = root / "panel.parquet"
    sweep.synth_panel(n_symbols=12, n_days=150, seed=7, start=dt.date(2021, 1, 1)).write_parquet(data)
    toml = root / "g.toml"
    toml.write_text(f'[study]\nname = "hold"\nkind = "grid"\nobjective = "sharpe"\ndata = "{data}"\n\n'
                    '[backtest]\nfactor = "volatility"\nfee_bps = 10\nweighting = "risk_parity"\n\n'
                    '[grid]\nrebalance_days = [1, 4]\nwindow = [5, 10]\n')
    out = root / "results"
    assert main(["run", str(toml), "--out", str(out), "--quiet", "--jobs", "1"]) == 0
    trials = pl.read_parquet(out / "trials.parquet")
    row = trials.filter((pl.col("rebalance_days") == 4) & (pl.col("window") == 10)).row(0, named=True)
    window = json.loads((out / "manifest.json").read_text())["evaluation_window"]
    panel = sweep.load_panel(data)
    res = sweep.backtest(panel, start=window["start"], end=window["end"], return_weights=True, factor="volatility",
                         fee_bps=10, weighting="risk_parity", rebalance_days=4, window=10)
    return {"root": root, "out": out, "row": row, "window": window, "panel": panel, "res": res,
            "id": row["config_id"][:8]}


def _show(capsys, *argv):
    code = main(["show", *map(str, argv)])
    got = capsys.readouterr()
    return code, got.out, got.err


def test_holdings_on_a_day_are_the_backtests_weights_with_the_factor_value(study, capsys):
    res, panel = study["res"], study["panel"]
    day = dt.date.fromisoformat(study["window"]["start"]) + dt.timedelta(days=45)
    code, out, err = _show(capsys, study["out"], "--config", study["id"], "--holdings", day.isoformat())
    assert code == 0 and err == "", err
    want = res.weights.filter(pl.col("date") == day).drop("date").row(0, named=True)
    held = {m.group(1): (m.group(2), float(m.group(3)), float(m.group(4)))
            for m in map(LINE.match, out.splitlines()) if m}
    assert set(held) == {s for s, w in want.items() if w != 0.0} and held
    for sym, (side, w, _) in held.items():
        assert w == pytest.approx(want[sym], abs=5e-7) and side == ("long" if want[sym] > 0 else "short")
    # The factor value on the last rebalance day on or before DATE (rebalance every 4 days from the start).
    start = dt.date.fromisoformat(study["window"]["start"])
    rebalanced = start + dt.timedelta(days=45 - 45 % 4)
    assert f"last rebalance day on or before it (the schedule's): {rebalanced}" in out
    close = pd.DataFrame(panel.close, index=pd.DatetimeIndex(panel.dates), columns=panel.symbols)
    vol = np.log(close / close.shift(1)).rolling(10).std().loc[pd.Timestamp(rebalanced)]  # SEMANTICS §3, ddof 1
    for sym, (_, _, f) in held.items():
        assert f == pytest.approx(vol[sym], rel=1e-5)
    longs = [w for w in want.values() if w > 0]
    assert f"{len(longs)} long (sum {sum(longs):.4f})" in out


def test_holdings_all_writes_every_days_weights(study, capsys, tmp_path):
    path = tmp_path / "holdings.parquet"
    code, out, err = _show(capsys, study["out"], "--config", study["id"], "--holdings", "all", "--out", path)
    assert code == 0 and err == "" and f"to {path}" in out
    got = pl.read_parquet(path)
    assert got.schema == pl.Schema({"schema_version": pl.Int32, "config_id": pl.String, "date": pl.Date,
                                    "symbol": pl.String, "weight": pl.Float64})
    assert (got["schema_version"] == SCHEMA_VERSION).all() and (got["config_id"] == study["row"]["config_id"]).all()
    w = study["res"].weights
    want = {(d, s): v for d, *vals in w.iter_rows() for s, v in zip(w.columns[1:], vals) if v != 0.0}
    assert {(d, s): v for _, _, d, s, v in got.iter_rows()} == pytest.approx(want, rel=1e-15)
    assert got.height == len(want) and got["date"].is_sorted()
    # One day only, with --out: that day's rows.
    day = study["window"]["end"]
    one = tmp_path / "one.parquet"
    assert _show(capsys, study["out"], "--config", study["id"], "--holdings", day, "--out", one)[0] == 0
    assert pl.read_parquet(one)["date"].unique().to_list() == [dt.date.fromisoformat(day)]


@pytest.mark.parametrize("args, fragment", [
    (["--holdings", "2030-01-01"], "--holdings 2030-01-01: outside the evaluation window"),
    (["--holdings", "2020-12-31"], "--holdings 2020-12-31: outside the evaluation window"),
    (["--holdings", "2021-02-30"], "not a date (YYYY-MM-DD) nor 'all'"),
    (["--holdings", "all"], "--holdings all writes every day's weights: give --out FILE"),
    (["--out", "x.parquet"], "--out writes holdings"),
])
def test_bad_holdings_are_one_line_errors(study, capsys, args, fragment):
    code, out, err = _show(capsys, study["out"], "--config", study["id"], *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and fragment in err, err


def test_holdings_need_a_configuration_that_exists(study, capsys):
    code, out, err = _show(capsys, study["out"], "--holdings", study["window"]["end"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--holdings needs --config ID" in err
    code, out, err = _show(capsys, study["out"], "--config", "zzzzzz", "--holdings", study["window"]["end"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--config zzzzzz: no configuration" in err
    code, out, err = _show(capsys, study["out"], "--config", study["id"], "--holdings", "all", "--out",
                           study["root"] / "nowhere" / "h.parquet")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no such folder" in err


def test_data_that_moved_is_one_line_naming_the_way_out(study, capsys, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(study["out"], folder)
    m = json.loads((folder / "manifest.json").read_text())
    m["data"]["path"] = str(tmp_path / "moved.parquet")
    m["study"]["text"] = re.sub(r'data = "[^"]*"', f'data = "{tmp_path / "moved.parquet"}"', m["study"]["text"])
    (folder / "manifest.json").write_text(json.dumps(m))
    code, out, err = _show(capsys, folder, "--config", study["id"], "--holdings", study["window"]["end"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "pass --data" in err
    data = study["panel"].source
    code, out, err = _show(capsys, folder, "--config", study["id"], "--holdings", study["window"]["end"],
                           "--data", data)
    assert code == 0, err
