"""``sweep show`` on a grid with ruined books: they are set aside and counted, ``--include-ruined``
marks them, the table fits 100 columns with whole headers, and ``--config PREFIX`` prints one row.

The grid runs on a small panel whose wildest coin jumps 60 % in a day: the
volatility factor shorts it, so a short side of 3 x NAV is ruined by price
that day, and a fee of 20,000 bps ruins a book by cost on its first trade
(SEMANTICS §8). Every expected value is read from ``trials.parquet`` with
polars, not from the command's own code.
"""

from __future__ import annotations

import math
import re

import numpy as np
import polars as pl
import pytest

from kernels.metrics import METRICS
from sweep.cli.main import main

SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG", "HHH")
GRID = {"rebalance_days": [1, 2, 5], "window": [5, 10], "short_allocation": [0.5, 3.0], "fee_bps": [10, 3000, 20000]}
WIDTH = 100
ROW = re.compile(r"^\s*(\d+)(†?)\s+([0-9a-f]{6,16})\s")


def spiky_panel(days: int = 150, seed: int = 3) -> pl.DataFrame:
    """Random walks of rising volatility; the wildest (HHH) jumps +60 % on day 100 and +50 % on day 130."""
    rng = np.random.default_rng(seed)
    vol = np.array([0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.08])
    r = rng.normal(0.0, 1.0, (days, len(SYMBOLS))) * vol
    r[100, -1], r[130, -1] = math.log(1.6), math.log(1.5)
    start = np.datetime64("2021-01-01")
    return pl.DataFrame({"date": np.repeat(np.arange(start, start + days), len(SYMBOLS)),
                         "symbol": list(SYMBOLS) * days,
                         "close": (100.0 * np.exp(np.cumsum(r, axis=0))).ravel()}).with_columns(pl.col("date").cast(pl.Date))


def grid_study(root, name: str, objective: str = "sharpe", grid=None) -> str:
    data = root / "panel.parquet"
    if not data.exists():
        spiky_panel().write_parquet(data)
    axes = "".join(f"{k} = {v!r}\n" for k, v in (grid or GRID).items())
    path = root / f"{name}.toml"
    path.write_text(f'[study]\nname = "{name}"\nkind = "grid"\nobjective = "{objective}"\ndata = "{data}"\n\n'
                    f'[backtest]\nfactor = "volatility"\n\n[grid]\n{axes}')
    return str(path)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("show")
    out = root / "results"
    assert main(["run", grid_study(root, "ruin"), "--out", str(out), "--quiet", "--jobs", "2"]) == 0
    trials = pl.read_parquet(out / "trials.parquet")
    ruined = trials.filter((pl.col("ruined") == 1.0) & pl.col("sharpe").is_finite())
    alive = trials.filter((pl.col("ruined") == 0.0) & pl.col("sharpe").is_finite())
    assert ruined.height >= 5 and alive.height >= 5, "the fixture must have ruined and surviving books"
    return out, trials


def show(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    capsys.readouterr()
    rc = main(["show", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def table_rows(out: str) -> list[tuple[int, bool, str]]:
    return [(int(m.group(1)), m.group(2) == "†", m.group(3)) for m in map(ROW.match, out.splitlines()) if m]


def header(out: str) -> list[str]:
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line.strip()) == {"─"})
    return lines[rule - 1].split()


def full_id(prefix: str, trials: pl.DataFrame) -> str:
    hits = [c for c in trials["config_id"].to_list() if c.startswith(prefix)]
    assert len(hits) == 1, f"{prefix} matches {hits}"
    return hits[0]


def test_ruined_books_are_set_aside_and_counted(results, capsys, monkeypatch):
    out, trials = results
    rc, text, err = show(capsys, monkeypatch, out, "--top", 1000)
    assert rc == 0, err
    rows = table_rows(text)
    shown = [full_id(p, trials) for _, _, p in rows]
    finite = trials.filter(pl.col("sharpe").is_finite())
    alive = finite.filter(pl.col("ruined") == 0.0)
    assert sorted(shown) == sorted(alive["config_id"].to_list())
    assert not any(mark for _, mark, _ in rows)
    sharpe = dict(zip(trials["config_id"], trials["sharpe"], strict=True))
    ranked = [sharpe[c] for c in shown]
    assert ranked == sorted(ranked, reverse=True) and [r for r, _, _ in rows] == list(range(1, len(rows) + 1))
    n_ruined = finite.filter(pl.col("ruined") == 1.0).height
    m = re.search(r"^(\d+) ruined books? set aside", text, re.M)
    assert m and int(m.group(1)) == n_ruined, text


def test_include_ruined_marks_exactly_the_ruined(results, capsys, monkeypatch):
    out, trials = results
    rc, text, err = show(capsys, monkeypatch, out, "--top", 1000, "--include-ruined")
    assert rc == 0, err
    rows = table_rows(text)
    finite = trials.filter(pl.col("sharpe").is_finite())
    marked = sorted(full_id(p, trials) for _, mark, p in rows if mark)
    plain = sorted(full_id(p, trials) for _, mark, p in rows if not mark)
    assert marked == sorted(finite.filter(pl.col("ruined") == 1.0)["config_id"].to_list())
    assert plain == sorted(finite.filter(pl.col("ruined") == 0.0)["config_id"].to_list())
    assert "† ruined" in text


def test_by_a_metric_where_ruined_books_would_win(results, capsys, monkeypatch):
    """A book closed on its first days trades least: by turnover it would come first."""
    out, trials = results
    by_turnover = trials.filter(pl.col("turnover").is_finite()).sort("turnover")
    assert by_turnover["ruined"][0] == 1.0, "fixture: the lowest turnover must be a ruined book's"
    rc, text, err = show(capsys, monkeypatch, out, "--by", "turnover", "--top", 3)
    assert rc == 0, err
    alive = by_turnover.filter(pl.col("ruined") == 0.0)
    first = full_id(table_rows(text)[0][2], trials)
    assert trials.filter(pl.col("config_id") == first)["turnover"][0] == alive["turnover"][0]
    assert trials.filter(pl.col("config_id") == first)["ruined"][0] == 0.0


def test_table_fits_100_columns_with_whole_headers(results, capsys, monkeypatch):
    out, trials = results
    rc, text, err = show(capsys, monkeypatch, out, "--top", 1000, "--include-ruined")
    assert rc == 0, err
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    assert "…" not in text and "..." not in text
    head = header(text)
    swept = [k for k, v in GRID.items() if len(v) > 1]
    assert head[:2 + len(swept) + 1] == ["#", "config_id", *swept, "sharpe"]
    assert set(head[2:]) <= set(GRID) | set(METRICS)


def test_best_per_reports_a_group_that_is_all_ruined(results, capsys, monkeypatch):
    out, trials = results
    rc, text, err = show(capsys, monkeypatch, out, "--best-per", "fee_bps", "--top", 1)
    assert rc == 0, err
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    assert "…" not in text
    for fee in GRID["fee_bps"]:
        group = trials.filter((pl.col("fee_bps") == fee) & pl.col("sharpe").is_finite())
        alive = group.filter(pl.col("ruined") == 0.0)
        said = f"fee_bps = {fee}: all {group.height} books were ruined" in text
        assert said == (alive.height == 0), (fee, text)
    # the best of the surviving group is its best book not ruined
    group = trials.filter((pl.col("fee_bps") == 10) & (pl.col("ruined") == 0.0)).sort("sharpe", descending=True)
    line = next(line for line in text.splitlines() if re.match(r"^\s*10\s", line))
    assert group["config_id"][0][:6] in line


def test_config_prefix_is_unique_and_prints_the_row(results, capsys, monkeypatch):
    out, trials = results
    rc, text, err = show(capsys, monkeypatch, out, "--top", 3)
    assert rc == 0, err
    prefixes = [p for _, _, p in table_rows(text)]
    n = len(prefixes[0])
    ids = trials["config_id"].to_list()
    assert n >= 6 and all(len(p) == n for p in prefixes)
    assert len({i[:n] for i in ids}) == len(set(ids))
    assert n == 6 or len({i[:n - 1] for i in ids}) < len(set(ids)), "not the shortest unique prefix"
    rc, text, err = show(capsys, monkeypatch, out, "--config", prefixes[1])
    assert rc == 0, err
    row = trials.filter(pl.col("config_id") == full_id(prefixes[1], trials)).row(0, named=True)
    assert text.splitlines()[0].split()[0] == row["config_id"]
    printed = {}
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("  ") and len(parts) >= 2:
            printed[parts[0]] = parts[1]
    for m in METRICS:
        value = float(printed[m])
        assert value == row[m] or (math.isnan(value) and math.isnan(row[m])), m
    for k in GRID:
        assert float(printed[k]) == row[k], k
    assert "rank 2 of" in text.splitlines()[0]


def test_config_prefix_errors(results, capsys, monkeypatch):
    out, trials = results
    firsts = trials["config_id"].str.slice(0, 1).value_counts().sort("count", descending=True)
    shared = firsts["config_id"][0]
    assert firsts["count"][0] > 1
    rc, text, err = show(capsys, monkeypatch, out, "--config", shared)
    assert rc == 2 and text == "" and len(err.strip().splitlines()) == 1 and "ambiguous" in err
    rc, text, err = show(capsys, monkeypatch, out, "--config", "zzzzzz")
    assert rc == 2 and text == "" and len(err.strip().splitlines()) == 1 and "zzzzzz" in err


def test_columns_option(results, capsys, monkeypatch):
    out, trials = results
    rc, text, err = show(capsys, monkeypatch, out, "--columns", "window,sortino", "--top", 2)
    assert rc == 0, err
    assert header(text) == ["#", "config_id", "window", "sortino"]
    rc, text, err = show(capsys, monkeypatch, out, "--columns", "window,sharpness")
    assert rc == 2 and text == "" and len(err.strip().splitlines()) == 1
    assert "'sharpness'" in err and "valid: " in err and "sortino" in err and "window" in err
