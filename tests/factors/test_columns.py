"""Any data column as a feature: ``factor = "column:NAME"`` (README "Any data column as a feature").

Each transform is checked against pandas on a column with gaps, zeros and a
constant stretch; the column factor's books against the independent reference
(the level of ``market_cap`` is SEMANTICS' ``size``, the mean of ``funding_rate``
its ``carry``); extra columns of a table load as ``(T, N)`` float64; a grid mixes
a built-in factor and a column factor; changing the future moves no past value.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import polars as pl
import pytest
from conftest import assert_panels_close
from reference import reference_backtest

import sweep
from sweep import factors
from sweep.factors import user
from sweep.cli.main import main
from sweep.core.errors import SweepError
from sweep.factors.columns import TRANSFORMS, apply

T, N = 90, 5
START = 12  # every window of the reference checks below is complete


@pytest.fixture(autouse=True, scope="module")
def _built_in_registry_after():
    yield
    # Later tests see the built-in registry only: drop the column (and file) factors these resolved.
    for name in [n for n in factors.names() if ":" in n]:
        user.forget(name) if user.is_user(name) else factors.unregister(name)


def _column() -> np.ndarray:
    """A column with gaps (a listing, a delisting, holes), zeros and a constant stretch."""
    rng = np.random.default_rng(4)
    x = 1000.0 + 50.0 * rng.standard_normal((T, N))
    x[:7, 0] = np.nan  # listed late
    x[60:, 1] = np.nan  # delisted
    x[[20, 21, 45], 2] = np.nan  # holes
    x[30:42, 3] = 250.0  # constant: zscore NaN, change 0
    x[[10, 50], 4] = 0.0  # zeros: pct_change NaN w days later
    return x


def _pandas(x: np.ndarray, how: str, w: int) -> np.ndarray:
    df = pd.DataFrame(x)
    if how == "level":
        return df.to_numpy()
    if how == "mean":
        return df.rolling(w).mean().to_numpy()
    complete = df.rolling(w + 1).count() == w + 1  # every value of x[t-w .. t] finite
    if how == "change":
        return df.diff(w).where(complete).to_numpy()
    if how == "pct_change":
        out = df.pct_change(w, fill_method=None).where(complete).to_numpy()
        return np.where(np.isinf(out) | (df.shift(w).to_numpy() == 0), np.nan, out)
    std = df.rolling(w).std()
    return ((df - df.rolling(w).mean()) / std.where(std > 0)).to_numpy()


@pytest.mark.parametrize("how, w", [(how, w) for how, (_, low) in TRANSFORMS.items() for w in (1, 2, 5, 13)
                                     if w >= low])
def test_transform_against_pandas(how, w):
    x = _column()
    got = apply(x, how, w)
    assert got.dtype == np.float64 and got.flags.c_contiguous and got.shape == x.shape
    assert_panels_close(got, _pandas(x, how, w))
    assert np.isfinite(got).sum() > 0.5 * x.size  # not a vacuous agreement of NaN


def test_transform_edge_values_by_hand():
    x = _column()
    assert np.isnan(apply(x, "zscore", 5)[35, 3])  # a constant window
    assert apply(x, "change", 5)[40, 3] == 0.0
    assert np.isnan(apply(x, "pct_change", 3)[13, 4])  # x[10] = 0
    assert apply(x, "pct_change", 3)[12, 4] == pytest.approx(x[12, 4] / x[9, 4] - 1, rel=1e-15)
    assert np.isnan(apply(x, "mean", 3)[22, 2]) and np.isfinite(apply(x, "mean", 3)[24, 2])
    # change over w reads w + 1 values: a hole inside the window makes it NaN (pandas' diff would not)
    assert np.isnan(apply(x, "change", 3)[22, 2]) and np.isnan(apply(x, "change", 3)[24, 2])
    assert apply(x, "change", 3)[25, 2] == x[25, 2] - x[22, 2]


@pytest.fixture(scope="module")
def panel():
    return sweep.synth(n_symbols=12, n_days=160, seed=5)


def _reference(panel, resolved, as_factor, s):
    ref_params = dict(resolved, factor=as_factor, exclude=list(resolved["exclude"]),
                      top_by_market_cap=resolved["top_by_market_cap"] or None)
    return reference_backtest(panel.dates, list(panel.symbols), panel.close, panel.fields.get("market_cap"),
                              panel.fields.get("funding_rate"), ref_params, s, panel.shape[0] - 1,
                              volume=panel.fields.get("volume"))


@pytest.mark.parametrize("column, transform, as_factor, window", [
    ("market_cap", "level", "size", 0), ("funding_rate", "mean", "carry", 3), ("funding_rate", "mean", "carry", 1)])
@pytest.mark.parametrize("weighting", ["equal", "risk_parity"])
def test_column_books_match_the_reference(panel, column, transform, as_factor, window, weighting):
    """SEMANTICS' size is the level of market_cap and carry(w) the mean of funding_rate: a column
    factor on those columns, long "low" as they are, must hold the reference's books."""
    params = dict(factor=f"column:{column}", transform=transform, long="low", weighting=weighting,
                  vol_window=8, rebalance_days=3, q=3, fee_bps=10.0)
    if window:
        params["window"] = window
    fast = sweep.backtest(panel, start=panel.dates[START], return_weights=True, **params)
    ref = _reference(panel, fast.params | {"window": window or fast.params["window"]}, as_factor, START)
    for name, value in ref["metrics"].items():
        assert fast.metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    np.testing.assert_allclose(fast.weights.drop("date").to_numpy(), ref["weights"], rtol=1e-9, atol=1e-12)
    assert np.abs(ref["weights"]).sum() > 0  # books were held


def test_default_side_is_high_and_long_flips_it(panel):
    f = factors.get("column:volume")
    assert (f.long, f.window) == ("high", 30)
    res = sweep.backtest(panel, factor="column:volume", transform="change", window=4, return_weights=True)
    assert res.params["long"] == "high"
    flipped = sweep.backtest(panel, factor="column:volume", transform="change", window=4, long="low",
                             return_weights=True)
    w_high = res.weights.drop("date").to_numpy()
    w_low = flipped.weights.drop("date").to_numpy()
    np.testing.assert_array_equal(np.sign(w_low), -np.sign(w_high))  # the same books, sides swapped
    # The long side holds the largest changes of the day.
    vol = panel.fields["volume"]
    first = int(np.argmax(np.abs(w_high).sum(axis=1) > 0))
    t = first + (len(panel.dates) - len(w_high))
    change = vol[t] - vol[t - 4]
    assert change[w_high[first] > 0].min() > change[w_high[first] < 0].max()


def test_level_reads_no_window(panel):
    p1 = sweep.engine.params.resolve({"factor": "column:volume", "window": 5})
    p2 = sweep.engine.params.resolve({"factor": "column:volume", "window": 40})
    assert factors.get("column:volume").cache_key(p1) == factors.get("column:volume").cache_key(p2) == \
        ("column:volume", ("transform", "level"))
    assert sweep.engine.params.warmup_days(p2) == 0
    assert sweep.engine.params.warmup_days(p2 | {"transform": "mean"}) == 40


def _table(tmp_path, with_text=True, oi=None):
    df = sweep.synth_panel(n_symbols=14, n_days=150, seed=8)
    rng = np.random.default_rng(3)
    values = oi if oi is not None else np.exp(rng.normal(16, 1, df.height))
    values = np.where(rng.random(df.height) < 0.01, np.nan, values)  # gaps
    df = df.with_columns(pl.Series("open_interest", values),
                         pl.Series("listed_exchanges", rng.integers(1, 9, df.height)))  # an integer column
    if with_text:
        df = df.with_columns(pl.Series("sector", rng.choice(["defi", "l1", "meme"], df.height)))
    path = tmp_path / "panel.parquet"
    df.write_parquet(path)
    return path, df


def test_extra_columns_load_as_float_panels(tmp_path):
    path, df = _table(tmp_path)
    panel = sweep.load_panel(path)
    oi = panel.fields["open_interest"]
    assert oi.dtype == np.float64 and oi.shape == panel.shape and oi.flags.c_contiguous
    assert panel.fields["listed_exchanges"].dtype == np.float64
    assert "sector" not in panel.fields and panel.non_numeric == {"sector": "String"}
    d0, s0 = df["date"][5], df["symbol"][5]
    t = int((np.datetime64(d0, "D") - panel.dates[0]).astype(int))
    i = panel.symbols.index(s0)
    expected = df["open_interest"][5]
    assert oi[t, i] == expected or (np.isnan(oi[t, i]) and np.isnan(expected))
    assert np.isnan(oi).sum() >= np.isnan(df["open_interest"].to_numpy()).sum()


def test_infinite_extra_value_is_one_line(tmp_path, capsys):
    _, df = _table(tmp_path)
    df = df.with_columns(pl.when(pl.int_range(df.height) == 7).then(float("inf"))
                         .otherwise(pl.col("open_interest")).alias("open_interest"))
    path = tmp_path / "inf.parquet"
    df.write_parquet(path)
    with pytest.raises(SweepError, match=r"column 'open_interest' has 1 infinite values: row 7"):
        sweep.load_panel(path)


GRID = """
[study]
name = "columns"
data = "{data}"

[backtest]
fee_bps = 10

[grid]
factor = ["volatility", "column:open_interest"]
transform = ["level", "zscore"]
window = [5, 20]
rebalance_days = [1, 7]
"""


def test_grid_with_a_column_factor_runs(tmp_path, capsys):
    path, _ = _table(tmp_path)
    study = tmp_path / "columns.toml"
    study.write_text(GRID.format(data=path))
    assert main(["run", str(study), "--out", str(tmp_path / "out"), "--quiet", "--jobs", "2"]) == 0
    table = pl.read_parquet(tmp_path / "out" / "trials.parquet")
    assert table.height == 16
    mine = table.filter(pl.col("factor") == "column:open_interest")
    assert mine.height == 8 and mine["sharpe"].is_finite().all() and mine["sharpe"].n_unique() > 3
    # The table's row is the backtest of that configuration over the study's shared window.
    panel = sweep.load_panel(path)
    start = json.loads((tmp_path / "out" / "manifest.json").read_text())["evaluation_window"]["start"]
    assert start == str(panel.dates[20])  # the longest window of the study, 20 (SEMANTICS §7)
    for row in mine.iter_rows(named=True):
        res = sweep.backtest(panel, factor=row["factor"], transform=row["transform"], window=row["window"],
                             rebalance_days=row["rebalance_days"], fee_bps=10.0, start=start)
        assert row["sharpe"] == pytest.approx(res.metrics["sharpe"], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("factor, message", [
    ("column:open_intrest", "has no column 'open_intrest'"),
    ("column:sector", "column 'sector' of .* is not numeric \\(type String\\)"),
    ("column:", "name a column after 'column:'"),
])
def test_bad_column_is_one_line_exit_2(tmp_path, capsys, factor, message):
    path, _ = _table(tmp_path)
    study = tmp_path / "bad.toml"
    study.write_text(f'[study]\ndata = "{path}"\n[backtest]\nfactor = "{factor}"\n')
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(study) in err
    assert re.search(message, err), err


def test_zscore_window_below_two_is_refused(tmp_path, capsys):
    path, _ = _table(tmp_path)
    study = tmp_path / "z.toml"
    study.write_text(f'[study]\ndata = "{path}"\n[backtest]\nfactor = "column:open_interest"\n'
                     f'transform = "zscore"\nwindow = 1\n')
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err.strip()
    assert "window = 1 is below the minimum 2 of the zscore transform" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("how", list(TRANSFORMS))
def test_no_lookahead(panel, how):
    """Replacing every value after day t (the column and the close) moves no feature value up to t."""
    f = factors.get("column:volume")
    key = f.cache_key({"transform": how, "window": 6})
    real = factors.compute(panel, key)
    rng = np.random.default_rng(9)
    for t in (20, 77, 140):
        fields = {k: v.copy() for k, v in panel.fields.items()}
        fields["volume"][t + 1:] = rng.uniform(0, 1e9, fields["volume"][t + 1:].shape)
        fields["close"][t + 1:] = rng.uniform(1, 100, fields["close"][t + 1:].shape)
        changed = sweep.data.panel.panel_from_arrays(panel.dates, panel.symbols, fields.pop("close"), **fields)
        moved = factors.compute(changed, key)
        np.testing.assert_array_equal(moved[: t + 1], real[: t + 1])
        if how != "level":
            assert not np.array_equal(moved[t + 1:], real[t + 1:], equal_nan=True)
