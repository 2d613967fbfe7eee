"""Properties of the synthetic panel, measured on the generated data itself."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sweep.data.synth import synth_panel, write_synth

N_SYMBOLS, N_DAYS, SEED = 40, 500, 7
START = dt.date(2015, 1, 1)

SCHEMA = {
    "date": pl.Date,
    "symbol": pl.String,
    "close": pl.Float64,
    "volume": pl.Float64,
    "market_cap": pl.Float64,
    "funding_rate": pl.Float64,
}


@pytest.fixture(scope="module")
def panel() -> pl.DataFrame:
    return synth_panel(n_symbols=N_SYMBOLS, n_days=N_DAYS, seed=SEED)


@pytest.fixture(scope="module")
def consecutive(panel: pl.DataFrame) -> pl.DataFrame:
    """Per-symbol one-day log returns and lagged funding, only across adjacent days."""
    return (
        panel.with_columns(
            gap=pl.col("date").diff().dt.total_days().over("symbol"),
            r=pl.col("close").log().diff().over("symbol"),
            f_prev=pl.col("funding_rate").shift(1).over("symbol"),
        )
        .filter(pl.col("gap") == 1)
    )


def _excess_kurtosis(x: np.ndarray) -> float:
    z = x - x.mean()
    return float(np.mean(z**4) / np.mean(z**2) ** 2 - 3.0)


# ---- determinism -------------------------------------------------------------


def test_same_seed_identical(panel):
    assert_frame_equal(panel, synth_panel(n_symbols=N_SYMBOLS, n_days=N_DAYS, seed=SEED))


def test_different_seed_differs(panel):
    other = synth_panel(n_symbols=N_SYMBOLS, n_days=N_DAYS, seed=SEED + 1)
    assert not other.equals(panel)
    # Not just a different row set: the prices themselves differ.
    assert other.filter(pl.col("date") == START)["close"].to_list() != \
        panel.filter(pl.col("date") == START)["close"].to_list()


# ---- shape -------------------------------------------------------------------


def test_schema(panel):
    assert dict(panel.schema) == SCHEMA


def test_calendar_and_symbols(panel):
    assert panel["date"].min() == START
    assert panel["date"].max() == START + dt.timedelta(days=N_DAYS - 1)
    symbols = panel["symbol"].unique().sort().to_list()
    assert symbols == [f"S{i:03d}" for i in range(N_SYMBOLS)]


def test_sorted_by_date_symbol(panel):
    assert panel.equals(panel.sort(["date", "symbol"]))


def test_no_duplicate_keys(panel):
    assert panel.select(pl.struct("date", "symbol").is_duplicated().any()).item() is False


def test_values_finite_and_positive(panel):
    for col in ("close", "volume", "market_cap"):
        values = panel[col].to_numpy()
        assert panel[col].null_count() == 0, col
        assert np.isfinite(values).all(), col
        assert (values > 0).all(), col
    funding = panel["funding_rate"].drop_nulls().to_numpy()
    assert np.isfinite(funding).all()


def test_symbol_width_grows_with_universe():
    wide = synth_panel(n_symbols=1001, n_days=3, seed=0)
    assert wide["symbol"].min() == "S0000" and wide["symbol"].max() == "S1000"


def test_rejects_empty():
    with pytest.raises(ValueError):
        synth_panel(n_symbols=0)
    with pytest.raises(ValueError):
        synth_panel(n_days=0)


# ---- life cycle --------------------------------------------------------------


def test_listings_delistings_gaps(panel):
    first, last = panel["date"].min(), panel["date"].max()
    life = panel.group_by("symbol").agg(
        pl.col("date").min().alias("first"),
        pl.col("date").max().alias("last"),
        pl.col("date").diff().dt.total_days().max().alias("max_step"),
    )
    late = (life["first"] > first).mean()
    dead = (life["last"] < last).mean()
    assert 0.25 <= late <= 0.45, late  # about a third list after the start
    assert 0.08 <= dead <= 0.25, dead  # about 15% stop before the end
    with_gaps = (life["max_step"].fill_null(1) > 1).mean()
    assert with_gaps >= 0.5, with_gaps  # most symbols have interior holes


def test_rows_per_day_change(panel):
    counts = panel.group_by("date").len()["len"]
    assert counts.min() < counts.max()


# ---- returns and prices ------------------------------------------------------


def test_returns_fat_tailed(consecutive):
    r = consecutive["r"].to_numpy()
    assert _excess_kurtosis(r) > 1.0


def test_volatility_heterogeneous(consecutive):
    vol = consecutive.group_by("symbol").agg(pl.col("r").std())["r"].to_numpy()
    assert 0.01 < np.median(vol) < 0.12
    assert vol.max() / vol.min() > 2.0


def test_common_market_factor(consecutive):
    # The average pairwise correlation of returns is clearly positive when a
    # market factor drives them.
    wide = consecutive.pivot(on="symbol", index="date", values="r").drop("date")
    corr = np.ma.corrcoef(np.ma.masked_invalid(wide.to_numpy().T)).filled(np.nan)
    off_diag = corr[~np.eye(corr.shape[0], dtype=bool)]
    assert np.nanmean(off_diag) > 0.1


def test_price_range_spans_orders_of_magnitude(panel):
    close = panel["close"]
    assert np.log10(close.max() / close.min()) > 6
    assert close.min() < 1e-3 and close.max() > 1e3


def test_supply_changes_slowly(panel):
    step = (
        panel.with_columns(
            gap=pl.col("date").diff().dt.total_days().over("symbol"),
            ds=(pl.col("market_cap") / pl.col("close")).log().diff().over("symbol"),
        )
        .filter(pl.col("gap") == 1)["ds"]
        .abs()
    )
    assert step.max() < 0.05


# ---- funding -----------------------------------------------------------------


def test_funding_level_and_sign(panel):
    f = panel["funding_rate"].drop_nulls()
    assert 2e-5 < f.mean() < 3e-4
    neg = (f < 0).mean()
    assert 0.01 < neg < 0.5, neg


def test_funding_persistent(consecutive):
    pairs = consecutive.drop_nulls(["funding_rate", "f_prev"])
    rho = pairs.select(pl.corr("funding_rate", "f_prev")).item()
    assert rho > 0.5, rho


def test_funding_has_nulls_but_not_everywhere(panel):
    share = panel["funding_rate"].null_count() / panel.height
    assert 0.0 < share < 0.5, share
    per_symbol = panel.group_by("symbol").agg(pl.col("funding_rate").is_null().mean())
    assert (per_symbol["funding_rate"] < 1.0).sum() > N_SYMBOLS // 2


def test_funding_loads_on_trailing_return(panel):
    # Only trailing windows without holes, so the 30-row shift is 30 days.
    trailed = (
        panel.with_columns(
            span=(pl.col("date") - pl.col("date").shift(30)).dt.total_days().over("symbol"),
            r30=(pl.col("close").log() - pl.col("close").log().shift(30)).over("symbol"),
        )
        .filter(pl.col("span") == 30)
        .drop_nulls("funding_rate")
    )
    assert trailed.height > 1000
    # Recent winners pay more: the same-day cross-sectional rank correlation
    # between funding and the trailing 30-day return is positive on average.
    by_day = trailed.group_by("date").agg(
        pl.corr("funding_rate", "r30", method="spearman").alias("rho")
    )
    assert by_day["rho"].drop_nans().drop_nulls().mean() > 0.2


# ---- writing -----------------------------------------------------------------

SMALL = dict(n_symbols=12, n_days=120, seed=3)


@pytest.mark.parametrize("name", ["panel.parquet", "panel.csv", "PANEL.CSV"])
def test_write_round_trip(tmp_path, name):
    path = tmp_path / name
    write_synth(path, **SMALL)
    expected = synth_panel(**SMALL)
    if name.lower().endswith(".csv"):
        assert path.read_text().startswith("date,symbol,close")
        got = pl.read_csv(path, try_parse_dates=True, schema_overrides=SCHEMA)
    else:
        got = pl.read_parquet(path)
    assert_frame_equal(got, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_write_replaces_existing_file(tmp_path):
    path = tmp_path / "panel.parquet"
    path.write_bytes(b"old")
    write_synth(str(path), **SMALL)
    assert_frame_equal(pl.read_parquet(path), synth_panel(**SMALL))
    assert [p.name for p in tmp_path.iterdir()] == ["panel.parquet"]


def test_write_failure_leaves_target_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "panel.parquet"
    path.write_bytes(b"old")

    def broken(self, file, *args, **kwargs):
        with open(file, "wb") as fh:  # a partial file, then a crash
            fh.write(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", broken)
    with pytest.raises(OSError, match="disk full"):
        write_synth(path, **SMALL)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["panel.parquet"]
