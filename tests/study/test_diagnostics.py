"""Diagnostics studies (issue 15): the tables against pandas and scipy computed from the same factor
panel and prices, a planted predictive factor, no lookahead for every built-in factor, agreement
with alphalens-reloaded, the tables' schema, resuming, and one-line errors."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep
from sweep.core.errors import SweepError
from sweep.engine.params import config_id
from sweep.engine.workspace import Workspace
from sweep.results import SCHEMA_VERSION
from sweep.run.plan import plan
from sweep.study import diagnostics as diag

ROOT = Path(__file__).resolve().parents[2]
stats = pytest.importorskip("scipy.stats")

STUDY = """
[study]
name = "diag"
kind = "diagnostics"
data = "{data}"

[backtest]
q = 4
exclude = ["S003"]
fee_bps = 10

[grid]
factor = ["volatility", "momentum"]
window = [5, 10]

[diagnostics]
horizons = [3, 1, 5]
lags = 5
"""
HORIZONS, Q, LAGS = (1, 3, 5), 4, 5


def write_study(folder: Path, text: str, name: str = "study.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("diagdata") / "panel.parquet"
    sweep.synth_panel(n_symbols=12, n_days=160, seed=5).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def done(tmp_path_factory, data_file):
    """The study run once (two threads): its folder, study, plan and configurations."""
    base = tmp_path_factory.mktemp("diagrun")
    study = sweep.load_study(write_study(base, STUDY.format(data=data_file)))
    summary = sweep.run_study(study, out=base / "out", jobs=2, progress=False)
    pl_ = plan(study)
    return base / "out", study, pl_, diag.unique_configs(pl_.configs), summary


def forward(close: pd.DataFrame, h: int, e: int) -> pd.DataFrame:
    """pandas' forward returns of horizon ``h``, missing past the window's end ``e``."""
    fwd = close.shift(-h) / close - 1
    fwd.iloc[e - h + 1:] = np.nan
    return fwd


def test_schema_rows_and_manifest(done):
    out, study, pl_, configs, summary = done
    C, H, D = len(configs), len(HORIZONS), pl_.e - pl_.s + 1
    assert summary.n_configs == C == 4 and summary.n_run == C
    expected = {
        "summary.parquet": {"config_id": pl.Utf8, "factor": pl.Utf8, "window": pl.Int64, "horizon": pl.Int32,
                            "ic_mean": pl.Float64, "ic_std": pl.Float64, "ic_ir": pl.Float64, "ic_t": pl.Float64,
                            "ic_p": pl.Float64, "ic_positive": pl.Float64, "n_days": pl.Int64,
                            "spread_mean": pl.Float64, "spread_stderr": pl.Float64, "long_side": pl.Utf8,
                            "rank_autocorr_1": pl.Float64, "turnover_top": pl.Float64,
                            "turnover_bottom": pl.Float64},
        "ic.parquet": {"config_id": pl.Utf8, "date": pl.Date, "horizon": pl.Int32, "ic": pl.Float64},
        "quantiles.parquet": {"config_id": pl.Utf8, "horizon": pl.Int32, "quantile": pl.Int32, "mean": pl.Float64,
                              "stderr": pl.Float64, "n_days": pl.Int64, "turnover": pl.Float64},
        "books.parquet": {"config_id": pl.Utf8, "date": pl.Date, "quantile": pl.Int32, "nav": pl.Float64},
        "autocorr.parquet": {"config_id": pl.Utf8, "lag": pl.Int32, "autocorr": pl.Float64},
    }
    rows = {"summary.parquet": C * H, "ic.parquet": C * H * D, "quantiles.parquet": C * H * Q,
            "books.parquet": C * D * Q, "autocorr.parquet": C * LAGS}
    for name, cols in expected.items():
        df = pl.read_parquet(out / name)
        for col, dtype in cols.items():
            assert df.schema[col] == dtype, (name, col)
        assert df.schema["schema_version"] == pl.Int32 and (df["schema_version"] == SCHEMA_VERSION).all()
        assert df.height == rows[name], name
    s = pl.read_parquet(out / "summary.parquet")
    assert s.columns[:len(study.columns) + 2] == ["config_id", *study.columns, "horizon"]
    assert set(s["long_side"]) == {"low", "high"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"] == study.columns and manifest["diagnostics"] == {"horizons": [1, 3, 5], "lags": 5}


def test_tables_against_pandas_and_scipy(done):
    """Every table recomputed with pandas (pd.qcut per date, groupbys, corrwith) and scipy
    (spearmanr, the t distribution) from the same factor panel and closes."""
    out, study, pl_, configs, _ = done
    panel, s, e = pl_.panel, pl_.s, pl_.e
    ws = Workspace(panel)
    dates = pd.to_datetime(panel.dates[s:e + 1])
    close = pd.DataFrame(panel.close)
    tables = {n: pl.read_parquet(out / f"{n}.parquet") for n in ("summary", "ic", "quantiles", "books", "autocorr")}
    for p in configs:
        cid = config_id(p)
        x = pd.DataFrame(diag.factor_panel(ws, p))
        assert x[panel.symbols.index("S003")].isna().all()  # exclude applies
        labels = pd.DataFrame(np.nan, index=x.index, columns=x.columns)
        for t in range(s, e + 1):
            row = x.iloc[t].dropna()
            labels.loc[t, row.index] = pd.qcut(row, Q, labels=False) + 1
        for h in HORIZONS:
            fwd = forward(close, h, e)
            ic = []
            for t in range(s, e + 1):
                m = x.iloc[t].notna() & fwd.iloc[t].notna()
                a, b = x.iloc[t][m], fwd.iloc[t][m]
                ic.append(stats.spearmanr(a, b)[0] if m.sum() >= 2 and a.nunique() > 1 and b.nunique() > 1
                          else np.nan)
            got = tables["ic"].filter((pl.col("config_id") == cid) & (pl.col("horizon") == h)).sort("date")
            assert got["date"].to_list() == [d.date() for d in dates]
            np.testing.assert_allclose(got["ic"].to_numpy(), ic, rtol=1e-9, atol=1e-12)
            v = np.array(ic)[np.isfinite(ic)]
            row = tables["summary"].filter((pl.col("config_id") == cid) & (pl.col("horizon") == h)).row(0, named=True)
            test = stats.ttest_1samp(v, 0.0)
            assert row["n_days"] == len(v) and row["ic_mean"] == pytest.approx(v.mean(), rel=1e-9)
            assert row["ic_std"] == pytest.approx(v.std(ddof=1), rel=1e-9)
            assert row["ic_t"] == pytest.approx(test.statistic, rel=1e-9)
            assert row["ic_p"] == pytest.approx(test.pvalue, rel=1e-8)
            assert row["ic_positive"] == pytest.approx((v > 0).mean())
            # Quantile means: the mean over dates of each date's quantile mean, pandas' groupby.
            long = pd.DataFrame({"t": np.repeat(np.arange(len(x)), x.shape[1]), "k": labels.to_numpy().ravel(),
                                 "r": fwd.to_numpy().ravel()}).dropna()
            long = long[(long.t >= s) & (long.t <= e)]
            daily = long.groupby(["t", "k"]).r.mean()
            by_q = daily.groupby(level="k").agg(["mean", "std", "count"])
            qt = tables["quantiles"].filter((pl.col("config_id") == cid) & (pl.col("horizon") == h)).sort("quantile")
            np.testing.assert_allclose(qt["mean"].to_numpy(), by_q["mean"].to_numpy(), rtol=1e-9, atol=1e-14)
            np.testing.assert_allclose(qt["stderr"].to_numpy(), (by_q["std"] / np.sqrt(by_q["count"])).to_numpy(),
                                       rtol=1e-9, atol=1e-14)
            assert qt["n_days"].to_list() == by_q["count"].tolist()
            wide = daily.unstack()
            spread = (wide[float(Q)] - wide[1.0]).dropna()
            assert row["spread_mean"] == pytest.approx(spread.mean(), rel=1e-9)
            assert row["spread_stderr"] == pytest.approx(spread.std() / math.sqrt(len(spread)), rel=1e-9)
            if h == 1:  # the books: each quantile's 1-day mean return, compounded from 1.0
                growth = wide.reindex(range(s, e + 1)).shift(1).fillna(0.0) + 1.0
                nav = growth.cumprod()
                books = tables["books"].filter(pl.col("config_id") == cid).sort("date", "quantile")
                np.testing.assert_allclose(books["nav"].to_numpy().reshape(-1, Q), nav.to_numpy(), rtol=1e-9)
        # Rank autocorrelation: alphalens' corrwith of the daily ranks and their shift.
        R = x.iloc[s:e + 1].rank(axis=1).reset_index(drop=True)
        ac = tables["autocorr"].filter(pl.col("config_id") == cid).sort("lag")["autocorr"].to_numpy()
        want = [R.corrwith(R.shift(lag), axis=1).mean() for lag in range(1, LAGS + 1)]
        np.testing.assert_allclose(ac, want, rtol=1e-9)
        row = tables["summary"].filter(pl.col("config_id") == cid).row(0, named=True)
        assert row["rank_autocorr_1"] == pytest.approx(want[0], rel=1e-12)
        # Turnover of the top quantile: the share of its names new since the day before.
        lab = labels.iloc[s:e + 1].reset_index(drop=True)
        shares = []
        for d in range(1, len(lab)):
            now, before = set(lab.columns[lab.iloc[d] == Q]), set(lab.columns[lab.iloc[d - 1] == Q])
            if now and lab.iloc[d - 1].notna().any():
                shares.append(len(now - before) / len(now))
        assert row["turnover_top"] == pytest.approx(np.mean(shares), rel=1e-12)


def test_rerun_is_complete_and_interrupted_run_resumes(done, tmp_path):
    out, study, *_ = done
    again = sweep.run_study(study, out=out, progress=False)
    assert again.n_run == 0 and again.n_resumed == 4

    class Stop(Exception):
        pass

    def stop(n):
        raise Stop

    with pytest.raises(Stop):
        sweep.run_study(study, out=tmp_path / "cut", progress=False, on_chunk=stop)
    assert not (tmp_path / "cut" / "manifest.json").exists()
    resumed = sweep.run_study(study, out=tmp_path / "cut", progress=False)
    assert resumed.n_resumed > 0 and resumed.n_run + resumed.n_resumed == 4
    for name in diag.TABLES:
        assert_frame_equal(pl.read_parquet(tmp_path / "cut" / name), pl.read_parquet(out / name))


PLANTED = '''
import numpy as np
import sweep


def _noise(panel, seed):
    return np.random.default_rng(seed).normal(0.0, {sd}, panel.close.shape)


@sweep.factor(long="high", window=None)
def planted(panel):
    """Tomorrow's return plus noise: a factor that sees the future, on purpose."""
    r = np.zeros(panel.close.shape)  # the last day has no tomorrow (nor a forward return)
    r[:-1] = panel.close[1:] / panel.close[:-1] - 1.0
    return r + _noise(panel, 1)


@sweep.factor(long="high", window=None)
def noise(panel):
    return _noise(panel, 2)
'''


def test_planted_factor_has_its_known_ic_and_noise_has_none(tmp_path):
    """Returns i.i.d. normal (sd 0.02); the planted factor is tomorrow's return plus independent
    normal noise of sd 0.02, so their correlation is rho = 1 / sqrt(2); the expected Spearman
    correlation of n = 40 normal pairs is 6 / (pi (n + 1)) ((n - 2) asin(rho / 2) + asin(rho))
    = 0.6764 (Moran 1948; (6 / pi) asin(rho / 2) = 0.6829 as n grows). The mean daily 1-day IC
    must be within four standard errors of it; a factor of pure noise within four of 0."""
    rng = np.random.default_rng(0)
    T, N = 300, 40
    close = 100 * np.cumprod(1 + rng.normal(0, 0.02, (T, N)), axis=0)
    day0 = dt.date(2020, 1, 1)
    pl.DataFrame({"date": [day0 + dt.timedelta(days=t) for t in range(T) for _ in range(N)],
                  "symbol": [f"A{i:02d}" for _ in range(T) for i in range(N)],
                  "close": close.ravel()}).write_parquet(tmp_path / "iid.parquet")
    (tmp_path / "planted.py").write_text(PLANTED.format(sd=0.02))
    study = sweep.load_study(write_study(tmp_path, f"""
[study]
kind = "diagnostics"
data = "{tmp_path / 'iid.parquet'}"
[grid]
factor = ["planted.py:planted", "planted.py:noise"]
[diagnostics]
horizons = [1, 2]
lags = 2
"""))
    sweep.run_study(study, out=tmp_path / "out", progress=False)
    s = pl.read_parquet(tmp_path / "out" / "summary.parquet").filter(pl.col("horizon") == 1)
    planted = s.filter(pl.col("factor") == "planted.py:planted").row(0, named=True)
    noise = s.filter(pl.col("factor") == "planted.py:noise").row(0, named=True)
    rho, n = 1 / math.sqrt(2), 40
    expected = 6 / (math.pi * (n + 1)) * ((n - 2) * math.asin(rho / 2) + math.asin(rho))
    se = planted["ic_std"] / math.sqrt(planted["n_days"])
    assert abs(planted["ic_mean"] - expected) < 4 * se
    assert planted["ic_positive"] == 1.0 and planted["ic_p"] < 1e-100
    assert abs(noise["ic_mean"]) < 4 * noise["ic_std"] / math.sqrt(noise["n_days"])
    assert planted["spread_mean"] > 0.02  # the top quantile earns tomorrow's best returns
    two = pl.read_parquet(tmp_path / "out" / "summary.parquet").filter(
        (pl.col("factor") == "planted.py:planted") & (pl.col("horizon") == 2)).row(0, named=True)
    assert 0.3 < two["ic_mean"] < expected  # one day of two known: the IC decays


def test_no_lookahead_for_every_builtin_factor(tmp_path):
    """Closes after day t0 multiplied by random numbers: no IC of a horizon ending by t0 (day
    t + h <= t0) changes, for every built-in factor; later ones do."""
    from sweep import factors

    path = tmp_path / "a.parquet"
    sweep.synth_panel(n_symbols=10, n_days=420, seed=11).write_parquet(path)
    df = pl.read_parquet(path)
    dates = sorted(df["date"].unique())
    t0 = 330
    rng = np.random.default_rng(3)
    shock = pl.Series(rng.uniform(0.5, 1.5, df.height))
    changed = df.with_columns(pl.when(pl.col("date") > dates[t0]).then(pl.col("close") * shock)
                              .otherwise(pl.col("close")).alias("close"))
    changed.write_parquet(tmp_path / "b.parquet")
    names = [n for n in factors.names() if ":" not in n]  # the built-in ones (not a test's user factors)
    assert {"volatility", "carry", "days_from_high", "ewmac", "breakout"} <= set(names)
    grid = ", ".join(f'"{n}"' for n in names)
    ics = []
    for which in ("a", "b"):
        study = sweep.load_study(write_study(tmp_path, f"""
[study]
kind = "diagnostics"
data = "{tmp_path / (which + '.parquet')}"
[backtest]
market = "equal_weight"
[grid]
factor = [{grid}]
[diagnostics]
horizons = [1, 5, 20]
lags = 3
""", f"{which}.toml"))
        sweep.run_study(study, out=tmp_path / which, progress=False)
        ics.append(pl.read_parquet(tmp_path / which / "ic.parquet").join(
            pl.read_parquet(tmp_path / which / "summary.parquet").select("config_id", "factor").unique(),
            on="config_id"))
    a, b = ics
    assert set(a["factor"]) == set(names)
    last = dates[t0]
    ends = pl.col("date") + pl.duration(days=pl.col("horizon")) <= last  # daily dates without gaps
    before = [x.filter(ends).sort("factor", "horizon", "date") for x in (a, b)]
    assert before[0].height > 0
    assert_frame_equal(before[0], before[1])
    after = [x.filter(~ends & pl.col("ic").is_not_nan()).sort("factor", "horizon", "date") for x in (a, b)]
    assert not np.allclose(after[0]["ic"].to_numpy()[:50], after[1]["ic"].to_numpy()[:50])


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")  # alphalens on pandas 3
def test_agreement_with_alphalens(tmp_path):
    """The IC (alphalens.performance.factor_information_coefficient) and the quantile mean returns
    and standard errors (mean_return_by_quantile(..., demeaned=False)) equal sweep's, per horizon,
    on a panel without gaps, from the same factor values and the closes of the evaluation window.

    The one convention where they must differ does not arise here: alphalens drops a (date,
    asset) row whose forward return is missing before it buckets the day, so a name's bucket
    at t depends on whether it still trades at t + h; sweep buckets every eligible name at t.
    On a gapless panel the rows alphalens drops are the last h days (no forward return inside
    the window), whose quantile means sweep leaves missing too. alphalens also bins with
    max_loss: here max_loss=1.0 keeps its checks from refusing the h dropped days.
    """
    al = pytest.importorskip("alphalens")
    rng = np.random.default_rng(4)
    T, N = 140, 14
    close = 50 * np.cumprod(1 + rng.normal(0.0, 0.03, (T, N)), axis=0)
    day0 = dt.date(2021, 1, 1)
    symbols = [f"C{i:02d}" for i in range(N)]
    pl.DataFrame({"date": [day0 + dt.timedelta(days=t) for t in range(T) for _ in range(N)],
                  "symbol": [s for _ in range(T) for s in symbols],
                  "close": close.ravel()}).write_parquet(tmp_path / "p.parquet")
    study = sweep.load_study(write_study(tmp_path, f"""
[study]
kind = "diagnostics"
data = "{tmp_path / 'p.parquet'}"
[backtest]
q = 5
[grid]
factor = ["momentum", "volatility"]
window = [10]
[diagnostics]
horizons = [1, 5, 10]
lags = 2
"""))
    sweep.run_study(study, out=tmp_path / "out", progress=False)
    pl_ = plan(study)
    s, e, panel = pl_.s, pl_.e, pl_.panel
    ws = Workspace(panel)
    idx = pd.DatetimeIndex(pd.to_datetime(panel.dates[s:e + 1]), name="date")
    prices = pd.DataFrame(panel.close[s:e + 1], index=idx, columns=panel.symbols)
    ic_table = pl.read_parquet(tmp_path / "out" / "ic.parquet")
    qt = pl.read_parquet(tmp_path / "out" / "quantiles.parquet")
    for p in diag.unique_configs(pl_.configs):
        cid = config_id(p)
        x = pd.DataFrame(diag.factor_panel(ws, p)[s:e + 1], index=idx, columns=panel.symbols)
        factor = x.stack().rename("factor")
        factor.index.names = ["date", "asset"]
        for h in (1, 5, 10):
            fd = al.utils.get_clean_factor_and_forward_returns(factor, prices, quantiles=5, periods=(h,),
                                                               max_loss=1.0)
            col = al.utils.get_forward_returns_columns(fd.columns)[0]
            ic = al.performance.factor_information_coefficient(fd)[col]
            ours = ic_table.filter((pl.col("config_id") == cid) & (pl.col("horizon") == h)).to_pandas()
            ours = ours.set_index(pd.to_datetime(ours["date"]))["ic"].reindex(ic.index.tz_localize(None)
                                                                                if ic.index.tz else ic.index)
            assert len(ic) == e - s + 1 - h
            np.testing.assert_allclose(ours.to_numpy(), ic.to_numpy(), rtol=1e-9, atol=1e-12)
            mean, se = al.performance.mean_return_by_quantile(fd, demeaned=False)
            mine = qt.filter((pl.col("config_id") == cid) & (pl.col("horizon") == h)).sort("quantile")
            np.testing.assert_allclose(mine["mean"].to_numpy(), mean[col].to_numpy(), rtol=1e-9, atol=1e-14)
            np.testing.assert_allclose(mine["stderr"].to_numpy(), se[col].to_numpy(), rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("table,message", [
    ("[diagnostics]\nhorizon = [1, 5]", "[diagnostics] unknown key 'horizon' (did you mean 'horizons'?)"),
    ("[diagnostics]\nhorizons = [1, 1]", "repeats a value"),
    ("[diagnostics]\nhorizons = [0, 5]", "[diagnostics] horizons = 0 must be a whole number of days"),
    ("[diagnostics]\nlags = 2.5", "[diagnostics] lags = 2.5 must be a whole number"),
    ("[diagnostics]\nhorizons = 5", "must be a non-empty list of days"),
])
def test_bad_diagnostics_table_is_one_line(tmp_path, data_file, table, message):
    text = STUDY.format(data=data_file).split("[diagnostics]")[0] + table + "\n"
    path = write_study(tmp_path, text)
    with pytest.raises(SweepError) as err:
        sweep.load_study(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_ignored_grid_axis_and_long_horizon_refused(tmp_path, data_file):
    path = write_study(tmp_path, STUDY.format(data=data_file).replace("window = [5, 10]",
                                                                      "window = [5, 10]\nrebalance_days = [1, 7]"))
    with pytest.raises(SweepError, match=r"\[grid\] rebalance_days changes no diagnostic"):
        sweep.load_study(path)
    path = write_study(tmp_path, STUDY.format(data=data_file).replace("horizons = [3, 1, 5]", "horizons = [500]"))
    with pytest.raises(SweepError, match="not shorter than the evaluation window"):
        sweep.run_study(sweep.load_study(path), out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_column_factors_transform_is_a_diagnostics_axis(tmp_path, data_file):
    """``transform`` changes a column factor's values, so it may be swept: the level's IC is
    scipy's Spearman of the raw column with the forward return, the z-score's another."""
    text = (STUDY.format(data=data_file).replace('factor = ["volatility", "momentum"]', 'factor = ["column:volume"]')
            .replace("window = [5, 10]", 'window = [10]\ntransform = ["level", "zscore"]'))
    study = sweep.load_study(write_study(tmp_path, text))
    sweep.run_study(study, out=tmp_path / "out", progress=False)
    pl_ = plan(study)
    panel, s, e = pl_.panel, pl_.s, pl_.e
    ic = pl.read_parquet(tmp_path / "out" / "ic.parquet").filter(pl.col("horizon") == 1)
    summary = pl.read_parquet(tmp_path / "out" / "summary.parquet").filter(pl.col("horizon") == 1)
    assert sorted(summary["transform"]) == ["level", "zscore"]
    volume = pd.DataFrame(panel.fields["volume"])
    volume[panel.symbols.index("S003")] = np.nan  # excluded
    fwd = forward(pd.DataFrame(panel.close), 1, e)
    want = []
    for t in range(s, e + 1):
        m = volume.iloc[t].notna() & fwd.iloc[t].notna() & pd.Series(np.isfinite(panel.close[t]))
        want.append(stats.spearmanr(volume.iloc[t][m], fwd.iloc[t][m])[0] if m.sum() >= 2 else np.nan)
    level = summary.filter(pl.col("transform") == "level")["config_id"][0]
    got = ic.filter(pl.col("config_id") == level).sort("date")["ic"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    zscore = summary.filter(pl.col("transform") == "zscore")
    assert zscore["ic_mean"][0] != summary.filter(pl.col("transform") == "level")["ic_mean"][0]


def test_cli_bad_key_exits_2_with_one_line(tmp_path, data_file):
    text = STUDY.format(data=data_file).replace("lags = 5", "lag = 5")
    path = write_study(tmp_path, text)
    proc = subprocess.run([sys.executable, "-m", "sweep", "validate", str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "[diagnostics] unknown key 'lag'" in lines[0]
