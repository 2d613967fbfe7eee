"""``sweep report`` of a diagnostics study: every chart present, labelled, not blank, and drawn
from the tables (checked against polars and pandas, not the report's own code); the sentences'
numbers are the IC table's; the ranking is by |IR| with NaN last; the verdict follows its rule;
bad folders are one-line errors.

The main folder (``diag_tables.make_folder``) is a real run of the kind on a small synthetic panel when the kind runs
(``sweep.study.diagnostics``), else one written by ``diag_tables.write_tables`` exactly per the
tables' contract; the second one (a configuration with no finite IC) is always hand-written.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diag_tables import by_abs_ir, make_folder, write_tables

from sweep.core.errors import SweepError
from sweep.report import page as _page
from sweep.report import sections as _sections

CHARTS = ("ic_series", "ic_decay", "quantile_returns", "quantile_books", "rank_autocorr")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("diag"))


@pytest.fixture(scope="module")
def rep(folder):
    return _page.build_report(folder)


@pytest.fixture(scope="module")
def written(folder, tmp_path_factory):
    return _page.write_report(folder, tmp_path_factory.mktemp("diagpage") / "diag.html")


@pytest.fixture(scope="module")
def dead(tmp_path_factory):
    """Hand-written: two factors and one configuration whose IC is never finite."""
    return write_tables(tmp_path_factory.mktemp("dead") / "diag", factors=("volatility", "momentum"), dead=True)


# --------------------------------------------------------------------------- charts


def test_every_chart_is_drawn_labelled_and_titled_with_the_window(rep):
    assert tuple(_sections.CHARTS["diagnostics"]) == CHARTS
    assert set(rep.charts) == set(CHARTS) and rep.skipped == {}, rep.skipped
    start, end = rep.results.window
    for name, chart in rep.charts.items():
        fig = chart.figure
        titles = [fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes]
        assert any(start in t.replace("\n", " ") and end in t.replace("\n", " ") for t in titles), (name, titles)
        for ax in fig.axes:
            if not ax.get_visible():
                continue
            xlabel = any(a.get_xlabel() for a in ax.get_shared_x_axes().get_siblings(ax))
            assert xlabel and ax.get_ylabel(), f"{name}: an axes without labels"
            assert ax.lines or ax.patches or ax.collections, f"{name}: an empty axes"


def test_png_files_are_written_and_are_not_blank(written):
    import matplotlib.image as mpimg

    charts = written.with_name(written.stem + "_charts")
    assert sorted(p.stem for p in charts.glob("*.png")) == sorted(CHARTS)
    for png in charts.glob("*.png"):
        img = mpimg.imread(png)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 400, png
        colours = np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
        assert len(colours) > 50, f"{png}: {len(colours)} colours"
        assert (img[..., :3].min(axis=2) < 0.9).mean() > 0.02, f"{png}: almost all white"
    text = written.read_text()
    assert text.count("data:image/png;base64,") == len(CHARTS)
    assert 'id="verdict"' in text and "://" not in text.replace("data:image", "")


def test_ic_series_is_the_ic_table_and_its_rolling_mean_is_pandas(rep, folder):
    summary = pl.read_parquet(folder / "summary.parquet")
    ic = pl.read_parquet(folder / "ic.parquet")
    want = by_abs_ir(summary).head(3)
    axes = [ax for ax in rep.charts["ic_series"].figure.axes if ax.get_visible()]
    assert len(axes) == want.height
    for ax, r in zip(axes, want.iter_rows(named=True)):
        s = ic.filter((pl.col("config_id") == r["config_id"]) & (pl.col("horizon") == r["horizon"])).sort("date")
        daily, rolling = ax.get_lines()[0], ax.get_lines()[1]
        np.testing.assert_array_equal(daily.get_ydata(), s["ic"].to_numpy())
        pd_roll = pd.Series(s["ic"].to_numpy()).rolling(60, min_periods=20).mean().to_numpy()
        np.testing.assert_allclose(rolling.get_ydata(), pd_roll, rtol=1e-12, equal_nan=True)
        assert f"{r['horizon']}-day" in ax.get_title() and f"{r['ic_mean']:.3f}" in ax.get_title()


def test_decay_points_and_bars_are_the_summary(rep, folder):
    summary = pl.read_parquet(folder / "summary.parquet")
    ids = list(dict.fromkeys(by_abs_ir(summary).filter(pl.col("ic_ir").is_finite())["config_id"]))[:8]
    ax = rep.charts["ic_decay"].figure.axes[0]
    assert len(ax.containers) == len(ids)
    for cont, cid in zip(ax.containers, ids):
        s = summary.filter(pl.col("config_id") == cid).sort("horizon")
        line, _, (bars,) = cont
        np.testing.assert_allclose(line.get_ydata(), s["ic_mean"].to_numpy(), rtol=1e-12)
        se = s["ic_std"].to_numpy() / np.sqrt(s["n_days"].to_numpy())
        for seg, m, e in zip(bars.get_segments(), s["ic_mean"], se):
            assert seg[0][1] == pytest.approx(m - 2 * e, rel=1e-9) and seg[1][1] == pytest.approx(m + 2 * e, rel=1e-9)


def test_quantile_bars_books_and_autocorr_are_the_tables(rep, folder):
    summary = pl.read_parquet(folder / "summary.parquet")
    best = by_abs_ir(summary)["config_id"][0]
    quantiles = pl.read_parquet(folder / "quantiles.parquet").filter(pl.col("config_id") == best)
    axes = [ax for ax in rep.charts["quantile_returns"].figure.axes if ax.get_visible()]
    hs = sorted(quantiles["horizon"].unique().to_list())
    assert len(axes) == len(hs)
    for ax, h in zip(axes, hs):
        q = quantiles.filter(pl.col("horizon") == h).sort("quantile")
        np.testing.assert_allclose([p.get_height() for p in ax.patches], q["mean"].to_numpy(), rtol=1e-12)
        from matplotlib.container import ErrorbarContainer

        (bars,) = next(c for c in ax.containers if isinstance(c, ErrorbarContainer)).lines[2]
        np.testing.assert_allclose([s[1][1] - s[0][1] for s in bars.get_segments()], 4 * q["stderr"].to_numpy(),
                                   rtol=1e-9)
    books = pl.read_parquet(folder / "books.parquet").filter(pl.col("config_id") == best)
    lines = [ln for ln in rep.charts["quantile_books"].figure.axes[0].get_lines() if ln.get_label().startswith("quantile")]
    assert len(lines) == books["quantile"].n_unique()
    for ln, q in zip(lines, sorted(books["quantile"].unique())):
        nav = books.filter(pl.col("quantile") == q).sort("date")["nav"].to_numpy()
        np.testing.assert_allclose(ln.get_ydata(), nav, rtol=1e-12)
        assert ln.get_label().endswith(f"{nav[-1]:.2f}")
    auto = pl.read_parquet(folder / "autocorr.parquet").filter(pl.col("config_id") == best).sort("lag")
    first = rep.charts["rank_autocorr"].figure.axes[0].get_lines()[0]
    np.testing.assert_allclose(first.get_ydata(), auto["autocorr"].to_numpy(), rtol=1e-12)


# --------------------------------------------------------------------------- words and tables

SENTENCE = re.compile(r"^(\w+)\((\d+)\) ranks (\d+)-day returns with mean IC (-?[\d.]+), t = (-?[\d.]+); the sign is "
                      r"stable in (\d+) % of (\d+) days")


def test_one_sentence_per_factor_with_the_tables_numbers(written, folder):
    import html

    summary = pl.read_parquet(folder / "summary.parquet")
    ranked = by_abs_ir(summary)
    block = re.search(r'<ul class="detail" id="factor-sentences">(.*?)</ul>', written.read_text(), re.DOTALL).group(1)
    sentences = [html.unescape(s) for s in re.findall(r"<li>(.*?)</li>", block)]
    factors = list(dict.fromkeys(ranked["factor"]))
    assert len(sentences) == len(factors)
    for s, f in zip(sentences, factors):
        r = ranked.filter(pl.col("factor") == f).row(0, named=True)
        m = SENTENCE.match(s)
        assert m, s
        assert (m.group(1), int(m.group(2)), int(m.group(3))) == (f, r["window"], r["horizon"])
        assert float(m.group(4)) == round(r["ic_mean"], 3) and float(m.group(5)) == round(r["ic_t"], 1)
        stable = r["ic_positive"] if r["ic_mean"] >= 0 else 1 - r["ic_positive"]
        assert int(m.group(6)) == round(stable * 100) and int(m.group(7)) == r["n_days"]
        # the t of the table: IC mean / std x sqrt(days), as the contract defines it
        assert r["ic_t"] == pytest.approx(r["ic_mean"] / r["ic_std"] * math.sqrt(r["n_days"]), rel=1e-9)
        side = r["long_side"]
        if side:
            assert ("wants a negative IC" in s) == (side == "low"), s
            assert ("it has one" in s) == ((r["ic_mean"] < 0) == (side == "low")), s


def test_ic_table_is_ranked_by_abs_ir_and_its_cells_are_the_summary(written, folder):
    import html

    summary = pl.read_parquet(folder / "summary.parquet")
    table = re.search(r'<table class="data" id="ic-summary">(.*?)</table>', written.read_text(), re.DOTALL).group(1)
    rows = [[html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", tr)] for tr in re.findall(r"<tr>(.*?)</tr>", table)]
    rows = [r for r in rows if r]
    want = by_abs_ir(summary)
    assert [r[0] for r in rows] == want["config_id"].to_list()[:len(rows)]
    head = [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", table)]
    ir = head.index("IR")
    assert [r[ir] for r in rows] == [f"{v:.3f}" for v in want["ic_ir"].to_list()[:len(rows)]]


def test_verdict_follows_bonferroni_on_the_strongest(rep, folder):
    summary = pl.read_parquet(folder / "summary.parquet")
    b = by_abs_ir(summary).row(0, named=True)
    n = summary.filter(pl.col("ic_p").is_finite()).height
    want = ("established" if b["ic_p"] * n < 0.05 else "doubtful" if b["ic_p"] < 0.05 else "not established")
    assert rep.verdict == want
    assert f"adjusted for {n} configuration x horizon pairs" in "".join(rep.answer)


def test_a_configuration_without_a_finite_ic_is_ranked_last_and_said_so(dead):
    rep = _page.build_report(dead)
    assert set(rep.charts) == set(CHARTS)
    html_text = "".join(b for b in rep.blocks if isinstance(b, str))
    assert "days_from_high(5) has no finite IC" in html_text
    summary = pl.read_parquet(dead / "summary.parquet")
    n_dead = summary.filter(pl.col("factor") == "days_from_high").height
    table = re.search(r'id="ic-summary">(.*?)</table>', html_text, re.DOTALL).group(1)
    last = re.findall(r"<tr><td>(\w+)</td>", table)[-n_dead:]
    assert set(last) == set(summary.filter(pl.col("factor") == "days_from_high")["config_id"])


def test_missing_table_or_column_is_one_line_naming_the_file(tmp_path):
    f = write_tables(tmp_path / "a", horizons=(1,), n_days=60, factors=("volatility",), windows=(5,))
    (f / "books.parquet").unlink()
    with pytest.raises(SweepError, match=r"books\.parquet: missing") as exc:
        _page.build_report(f)
    assert "\n" not in str(exc.value)
    g = write_tables(tmp_path / "b", horizons=(1,), n_days=60, factors=("volatility",), windows=(5,))
    pl.read_parquet(g / "autocorr.parquet").drop("autocorr").write_parquet(g / "autocorr.parquet")
    with pytest.raises(SweepError, match=r"autocorr\.parquet: not a sweep results table \(no column autocorr\)"):
        _page.build_report(g)
