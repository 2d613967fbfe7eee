"""``sweep report``: every chart of every study kind is drawn, labelled and not blank; the
page is self-contained; its numbers match values computed another way; missing pieces
are skipped with a sentence and bad folders are one-line errors."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import sweep
from sweep import _report
from sweep._cli import _Parser
from sweep._errors import SweepError

ROOT = Path(__file__).resolve().parent.parent

HEAD = """
# Read with https://example.org/paper in mind: the page must not carry this link.
[study]
name = "{name}"
kind = "{kind}"
objective = "sharpe"
data = "{data}"

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


@pytest.fixture(scope="module")
def results(tmp_path_factory, data_file):
    """One results folder of each kind, side by side (so the grid finds the Monte Carlo band)."""
    base = tmp_path_factory.mktemp("results")
    out = {}
    for kind, body in BODIES.items():
        study = base / f"{kind}.toml"
        study.write_text(HEAD.format(name=f"tiny_{kind}", kind=kind, data=data_file) + body)
        out[kind] = base / "results" / kind
        sweep.run_study(sweep.load_study(study), out=out[kind], progress=False, jobs=1)
    return out


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
    assert set(rep.charts) == set(_report.CHARTS[kind]), rep.skipped
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
    assert f"{oos['date'].min()} .. {oos['date'].max()}" in eq.axes[0].get_title().replace("\n", " ")
    tt = reports["walk_forward"].charts["train_vs_test"].figure
    assert f"{folds['train_start'].min()} .. {folds['test_end'].max()}" in tt.axes[0].get_title().replace("\n", " ")


@pytest.mark.parametrize("kind", list(BODIES))
def test_png_files_are_written_beside_the_page_and_are_not_blank(kind, written):
    import matplotlib.image as mpimg

    page = written[kind]
    folder = page.with_name(page.stem + "_charts")
    assert sorted(p.stem for p in folder.glob("*.png")) == sorted(_report.CHARTS[kind])
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


def test_lines_follow_the_trials_and_the_band_is_the_monte_carlo_range(reports, results):
    trials = pl.read_parquet(results["grid"] / "trials.parquet")
    mc = pl.read_parquet(results["monte_carlo"] / "summary.parquet")
    rep = reports["grid"]
    fig = rep.charts["objective_vs_rebalance_days"].figure
    assert "Monte Carlo" in rep.charts["objective_vs_rebalance_days"].caption
    ax_equal = _plot_axes(fig)[0]
    assert ax_equal.get_title() == "weighting = equal"
    lines = {ln.get_label(): ln for ln in ax_equal.get_lines() if ln.get_label() in ("5", "10")}
    for window, line in lines.items():
        want = trials.filter((pl.col("weighting") == "equal") & (pl.col("window") == int(window))) \
            .sort("rebalance_days")
        np.testing.assert_array_equal(line.get_xdata(), want["rebalance_days"].to_numpy())
        np.testing.assert_allclose(line.get_ydata(), want["sharpe"].to_numpy(), rtol=1e-12)
    # The Monte Carlo study (equal weighting, rebalance 1 and 3) shares 4 configurations:
    # the band's edges are their q05 and q95.
    edges = [ln for ln in ax_equal.get_lines() if ln.get_linestyle() == "--"]
    got = sorted(tuple(np.round(ln.get_ydata(), 12)) for ln in edges)
    want = []
    for window in (5, 10):
        s = mc.filter(pl.col("window") == window).sort("rebalance_days")
        want += [tuple(np.round(s["q05"].to_numpy(), 12)), tuple(np.round(s["q95"].to_numpy(), 12))]
    assert got == sorted(want)
    assert not any(ln.get_linestyle() == "--" for ln in _plot_axes(fig)[1].get_lines()), \
        "risk_parity shares no configuration with the Monte Carlo study: no band"


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
    assert len(srcs) == len(_report.CHARTS[kind])
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


def test_yearly_returns_are_the_compounded_daily_returns_of_a_fresh_backtest(written, results, data_file):
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
        years = r["date"].to_numpy().astype("datetime64[Y]").astype(int) + 1970
        ret = r["ret"].to_numpy()
        for y in np.unique(years):
            want[(row["config_id"], int(y))] = float(np.prod(1.0 + ret[years == y]) - 1.0)
    assert set(got) == set(want) and len({y for _, y in want}) >= 2
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-12, abs=1e-15), k


def test_overfitting_statistics_in_words():
    summary = {"overfitting": {
        "n_trials": 240, "best_sharpe_annual": 0.6, "expected_max_sharpe_annual": 1.1, "dsr": 0.04,
        "psr": 0.99, "min_backtest_years": 22.1, "backtest_years": 6.7, "skewness": 0.1, "kurtosis": 4.0,
        "pbo": {"pbo": 0.35, "n_valid": 12870, "n_blocks": 16, "prob_oos_loss": 0.48, "degradation_slope": -0.39}}}
    text = " ".join(_report.overfitting_sentences(summary))
    assert "DSR 0.040: after 240 tries, the best Sharpe is 0.60 a year" in text
    assert "near 1.10" in text and "do not trust it" in text
    assert "PBO 0.35: in 35% of the 12,870 splits" in text and "below the median out of sample" in text
    assert "lost money out of sample in 48% of the splits" in text
    assert "needs 22.1 years" in text and "the window has 6.7 (too short)" in text
    assert "far from normal" not in text  # skewness 0.1, kurtosis 4: no warning
    strong = dict(summary["overfitting"], dsr=0.97, pbo={"pbo": 0.05})
    assert "passes the usual 95 % bar" in " ".join(_report.overfitting_sentences({"overfitting": strong}))
    assert "No summary.json" in _report.overfitting_sentences(None)[0]
    assert "too few" in _report.overfitting_sentences({"note": "too few configurations"})[0]


def test_grid_page_states_the_overfitting_statistics_of_its_summary(written, results):
    text = written["grid"].read_text()
    o = json.loads((results["grid"] / "summary.json").read_text())["overfitting"]
    assert f"DSR {o['dsr']:.3f}: after {o['n_trials']} tries" in text
    assert f"PBO {o['pbo']['pbo']:.2f}" in text


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
    study.write_text(HEAD.format(name="one_axis", kind="grid", data=data_file) + "[grid]\nwindow = [5, 10, 20]\n")
    sweep.run_study(sweep.load_study(study), out=tmp_path / "one", progress=False, jobs=1)
    rep = _report.build_report(tmp_path / "one")
    assert set(rep.charts) == {"equity_drawdown"}
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
    p = _Parser(prog="sweep")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _report.add_parser(sub)
    return p.parse_args(argv)


def test_command_writes_the_page_where_asked(results, tmp_path, capsys):
    out = tmp_path / "pages" / "wf.html"
    out.parent.mkdir()
    assert _report.command(_args(["report", str(results["walk_forward"]), "--out", str(out)])) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}") and "2 charts" in printed
    assert sorted(p.name for p in (tmp_path / "pages" / "wf_charts").iterdir()) == ["oos_equity.png",
                                                                                   "train_vs_test.png"]
    with pytest.raises(SweepError, match="no such folder"):
        _report.command(_args(["report", str(results["grid"]), "--out", str(tmp_path / "no" / "x.html")]))
    with pytest.raises(SweepError, match="not a monte_carlo"):
        _report.command(_args(["report", str(results["grid"]), "--monte-carlo", str(results["optuna"])]))
    with pytest.raises(SweepError):
        _args(["report"])  # the folder is required; the parser's error is a SweepError


def _wired() -> bool:
    from sweep import _cli

    try:
        _cli._build_parser().parse_args(["report", "x"])
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
