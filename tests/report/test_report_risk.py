"""The strategy report, completed (issue 15 point 3): benchmarks on the equity chart with alpha
and beta, rolling 180-day Sharpe and volatility, the monthly returns heatmap and the exposure
over time. Each number is checked against a value computed another way: numpy.polyfit and
scipy.stats.linregress, pandas rolling windows and resample, the backtest's own weights and
its SEMANTICS §9 exposure metrics; each chart is drawn and not blank."""

from __future__ import annotations

import datetime as dt
import json
import math
import re

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats

import sweep
from sweep.report import page
from sweep.report import risk

SQ = math.sqrt(365)
NEW_CHARTS = ("rolling_risk", "monthly_returns", "exposure")


# --------------------------------------------------------------------------- the numbers alone


def test_alpha_and_beta_are_the_least_squares_fit():
    rng = np.random.default_rng(0)
    b = rng.normal(0.0, 0.03, 400)
    r = 0.0004 + 0.7 * b + rng.normal(0.0, 0.01, 400)
    alpha, beta, corr = risk.alpha_beta(r, b)
    slope, intercept = np.polyfit(b, r, 1)
    fit = stats.linregress(b, r)
    assert beta == pytest.approx(slope, rel=1e-10) and beta == pytest.approx(fit.slope, rel=1e-10)
    assert alpha == pytest.approx(intercept * 365, rel=1e-9) and alpha == pytest.approx(fit.intercept * 365, rel=1e-9)
    assert corr == pytest.approx(fit.rvalue, rel=1e-10)
    assert all(math.isnan(v) for v in risk.alpha_beta(r, np.full(400, 0.01)))  # a constant benchmark: no fit
    assert all(math.isnan(v) for v in risk.alpha_beta(r[:1], b[:1]))


def test_rolling_sharpe_and_volatility_are_pandas_rolling():
    rng = np.random.default_rng(1)
    r = rng.normal(0.001, 0.02, 300)
    r[50:60] = 0.0
    sharpe, vol = risk.rolling_sharpe_vol(r)
    s = pd.Series(r)
    want_vol = s.rolling(180).std() * SQ  # ddof 1, as SEMANTICS §9's ann_vol
    want_sharpe = s.rolling(180).mean() / s.rolling(180).std() * SQ
    assert np.isnan(sharpe[:179]).all() and np.isnan(vol[:179]).all()
    np.testing.assert_allclose(vol[179:], want_vol[179:], rtol=1e-9)
    np.testing.assert_allclose(sharpe[179:], want_sharpe[179:], rtol=1e-8)
    # The last value is the whole-window metric of the last 180 days (SEMANTICS §9 sharpe).
    tail = r[-180:]
    assert sharpe[-1] == pytest.approx(tail.mean() / tail.std(ddof=1) * SQ, rel=1e-12)
    flat_s, flat_v = risk.rolling_sharpe_vol(np.zeros(200))
    assert np.isnan(flat_s).all() and (flat_v[179:] == 0.0).all()
    assert np.isnan(risk.rolling_sharpe_vol(r[:100])[0]).all()


def test_monthly_returns_are_pandas_resample_and_a_ruined_book_is_closed():
    rng = np.random.default_rng(2)
    dates = np.arange(np.datetime64("2020-01-17"), np.datetime64("2021-03-09"))
    r = rng.normal(0.0, 0.02, len(dates))
    got = risk.monthly_returns(dates, r)
    want = (1 + pd.Series(r, index=pd.DatetimeIndex(dates))).resample("ME").prod() - 1
    assert [(y, m) for y, m, *_ in got] == [(d.year, d.month) for d in want.index]
    np.testing.assert_allclose([v for *_, v in got], want.to_numpy(), rtol=1e-10)
    assert got[0][2:4] == ("2020-01-17", "2020-01-31") and got[-1][2:4] == ("2021-03-01", "2021-03-08")
    years, z = risk.monthly_grid(got)
    assert years == [2020, 2021] and np.isnan(z[1, 3:]).all() and z[0, 0] == got[0][4]
    # Ruined (R = -1) on 2020-03-05: March is -100 %, the months after are closed, not 0.
    ruined = r.copy()
    k = int(np.flatnonzero(dates == np.datetime64("2020-03-05"))[0])
    ruined[k], ruined[k + 1:] = -1.0, 0.0
    months = risk.monthly_returns(dates, ruined)
    assert months[2][4] == -1.0 and all(v is None for *_, v in months[3:])


def test_exposure_is_read_off_the_weights_and_its_means_are_the_metrics():
    panel = sweep.synth(n_symbols=12, n_days=200, seed=4)
    res = sweep.backtest(panel, factor="momentum", window=10, rebalance_days=3, weighting="risk_parity",
                         return_weights=True)
    ex = risk.exposure(res.weights)
    w = res.weights.drop("date").to_pandas()
    np.testing.assert_allclose(ex["gross"], w.abs().sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(ex["net"], w.sum(axis=1), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(ex["long"], (w > 0).sum(axis=1))
    np.testing.assert_array_equal(ex["short"], (w < 0).sum(axis=1))
    m = res.metrics
    assert ex["gross"].mean() == pytest.approx(m["avg_gross_exposure"], rel=1e-9)
    assert ex["net"].mean() == pytest.approx(m["avg_net_exposure"], rel=1e-9, abs=1e-12)
    assert ex["long"].mean() == pytest.approx(m["avg_long"], rel=1e-12)
    assert ex["short"].mean() == pytest.approx(m["avg_short"], rel=1e-12)


# --------------------------------------------------------------------------- the report


def _panel_with_btc(path, n_days=260, seed=5):
    df = sweep.synth_panel(n_symbols=10, n_days=n_days, seed=seed, start=dt.date(2020, 11, 1))
    df = df.with_columns(pl.when(pl.col("symbol") == "S000").then(pl.lit("BTC")).otherwise(pl.col("symbol"))
                         .alias("symbol")).sort("date", "symbol")
    df.write_parquet(path)
    return df


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    base = tmp_path_factory.mktemp("risk")
    data = base / "panel.parquet"
    _panel_with_btc(data)
    study = base / "g.toml"
    study.write_text(f'[study]\nname = "risk"\nkind = "grid"\nobjective = "sharpe"\ndata = "{data}"\n\n'
                     '[backtest]\nfactor = "volatility"\nfee_bps = 10\n\n'
                     '[grid]\nrebalance_days = [1, 3]\nwindow = [5, 10]\n')
    out = base / "results"
    sweep.run_study(sweep.load_study(study), out=out, progress=False, jobs=1)
    rep = page.build_report(out)
    html = page.write_report(out, base / "page.html")
    return {"folder": out, "data": data, "rep": rep, "html": html}


def _best(grid):
    trials = pl.read_parquet(grid["folder"] / "trials.parquet").sort("sharpe", descending=True,
                                                                    maintain_order=True)
    w = json.loads((grid["folder"] / "manifest.json").read_text())["evaluation_window"]
    row = trials.row(0, named=True)
    params = {k: row[k] for k in ("rebalance_days", "window", "factor", "fee_bps")}
    panel = sweep.load_panel(grid["data"])
    res = sweep.backtest(panel, start=w["start"], end=w["end"], return_weights=True, **params)
    return panel, res, w, row


def _bench(panel, w):
    """BTC buy and hold and the equal-weight market by pandas, over the window's days."""
    close = pd.DataFrame(panel.close, index=pd.DatetimeIndex(panel.dates), columns=panel.symbols)
    btc = close["BTC"].ffill().pct_change().fillna(0.0)
    market = close.pct_change().mean(axis=1).fillna(0.0)  # each day's finite simple returns
    sl = slice(pd.Timestamp(w["start"]), pd.Timestamp(w["end"]))
    return btc[sl].to_numpy(), market[sl].to_numpy()


def test_the_new_charts_are_drawn_labelled_and_not_blank(grid):
    import matplotlib.image as mpimg

    rep = grid["rep"]
    for name in NEW_CHARTS:
        assert name in rep.charts, rep.skipped
    start, end = rep.results.window
    for name in NEW_CHARTS:
        fig = rep.charts[name].figure
        assert start in fig._suptitle.get_text() and end in fig._suptitle.get_text().replace("\n", " ")
        for ax in fig.axes:
            siblings = ax.get_shared_x_axes().get_siblings(ax)
            assert ax.get_ylabel() and (any(a.get_xlabel() for a in siblings) or hasattr(ax, "_colorbar")), name
        png = mpimg.imread(grid["html"].with_name("page_charts") / f"{name}.png")
        assert png.shape[0] > 200 and png.shape[1] > 400
        assert len(np.unique((png[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50, name
        assert png[..., :3].std() > 0.05, name


def test_equity_chart_has_the_benchmarks_and_the_metrics_their_alpha_and_beta(grid):
    panel, res, w, row = _best(grid)
    btc, market = _bench(panel, w)
    ax = grid["rep"].charts["equity_drawdown"].figure.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_allclose(lines["benchmark: BTC buy and hold"].get_ydata(), np.cumprod(1 + btc), rtol=1e-12)
    np.testing.assert_allclose(lines["benchmark: equal-weight market"].get_ydata(), np.cumprod(1 + market),
                               rtol=1e-10)
    # Its buy and hold ends at its last close over the close before the window (held through gaps).
    close = pd.Series(panel.close[:, panel.symbols.index("BTC")]).ffill().to_numpy()
    s = panel.day_index(dt.date.fromisoformat(w["start"]), "start")
    assert np.isfinite(close[s - 1])
    assert lines["benchmark: BTC buy and hold"].get_ydata()[-1] == pytest.approx(close[-1] / close[s - 1], rel=1e-12)
    text = grid["html"].read_text()
    table = re.search(r'<table class="data" id="benchmarks">(.*?)</table>', text, re.S).group(1)
    ret = res.returns["ret"].to_numpy()
    for label, b in (("BTC buy and hold", btc), ("equal-weight market", market)):
        fit = stats.linregress(b, ret)
        cells = re.search(rf"<td>#1 [^<]*</td><td>{label}</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>",
                          table).groups()
        assert cells == (f"{fit.slope:.3f}", f"{fit.intercept * 365:.1%}", f"{fit.rvalue:.3f}")
    answer = text[text.index('<section id="answer">'):text.index("</section>")]
    fit = stats.linregress(btc, ret)
    assert f"to BTC buy and hold: beta {fit.slope:.2f}, alpha {fit.intercept * 365:.1%} a year" in answer


def test_rolling_chart_is_pandas_rolling_of_the_rerun(grid):
    _, res, _, _ = _best(grid)
    ax_s, ax_v = grid["rep"].charts["rolling_risk"].figure.axes[:2]
    s = res.returns["ret"].to_pandas()
    line_s = next(ln for ln in ax_s.get_lines() if ln.get_label().startswith("#1 "))
    line_v = ax_v.get_lines()[0]
    np.testing.assert_allclose(line_s.get_ydata()[179:], (s.rolling(180).mean() / s.rolling(180).std() * SQ)[179:],
                               rtol=1e-8)
    np.testing.assert_allclose(line_v.get_ydata()[179:], (s.rolling(180).std() * SQ)[179:], rtol=1e-9)


def test_monthly_heatmap_and_its_table_are_pandas_resample_of_the_best(grid):
    _, res, _, row = _best(grid)
    s = pd.Series(res.returns["ret"].to_numpy(), index=pd.DatetimeIndex(res.returns["date"].to_numpy()))
    want = (1 + s).resample("ME").prod() - 1
    fig = grid["rep"].charts["monthly_returns"].figure
    z = fig.axes[0].images[0].get_array()
    years = sorted({d.year for d in want.index})
    for d, v in want.items():
        assert z[years.index(d.year), d.month - 1] == pytest.approx(v, rel=1e-10)
    text = grid["html"].read_text()
    cells = dict(re.findall(rf'data-config="{row["config_id"]}" data-month="(\d{{4}}-\d\d)" data-value="([^"]+)"',
                            text))
    assert len(cells) == len(want)
    for d, v in want.items():
        assert float(cells[f"{d.year}-{d.month:02d}"]) == pytest.approx(v, rel=1e-10)


def test_exposure_chart_is_the_best_books_weights(grid):
    _, res, _, _ = _best(grid)
    w = res.weights.drop("date").to_numpy()
    ax, axn = grid["rep"].charts["exposure"].figure.axes[:2]
    lines = {ln.get_label(): ln for ln in ax.get_lines() + axn.get_lines()}
    np.testing.assert_allclose(lines["gross (sum of |w|)"].get_ydata(), np.abs(w).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(lines["net (sum of w)"].get_ydata(), w.sum(axis=1), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(lines["names long"].get_ydata(), (w > 0).sum(axis=1))
    np.testing.assert_array_equal(lines["names short (below 0)"].get_ydata(), -(w < 0).sum(axis=1))


def test_a_short_window_skips_the_rolling_chart_with_a_sentence_and_no_btc_is_said(tmp_path):
    data = tmp_path / "p.parquet"
    sweep.synth_panel(n_symbols=8, n_days=120, seed=6).write_parquet(data)
    study = tmp_path / "g.toml"
    study.write_text(f'[study]\nname = "short"\nkind = "grid"\nobjective = "sharpe"\ndata = "{data}"\n\n'
                     '[backtest]\nfactor = "volatility"\n\n[grid]\nwindow = [5, 10]\n')
    sweep.run_study(sweep.load_study(study), out=tmp_path / "r", progress=False, jobs=1)
    rep = page.build_report(tmp_path / "r")
    assert "fewer than the 180" in rep.skipped["rolling_risk"]
    assert {"monthly_returns", "exposure", "equity_drawdown"} <= set(rep.charts)
    labels = [ln.get_label() for ln in rep.charts["equity_drawdown"].figure.axes[0].get_lines()]
    assert "benchmark: equal-weight market" in labels and not any("buy and hold" in x for x in labels)
    assert any("no symbol BTC" in b for b in rep.blocks if isinstance(b, str))
