"""``sweep show`` of a diagnostics folder and the end of its ``sweep run``: the table is ranked by
|IR| exactly as polars ranks summary.parquet (NaN last), fits 80 columns, the sentences' numbers
are the table's, ``--by``/``--top``/``--config`` work and a bad one is one line, exit 2.

The folder is a real run of the kind on a small synthetic panel when the kind runs, else one
written per the tables' contract (tests/report/diag_tables.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
from diag_tables import by_abs_ir, make_folder, write_tables

from sweep.cli.main import main

WIDTH = 80
ROW = re.compile(r"^\s*(\d+)\s+([0-9a-f]{6,16})\s+(\w+)\s+(\d+)\s+(\d+)\s+(-?[\d.]+|-)\s+(-?[\d.]+|-)\s+(-?[\d.]+|-)")
SENTENCE = re.compile(r"(\w+)\((\d+)\) ranks (\d+)-day returns with mean IC (-?[\d.]+), t = (-?[\d.]+); the sign "
                      r"is stable in (\d+) % of (\d+) days")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("diagshow"))


def show(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    capsys.readouterr()
    rc = main(["show", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def rows(out: str) -> list[tuple]:
    return [m.groups() for m in map(ROW.match, out.splitlines()) if m]


def sentences(out: str) -> list[str]:
    text = " ".join(line.strip() for line in out.split("What each factor predicts", 1)[1].splitlines()[1:])
    return re.split(r"(?<=\.) (?=\w+\(\d+\) )", text)


def test_show_ranks_by_abs_ir_as_polars_does_and_fits_80_columns(capsys, monkeypatch, folder):
    summary = pl.read_parquet(folder / "summary.parquet")
    rc, out, err = show(capsys, monkeypatch, folder, "--top", 1000)
    assert rc == 0, err
    assert max(map(len, out.splitlines())) <= WIDTH
    got = rows(out)
    want = by_abs_ir(summary)
    assert len(got) == summary.height
    for g, w in zip(got, want.iter_rows(named=True)):
        assert w["config_id"].startswith(g[1]) and int(g[4]) == w["horizon"]
        assert (g[2], int(g[3])) == (w["factor"], w["window"])
        assert g[5] == f"{w['ic_mean']:.3f}" and g[6] == f"{w['ic_ir']:.3f}" and g[7] == f"{w['ic_t']:.1f}"


def test_show_top_and_by(capsys, monkeypatch, folder):
    summary = pl.read_parquet(folder / "summary.parquet")
    rc, out, _ = show(capsys, monkeypatch, folder, "--top", 3, "--by", "ic_mean")
    assert rc == 0
    want = summary.with_row_index("i").sort([pl.col("ic_mean").fill_nan(None).abs(), "i"],
                                            descending=[True, False], nulls_last=True).head(3)
    assert [(g[1], int(g[4])) for g in rows(out)] == [(c[:len(g[1])], h) for g, c, h in
                                                       zip(rows(out), want["config_id"], want["horizon"])]
    assert len(rows(out)) == 3


def test_sentences_have_the_tables_numbers(capsys, monkeypatch, folder):
    summary = pl.read_parquet(folder / "summary.parquet")
    rc, out, _ = show(capsys, monkeypatch, folder)
    assert rc == 0
    ranked = by_abs_ir(summary)
    factors = list(dict.fromkeys(ranked["factor"]))
    said = sentences(out)
    assert len(said) == len(factors), said
    for s, f in zip(said, factors):
        r = ranked.filter(pl.col("factor") == f).row(0, named=True)
        m = SENTENCE.search(s)
        assert m, s
        assert m.groups()[:3] == (f, str(r["window"]), str(r["horizon"]))
        assert float(m.group(4)) == round(r["ic_mean"], 3) and float(m.group(5)) == round(r["ic_t"], 1)
        stable = r["ic_positive"] if r["ic_mean"] >= 0 else 1 - r["ic_positive"]
        assert int(m.group(6)) == round(100 * stable) and int(m.group(7)) == r["n_days"]


def test_show_config_prints_every_horizon_of_one(capsys, monkeypatch, folder):
    summary = pl.read_parquet(folder / "summary.parquet")
    cid = by_abs_ir(summary)["config_id"][-1]
    rc, out, _ = show(capsys, monkeypatch, folder, "--config", cid[:8])
    assert rc == 0
    got = rows(out)
    want = summary.filter(pl.col("config_id") == cid).sort("horizon")
    assert [int(g[4]) for g in got] == want["horizon"].to_list()
    assert all(cid.startswith(g[1]) for g in got)


@pytest.mark.parametrize("args, message", [(("--by", "nope"), "--by nope: not a number column"),
                                           (("--config", "zzzzzz"), "--config zzzzzz: no configurations")])
def test_bad_options_are_one_line_exit_2(capsys, monkeypatch, folder, args, message):
    rc, _out, err = show(capsys, monkeypatch, folder, *args)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_ending_names_the_strongest_and_its_significance(folder):
    from sweep.cli.kind_diagnostics import ending

    summary = pl.read_parquet(folder / "summary.parquet")
    lines, nexts = ending(None, folder, None)
    b = by_abs_ir(summary).row(0, named=True)
    n = summary.filter(pl.col("ic_p").is_finite()).height
    want = "established" if b["ic_p"] * n < 0.05 else "doubtful" if b["ic_p"] < 0.05 else "not established"
    assert lines[0].startswith(f"Strongest by |IR|: {b['factor']}({b['window']}) at {b['horizon']}-day returns")
    assert f"IR {b['ic_ir']:.3f}" in lines[0] and f": {want}." in lines[0]
    assert f"adjusted for {n} configuration x horizon pairs" in lines[1]
    assert nexts and "--config" in nexts[0]


def test_ending_with_no_finite_ic(tmp_path):
    from sweep.cli.kind_diagnostics import ending

    f = write_tables(tmp_path / "d", factors=("volatility",), windows=(5,), horizons=(1,), n_days=40)
    s = pl.read_parquet(f / "summary.parquet")
    s.with_columns(pl.lit(float("nan")).alias(c) for c in ("ic_mean", "ic_ir", "ic_t", "ic_p")).write_parquet(
        f / "summary.parquet")
    lines, nexts = ending(None, f, None)
    assert lines[0].startswith("No configuration has a finite IC") and nexts == []
