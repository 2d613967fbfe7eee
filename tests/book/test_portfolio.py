"""``sweep portfolio``: the chosen configurations, the strategy weights, the book and its metrics,
walk-forward weights from past data only, and the files it writes."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

import sweep
from sweep.book import portfolio as P
from sweep.engine.workspace import Evaluator
from sweep.core.errors import SweepError

from conftest import ROOT, assert_close

GRID = """
[study]
name = "{name}"
objective = "sharpe"
data = "{data}"
{extra}
[backtest]
fee_bps = 10
slippage_bps = 5
exclude = ["S003"]
{fixed}
[grid]
{grid}
"""
FACTORS3 = ("volatility", "momentum", "size")

# Hand computation: the Sharpe ratios sum to 7.59; each weight is its Sharpe / 7.59, rounded.
HAND_SHARPES = [3.14, 1.41, 0.85, 0.76, 0.68, 0.39, 0.36, 0.0, 0.0]
HAND_WEIGHTS = [0.4137, 0.1858, 0.1120, 0.1001, 0.0896, 0.0514, 0.0474, 0.0, 0.0]


def run_grid(tmp, data, name, grid, fixed="", extra=""):
    path = tmp / f"{name}.toml"
    path.write_text(GRID.format(name=name, data=data, grid=grid, fixed=fixed, extra=extra))
    out = tmp / name
    sweep.run_study(sweep.load_study(path), out=out, progress=False, jobs=1)
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Synthetic data; a grid with factor as an axis; a single-factor study with a later start."""
    tmp = tmp_path_factory.mktemp("pf")
    data = tmp / "panel.parquet"
    sweep.synth_panel(n_symbols=16, n_days=260, seed=11).write_parquet(data)
    multi = run_grid(tmp, data, "multi", 'factor = ["volatility", "momentum", "size"]\n'
                                         'rebalance_days = [1, 5]\nweighting = ["equal", "risk_parity"]')
    # A later start than the grid's warm-up: the common window is this study's.
    late = run_grid(tmp, data, "late_beta", "rebalance_days = [1, 5]\nwindow = [10, 20]",
                    fixed='factor = "beta"\nmarket = "equal_weight"', extra="start = 2015-03-01")
    other_data = tmp / "other.parquet"
    sweep.synth_panel(n_symbols=16, n_days=260, seed=12).write_parquet(other_data)
    other = run_grid(tmp, other_data, "other", "rebalance_days = [1, 5]", fixed='factor = "skewness"')
    return {"tmp": tmp, "data": data, "multi": multi, "late": late, "other": other,
            "panel": sweep.load_panel(data)}


def exact_sharpe_series(sharpes, n=500, seed=0, scale=0.01):
    """Rows whose Sharpe ratio (mean / std ddof 1 * sqrt 365) is exactly the given one."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in sharpes:
        z = rng.normal(size=n)
        z = (z - z.mean()) / z.std(ddof=1)
        rows.append(scale * (z + s / math.sqrt(365.0)))
    return np.array(rows)


def synthetic_sleeves(R, names=None):
    S, n = R.shape
    names = names or list(sweep.FACTORS)[:S]
    dates = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-01") + n)
    zeros = np.zeros((S, n))
    return P.Sleeves(names, dates, R, R.copy(), zeros, zeros, zeros, np.zeros((S, n, 2)),
                     np.ones((S, n), dtype=bool), [{} for _ in range(S)])


# ---- weights ------------------------------------------------------------------------------


def test_sharpe_weights_match_the_hand_computation():
    w = P.sharpe_weights(HAND_SHARPES)
    np.testing.assert_allclose(w, HAND_WEIGHTS, atol=5e-5)
    assert w.sum() == pytest.approx(1.0, abs=1e-15)
    assert w[-2:].tolist() == [0.0, 0.0]
    # Negative and NaN Sharpe ratios get 0 as well.
    np.testing.assert_allclose(P.sharpe_weights([2.0, -1.0, float("nan"), 2.0]), [0.5, 0, 0, 0.5])
    with pytest.raises(P.NoWeights):
        P.sharpe_weights([-0.5, 0.0, float("nan")])


def test_sharpe_weights_through_a_portfolio():
    R = exact_sharpe_series(HAND_SHARPES)
    np.testing.assert_allclose(P.sharpe_ratios(R), HAND_SHARPES, atol=1e-9)
    pf = P.assemble([], synthetic_sleeves(R), "sharpe", None)
    np.testing.assert_allclose(pf.weights, HAND_WEIGHTS, atol=5e-5)
    assert np.abs(pf.weights[-2:]).max() < 1e-12
    np.testing.assert_allclose(pf.book["ret"], (pf.weights[:, None] * R).sum(axis=0), rtol=0, atol=1e-15)


def test_static_sharpe_weights_refuse_when_nothing_earns():
    R = exact_sharpe_series([-1.0, -0.2, 0.0])
    R[2] = 0.0  # a flat strategy: Sharpe undefined
    with pytest.raises(SweepError, match="no strategy has a positive Sharpe.*--weights equal"):
        P.assemble([], synthetic_sleeves(R), "sharpe", None)


def test_inverse_vol_weights_match_numpy():
    rng = np.random.default_rng(3)
    R = rng.normal(0.0005, 1.0, (4, 300)) * np.array([[0.01], [0.02], [0.05], [0.005]])
    inv = 1.0 / np.std(R, axis=1, ddof=1)
    np.testing.assert_allclose(P.strategy_weights(R, "inverse_vol"), inv / inv.sum(), rtol=1e-14)
    pf = P.assemble([], synthetic_sleeves(R), "inverse_vol", None)
    np.testing.assert_allclose(pf.weights, inv / inv.sum(), rtol=1e-14)
    # The calmest strategy gets the most.
    assert np.argmax(pf.weights) == 3
    R[1] = 0.0
    with pytest.raises(SweepError, match="momentum|kurtosis"):
        P.assemble([], synthetic_sleeves(R), "inverse_vol", None)


def test_walk_forward_weights_use_only_past_returns():
    rng = np.random.default_rng(5)
    R = rng.normal(0.0, 0.01, (3, 100)) * np.array([[1.0], [2.0], [4.0]])
    W1, periods = P.walk_forward_weights(R, "inverse_vol", 20)
    assert [(p.start, p.end) for p in periods] == [(0, 19), (20, 39), (40, 59), (60, 79), (80, 99)]
    np.testing.assert_array_equal(W1[:20], 1.0 / 3.0)  # the first period has no past
    for p in periods[1:]:
        inv = 1.0 / np.std(R[:, :p.start], axis=1, ddof=1)
        np.testing.assert_allclose(W1[p.start:p.end + 1], np.tile(inv / inv.sum(), (20, 1)), rtol=1e-13)
    # Change the returns from day 60 on: periods up to day 79 (estimated from days < 60 / < 80) ...
    R2 = R.copy()
    R2[:, 60:] *= rng.uniform(0.2, 5.0, (3, 40))
    W2, _ = P.walk_forward_weights(R2, "inverse_vol", 20)
    np.testing.assert_array_equal(W1[:80], W2[:80])
    assert not np.allclose(W1[80:], W2[80:])  # ... and only the period after them moves
    # A period whose estimate is undefined holds equal weights and says why.
    Rn = exact_sharpe_series([-1.0, -2.0], n=60)
    Wn, pn = P.walk_forward_weights(Rn, "sharpe", 30)
    np.testing.assert_array_equal(Wn, 0.5)
    assert "no strategy has a positive Sharpe" in pn[1].note


def test_a_bankrupt_strategy_is_flagged():
    R = np.full((2, 10), 0.01)
    R[1, 4] = -1.2  # NAV 1.01**4 * (1 - 1.2) < 0 on day 4
    pf = P.assemble([], synthetic_sleeves(R), "equal", None)
    assert len(pf.warnings) == 1 and pf.warnings[0].startswith("kurtosis: NAV falls to")
    assert "2020-01-05" in pf.warnings[0] and "-120.0%" in pf.warnings[0]
    assert P.assemble([], synthetic_sleeves(R[:1]), "equal", None).warnings == []


# ---- choosing and rerunning -------------------------------------------------------------------


def test_chosen_configuration_is_each_factors_best(setup):
    src = P.read_source(setup["multi"])
    trials = pl.read_parquet(setup["multi"] / "trials.parquet")
    chosen = P.choose([src])
    assert [c.factor for c in chosen] == list(FACTORS3)
    for c in chosen:
        group = trials.filter(pl.col("factor") == c.factor)
        assert c.row["sharpe"] == group["sharpe"].max()
        assert c.config_id == group.sort("sharpe", descending=True)["config_id"][0]
        assert sweep.backtest(setup["panel"], **c.params).config_id == c.config_id
    # A single-factor folder without a factor column of several values: its best row.
    late = P.choose([P.read_source(setup["late"])])
    lt = pl.read_parquet(setup["late"] / "trials.parquet")
    assert [c.factor for c in late] == ["beta"] and late[0].row["sharpe"] == lt["sharpe"].max()


def test_book_returns_and_metrics(setup, tmp_path):
    out = tmp_path / "pf"
    pf = P.build_portfolio([setup["multi"], setup["late"]], "inverse_vol")
    P.write_portfolio(pf, out)
    doc = json.loads((out / "portfolio.json").read_text())
    df = pl.read_parquet(out / "portfolio_returns.parquet")
    names = [*FACTORS3, "beta"]
    assert df.columns == ["date", *names, "book", "schema_version"]
    # The common window is the intersection: the late study's start, the shared end.
    late_window = json.loads((setup["late"] / "manifest.json").read_text())["evaluation_window"]
    assert doc["evaluation_window"]["start"] == late_window["start"] == "2015-03-01"
    assert str(df["date"][0]) == late_window["start"] and str(df["date"][-1]) == late_window["end"]

    # Each strategy column is its chosen configuration rerun flat from the common start,
    # by the batch kernel (a code path other than sweep.backtest).
    panel = setup["panel"]
    s, e = panel.day_index(late_window["start"], "s"), panel.day_index(late_window["end"], "e")
    _, rets = Evaluator(panel).run([c.params for c in pf.choices], s, e, returns=True)
    for j, name in enumerate(names):
        np.testing.assert_allclose(df[name].to_numpy(), rets[j], rtol=0, atol=1e-15)

    # The book is the weighted sum of the strategies' returns.
    R = df.select(names).to_numpy().T
    w = np.array([doc["weights"][n] for n in names])
    inv = 1.0 / R.std(axis=1, ddof=1)
    np.testing.assert_allclose(w, inv / inv.sum(), rtol=1e-13)
    assert abs(w.sum() - 1.0) < 1e-15
    book = df["book"].to_numpy()
    assert np.abs(book - (w[:, None] * R).sum(axis=0)).max() <= 1e-12

    # SEMANTICS §9 on the book series, written out in numpy.
    n = len(book)
    V = np.cumprod(1 + book)
    total = V[-1] - 1
    cagr = (1 + total) ** (365 / n) - 1
    sd = book.std(ddof=1)
    mdd = (V / np.maximum(1.0, np.maximum.accumulate(V)) - 1).min()
    expected = {
        "total_return": total, "cagr": cagr, "ann_vol": sd * math.sqrt(365),
        "sharpe": book.mean() / sd * math.sqrt(365),
        "sortino": book.mean() / math.sqrt(np.mean(np.minimum(book, 0) ** 2)) * math.sqrt(365),
        "max_drawdown": mdd, "calmar": cagr / abs(mdd),
        "win_rate": (book > 0).sum() / (book != 0).sum(),
    }
    for m, v in expected.items():
        assert_close(doc["metrics"][m], v, m)
    # And the engine's own metric function on the same series gives the same numbers.
    for m, v in P.book_metrics(pf.book).items():
        assert_close(doc["metrics"][m], v, m)

    # Turnover, cost and funding: §9 on the weighted sums of the strategies' daily series;
    # exposures and counts: of the combined holdings (independent one-off backtests).
    start, end = late_window["start"], late_window["end"]
    res = [sweep.backtest(panel, start=start, end=end, return_weights=True, **c.params) for c in pf.choices]
    tau = sum(wj * r.returns["turnover"].to_numpy() for wj, r in zip(w, res))
    cost = sum(wj * r.returns["cost"].to_numpy() for wj, r in zip(w, res))
    fund = sum(wj * r.returns["funding"].to_numpy() for wj, r in zip(w, res))
    H = sum(wj * r.weights.drop("date").to_numpy() for wj, r in zip(w, res))
    pre = sum(wj * r.returns["ret_pre_cost"].to_numpy() for wj, r in zip(w, res))
    assert_close(doc["metrics"]["turnover"], tau.sum() * 365 / n, "turnover")
    assert_close(doc["metrics"]["cost_paid"], cost.sum(), "cost_paid")
    assert_close(doc["metrics"]["funding_return"], fund.sum(), "funding_return")
    assert doc["metrics"]["funding_return"] != 0.0  # the synthetic panel has funding
    assert_close(doc["metrics"]["sharpe_pre_cost"], pre.mean() / pre.std(ddof=1) * math.sqrt(365), "pre")
    assert_close(doc["metrics"]["avg_long"], (H > 0).sum(axis=1).mean(), "avg_long")
    assert_close(doc["metrics"]["avg_short"], (H < 0).sum(axis=1).mean(), "avg_short")
    assert_close(doc["metrics"]["avg_net_exposure"], H.sum(axis=1).mean(), "net")
    assert_close(doc["metrics"]["avg_gross_exposure"], np.abs(H).sum(axis=1).mean(), "gross")
    # Rebalance days: SEMANTICS §7's schedule per strategy (checked against the engine's
    # count), and the book counts the days on which any strategy rebalances.
    masks = [P.rebalance_days_mask(c.params, n) for c in pf.choices]
    for mask, r in zip(masks, res):
        assert mask.sum() == r.metrics["n_rebalances"]
    assert doc["metrics"]["n_rebalances"] == np.any(masks, axis=0).sum()

    # Correlation, contributions, provenance.
    np.testing.assert_allclose(np.array(doc["correlation"]["matrix"]), np.corrcoef(R), atol=1e-12)
    c = doc["contributions"]
    shares = [c["strategies"][nm]["mean_return_share"] for nm in names]
    np.testing.assert_allclose(shares, w * R.mean(axis=1) / book.mean(), rtol=1e-12)
    assert sum(shares) == pytest.approx(1.0, abs=1e-12)
    trc = w * (np.prod(1 + R, axis=1) - 1)
    np.testing.assert_allclose([c["strategies"][nm]["total_return_contribution"] for nm in names], trc, rtol=1e-12)
    assert_close(c["rebalancing_effect"], total - trc.sum(), "rebalancing_effect")
    prov = doc["provenance"]
    assert prov["data"]["fingerprint"] == panel.fingerprint
    assert prov["studies"] == ["multi", "late_beta"] and prov["sweep_version"] == sweep.__version__


def test_rerun_on_the_studys_own_window_reproduces_its_row(setup):
    pf = P.build_portfolio([setup["multi"]], "equal")
    for c, m in zip(pf.choices, pf.sleeves.metrics):
        for metric in ("sharpe", "total_return", "turnover", "n_rebalances"):
            assert m[metric] == pytest.approx(c.row[metric], rel=1e-12), (c.factor, metric)
    np.testing.assert_array_equal(pf.weights, 1 / 3)


def test_walk_forward_portfolio(setup, tmp_path):
    pf = P.build_portfolio([setup["multi"]], "sharpe", walk_forward=60)
    P.write_portfolio(pf, tmp_path)
    doc = json.loads((tmp_path / "portfolio.json").read_text())
    df = pl.read_parquet(tmp_path / "portfolio_returns.parquet")
    R = df.select(list(FACTORS3)).to_numpy().T
    n = R.shape[1]
    periods = doc["periods"]
    assert len(periods) == -(-n // 60) and periods[0]["note"].startswith("no past returns")
    W = np.empty((n, 3))
    for k, p in enumerate(periods):
        lo, hi = k * 60, min(k * 60 + 60, n)
        assert p["start"] == str(df["date"][lo]) and p["end"] == str(df["date"][hi - 1])
        w = np.array([p["weights"][f] for f in FACTORS3])
        if k:  # from the returns before the period, by hand
            past = R[:, :lo]
            sh = past.mean(axis=1) / past.std(axis=1, ddof=1)
            expected = np.maximum(sh, 0) / np.maximum(sh, 0).sum() if (sh > 0).any() else np.full(3, 1 / 3)
            np.testing.assert_allclose(w, expected, rtol=1e-12, atol=1e-15)
        W[lo:hi] = w
    assert np.abs(df["book"].to_numpy() - (W * R.T).sum(axis=1)).max() <= 1e-12
    np.testing.assert_allclose([doc["weights"][f] for f in FACTORS3], W.mean(axis=0), rtol=1e-12)


# ---- refusals ------------------------------------------------------------------------------


def test_refusals(setup, tmp_path):
    with pytest.raises(SweepError, match="different data"):
        P.build_portfolio([setup["multi"], setup["other"]])
    with pytest.raises(SweepError, match="given twice"):
        P.select([setup["multi"], setup["multi"] / "trials.parquet"])
    copy = tmp_path / "copy"
    shutil.copytree(setup["multi"], copy)
    with pytest.raises(SweepError, match="both hold a volatility configuration"):
        P.select([setup["multi"], copy])
    with pytest.raises(SweepError, match="no such results folder"):
        P.select([tmp_path / "nothing"])
    with pytest.raises(SweepError, match="at least 2 days"):
        P.build_portfolio([setup["multi"]], walk_forward=1)
    with pytest.raises(SweepError, match="leaves one period"):
        P.build_portfolio([setup["multi"]], walk_forward=10_000)
    # Non-overlapping windows.
    early = run_grid(tmp_path, setup["data"], "early", "rebalance_days = [1, 5]",
                     fixed='factor = "skewness"', extra="end = 2015-02-01")
    with pytest.raises(SweepError, match="do not overlap"):
        P.select([early, setup["late"]])


# ---- the command line ----------------------------------------------------------------------


def cli(argv, capsys):
    """``sweep ARGV`` in-process, through the command line's ``main``."""
    from sweep.cli.main import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_portfolio(setup, tmp_path, capsys):
    out = tmp_path / "book"
    code, stdout, err = cli(["portfolio", str(setup["multi"]), str(setup["late"]), "--weights", "sharpe",
                             "--walk-forward", "50", "--out", str(out)], capsys)
    assert code == 0, err
    assert "walk-forward weights" in stdout and "correlation" in stdout
    doc = json.loads((out / "portfolio.json").read_text())
    assert doc["weights_method"] == "sharpe" and doc["walk_forward_days"] == 50
    assert sorted(p.name for p in out.iterdir()) == ["portfolio.json", "portfolio_returns.parquet"]
    code, _, err = cli(["portfolio", str(setup["multi"]), "--weights", "sharp"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--weights" in err
    code, _, err = cli(["portfolio", str(setup["multi"]), str(setup["other"]), "--out", str(tmp_path / "x")],
                       capsys)
    assert code == 2 and "different data" in err and not (tmp_path / "x").exists()


def test_python_m_sweep_portfolio(setup, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sweep", "portfolio", str(setup["multi"]), str(setup["other"]),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "different data" in proc.stderr


def test_portfolio_study_kind(setup, tmp_path):
    """``validate``/``run`` of a ``kind = "portfolio"`` study (what _study.py and _kinds.py dispatch to)."""
    from types import SimpleNamespace

    study = SimpleNamespace(path=tmp_path / "pf.toml", text="", name="pf", kind="portfolio", objective="sharpe",
                            data=None, fixed={}, axes={}, fingerprint=lambda: "x",
                            raw={"portfolio": {"results": [str(setup["multi"])], "weights": "inverse_vol",
                                               "walk_forward_days": 60}})
    P.validate(study)
    summary = P.run(study, out=tmp_path / "out")
    assert summary.n_configs == 3 and summary.start == dt.date.fromisoformat(
        json.loads((setup["multi"] / "manifest.json").read_text())["evaluation_window"]["start"])
    doc = json.loads((tmp_path / "out" / "portfolio.json").read_text())
    assert doc["weights_method"] == "inverse_vol" and doc["walk_forward_days"] == 60
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["study"]["kind"] == "portfolio"
    for bad, msg in (({"results": []}, "non-empty list"), ({"results": ["a"], "weights": "sharp"}, "sharpe"),
                     ({"results": ["a"], "walk_forward_day": 3}, "walk_forward_days"),
                     ({"results": ["a"], "walk_forward_days": 1}, "at least 2")):
        study.raw = {"portfolio": bad}
        with pytest.raises(SweepError, match=msg):
            P.validate(study)


def test_shipped_portfolio_study_parses():
    study = sweep.load_study(ROOT / "studies" / "multi_factor_portfolio.toml")
    assert study.kind == "portfolio" and study.name == "multi_factor_portfolio"
    table = study.raw["portfolio"]
    assert table["weights"] in P.WEIGHT_METHODS and table["walk_forward_days"] == 365
    assert all((ROOT / "studies" / f"{r.split('/')[-1]}.toml").exists() for r in table["results"])
