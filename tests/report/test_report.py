"""``sweep report``: every chart of every study kind is drawn, labelled and not blank; the
page is self-contained; its numbers match values computed another way; missing pieces
are skipped with a sentence and bad folders are one-line errors."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import sweep
from sweep.report import page as _report
from sweep.report import base as _report_base
from sweep.report import folder as _report_folder
from sweep.report import search as _report_search
from sweep.report import sections as _report_sections
from sweep.cli import report as cli_report
from sweep.cli.common import Parser
from sweep.core.errors import SweepError

ROOT = Path(__file__).resolve().parents[2]

HEAD = """
# Read with https://example.org/paper in mind: the page must not carry this link.
[study]
name = "{name}"
kind = "{kind}"
objective = "sharpe"
data = "{data}"
{extra}
[backtest]
factor = "volatility"
fee_bps = 10
slippage_bps = 5
exclude = ["S003"]
"""
BODIES = {
    "grid": """
[grid]
rebalance_days = [1, 2, 3, 5]
window = [5, 10]
weighting = ["equal", "risk_parity"]
""",
    "optuna": """
[space]
rebalance_days = {low = 1, high = 6}
window = {low = 5, high = 12}
weighting = ["equal", "risk_parity"]

[optuna]
n_trials = 8
sampler = "random"
seed = 1
""",
    "walk_forward": """
[grid]
rebalance_days = [1, 3]
window = [5, 10]

[walk_forward]
train_days = 80
test_days = 40
""",
    "monte_carlo": """
[grid]
rebalance_days = [1, 3]
window = [5, 10]
weighting = ["equal"]

[monte_carlo]
method = "block_bootstrap"
n_samples = 5
block_days = 10
seed = 2
""",
}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("reportdata") / "panel.parquet"
    # Starts in late summer so the evaluation window spans two calendar years.
    sweep.synth_panel(n_symbols=14, n_days=300, seed=3, start=dt.date(2015, 8, 1)).write_parquet(path)
    return path


# The grid's window starts later than the Monte Carlo study's own (risk parity's volatility
# window needs a longer warm-up): "monte_carlo" is run on the grid's window, "monte_carlo_own"
# on its own, and only the first may lend the grid its band.
GRID_START = 'start = "2015-08-31"'


def _run(base: Path, name: str, kind: str, body: str, data, extra: str = "") -> Path:
    study = base / f"{name}.toml"
    head = HEAD.format(name=f"tiny_{name}", kind=kind, data=data, extra=extra)
    if "factor =" in body:
        head = head.replace('factor = "volatility"\n', "")
    study.write_text(head + body)
    out = base / "results" / name
    sweep.run_study(sweep.load_study(study), out=out, progress=False, jobs=1)
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory, data_file):
    """One results folder of each kind, side by side (so the grid finds the Monte Carlo band)."""
    base = tmp_path_factory.mktemp("results")
    out = {kind: _run(base, kind, kind, body, data_file, GRID_START if kind == "monte_carlo" else "")
           for kind, body in BODIES.items()}
    _run(base, "monte_carlo_own", "monte_carlo", BODIES["monte_carlo"], data_file)
    return out


@pytest.fixture(scope="module")
def multi(tmp_path_factory, data_file):
    """A grid of three factors over every phase, and a portfolio of its best per factor."""
    base = tmp_path_factory.mktemp("multi")
    body = '[grid]\nfactor = ["volatility", "momentum", "size"]\nrebalance_days = [1, 2, 3]\nphase = "all"\n'
    folder = _run(base, "multi", "grid", body, data_file)
    pf = base / "portfolio.toml"
    pf.write_text(f'[study]\nname = "tiny_portfolio"\nkind = "portfolio"\n\n[portfolio]\n'
                  f'results = ["{folder}"]\nweights = "inverse_vol"\n')
    sweep.run_study(sweep.load_study(pf), out=base / "results" / "portfolio", progress=False, jobs=1)
    return {"grid": folder, "portfolio": base / "results" / "portfolio"}


@pytest.fixture(scope="module")
def reports(results):
    return {kind: _report.build_report(folder) for kind, folder in results.items()}


@pytest.fixture(scope="module")
def written(results, tmp_path_factory):
    base = tmp_path_factory.mktemp("pages")
    return {kind: _report.write_report(folder, base / f"{kind}.html") for kind, folder in results.items()}


def _plot_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and not hasattr(ax, "_colorbar")]


# --------------------------------------------------------------------------- charts


@pytest.mark.parametrize("kind", list(BODIES))
def test_every_chart_is_drawn_with_labels_and_the_window_in_its_title(kind, reports):
    rep = reports[kind]
    assert set(rep.charts) == set(_report_sections.CHARTS[kind]), rep.skipped
    assert rep.skipped == {}
    start, end = rep.results.window
    for name, chart in rep.charts.items():
        fig = chart.figure
        titles = [fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes]
        assert any(start in t and end in t for t in titles) or (
            kind == "walk_forward"), f"{name}: no title with the window {start} .. {end}: {titles}"
        assert any(t for t in titles), name
        for ax in _plot_axes(fig):
            # Panels stacked on one date axis share the bottom panel's x label.
            xlabel = any(a.get_xlabel() for a in ax.get_shared_x_axes().get_siblings(ax))
            assert xlabel and ax.get_ylabel(), f"{name}: an axes without labels"
            assert ax.get_title() or (fig._suptitle and fig._suptitle.get_text()), name
        for ax in fig.axes:
            if hasattr(ax, "_colorbar"):
                assert ax.get_ylabel(), f"{name}: a colour bar without a label"


def test_walk_forward_titles_name_their_dates(reports, results):
    folds = pl.read_parquet(results["walk_forward"] / "folds.parquet")
    oos = pl.read_parquet(results["walk_forward"] / "oos_returns.parquet")
    eq = reports["walk_forward"].charts["oos_equity"].figure
    assert f"{oos['date'].min()} .. {oos['date'].max()}" in eq._suptitle.get_text().replace("\n", " ")
    tt = reports["walk_forward"].charts["train_vs_test"].figure
    assert f"{folds['train_start'].min()} .. {folds['test_end'].max()}" in tt.axes[0].get_title().replace("\n", " ")


@pytest.mark.parametrize("kind", list(BODIES))
def test_png_files_are_written_beside_the_page_and_are_not_blank(kind, written):
    import matplotlib.image as mpimg

    page = written[kind]
    folder = page.with_name(page.stem + "_charts")
    assert sorted(p.stem for p in folder.glob("*.png")) == sorted(_report_sections.CHARTS[kind])
    for png in folder.glob("*.png"):
        img = mpimg.imread(png)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 400, png
        colours = np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
        assert len(colours) > 50, f"{png}: {len(colours)} colours"
        assert img[..., :3].std() > 0.05, png


def test_heatmap_cells_are_the_trials_objective(reports, results):
    trials = pl.read_parquet(results["grid"] / "trials.parquet")
    fig = reports["grid"].charts["heatmap"].figure
    axes = _plot_axes(fig)
    assert [ax.get_title() for ax in axes] == ["weighting = equal", "weighting = risk_parity"]
    for ax, weighting in zip(axes, ["equal", "risk_parity"]):
        z = ax.images[0].get_array()
        for yi, window in enumerate([5, 10]):
            for xi, k in enumerate([1, 2, 3, 5]):
                want = trials.filter((pl.col("weighting") == weighting) & (pl.col("window") == window)
                                     & (pl.col("rebalance_days") == k))["sharpe"].item()
                assert z[yi, xi] == pytest.approx(want, rel=1e-12, abs=1e-15)


def _bars(ax):
    """The Monte Carlo intervals of a lines chart: ``[(x, q05, q95)]`` from its vertical bars."""
    from matplotlib.collections import LineCollection

    out = []
    for c in ax.collections:
        if isinstance(c, LineCollection):
            out += [(seg[0][0], min(seg[0][1], seg[1][1]), max(seg[0][1], seg[1][1])) for seg in c.get_segments()]
    return sorted(out)


def test_lines_follow_the_trials_and_the_band_is_the_monte_carlo_range(reports, results):
    trials = pl.read_parquet(results["grid"] / "trials.parquet")
    mc = pl.read_parquet(results["monte_carlo"] / "summary.parquet")
    rep = reports["grid"]
    fig = rep.charts["objective_vs_rebalance_days"].figure
    caption = rep.charts["objective_vs_rebalance_days"].caption
    assert "monte_carlo " in caption or "from monte_carlo" in caption, caption
    assert "monte_carlo_own" not in caption  # sampled another window: it lends no band
    ax_equal = _plot_axes(fig)[0]
    assert ax_equal.get_title() == "weighting = equal"
    lines = {ln.get_label(): ln for ln in ax_equal.get_lines() if ln.get_label() in ("5", "10")}
    assert len(lines) == 2
    for window, line in lines.items():
        want = trials.filter((pl.col("weighting") == "equal") & (pl.col("window") == int(window))) \
            .sort("rebalance_days")
        np.testing.assert_array_equal(line.get_xdata(), want["rebalance_days"].to_numpy())
        np.testing.assert_allclose(line.get_ydata(), want["sharpe"].to_numpy(), rtol=1e-12)
    # The Monte Carlo study (equal weighting, rebalance 1 and 3, the grid's window) shares 4
    # configurations: one bar each, at its period (shifted at most a quarter day per line), from
    # its q05 to its q95, and none at the periods it did not sample.
    bars = _bars(ax_equal)
    want = sorted((r["rebalance_days"], r["q05"], r["q95"]) for r in mc.iter_rows(named=True))
    assert len(bars) == len(want) == 4
    got = sorted((round(x), lo, hi) for x, lo, hi in bars)
    for (gx, glo, ghi), (wx, wlo, whi) in zip(sorted(got, key=lambda t: (t[0], t[1])),
                                              sorted(want, key=lambda t: (t[0], t[1]))):
        assert gx == wx and glo == pytest.approx(wlo, rel=1e-12) and ghi == pytest.approx(whi, rel=1e-12)
    assert all(abs(x - round(x)) <= 0.25 for x, _, _ in bars)
    assert not _bars(_plot_axes(fig)[1]), "risk_parity shares no configuration with the Monte Carlo study: no band"


def test_equity_curves_are_the_rerun_compounded(reports, results, data_file):
    trials = pl.read_parquet(results["grid"] / "trials.parquet").sort("sharpe", descending=True)
    manifest = json.loads((results["grid"] / "manifest.json").read_text())
    w = manifest["evaluation_window"]
    panel = sweep.load_panel(data_file)
    fig = reports["grid"].charts["equity_drawdown"].figure
    nav_lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("#")]
    assert len(nav_lines) == 6  # 3 configurations, net and gross
    for i, row in enumerate(trials.head(3).iter_rows(named=True)):
        params = {k: row[k] for k in ("rebalance_days", "window", "weighting", "factor", "fee_bps",
                                      "slippage_bps", "exclude")}
        r = sweep.backtest(panel, start=w["start"], end=w["end"], **params).returns
        net = next(ln for ln in nav_lines if ln.get_label().startswith(f"#{i + 1} ") and "(net)" in ln.get_label())
        gross = next(ln for ln in nav_lines if ln.get_label().startswith(f"#{i + 1} ") and "(gross)" in ln.get_label())
        np.testing.assert_allclose(net.get_ydata(), np.cumprod(1 + r["ret"].to_numpy()), rtol=1e-12)
        np.testing.assert_allclose(gross.get_ydata(), np.cumprod(1 + r["ret_pre_cost"].to_numpy()), rtol=1e-12)


def test_walk_forward_equity_is_the_stitched_series_with_a_line_per_fold(reports, results):
    oos = pl.read_parquet(results["walk_forward"] / "oos_returns.parquet").sort("date")
    folds = pl.read_parquet(results["walk_forward"] / "folds.parquet")
    ax = reports["walk_forward"].charts["oos_equity"].figure.axes[0]
    nav = next(ln for ln in ax.get_lines() if ln.get_label().startswith("out-of-sample"))
    np.testing.assert_allclose(nav.get_ydata(), np.cumprod(1 + oos["ret"].to_numpy()), rtol=1e-12)
    vlines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(vlines) == folds.height >= 2
    firsts = sorted(np.datetime64(ln.get_xdata()[0], "D") for ln in vlines)
    assert firsts == sorted(np.datetime64(d, "D") for d in folds["test_start"].to_list())
    bars = reports["walk_forward"].charts["train_vs_test"].figure.axes[0].patches
    heights = [b.get_height() for b in bars]
    f = folds.sort("fold")
    np.testing.assert_allclose(heights, f["train_sharpe"].to_list() + f["test_sharpe"].to_list(), rtol=1e-12)


def test_monte_carlo_boxes_are_the_samples_best_median_on_top(reports, results):
    samples = pl.read_parquet(results["monte_carlo"] / "samples.parquet")
    summary = pl.read_parquet(results["monte_carlo"] / "summary.parquet").sort("median", descending=True)
    ax = reports["monte_carlo"].charts["distribution"].figure.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == summary.height == 4
    # The top label is the best median; each box's median line sits at numpy's median of its samples.
    want_top = summary.row(0, named=True)
    assert labels[-1] == f"rebal {want_top['rebalance_days']}, win {want_top['window']}"
    medians = sorted(ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_color() == "tab:red")
    by_config = samples.group_by("config_id").agg(pl.col("sharpe").median())["sharpe"].to_list()
    np.testing.assert_allclose(medians, sorted(by_config), rtol=1e-12)


# --------------------------------------------------------------------------- the page


@pytest.mark.parametrize("kind", list(BODIES))
def test_page_opens_with_no_external_request(kind, written):
    page = written[kind]
    text = page.read_text()
    assert "http://" not in text and "https://" not in text
    assert "example.org" in text  # the study's comment is shown, its link defused
    assert not re.search(r"<(link|script|iframe|object|embed)\b", text, re.I)
    assert "url(" not in text and "@import" not in text
    srcs = re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', text)
    assert len(srcs) == len(_report_sections.CHARTS[kind])
    folder = page.with_name(page.stem + "_charts")
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert any(png == p.read_bytes() for p in folder.glob("*.png"))


@pytest.mark.parametrize("kind", list(BODIES))
def test_header_names_study_kind_data_window_count_and_versions(kind, written, results):
    text = written[kind].read_text()
    m = json.loads((results[kind] / "manifest.json").read_text())
    for needle in (m["study"]["name"], kind, m["data"]["fingerprint"], m["evaluation_window"]["start"],
                   m["evaluation_window"]["end"], f"numba {m['versions']['numba']}",
                   f"polars {m['versions']['polars']}"):
        assert needle in text, needle
    assert (f"{m['configurations']:,} configurations" in text if kind != "walk_forward"
            else f"{m['walk_forward']['candidates']} candidates x {m['walk_forward']['folds']} folds" in text)


def test_yearly_returns_follow_from_the_nav_of_a_fresh_backtest(written, results, data_file):
    text = written["grid"].read_text()
    cells = re.findall(r'data-config="([0-9a-f]+)" data-year="(\d+)" data-value="([^"]+)"', text)
    got = {(c, int(y)): float(v) for c, y, v in cells}
    trials = pl.read_parquet(results["grid"] / "trials.parquet").sort("sharpe", descending=True).head(3)
    w = json.loads((results["grid"] / "manifest.json").read_text())["evaluation_window"]
    panel = sweep.load_panel(data_file)
    want = {}
    for row in trials.iter_rows(named=True):
        params = {k: row[k] for k in ("rebalance_days", "window", "weighting", "factor", "fee_bps",
                                      "slippage_bps", "exclude")}
        r = sweep.backtest(panel, start=dt.date.fromisoformat(w["start"]), end=dt.date.fromisoformat(w["end"]),
                           **params).returns
        # pandas: the NAV at each year's last day over the one at the previous year's last day.
        nav = pd.Series(np.cumprod(1.0 + r["ret"].to_numpy()), index=pd.to_datetime(r["date"].to_numpy()))
        year_end = pd.concat([pd.Series([1.0], index=[nav.index[0] - pd.Timedelta(days=1)]),
                              nav.groupby(nav.index.year).last().set_axis(
                                  nav.groupby(nav.index.year).apply(lambda g: g.index[-1]))])
        for y, v in (year_end / year_end.shift(1) - 1.0).iloc[1:].items():
            want[(row["config_id"], int(y.year))] = float(v)
    assert set(got) == set(want) and len({y for _, y in want}) >= 2
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-12, abs=1e-15), k


def test_overfitting_statistics_in_words_agree_with_the_verdict():
    from sweep.stats.verdict import overall_verdict

    summary = {"overfitting": {
        "n_trials": 240, "best_sharpe_annual": 0.6, "expected_max_sharpe_annual": 1.1, "dsr": 0.04,
        "psr": 0.99, "min_backtest_years": 22.1, "backtest_years": 6.7, "skewness": 0.1, "kurtosis": 4.0,
        "pbo": {"pbo": 0.35, "n_valid": 12870, "n_blocks": 16, "prob_oos_loss": 0.48, "degradation_slope": -0.39}}}
    words = _report_search.overfitting_sentences(summary)
    text = " ".join(words)
    assert "Deflated Sharpe 0.040 (fails: the bar is 0.95): after 240 tries, the best Sharpe is 0.60 a year" in text
    assert "near 1.10" in text
    assert "PBO 0.35 (passes: the bar is below 0.5): in 35% of the 12,870 splits" in text
    assert "lost money out of sample in 48% of the splits" in text
    assert "Minimum backtest length (fails)" in text and "needs 22.1 years" in text and "has 6.7." in text
    assert "Degradation slope -0.39 (fails" in text
    assert "far from normal" not in text  # skewness 0.1, kurtosis 4: no warning
    # Every test a bullet marks as failing is one the verdict counts as failed, and the reverse.
    v = overall_verdict(summary)
    assert v.label == "not credible" and len(v.failed) == 3
    marked = {w.split(" (")[0] for w in words if "(fails" in w}
    assert marked == {"Deflated Sharpe 0.040", "Minimum backtest length", "Degradation slope -0.39"}
    assert sum("(passes" in w for w in words) == len(v.passed) == 1
    strong = dict(summary["overfitting"], dsr=0.97, pbo={"pbo": 0.05})
    assert "Deflated Sharpe 0.970 (passes" in " ".join(_report_search.overfitting_sentences({"overfitting": strong}))
    assert "No summary.json" in _report_search.overfitting_sentences(None)[0]
    assert "too few" in _report_search.overfitting_sentences({"note": "too few configurations"})[0]


def test_grid_page_states_the_overfitting_statistics_of_its_summary(written, results):
    text = written["grid"].read_text()
    o = json.loads((results["grid"] / "summary.json").read_text())["overfitting"]
    assert f"Deflated Sharpe {o['dsr']:.3f} (" in text and f"after {o['n_trials']} tries" in text
    assert f"PBO {o['pbo']['pbo']:.2f} (" in text


# --------------------------------------------------------------------------- missing pieces, errors


def test_missing_pieces_skip_their_chart_with_a_sentence(results, tmp_path, data_file):
    # No summary.json, and data that cannot be found from here.
    folder = tmp_path / "copy"
    shutil.copytree(results["grid"], folder)
    (folder / "summary.json").unlink()
    m = json.loads((folder / "manifest.json").read_text())
    m["data"]["path"] = str(tmp_path / "moved.parquet")
    m["study"]["text"] = m["study"]["text"].replace(str(data_file), str(tmp_path / "moved.parquet"))
    (folder / "manifest.json").write_text(json.dumps(m))
    page = _report.write_report(folder)
    text = page.read_text()
    assert page == folder / "report.html" and (folder / "report_charts" / "heatmap.png").exists()
    assert "No summary.json" in text and "pass --data" in text
    assert not (folder / "report_charts" / "equity_drawdown.png").exists()
    # --data brings the equity curves back; a changed data file is refused with a sentence.
    rep = _report.build_report(folder, data=data_file)
    assert "equity_drawdown" in rep.charts
    other = tmp_path / "other.parquet"
    sweep.synth_panel(n_symbols=14, n_days=300, seed=4, start=dt.date(2015, 8, 1)).write_parquet(other)
    rep = _report.build_report(folder, data=other)
    assert "data changed since the study ran" in rep.skipped["equity_drawdown"]


def test_a_study_without_rebalance_days_or_a_second_axis_skips_those_charts(tmp_path, data_file):
    study = tmp_path / "one_axis.toml"
    study.write_text(HEAD.format(name="one_axis", kind="grid", data=data_file, extra="") + "[grid]\nwindow = [5, 10, 20]\n")
    sweep.run_study(sweep.load_study(study), out=tmp_path / "one", progress=False, jobs=1)
    rep = _report.build_report(tmp_path / "one")
    # The best book's own charts (equity, rolling risk, months, exposure), none across parameters.
    assert set(rep.charts) == {"equity_drawdown", "rolling_risk", "monthly_returns", "exposure"}
    assert "does not sweep rebalance_days" in rep.skipped["objective_vs_rebalance_days"]
    assert "two swept parameters" in rep.skipped["heatmap"]
    page = _report.write_report(tmp_path / "one")
    assert "does not sweep rebalance_days" in page.read_text()


def _one_line_error(folder, fragment):
    with pytest.raises(SweepError) as err:
        _report.write_report(folder)
    msg = str(err.value)
    assert "\n" not in msg and fragment in msg, msg


def test_bad_folders_are_one_line_errors_naming_the_file(tmp_path, results):
    _one_line_error(tmp_path / "nowhere", str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    _one_line_error(tmp_path / "empty", "no manifest.json")
    bad = tmp_path / "bad_manifest"
    bad.mkdir()
    (bad / "manifest.json").write_text("{ not json")
    _one_line_error(bad, str(bad / "manifest.json"))
    broken = tmp_path / "broken"
    shutil.copytree(results["grid"], broken)
    (broken / "trials.parquet").write_bytes(b"not a parquet file")
    _one_line_error(broken, str(broken / "trials.parquet"))
    (broken / "trials.parquet").unlink()
    _one_line_error(broken, str(broken / "trials.parquet"))
    mc = tmp_path / "mc"
    shutil.copytree(results["monte_carlo"], mc)
    (mc / "samples.parquet").write_bytes(b"\x00" * 20)
    _one_line_error(mc, str(mc / "samples.parquet"))


# --------------------------------------------------------------------------- command line


def _args(argv):
    p = Parser(prog="sweep")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    cli_report.add_parser(sub)
    return p.parse_args(argv)


def test_command_writes_the_page_where_asked(results, tmp_path, capsys):
    out = tmp_path / "pages" / "wf.html"
    out.parent.mkdir()
    assert cli_report.command(_args(["report", str(results["walk_forward"]), "--out", str(out)])) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}") and "2 charts" in printed
    assert sorted(p.name for p in (tmp_path / "pages" / "wf_charts").iterdir()) == ["oos_equity.png",
                                                                                   "train_vs_test.png"]
    with pytest.raises(SweepError, match="no such folder"):
        cli_report.command(_args(["report", str(results["grid"]), "--out", str(tmp_path / "no" / "x.html")]))
    with pytest.raises(SweepError, match="not a monte_carlo"):
        cli_report.command(_args(["report", str(results["grid"]), "--monte-carlo", str(results["optuna"])]))
    with pytest.raises(SweepError):
        _args(["report"])  # the folder is required; the parser's error is a SweepError


def _wired() -> bool:
    from sweep.cli.main import build_parser

    try:
        build_parser().parse_args(["report", "x"])
    except SweepError:
        return False
    return True


def test_cli_report(results, tmp_path):
    if not _wired():
        pytest.skip("`sweep report` is not wired into sweep/_cli.py yet")
    run = lambda *a: subprocess.run([sys.executable, "-m", "sweep", "report", *a], capture_output=True,
                                    text=True, cwd=ROOT)
    r = run("--help")
    assert r.returncode == 0 and "--out" in r.stdout
    r = run(str(tmp_path / "nowhere"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert str(tmp_path / "nowhere") in r.stderr
    out = tmp_path / "cli.html"
    r = run(str(results["monte_carlo"]), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.exists() and (tmp_path / "cli_charts" / "distribution.png").exists()


# --------------------------------------------------------------------------- the answer first, ruin


def _answer(text: str) -> str:
    m = re.search(r'<section id="answer">(.*?)</section>', text, re.S)
    assert m, "no answer section"
    return m.group(1)


@pytest.mark.parametrize("kind", ["grid", "optuna"])
def test_the_page_opens_with_the_best_book_and_one_verdict_and_ends_with_the_provenance(kind, written, results):
    from sweep.stats.verdict import RULE, overall_verdict

    text = written[kind].read_text()
    summary = json.loads((results[kind] / "summary.json").read_text())
    v = overall_verdict(summary)
    answer = _answer(text)
    assert text.index('<section id="answer">') < text.index("<h2") < text.index('id="provenance"')
    # The label is said once ("Verdict: not credible."), then the rest of the sentence.
    rest = v.sentence.split(": ", 1)[1]
    assert f"<b>Verdict: {v.label}.</b> {html.escape(rest[:1].upper() + rest[1:])}" in answer
    assert 'id="verdict"' in answer and html.escape(RULE) in answer
    assert answer.count("Verdict:") == 1 and text.count('id="verdict"') == 1
    trials = pl.read_parquet(results[kind] / "trials.parquet").unique("config_id").sort("sharpe", descending=True)
    best = trials.filter(pl.col("ruined") == 0.0).row(0, named=True)
    assert best["config_id"] in answer
    cells = re.findall(r"<td>([^<]*)</td>", answer)
    assert cells == [f"{best['sharpe']:.3f}", f"{best['cagr']:.1%}", f"{best['max_drawdown']:.1%}",
                     f"{best['turnover']:.1f}"]
    # The study file and the data's fingerprint are in the provenance, after everything else.
    m = json.loads((results[kind] / "manifest.json").read_text())
    assert text.index(m["data"]["fingerprint"]) > text.index('id="provenance"')


@pytest.fixture(scope="module")
def leveraged(tmp_path_factory, data_file):
    """A grid whose most leveraged books are ruined, some of them with the highest Sharpe."""
    base = tmp_path_factory.mktemp("ruin")
    body = ("[grid]\nrebalance_days = [1, 3]\nwindow = [5, 10]\nlong_allocation = [0.5, 6.0]\n"
            "short_allocation = [0.5, 6.0]\n")
    return _run(base, "leveraged", "grid", body, data_file)


def test_a_ruined_book_is_never_the_best(leveraged):
    trials = pl.read_parquet(leveraged / "trials.parquet")
    ruined = trials.filter(pl.col("ruined") == 1.0)
    kept = trials.filter(pl.col("ruined") == 0.0).sort("sharpe", descending=True)
    # The premise: ruined books outrank every book that survived, so a plain sort would pick one.
    assert ruined.height > 0 and ruined["sharpe"].max() > kept["sharpe"].max()
    rep = _report.build_report(leveraged)
    page = _report.render_html(rep, {n: b"" for n in rep.charts}, "x")
    answer = _answer(page)
    assert kept["config_id"][0] in answer
    assert f"{ruined.height:,} of {trials.height:,} configurations were ruined" in answer
    assert page.count("were ruined (their NAV reached zero") == 1  # said once
    table = re.search(r'<table class="data" id="best">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r"<tr><td>(\d+)</td>(.*?)</tr>", table)
    assert len(rows) == min(10, kept.height)
    # The table's Sharpe column is the survivors' Sharpe, best first.
    sharpe_col = re.findall(r"<th>([^<]*)</th>", table).index("sharpe")
    got = [float(re.findall(r"<td>([^<]*)</td>", "<td>" + n + "</td>" + r)[sharpe_col]) for n, r in rows]
    np.testing.assert_allclose(got, kept["sharpe"].head(len(rows)).round(3).to_list())
    # The equity chart and the heatmap's best cell show no ruined book.
    labels = [ln.get_label() for ln in rep.charts["equity_drawdown"].figure.axes[0].get_lines()]
    ruined_params = {(r["rebalance_days"], r["window"], r["long_allocation"], r["short_allocation"])
                     for r in ruined.iter_rows(named=True)}
    for label, params, result, row in _rerun_rows(rep):
        assert row["ruined"] == 0.0 and result.metrics["ruined"] == 0.0
        assert (row["rebalance_days"], row["window"], row["long_allocation"], row["short_allocation"]) \
            not in ruined_params
    assert any(lab.startswith("#1 ") for lab in labels)


def _rerun_rows(rep):
    from sweep.report.search import rerun, strategies

    best = rep.results.tables["trials"].filter(pl.col("ruined") == 0.0) \
        .sort("sharpe", descending=True, maintain_order=True)
    panel, _ = _report_folder.load_study_panel(rep.results)
    names = _report_base.swept(best, rep.results.axes)
    return rerun(rep.results, strategies(best, names, False), panel)


def test_a_table_marked_ruined_changes_the_best(results, tmp_path):
    # The same grid with its best book marked ruined: the answer moves to the runner-up.
    folder = tmp_path / "marked"
    shutil.copytree(results["grid"], folder)
    trials = pl.read_parquet(folder / "trials.parquet").sort("sharpe", descending=True)
    top, second = trials["config_id"][0], trials["config_id"][1]
    trials.with_columns(pl.when(pl.col("config_id") == top).then(1.0).otherwise(pl.col("ruined"))
                        .alias("ruined")).write_parquet(folder / "trials.parquet")
    rep = _report.build_report(folder)
    answer = "".join(rep.answer)
    assert second in answer and top not in answer
    assert f"1 of {trials.height} configurations were ruined" in answer
    heat = rep.charts["heatmap"].figure
    # The heatmap leaves the ruined book out: its cell is empty (one configuration per cell here).
    r = trials.row(0, named=True)
    ax = [a for a in _plot_axes(heat) if a.get_title() == f"weighting = {r['weighting']}"][0]
    z = ax.images[0].get_array()
    assert np.ma.is_masked(z[[5, 10].index(r["window"]), [1, 2, 3, 5].index(r["rebalance_days"])])


# --------------------------------------------------------------------------- charts, in detail


def test_heatmap_scale_is_diverging_and_centred_on_zero(reports):
    for ax in _plot_axes(reports["grid"].charts["heatmap"].figure):
        im = ax.images[0]
        assert im.cmap.name.startswith("RdBu")  # blue good, red bad: colour-blind safe
        assert im.norm.vmin == -im.norm.vmax and im.norm(0.0) == pytest.approx(0.5)
        # A Sharpe of 0.9 is on the blue (good) side, never deep red.
        r, g, b, _ = im.cmap(im.norm(0.9))
        assert b > r


def test_impossible_cells_are_blank_with_their_own_caption(tmp_path, data_file):
    folder = _run(tmp_path, "phases", "grid", '[grid]\nrebalance_days = [1, 2, 3]\nphase = "all"\n', data_file)
    chart = _report.build_report(folder).charts["heatmap"]
    (ax,) = _plot_axes(chart.figure)
    assert "phase >= rebalance period" in chart.caption
    assert "white" in chart.caption.split("phase >=")[0].lower()
    trials = pl.read_parquet(folder / "trials.parquet")
    z = ax.images[0].get_array()
    assert z.shape == (3, 3)
    for phase in range(3):
        for xi, k in enumerate([1, 2, 3]):
            if phase >= k:
                assert np.ma.is_masked(z[phase, xi])
            else:
                want = trials.filter((pl.col("rebalance_days") == k) & (pl.col("phase") == phase))["sharpe"].item()
                assert z[phase, xi] == pytest.approx(want, rel=1e-12)
    assert tuple(ax.images[0].cmap.get_bad()[:3]) == (1.0, 1.0, 1.0)  # blank...
    assert not [p for p in ax.patches if p.get_fill()]  # ...and no grey "no finite value" patch on it


def test_multi_factor_heatmap_has_factors_on_an_axis(multi):
    chart = _report.build_report(multi["grid"]).charts["heatmap"]
    (ax,) = _plot_axes(chart.figure)
    assert ax.get_ylabel() == "factor" and "averaged over phase" in chart.caption


def test_equity_legend_sits_outside_and_log_ticks_are_plain(reports):
    fig = reports["grid"].charts["equity_drawdown"].figure
    ax = fig.axes[0]
    assert ax.get_legend() is None and fig.legends, "the legend belongs below the axes, not on them"
    fig.canvas.draw()
    box = fig.legends[0].get_window_extent()
    for a in fig.axes:
        assert not box.overlaps(a.get_window_extent()), "the legend covers an axes"
    assert ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"\d+(\.\d+)?", s) for s in labels), labels
    assert "1" in labels


def test_walk_forward_fold_numbers_sit_above_the_axes(reports, results):
    fig = reports["walk_forward"].charts["oos_equity"].figure
    ax = fig.axes[0]
    folds = pl.read_parquet(results["walk_forward"] / "folds.parquet")
    texts = [t for t in ax.texts if t.get_text().isdigit()]
    assert sorted(int(t.get_text()) for t in texts) == sorted(folds["fold"].to_list())
    fig.canvas.draw()
    top = ax.get_window_extent().y1
    assert all(t.get_window_extent().y0 >= top - 1 for t in texts)


def test_the_coverage_of_the_panel_is_stated_under_the_first_chart(written, data_file):
    panel = sweep.load_panel(data_file)
    close = panel.close
    has = np.isfinite(close)
    early = sum(1 for j in range(close.shape[1]) if has[:, j].any() and not has[-1, j])
    text = written["grid"].read_text()
    first = re.search(r"<figcaption>(.*?)</figcaption>", text, re.S).group(1)
    assert f"Data: {int(has.any(axis=0).sum())} symbols with prices" in first
    assert f"{early} of them end before the last day" in first and early > 0


def test_a_notice_is_printed_once(written):
    text = written["optuna"].read_text()
    assert text.count("No Monte Carlo band") <= 1


def test_every_table_scrolls_sideways_in_its_own_wrapper(written):
    for page in written.values():
        text = page.read_text()
        for m in re.finditer(r'<table class="(data|key)"', text):
            assert text[:m.start()].endswith('<div class="scroll">'), text[m.start() - 40:m.start()]


# --------------------------------------------------------------------------- each factor, Monte Carlo, portfolio


def _dsr(sr: float, n_trials: int, var: float, n: int, skew: float, kurt: float) -> float:
    """Bailey and Lopez de Prado's deflated Sharpe, written out with scipy."""
    from scipy.stats import norm

    g = 0.5772156649015329
    emax = math.sqrt(var) * ((1 - g) * norm.ppf(1 - 1 / n_trials) + g * norm.ppf(1 - 1 / (n_trials * math.e)))
    return float(norm.cdf((sr - emax) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr * sr)))


def test_each_factor_has_its_own_and_the_pooled_deflated_sharpe(multi, data_file):
    from scipy.stats import kurtosis, skew

    rep = _report.build_report(multi["grid"])
    page = _report.render_html(rep, {n: b"" for n in rep.charts}, "x")
    trials = pl.read_parquet(multi["grid"] / "trials.parquet")
    w = json.loads((multi["grid"] / "manifest.json").read_text())["evaluation_window"]
    panel = sweep.load_panel(data_file)
    allsr = trials["sharpe"].to_numpy() / math.sqrt(365)
    for factor in ("momentum", "size", "volatility"):
        group = trials.filter((pl.col("factor") == factor))
        best = group.filter(pl.col("ruined") == 0.0).sort("sharpe", descending=True).row(0, named=True)
        r = sweep.backtest(panel, start=w["start"], end=w["end"], factor=factor,
                           rebalance_days=best["rebalance_days"], phase=best["phase"], fee_bps=10,
                           slippage_bps=5, exclude=["S003"]).returns["ret"].to_numpy()
        sr, sk, ku = r.mean() / r.std(ddof=1), skew(r), kurtosis(r, fisher=False)
        gsr = group["sharpe"].to_numpy() / math.sqrt(365)
        within = _dsr(sr, group.height, np.var(gsr, ddof=1), len(r), sk, ku)
        pooled = _dsr(sr, trials.height, np.var(allsr, ddof=1), len(r), sk, ku)
        table = re.search(rf'id="dsr-{factor}">(.*?)</table>', page, re.S).group(1)
        rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", table)
        assert rows[0][0] == "within the factor" and rows[0][1] == str(group.height)
        assert rows[1][0].startswith("pooled") and rows[1][1] == str(trials.height)
        assert float(rows[0][2]) == pytest.approx(within, abs=6e-4)
        assert float(rows[1][2]) == pytest.approx(pooled, abs=6e-4)
    # The equity chart shows one strategy per factor, not one strategy at several phases.
    labels = [ln.get_label() for ln in rep.charts["equity_drawdown"].figure.axes[0].get_lines()
              if ln.get_label().endswith("(net)")]
    assert sorted(lab.split()[1].rstrip(",") for lab in labels) == ["momentum", "size", "volatility"]


def test_monte_carlo_marks_the_actual_value(reports, results, data_file):
    rep = reports["monte_carlo"]
    summary = pl.read_parquet(results["monte_carlo"] / "summary.parquet")
    w = json.loads((results["monte_carlo"] / "manifest.json").read_text())["evaluation_window"]
    panel = sweep.load_panel(data_file)
    want = {}
    for row in summary.iter_rows(named=True):
        want[(row["rebalance_days"], row["window"])] = sweep.backtest(
            panel, start=w["start"], end=w["end"], factor="volatility", rebalance_days=row["rebalance_days"],
            window=row["window"], weighting="equal", fee_bps=10, slippage_bps=5, exclude=["S003"]).metrics["sharpe"]
    ax = rep.charts["distribution"].figure.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    diamonds = [c for c in ax.collections if c.get_offsets().shape[0] == len(labels)]
    assert len(diamonds) == 1
    for (x, y) in diamonds[0].get_offsets():
        k, win = re.fullmatch(r"rebal (\d+), win (\d+)", labels[int(round(y)) - 1]).groups()
        assert x == pytest.approx(want[(int(k), int(win))], rel=1e-9)
    page = _report.render_html(rep, {n: b"" for n in rep.charts}, "x")
    table = re.search(r'id="mc-summary">(.*?)</table>', page, re.S).group(1)
    head = re.findall(r"<th>([^<]*)</th>", table)
    assert head[:3] == ["rebalance_days", "window", "actual"]
    for cells in re.findall(r"<tr>((?:<td>[^<]*</td>)+)</tr>", table):
        c = re.findall(r"<td>([^<]*)</td>", cells)
        assert float(c[2]) == pytest.approx(want[(int(c[0]), int(c[1]))], abs=6e-4)


def test_portfolio_folder_has_a_report(multi, tmp_path):
    page = _report.write_report(multi["portfolio"], tmp_path / "pf.html")
    text = page.read_text()
    doc = json.loads((multi["portfolio"] / "portfolio.json").read_text())
    rets = pl.read_parquet(multi["portfolio"] / "portfolio_returns.parquet")
    answer = _answer(text)
    assert 'id="verdict"' in answer and f"{doc['metrics']['sharpe']:.3f}" in answer
    rep = _report.build_report(multi["portfolio"])
    assert set(rep.charts) == {"book_equity"}
    book = next(ln for ln in rep.charts["book_equity"].figure.axes[0].get_lines() if ln.get_label() == "the book")
    np.testing.assert_allclose(book.get_ydata(), np.cumprod(1 + rets["book"].to_numpy()), rtol=1e-12)
    sleeves = re.search(r'id="sleeves">(.*?)</table>', text, re.S).group(1)
    for st in doc["strategies"]:
        assert f"<td>{st['factor']}</td>" in sleeves
        if st.get("dsr") is not None:
            assert f"<td>{st['dsr']:.3f}</td>" in sleeves
    # The yearly returns of the book follow from its NAV.
    nav = np.cumprod(1 + rets["book"].to_numpy())
    years = rets["date"].dt.year().to_numpy()
    prev = 1.0
    for y in np.unique(years):
        end = nav[years == y][-1]
        cell = re.search(rf'data-config="book" data-year="{y}" data-value="([^"]+)"', text).group(1)
        assert float(cell) == pytest.approx(end / prev - 1, rel=1e-12)
        prev = end


def test_a_folder_of_sweep_portfolio_without_a_manifest_has_a_report(multi, tmp_path):
    from sweep.book.portfolio import build_portfolio, write_portfolio

    out = write_portfolio(build_portfolio([multi["grid"]], "equal"), tmp_path / "pf")
    assert not (out / "manifest.json").exists()
    rep = _report.build_report(out)
    assert rep.results.kind == "portfolio" and set(rep.charts) == {"book_equity"}
    assert 'id="verdict"' in "".join(rep.answer)
