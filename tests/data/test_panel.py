"""``sweep.load_panel``: long table (parquet or CSV) to dense panels, SEMANTICS §1."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import sweep
from sweep import SweepError

START = dt.date(2021, 3, 1)
DAYS = 12
SYMBOLS_IN_FILE_ORDER = ("SOL", "BTC", "xrp", "ADA", "ETH")  # sorted: ADA, BTC, ETH, SOL, xrp
FIELDS = ("close", "volume", "market_cap")


def day(k: int) -> dt.date:
    return START + dt.timedelta(days=k)


def long_table(seed: int = 0) -> pl.DataFrame:
    """A shuffled long table with holes.

    * day 4 has no row at all (a whole calendar day missing);
    * SOL lists on day 2, ADA stops after day 8, BTC misses day 6;
    * ``volume`` has a null (BTC, day 1).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(DAYS):
        if t == 4:
            continue
        for s in SYMBOLS_IN_FILE_ORDER:
            if (s == "SOL" and t < 2) or (s == "ADA" and t > 8) or (s == "BTC" and t == 6):
                continue
            rows.append({"date": day(t), "symbol": s, "close": float(rng.uniform(1, 100)),
                         "volume": None if (s, t) == ("BTC", 1) else float(rng.uniform(1e3, 1e6)),
                         "market_cap": float(rng.uniform(1e6, 1e9))})
    df = pl.DataFrame(rows, schema={"date": pl.Date, "symbol": pl.String, "close": pl.Float64,
                                    "volume": pl.Float64, "market_cap": pl.Float64})
    return df.sample(fraction=1.0, shuffle=True, seed=seed)


def write(df: pl.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        df.write_csv(path)
    else:
        df.write_parquet(path)
    return path


def pandas_dense(df: pl.DataFrame, column: str) -> np.ndarray:
    """The expected dense panel, by an independent route: a pandas pivot reindexed to every day."""
    pdf = df.to_pandas()
    pdf["date"] = pd.to_datetime(pdf["date"])
    wide = pdf.pivot(index="date", columns="symbol", values=column)
    days = pd.date_range(pdf["date"].min(), pdf["date"].max(), freq="D")
    return wide.reindex(index=days, columns=sorted(wide.columns)).to_numpy(dtype=float)


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return long_table()


@pytest.fixture(params=["parquet", "csv"])
def path(request, tmp_path, table) -> Path:
    return write(table, tmp_path / f"panel.{request.param}")


# ---- shape and placement -----------------------------------------------------------


def test_every_calendar_day_and_sorted_symbols(path):
    panel = sweep.load_panel(path)
    expected_days = np.arange(np.datetime64(START), np.datetime64(day(DAYS - 1)) + 1)
    assert panel.dates.dtype == np.dtype("datetime64[D]")
    np.testing.assert_array_equal(panel.dates, expected_days)
    assert panel.symbols == ("ADA", "BTC", "ETH", "SOL", "xrp")
    assert panel.shape == (DAYS, 5)


@pytest.mark.parametrize("column", FIELDS)
def test_values_match_a_pandas_pivot(path, table, column):
    panel = sweep.load_panel(path)
    np.testing.assert_array_equal(panel.fields[column], pandas_dense(table, column))


def test_missing_rows_are_nan(path):
    panel = sweep.load_panel(path)
    j = {s: k for k, s in enumerate(panel.symbols)}
    close = panel.close
    assert np.isnan(close[4]).all(), "a day with no row is a row of NaN"
    assert np.isnan(close[:2, j["SOL"]]).all() and np.isfinite(close[2:, j["SOL"]][[0, 1, 3]]).all()
    assert np.isnan(close[9:, j["ADA"]]).all()
    assert np.isnan(close[6, j["BTC"]]) and np.isfinite(close[5, j["BTC"]])
    assert np.isnan(panel.fields["volume"][1, j["BTC"]]), "a null becomes NaN"
    assert np.isfinite(close[1, j["BTC"]])
    # Every other cell holds a value: nothing was dropped.
    assert np.isfinite(close).sum() == long_table().height


def test_arrays_are_c_contiguous_float64(path):
    panel = sweep.load_panel(path)
    for name, arr in panel.fields.items():
        assert arr.dtype == np.float64, name
        assert arr.flags.c_contiguous, name
        assert arr.shape == panel.shape, name


def test_integer_columns_become_float64(tmp_path):
    df = pl.DataFrame({"date": [day(0), day(1)], "symbol": ["A", "A"], "close": [3, 4],
                       "volume": [10, 20]}, schema_overrides={"date": pl.Date})
    panel = sweep.load_panel(write(df, tmp_path / "ints.parquet"))
    assert panel.close.dtype == np.float64 and panel.fields["volume"].dtype == np.float64
    np.testing.assert_array_equal(panel.close[:, 0], [3.0, 4.0])


# ---- dates with a time of day --------------------------------------------------------


def test_datetime_column_floored_to_the_day(tmp_path):
    df = pl.DataFrame({
        "date": [dt.datetime(2021, 3, 1, 0, 0), dt.datetime(2021, 3, 1, 23, 59, 59),
                 dt.datetime(2021, 3, 3, 12, 0), dt.datetime(2021, 3, 3, 0, 0, 1)],
        "symbol": ["A", "B", "A", "B"],
        "close": [1.0, 2.0, 3.0, 4.0],
    })
    assert isinstance(df.schema["date"], pl.Datetime)
    panel = sweep.load_panel(write(df, tmp_path / "times.parquet"))
    np.testing.assert_array_equal(panel.dates, np.array(["2021-03-01", "2021-03-02", "2021-03-03"],
                                                        dtype="datetime64[D]"))
    np.testing.assert_array_equal(panel.close, [[1.0, 2.0], [np.nan, np.nan], [3.0, 4.0]])


def test_csv_times_of_day_floored_to_the_day(tmp_path):
    path = tmp_path / "times.csv"
    path.write_text("date,symbol,close\n"
                    "2021-03-01 23:30:00,A,1.0\n"
                    "2021-03-02T00:00:00,A,2.0\n"
                    "2021-03-02 18:15:00,B,5.0\n")
    panel = sweep.load_panel(path)
    np.testing.assert_array_equal(panel.dates, np.array(["2021-03-01", "2021-03-02"], dtype="datetime64[D]"))
    np.testing.assert_array_equal(panel.close, [[1.0, np.nan], [2.0, 5.0]])


def test_two_times_on_one_day_are_a_duplicate(tmp_path):
    df = pl.DataFrame({"date": [dt.datetime(2021, 3, 1, 8), dt.datetime(2021, 3, 1, 20)],
                       "symbol": ["A", "A"], "close": [1.0, 2.0]})
    path = write(df, tmp_path / "twice.parquet")
    with pytest.raises(SweepError, match="duplicate") as exc:
        sweep.load_panel(path)
    assert str(path) in str(exc.value)


# ---- optional columns -------------------------------------------------------------


def test_optional_columns_present(tmp_path, table):
    df = table.with_columns(funding_rate=pl.lit(1e-4), open=pl.col("close"), vwap=pl.col("close"))
    panel = sweep.load_panel(write(df, tmp_path / "full.parquet"))
    # Issue 12: any other numeric column (vwap) is a field too, for column and user factors.
    assert set(panel.fields) == {"close", "volume", "market_cap", "funding_rate", "open", "vwap"}
    assert panel.has("funding_rate") and panel.has("vwap")
    np.testing.assert_array_equal(panel.fields["vwap"], panel.close)
    np.testing.assert_array_equal(panel.fields["open"], panel.close)


def test_optional_columns_absent(tmp_path, table):
    path = write(table.select("date", "symbol", "close"), tmp_path / "bare.parquet")
    panel = sweep.load_panel(path)
    assert set(panel.fields) == {"close"}
    assert not panel.has("market_cap")
    with pytest.raises(SweepError, match="'market_cap'") as exc:
        panel.field("market_cap", "the size factor")
    assert str(path) in str(exc.value)


# ---- a separate funding table -------------------------------------------------------


def funding_table() -> pl.DataFrame:
    rows = [
        (day(0), "BTC", 1e-4),
        (day(3), "ETH", -2e-4),
        (day(4), "SOL", 3e-4),  # a day with no price row: still inside the panel's days
        (day(DAYS - 1), "xrp", 5e-4),
        (day(-1), "BTC", 9.0),  # before the panel
        (day(DAYS), "BTC", 9.0),  # after the panel
        (day(2), "DOGE", 9.0),  # a symbol the panel does not have
    ]
    return pl.DataFrame(rows, schema={"date": pl.Date, "symbol": pl.String, "funding_rate": pl.Float64},
                        orient="row")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_funding_join(tmp_path, table, fmt):
    main = write(table.with_columns(funding_rate=pl.lit(7.0)), tmp_path / "main.parquet")
    fund = write(funding_table(), tmp_path / f"funding.{fmt}")
    panel = sweep.load_panel(main, funding=fund)
    j = {s: k for k, s in enumerate(panel.symbols)}
    expected = np.full(panel.shape, np.nan)
    expected[0, j["BTC"]] = 1e-4
    expected[3, j["ETH"]] = -2e-4
    expected[4, j["SOL"]] = 3e-4
    expected[DAYS - 1, j["xrp"]] = 5e-4
    fr = panel.fields["funding_rate"]
    np.testing.assert_array_equal(fr, expected)  # replaces the main table's column; outside rows ignored
    assert fr.dtype == np.float64 and fr.flags.c_contiguous
    assert panel.shape == (DAYS, 5)  # the funding table adds no day and no symbol


def test_funding_without_a_matching_row(tmp_path, table):
    main = write(table, tmp_path / "main.parquet")
    fund = write(funding_table().filter(pl.col("funding_rate") == 9.0), tmp_path / "funding.parquet")
    with pytest.raises(SweepError, match="no funding row matches") as exc:
        sweep.load_panel(main, funding=fund)
    assert str(fund) in str(exc.value)


# ---- fingerprints ---------------------------------------------------------------------


def test_fingerprint_same_file(path):
    assert sweep.load_panel(path).fingerprint == sweep.load_panel(path).fingerprint


def test_fingerprint_changes_with_the_file(tmp_path, table):
    path = write(table, tmp_path / "panel.parquet")
    before = sweep.load_panel(path).fingerprint
    write(table.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.col("close") * 1.01)
                             .otherwise(pl.col("close")).alias("close")), path)
    assert sweep.load_panel(path).fingerprint != before


def test_fingerprint_changes_with_the_funding_file(tmp_path, table):
    main = write(table, tmp_path / "main.parquet")
    fund = write(funding_table(), tmp_path / "funding.parquet")
    with_funding = sweep.load_panel(main, funding=fund).fingerprint
    assert with_funding == sweep.load_panel(main, funding=fund).fingerprint
    assert with_funding != sweep.load_panel(main).fingerprint
    write(funding_table().with_columns(pl.col("funding_rate") * 2), fund)
    assert sweep.load_panel(main, funding=fund).fingerprint != with_funding
