"""Hostile panels (issue 11, point 3; SEMANTICS §1): integer prices with flat runs, funding tables
that match nothing, all-missing funding, bad optional values, one coin under two spellings,
time zones, stray and future dates. Each error is one line naming the file, the column and
the first offending rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep
from sweep import SweepError

D0 = dt.date(2021, 3, 1)


def day(k: int) -> dt.date:
    return D0 + dt.timedelta(days=k)


def small(n_days: int = 6, symbols=("BTC", "ETH", "SOL"), **extra) -> pl.DataFrame:
    """A complete little long table; ``extra`` columns get the value ``1.0 + row`` unless given."""
    rows = [{"date": day(t), "symbol": s, "close": 10.0 + t + j} for t in range(n_days) for j, s in enumerate(symbols)]
    df = pl.DataFrame(rows, schema={"date": pl.Date, "symbol": pl.String, "close": pl.Float64})
    for name, values in extra.items():
        df = df.with_columns(pl.Series(name, values, dtype=pl.Float64, strict=False))
    return df


def refused(df_or_path, tmp_path: Path | None = None, funding=None, name: str = "panel.parquet") -> str:
    """The one-line message ``load_panel`` refuses the table with (the file's path in it)."""
    if isinstance(df_or_path, pl.DataFrame):
        path = tmp_path / name
        df_or_path.write_csv(path) if name.endswith(".csv") else df_or_path.write_parquet(path)
    else:
        path = df_or_path
    with pytest.raises(SweepError) as exc:
        sweep.load_panel(path, funding=funding)
    msg = str(exc.value)
    assert "\n" not in msg, msg
    assert msg.startswith(f"{path}:") or (funding is not None and msg.startswith(f"{funding}:")), msg
    return msg


# ---- integer prices ----------------------------------------------------------------------


def integer_panel() -> pl.DataFrame:
    """A synthetic panel with Int64 close, volume and market cap: prices of 1 .. 9 so that a
    coin's close stays flat for days (a zero return, a zero-variance window)."""
    df = sweep.synth_panel(n_symbols=10, n_days=240, seed=3)
    scale = pl.col("close") / pl.col("close").max().over("symbol") * 8.0
    return df.with_columns(
        (scale.floor() + 1).cast(pl.Int64).alias("close"),
        pl.col("volume").round(0).cast(pl.Int64),
        (pl.col("market_cap").round(0).cast(pl.Int64) + 1),
    ).drop("funding_rate")


def test_an_int64_panel_loads_as_float64_equal_to_its_float_copy(tmp_path):
    ints = integer_panel()
    assert ints.schema["close"] == pl.Int64
    floats = ints.with_columns(pl.col(pl.Int64).cast(pl.Float64))
    a = sweep.load_panel(_write(ints, tmp_path / "ints.parquet"))
    b = sweep.load_panel(_write(floats, tmp_path / "floats.parquet"))
    for name in ("close", "volume", "market_cap"):
        assert a.fields[name].dtype == np.float64
        np.testing.assert_array_equal(a.fields[name], b.fields[name])
    r = np.diff(a.close, axis=0)
    assert (r == 0).sum() > 1000, "the fixture must have flat runs"


GRID = """[study]
name = "{name}"
data = "{data}"
[backtest]
fee_bps = 10
market = "equal_weight"
[grid]
factor = ["volatility", "kurtosis", "skewness", "beta", "size", "momentum", "mean_reversion", "days_from_high"]
window = [5, 20]
weighting = ["equal", "risk_parity"]
rebalance_days = [1, 3]
"""


def test_the_trials_of_an_int64_panel_equal_those_of_its_float64_copy(tmp_path):
    """An Int64 close with flat runs once ended in a ZeroDivisionError: the whole grid (every
    factor, windows short enough to be flat, risk parity dividing by volatility) must run and
    give the very table of the float64 copy."""
    ints = integer_panel()
    floats = ints.with_columns(pl.col(pl.Int64).cast(pl.Float64))
    tables = {}
    for name, df in (("ints", ints), ("floats", floats)):
        data = _write(df, tmp_path / f"{name}.parquet")
        (tmp_path / f"{name}.toml").write_text(GRID.format(name=name, data=data))
        sweep.run_study(sweep.load_study(tmp_path / f"{name}.toml"), out=tmp_path / name, progress=False)
        tables[name] = pl.read_parquet(tmp_path / name / "trials.parquet").sort("config_id")
    assert tables["ints"]["sharpe"].is_finite().sum() > 0
    assert_frame_equal(tables["ints"], tables["floats"])


def _write(df: pl.DataFrame, path: Path) -> Path:
    df.write_csv(path) if path.suffix == ".csv" else df.write_parquet(path)
    return path


def test_a_column_of_another_type_is_refused(tmp_path):
    df = small().with_columns(pl.lit(True).alias("volume"))
    msg = refused(df, tmp_path)
    assert "column 'volume'" in msg and "Boolean" in msg


def test_an_all_null_optional_column_is_unknown_not_an_error(tmp_path):
    df = small().with_columns(pl.lit(None).alias("market_cap"))
    panel = sweep.load_panel(_write(df, tmp_path / "p.parquet"))
    assert np.isnan(panel.fields["market_cap"]).all()


# ---- funding tables ----------------------------------------------------------------------


def exchange_funding(symbols=("BTCUSDT", "ETHUSDT"), days: int = 6) -> pl.DataFrame:
    """Funding as exchanges publish it: every 8 hours, quoted pairs."""
    rows = [{"date": dt.datetime.combine(day(t), dt.time(h)), "symbol": s, "funding_rate": 1e-4}
            for t in range(days) for h in (0, 8, 16) for s in symbols]
    return pl.DataFrame(rows)


def test_funding_that_matches_no_symbol_says_so_with_one_symbol_of_each_side(tmp_path):
    main = _write(small(), tmp_path / "panel.parquet")
    fund = _write(exchange_funding(), tmp_path / "funding.parquet")
    msg = refused(main, funding=fund)
    assert msg.startswith(f"{fund}: no funding row matches a symbol of {main}")
    assert "'BTCUSDT'" in msg and "'BTC'" in msg
    assert "duplicate" not in msg


def test_eight_hourly_funding_of_the_panels_symbols_is_a_duplicate_with_the_rule(tmp_path):
    main = _write(small(), tmp_path / "panel.parquet")
    fund = _write(exchange_funding(("BTC", "ETH")), tmp_path / "funding.csv")
    msg = refused(main, funding=fund)
    assert msg.startswith(f"{fund}: 36 rows duplicate a (date, symbol)")
    assert "sum of that day's payments" in msg and "row 0: date=2021-03-01, symbol='BTC'" in msg


def test_funding_of_other_days_names_both_ranges(tmp_path):
    main = _write(small(), tmp_path / "panel.parquet")
    fund = pl.DataFrame({"date": [day(400), day(401)], "symbol": ["BTC", "BTC"], "funding_rate": [1e-4, 2e-4]})
    msg = refused(main, funding=_write(fund, tmp_path / "f.parquet"))
    assert "no funding row matches a (date, symbol)" in msg
    assert "2022-04-05 .. 2022-04-06" in msg and "2021-03-01 .. 2021-03-06" in msg


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_an_all_missing_funding_table_is_an_error_not_zero_funding(tmp_path, missing):
    main = _write(small(), tmp_path / "panel.parquet")
    fund = pl.DataFrame({"date": [day(0), day(1)], "symbol": ["BTC", "ETH"], "funding_rate": [missing, missing]},
                        schema={"date": pl.Date, "symbol": pl.String, "funding_rate": pl.Float64})
    msg = refused(main, funding=_write(fund, tmp_path / "f.parquet"))
    assert "column 'funding_rate' has no value" in msg


def test_funding_missing_on_every_matching_row_is_an_error(tmp_path):
    main = _write(small(), tmp_path / "panel.parquet")
    fund = pl.DataFrame({"date": [day(0), day(1), day(500)], "symbol": ["BTC", "ETH", "BTC"],
                         "funding_rate": [None, float("nan"), 1e-4]})
    msg = refused(main, funding=_write(fund, tmp_path / "f.parquet"))
    assert "no value on the panel's days and symbols (all 2 matching rows" in msg


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_an_all_missing_funding_column_in_the_panel_is_an_error(tmp_path, missing):
    df = small(funding_rate=[missing] * 18)
    msg = refused(df, tmp_path)
    assert "column 'funding_rate' has no value" in msg


def test_a_separate_funding_table_replaces_an_empty_panel_column(tmp_path):
    main = _write(small(funding_rate=[None] * 18), tmp_path / "panel.parquet")
    fund = pl.DataFrame({"date": [day(2)], "symbol": ["SOL"], "funding_rate": [3e-4]})
    panel = sweep.load_panel(main, funding=_write(fund, tmp_path / "f.parquet"))
    fr = panel.fields["funding_rate"]
    assert fr[2, panel.symbols.index("SOL")] == 3e-4 and np.isnan(fr).sum() == fr.size - 1


def test_infinite_funding_in_a_separate_table_names_the_row(tmp_path):
    main = _write(small(), tmp_path / "panel.parquet")
    fund = pl.DataFrame({"date": [day(0), day(1)], "symbol": ["BTC", "ETH"], "funding_rate": [1e-4, float("inf")]})
    msg = refused(main, funding=_write(fund, tmp_path / "f.parquet"))
    assert "column 'funding_rate' has 1 infinite values: row 1: date=2021-03-02, symbol='ETH', funding_rate=inf" in msg


# ---- optional numeric columns (SEMANTICS §1) ---------------------------------------------------

BAD = [
    ("open", float("inf"), "infinite"), ("high", float("-inf"), "infinite"), ("low", float("inf"), "infinite"),
    ("volume", float("inf"), "infinite"), ("volume", -1.0, "negative"), ("market_cap", float("-inf"), "infinite"),
    ("market_cap", -5e6, "negative"), ("market_cap", 0.0, "values of 0"), ("market_cap", -0.0, "values of 0"),
    ("funding_rate", float("inf"), "infinite"),
]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("column,value,what", BAD)
def test_a_bad_optional_value_names_its_rows(tmp_path, column, value, what, fmt):
    values = [1e6 + k for k in range(18)]
    values[7] = value  # day 2, ETH
    values[13] = value  # day 4, ETH
    msg = refused(small(**{column: values}), tmp_path, name=f"panel.{fmt}")
    assert f"column '{column}' has 2 " in msg and what in msg
    assert f"row 7: date=2021-03-03, symbol='ETH', {column}=" in msg and "row 13: date=2021-03-05" in msg


@pytest.mark.parametrize("column", ["open", "high", "low", "volume", "market_cap", "funding_rate"])
def test_missing_optional_values_mean_unknown(tmp_path, column):
    values = [1e6 + k for k in range(18)]
    values[4], values[5] = None, float("nan")
    panel = sweep.load_panel(_write(small(**{column: values}), tmp_path / "p.parquet"))
    f = panel.fields[column]
    assert np.isnan(f[1, 1]) and np.isnan(f[1, 2]) and np.isfinite(f).sum() == 16


def test_a_volume_of_zero_is_real(tmp_path):
    panel = sweep.load_panel(_write(small(volume=[0.0] * 18), tmp_path / "p.parquet"))
    assert (panel.fields["volume"] == 0.0).all()


def test_a_negative_funding_rate_is_real(tmp_path):
    panel = sweep.load_panel(_write(small(funding_rate=[-3e-4] * 18), tmp_path / "p.parquet"))
    assert (panel.fields["funding_rate"] == -3e-4).all()


# ---- one coin, two spellings ---------------------------------------------------------------


def test_two_spellings_of_one_symbol_are_named(tmp_path):
    df = small(symbols=("BTC", "ETH", "eth", "SOL"))
    msg = refused(df, tmp_path)
    assert "column 'symbol'" in msg and "'ETH' and 'eth'" in msg
    assert "row 1: date=2021-03-01, symbol='ETH'" in msg and "row 2: date=2021-03-01, symbol='eth'" in msg


def test_a_symbol_with_spaces_around_it_is_the_same_symbol(tmp_path):
    df = small(symbols=("BTC", "ETH ", "ETH"))
    msg = refused(df, tmp_path)
    assert "'ETH' and 'ETH '" in msg


def test_spellings_in_a_funding_table_are_named(tmp_path):
    main = _write(small(), tmp_path / "panel.parquet")
    fund = pl.DataFrame({"date": [day(0), day(0)], "symbol": ["Btc", "BTC"], "funding_rate": [1e-4, 1e-4]})
    msg = refused(main, funding=_write(fund, tmp_path / "f.parquet"))
    assert "'BTC' and 'Btc'" in msg


# ---- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tz", ["Asia/Tokyo", "America/New_York", "UTC"])
def test_a_time_zone_aware_date_is_converted_to_utc_before_it_is_floored(tmp_path, tz):
    local = [dt.datetime(2021, 3, 1, 1, 0), dt.datetime(2021, 3, 1, 22, 0), dt.datetime(2021, 3, 2, 12, 0)]
    df = pl.DataFrame({"date": local, "symbol": ["A", "B", "C"], "close": [1.0, 2.0, 3.0]}).with_columns(
        pl.col("date").dt.replace_time_zone(tz))
    panel = sweep.load_panel(_write(df, tmp_path / "tz.parquet"))
    # The same instants by pandas: UTC, then floored to the day.
    utc_days = pd.DatetimeIndex(local).tz_localize(tz).tz_convert("UTC").floor("D").tz_localize(None)
    expected = np.full((len(panel.dates), 3), np.nan)
    for j, d in enumerate(utc_days.values.astype("datetime64[D]")):
        expected[int((d - panel.dates[0]).astype(int)), j] = j + 1.0
    assert panel.dates[0] == utc_days.values.astype("datetime64[D]").min()
    np.testing.assert_array_equal(panel.close, expected)


def test_date_strings_with_offsets_are_converted_to_utc(tmp_path):
    path = tmp_path / "offsets.csv"
    path.write_text("date,symbol,close\n"
                    "2021-03-02T01:00:00+02:00,A,1.0\n"    # 2021-03-01 23:00 UTC
                    "2021-03-01 22:00:00-05:00,B,2.0\n"    # 2021-03-02 03:00 UTC
                    "2021-03-02T00:30:00Z,C,3.0\n"
                    "2021-03-01 23:30:00,C,4.0\n"          # no offset: taken as UTC
                    "2021-03-03,A,5.0\n")
    panel = sweep.load_panel(path)
    np.testing.assert_array_equal(panel.dates, np.array(["2021-03-01", "2021-03-02", "2021-03-03"],
                                                        dtype="datetime64[D]"))
    nan = np.nan
    np.testing.assert_array_equal(panel.close, [[1.0, nan, 4.0], [nan, 2.0, 3.0], [5.0, nan, nan]])


def test_date_strings_of_several_iso_forms_all_parse(tmp_path):
    path = tmp_path / "forms.csv"
    path.write_text("date,symbol,close\n"
                    "2021-03-01,A,1.0\n"
                    "2021-03-01T10:00:00.123456,B,2.0\n"
                    "2021-03-02 23:59,A,3.0\n"
                    "2021-03-02T08:00:00+0000,B,4.0\n")
    panel = sweep.load_panel(path)
    np.testing.assert_array_equal(panel.close, [[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize("text", ["03/06/2021", "2021/03/06", "6 March 2021", "2021-02-30", "garbage"])
def test_a_date_that_is_not_iso_is_unparsable(tmp_path, text):
    path = tmp_path / "other.csv"
    path.write_text(f"date,symbol,close\n2021-03-01 10:00:00,A,1.0\n{text},A,2.0\n2021-03-02T10:00:00,B,3.0\n")
    msg = refused(path)
    assert "column 'date' has 1 unparsable" in msg and f"row 1: date={text!r}" in msg


def test_a_date_after_today_names_the_row(tmp_path):
    df = pl.concat([small(), pl.DataFrame({"date": [dt.date(2500, 1, 1)], "symbol": ["BTC"], "close": [5.0]})])
    msg = refused(df, tmp_path)
    assert "column 'date' has 1 row dated after today" in msg and "row 18: date=2500-01-01, symbol='BTC'" in msg


def test_tomorrow_is_after_today(tmp_path):
    tomorrow = max(dt.date.today(), dt.datetime.now(dt.timezone.utc).date()) + dt.timedelta(days=1)
    rows = [{"date": tomorrow - dt.timedelta(days=k), "symbol": "A", "close": 1.0} for k in range(3)]
    msg = refused(pl.DataFrame(rows), tmp_path)
    assert f"row 0: date={tomorrow}" in msg


@pytest.mark.parametrize("gap,refuse", [(365, False), (366, True)])
def test_a_date_far_from_every_other_is_refused(tmp_path, gap, refuse):
    stray_first = pl.DataFrame({"date": [day(-gap)], "symbol": ["SOL"], "close": [5.0]})
    df = pl.concat([small(), stray_first])
    if not refuse:
        panel = sweep.load_panel(_write(df, tmp_path / "p.parquet"))
        assert len(panel.dates) == gap + 6  # the calendar runs from the stray day: it was not isolated
        return
    msg = refused(df, tmp_path)
    assert (f"column 'date' has 1 date more than 365 days from every other date (the nearest to {day(-gap)} "
            f"is 2021-03-01): row 18: date={day(-gap)}, symbol='SOL'") in msg


def test_a_lone_date_in_the_middle_is_refused_but_two_eras_are_not(tmp_path):
    # Two eras a thousand days apart, each of several days: every date has a neighbour.
    eras = pl.concat([small(), small().with_columns(pl.col("date") + pl.duration(days=1000))])
    panel = sweep.load_panel(_write(eras, tmp_path / "eras.parquet"))
    assert len(panel.dates) == 1006
    lone = pl.concat([eras, pl.DataFrame({"date": [day(500)], "symbol": ["BTC"], "close": [5.0]})])
    msg = refused(lone, tmp_path)
    assert f"row 36: date={day(500)}, symbol='BTC'" in msg


def test_the_embedded_panel_passes_every_check():
    from conftest import ROOT

    panel = sweep.load_panel(ROOT / "data" / "crypto_daily.parquet")
    assert panel.shape == (2534, 76)


# ---- dense arrays: the same rules ----------------------------------------------------------------


ARRAY_CASES = [
    ("close", 0.0, "field 'close'"), ("close", -2.0, "field 'close'"), ("close", np.inf, "field 'close'"),
    ("volume", -1.0, "field 'volume'"), ("market_cap", 0.0, "field 'market_cap'"),
    ("funding_rate", -np.inf, "field 'funding_rate'"),
]


@pytest.mark.parametrize("name,value,what", ARRAY_CASES)
def test_panel_from_arrays_refuses_what_a_table_may_not_hold(name, value, what):
    dates = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-05"))
    fields = {k: np.full((4, 2), 5.0) for k in ("close", "volume", "market_cap", "funding_rate")}
    fields[name][2, 1] = value
    close = fields.pop("close")
    with pytest.raises(SweepError) as exc:
        sweep.panel_from_arrays(dates, ["A", "B"], close, source="mine", **fields)
    msg = str(exc.value)
    assert msg.startswith("mine: ") and what in msg and "on 2024-01-03 for 'B'" in msg


def test_panel_from_arrays_keeps_nan_and_zero_volume():
    dates = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-04"))
    close = np.array([[1.0, np.nan], [2.0, 3.0], [np.nan, 4.0]])
    panel = sweep.panel_from_arrays(dates, ["A", "B"], close, volume=np.zeros((3, 2)))
    np.testing.assert_array_equal(panel.close, close)


@pytest.mark.parametrize("symbols,dates,what", [
    (["A", "a"], ("2024-01-01", "2024-01-03"), "letter case"),
    (["A", "B"], ("2024-01-01", "2024-01-05"), "every calendar day"),
])
def test_panel_from_arrays_refuses_bad_axes(symbols, dates, what):
    days = np.arange(np.datetime64(dates[0]), np.datetime64(dates[1]), 2 if "05" in dates[1] else 1)
    with pytest.raises(SweepError, match=what):
        sweep.panel_from_arrays(days, symbols, np.ones((len(days), 2)))


# ---- through the command line ------------------------------------------------------------------


def test_sweep_run_on_a_bad_panel_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    df = sweep.synth_panel(n_symbols=6, n_days=80, seed=2)
    first = df["symbol"].unique().sort()[0]
    df = pl.concat([df, df.filter(pl.col("symbol") == first).with_columns(pl.col("symbol").str.to_lowercase())])
    data = _write(df, tmp_path / "twice.parquet")
    (tmp_path / "s.toml").write_text(f'[study]\nname = "s"\ndata = "{data}"\n[backtest]\nfactor = "momentum"\n'
                                     "[grid]\nrebalance_days = [1, 2]\n")
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(tmp_path / "s.toml"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(data) in lines[0] and "column 'symbol'" in lines[0], proc.stderr
    assert f"{first!r} and {first.lower()!r}" in lines[0]
