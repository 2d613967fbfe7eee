"""How ``sweep run`` ends: the best book not ruined, the verdict on the search, the comparison of
rebalance periods, the next commands; progress in a pipe at most every 10 %.

The grids run on the spiky panel of ``test_cli_show`` (ruined books by price
and by cost). With ``objective = "turnover"`` (lower is better) a book closed
on its first days would win, so the best book printed must be checked
against the table's best among the books not ruined, computed here with numpy.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import sweep.stats.compare
from sweep.cli.main import main
from sweep.core.errors import SweepError
from sweep.stats.verdict import overall_verdict
from test_cli_show import grid_study

ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["run", *map(str, args)])
    return rc, out.getvalue(), err.getvalue()


def unwrap(text: str) -> str:
    """The ending's sentences, each on one line (they are wrapped with a two-space indent)."""
    return re.sub(r"\n  (?!sweep )", " ", text)


@pytest.fixture(scope="module")
def turnover_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run_end")
    out = root / "my results"  # a space: the next commands must quote it
    rc, text, err = run(grid_study(root, "by_turnover", objective="turnover"), "--out", out, "--jobs", "2")
    assert rc == 0, err
    return out, unwrap(text), err


def test_ends_with_the_best_book_not_ruined(turnover_run):
    out, text, _ = turnover_run
    t = pl.read_parquet(out / "trials.parquet")
    turnover, ruined = t["turnover"].to_numpy(), t["ruined"].to_numpy()
    assert ruined[np.nanargmin(turnover)] == 1.0, "fixture: the lowest turnover must be a ruined book's"
    ok = np.isfinite(turnover) & (ruined == 0.0)
    best = int(np.flatnonzero(ok)[np.argmin(turnover[ok])])
    m = re.search(r"^Best book not ruined: ([0-9a-f]{16}) \((.*?)\): turnover ([-\d.]+), CAGR ([-\d.]+)%, "
                  r"max drawdown ([-\d.]+)%; (\d+) of (\d+) books were ruined", text, re.M)
    assert m, text
    row = t.row(best, named=True)
    assert m.group(1) == row["config_id"]
    assert m.group(2) == ", ".join(f"{k} {row[k]:g}" for k in ("rebalance_days", "window", "short_allocation",
                                                               "fee_bps"))
    assert abs(float(m.group(3)) - row["turnover"]) <= 5e-4
    assert abs(float(m.group(4)) - 100 * row["cagr"]) <= 0.05
    assert abs(float(m.group(5)) - 100 * row["max_drawdown"]) <= 0.05
    assert (int(m.group(6)), int(m.group(7))) == (int(ruined.sum()), t.height)


def test_ends_with_the_verdict_the_comparison_and_the_next_commands(turnover_run):
    out, text, _ = turnover_run
    summary = json.loads((out / "summary.json").read_text())
    assert f"\nThe search: {overall_verdict(summary).sentence}\n" in text
    verdict = sweep.stats.compare.compare(out, "rebalance_days")["verdict"]
    assert f"\nRebalance period: {verdict}\n" in text
    q = shlex.quote(str(out))
    assert text.endswith(f"Next:\n  sweep show {q}\n  sweep compare {q} --param rebalance_days\n"
                         f"  sweep report {q}\n")


def test_a_failing_comparison_does_not_fail_the_run(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise SweepError("no slice to compare")

    monkeypatch.setattr(sweep.stats.compare, "compare", refuse)
    rc, text, err = run(grid_study(tmp_path, "g", grid={"rebalance_days": [1, 3], "window": [5, 10]}),
                        "--out", tmp_path / "out", "--jobs", "1")
    assert rc == 0, err
    assert "\nRebalance period: not compared (no slice to compare)\n" in unwrap(text)
    assert "Best book not ruined: " in text and "sweep report" in text


def test_quiet_prints_nothing(tmp_path):
    rc, text, err = run(grid_study(tmp_path, "q", grid={"rebalance_days": [1, 3]}), "--out", tmp_path / "o",
                        "--quiet")
    assert (rc, text, err) == (0, "", "")


def test_optuna_ends_with_its_best_book_not_ruined(tmp_path):
    grid_study(tmp_path, "unused")  # writes the panel
    study = tmp_path / "opt.toml"
    study.write_text(f'[study]\nname = "opt"\nkind = "optuna"\nobjective = "sharpe"\n'
                     f'data = "{tmp_path / "panel.parquet"}"\n[backtest]\nfactor = "volatility"\n'
                     '[space]\nrebalance_days = {low = 1, high = 10}\nwindow = {low = 3, high = 20}\n'
                     'short_allocation = [0.5, 3.0]\n[optuna]\nn_trials = 24\nsampler = "tpe"\nseed = 0\n')
    out = tmp_path / "o"
    rc, text, err = run(study, "--out", out, "--jobs", "1")
    assert rc == 0, err
    t = pl.read_parquet(out / "trials.parquet").unique("config_id", keep="first", maintain_order=True)
    sharpe, ruined = t["sharpe"].to_numpy(), t["ruined"].to_numpy()
    ok = np.isfinite(sharpe) & (ruined == 0.0)
    best = t["config_id"][int(np.flatnonzero(ok)[np.argmax(sharpe[ok])])]
    assert re.search(rf"^Best book not ruined: {best} ", text, re.M), text
    assert f"sweep show {out}\n  sweep report {out}\n" in text and "compare" not in text.split("Next:")[1]


def test_progress_in_a_pipe_is_a_line_per_tenth_at_most(tmp_path):
    """640 configurations on 8 workers run as 20 chunks: one line per chunk would be 20 lines."""
    grid = {"rebalance_days": list(range(1, 41)), "window": [3, 5, 7, 10], "weighting": ["equal", "risk_parity"],
            "fee_bps": [10, 20000]}
    study = grid_study(tmp_path, "many", grid=grid)
    r = subprocess.run([sys.executable, "-m", "sweep", "run", study, "--out", str(tmp_path / "o"), "--jobs", "8"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    pct = [int(m.group(1)) for m in re.finditer(r"^running: (\d+) % \((\d[\d,]*) of 640", r.stderr, re.M)]
    assert 2 <= len(pct) <= 10, r.stderr
    tenths = [p // 10 for p in pct]
    assert tenths == sorted(set(tenths)), r.stderr  # never two lines in the same tenth
    assert pct[-1] == 100
    assert "Best book not ruined: " in r.stdout


def test_the_readme_tour_grid_is_the_study_it_runs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", text[text.index("### Study files"):], re.S).group(1)
    study = tomllib.loads((ROOT / "studies" / "volatility_rebalance.toml").read_text(encoding="utf-8"))
    assert tomllib.loads(block) == study
