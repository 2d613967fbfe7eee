"""Load a long (date, symbol, fields...) table into dense ``(T, N)`` panels (SEMANTICS §1)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

from sweep.core.errors import SweepError

REQUIRED = ("date", "symbol", "close")
OPTIONAL = ("open", "high", "low", "volume", "market_cap", "funding_rate")
_SHOW = 3  # offending rows quoted in an error
ISOLATED_DAYS = 365  # a date farther than this from every other one is a stray row
NON_NEGATIVE = ("volume", "market_cap")  # a volume of 0 is real: nothing traded
POSITIVE = ("market_cap",)  # vendors write 0 for "unknown": it must be given as missing
NOT_ALL_MISSING = ("funding_rate",)  # an all-missing funding column would be read as no funding at all


@dataclass(frozen=True, eq=False)
class Panel:
    """Dense daily panel: every calendar day from the first to the last date, symbols sorted.

    Each field is a C-contiguous float64 ``(T, N)`` array with NaN where the
    long table has no row (or a null): ``close``, the optional columns present,
    and every other numeric column of the table under its own name (open
    interest, supply, a score; an infinite value refused as for the optional
    ones); an extra column that is not numbers is named in ``non_numeric``.
    Derived return panels are computed on first use and kept.
    """

    dates: np.ndarray  # datetime64[D], (T,)
    symbols: tuple[str, ...]
    fields: dict[str, np.ndarray]
    source: str
    fingerprint: str  # sha256 prefix of the input file(s)' bytes
    _extra: dict = field(default_factory=dict, repr=False)
    # Extra columns of the table that are not numbers (name -> type), kept out of ``fields``:
    # a factor that reads one is refused naming its type rather than "no such column".
    non_numeric: dict[str, str] = field(default_factory=dict)

    @property
    def close(self) -> np.ndarray:
        return self.fields["close"]

    @property
    def shape(self) -> tuple[int, int]:
        return self.close.shape

    def has(self, column: str) -> bool:
        return column in self.fields

    def field(self, column: str, why: str) -> np.ndarray:
        if column not in self.fields:
            raise SweepError(f"{self.source}: {why} needs the column '{column}', which the data does not have")
        return self.fields[column]

    def day_index(self, day, what: str) -> int:
        d = np.datetime64(day, "D")
        t = int((d - self.dates[0]).astype(int))
        if not 0 <= t < len(self.dates):
            raise SweepError(f"{what} = {day} is outside the data ({self.dates[0]} .. {self.dates[-1]})")
        return t

    @cached_property
    def simple_returns(self) -> np.ndarray:
        from kernels.returns import simple_returns

        return simple_returns(self.close)

    @cached_property
    def log_returns(self) -> np.ndarray:
        from kernels.returns import log_returns

        return log_returns(self.simple_returns)

    @cached_property
    def carried_returns(self) -> np.ndarray:
        from kernels.returns import carried_returns

        return carried_returns(self.close)


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise SweepError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".csv":
            return pl.read_csv(path, infer_schema_length=10_000, try_parse_dates=False)
        return pl.read_parquet(path)
    except Exception as exc:  # polars raises several types; the message is what matters
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SweepError(f"{path}: cannot read the table: {first}") from None


def _show(v) -> str:
    return str(v) if isinstance(v, (dt.date, dt.datetime)) else repr(v)


def _rows(df: pl.DataFrame, mask: pl.Series, cols: list[str]) -> str:
    bad = df.with_row_index("row").filter(mask).head(_SHOW)
    return "; ".join(
        f"row {r['row']}: " + ", ".join(f"{c}={_show(r[c])}" for c in cols) for r in bad.iter_rows(named=True)
    )


# A timestamp string that carries its own offset from UTC ("...+02:00", "...-0500", "...Z").
_OFFSET = r"(?:[Zz]|[+-]\d{2}:?\d{2})$"
_PARSE_ROUNDS = 8


def _parse_strings(s: pl.Series) -> pl.Series:
    """Calendar days of date strings: a plain date, or a timestamp floored to its day, one with
    an offset from UTC first converted to UTC (SEMANTICS §1). A string that parses as none of
    these stays null (the caller names it)."""
    s = s.str.strip_chars()
    parsed = s.str.to_date("%Y-%m-%d", strict=False)
    aware = s.str.contains(_OFFSET).fill_null(False)
    # Only ISO 8601 days: "03/06/2021" is the 6th of March or the 3rd of June by habit alone.
    iso = s.str.contains(r"^\d{4}-\d{2}-\d{2}").fill_null(False)
    for tz, kind in ((None, iso & ~aware), ("UTC", iso & aware)):
        # polars infers one format per call from the first value it meets: parse what is left
        # again, setting aside a first value that fits no format (a few rounds: a column has
        # few formats, and garbage is reported from its first rows anyway).
        skip = pl.Series([False] * len(s))
        for _ in range(_PARSE_ROUNDS):
            todo = parsed.is_null() & s.is_not_null() & kind & ~skip
            if not todo.any():
                break
            part = pl.select(pl.when(todo).then(s)).to_series()
            try:
                part = part.str.to_datetime(strict=False, time_unit="us", time_zone=tz).dt.date()
            except pl.exceptions.PolarsError:  # no format fits the first remaining string
                part = pl.Series([None] * len(s), dtype=pl.Date)
            if not (todo & part.is_not_null()).any():
                skip = skip | (pl.int_range(len(s), eager=True) == int(todo.arg_true()[0]))
                continue
            parsed = pl.select(pl.when(todo).then(part).otherwise(parsed)).to_series()
    return parsed


def _dates(df: pl.DataFrame, path: Path) -> pl.DataFrame:
    dtype = df.schema["date"]
    if dtype == pl.Date:
        parsed = df["date"]
    elif isinstance(dtype, pl.Datetime):
        col = df["date"]
        if dtype.time_zone is not None:  # the calendar day is UTC's, not the exchange's
            col = col.dt.convert_time_zone("UTC")
        parsed = col.dt.date()  # floor a time of day to its calendar day
    elif dtype == pl.String:
        parsed = _parse_strings(df["date"])
    else:
        raise SweepError(f"{path}: column 'date' has type {dtype}, expected dates")
    bad = parsed.is_null()
    if bad.any():
        raise SweepError(f"{path}: column 'date' has {int(bad.sum())} unparsable or missing dates (expected "
                         "YYYY-MM-DD, with a time of day and an offset from UTC if any): " + _rows(df, bad, ["date"]))
    return df.with_columns(parsed.alias("date"))


def _float_column(df: pl.DataFrame, name: str, path: Path) -> pl.Series:
    """Column ``name`` as float64 whatever its numeric type (an integer price must reach no
    kernel as an integer); text must hold numbers; any other type is refused."""
    col = df[name]
    if col.dtype == pl.Null:
        return pl.Series(name, [None] * len(col), dtype=pl.Float64)
    if not (col.dtype.is_numeric() or col.dtype == pl.String):
        raise SweepError(f"{path}: column '{name}' has type {col.dtype}, expected numbers")
    try:
        return col.cast(pl.Float64, strict=True)
    except Exception:
        cast = col.cast(pl.Float64, strict=False)
        bad = cast.is_null() & col.is_not_null()
        raise SweepError(f"{path}: column '{name}' has non-numeric values: "
                         + _rows(df, bad, [name])) from None


def _check_keys(df: pl.DataFrame, path: Path, required: tuple[str, ...]) -> pl.DataFrame:
    """Required columns, dates parsed and floored, symbols present and spelt one way each."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SweepError(f"{path}: missing required column '{missing[0]}' (columns: {', '.join(df.columns)})")
    df = _dates(df, path)
    if df.schema["symbol"] != pl.String:
        df = df.with_columns(pl.col("symbol").cast(pl.String))
    bad = df["symbol"].is_null() | (df["symbol"].str.strip_chars() == "")
    if bad.any():
        raise SweepError(f"{path}: column 'symbol' has missing values: " + _rows(df, bad, ["date", "symbol"]))
    _check_spellings(df, path)
    return df


def _check_spellings(df: pl.DataFrame, path: Path) -> None:
    """Two symbols that differ only in letter case (or surrounding spaces) are one asset twice."""
    syms = df["symbol"].unique().sort()
    keys = pl.DataFrame({"symbol": syms, "key": syms.str.strip_chars().str.to_lowercase()})
    twice = keys.filter(pl.col("key").is_duplicated()).sort("key", "symbol")
    if twice.height == 0:
        return
    first = twice.filter(pl.col("key") == twice["key"][0])["symbol"].to_list()
    spelt = " and ".join(repr(s) for s in first)
    rows = df.with_row_index("row").filter(pl.col("symbol").is_in(first)).unique("symbol", keep="first",
                                                                                 maintain_order=True)
    shown = "; ".join(f"row {r['row']}: date={r['date']}, symbol={r['symbol']!r}" for r in rows.iter_rows(named=True))
    raise SweepError(f"{path}: column 'symbol' spells one asset {len(first)} ways, {spelt} (symbols that "
                     f"differ only in letter case are the same asset; keep one spelling): {shown}")


def _check_duplicates(df: pl.DataFrame, path: Path, ti: np.ndarray, si: np.ndarray, hint: str = "") -> None:
    """No two rows of one (date, symbol): ``ti``/``si`` are the rows' day and symbol indices.

    On integer keys in numpy: hashing the (date, string) pairs in Polars took 130 MB more for
    a 200 x 3,650 panel, a third of a small study's peak memory."""
    key = ti * (int(si.max()) + 1 if len(si) else 1) + si
    order = np.argsort(key, kind="stable")
    same = np.diff(key[order]) == 0
    if same.any():
        dup = np.zeros(len(key), dtype=bool)  # every row of a duplicated pair, as is_duplicated marks
        dup[order[1:][same]] = True
        dup[order[:-1][same]] = True
        raise SweepError(f"{path}: {int(dup.sum())} rows duplicate a (date, symbol){hint}: "
                         + _rows(df, pl.Series(dup), ["date", "symbol"]))


def _today() -> dt.date:
    # The latest calendar day begun anywhere between UTC and the local zone: a panel dated
    # today in either must not be refused as "in the future".
    return max(dt.date.today(), dt.datetime.now(dt.timezone.utc).date())


def _check_calendar(df: pl.DataFrame, path: Path) -> None:
    """No date after today, and none more than ``ISOLATED_DAYS`` from every other date: one
    stray row would stretch the calendar (every day in between becomes a row of NaN)."""
    today = _today()
    late = df["date"] > today
    if late.any():
        n = int(late.sum())
        raise SweepError(f"{path}: column 'date' has {n} row{'s' if n != 1 else ''} dated after today ({today}): "
                         + _rows(df, late, ["date", "symbol"]))
    days = np.unique(df["date"].to_numpy().astype("datetime64[D]").astype(np.int64))
    if len(days) < 2:
        return
    gap = np.diff(days)
    nearest = np.minimum(np.concatenate([[np.iinfo(np.int64).max], gap]),
                         np.concatenate([gap, [np.iinfo(np.int64).max]]))
    lone = days[nearest > ISOLATED_DAYS]
    if len(lone) == 0:
        return
    k = int(np.searchsorted(days, lone[0]))
    near = min((days[j] for j in (k - 1, k + 1) if 0 <= j < len(days)), key=lambda d: abs(d - days[k]))
    as_date = lone.astype("datetime64[D]")
    mask = df["date"].is_in([d.item() for d in as_date])
    raise SweepError(f"{path}: column 'date' has {len(lone)} date{'s' if len(lone) > 1 else ''} more than "
                     f"{ISOLATED_DAYS} days from every other date (the nearest to {as_date[0]} is "
                     f"{np.datetime64(int(near), 'D')}): " + _rows(df, mask, ["date", "symbol"]))


def _check_values(df: pl.DataFrame, name: str, values: pl.Series, path: Path) -> None:
    """SEMANTICS §1 for an optional column: a missing value (null, NaN) means unknown; an
    infinite one is an error, as are a negative volume or market cap and a market cap of 0."""
    cols = ["date", "symbol", name]
    show = df.with_columns(values.alias(name))
    inf = values.is_infinite().fill_null(False)
    if inf.any():
        raise SweepError(f"{path}: column '{name}' has {int(inf.sum())} infinite values: " + _rows(show, inf, cols))
    if name in NON_NEGATIVE:
        neg = (values < 0).fill_null(False)
        if neg.any():
            raise SweepError(f"{path}: column '{name}' has {int(neg.sum())} negative values: "
                             + _rows(show, neg, cols))
    if name in POSITIVE:
        zero = (values == 0).fill_null(False)
        if zero.any():
            raise SweepError(f"{path}: column '{name}' has {int(zero.sum())} values of 0 (give an unknown "
                             "market cap as missing, null or NaN): " + _rows(show, zero, cols))
    if name in NOT_ALL_MISSING and (values.is_null() | values.is_nan()).all():
        raise SweepError(f"{path}: column '{name}' has no value (every row is null or NaN); drop the "
                         "column, or fill it, rather than read it as 0")


def _fingerprint(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def load_panel(path: str | Path, funding: str | Path | None = None) -> Panel:
    """Read and validate a long table (parquet or CSV) and build the dense panel.

    ``funding`` names an optional separate ``(date, symbol, funding_rate)``
    table joined onto the panel's days and symbols (it replaces a
    ``funding_rate`` column of the main table). Every problem raises a
    ``SweepError`` naming the file, the column and the first offending rows.

    >>> panel = load_panel("data/crypto_daily.parquet")
    >>> panel.close.shape
    (2534, 76)
    """
    path = Path(path)
    paths = [path] if funding is None else [path, Path(funding)]
    df = _read(path)
    if funding is not None and "funding_rate" in df.columns:
        df = df.drop("funding_rate")  # replaced by the separate table: its own checks apply instead
    panel = panel_from_frame(df, str(path), _fingerprint(*[p for p in paths if p.exists()]))
    if funding is not None:
        panel.fields["funding_rate"] = _funding(panel, path, Path(funding))
    return panel


def _example_pair(theirs: list[str], ours: tuple[str, ...]) -> tuple[str, str]:
    """One symbol of each side, a telling pair when there is one (``BTCUSDT`` and ``BTC``)."""
    for f in theirs[:1000]:
        for s in ours[:1000]:
            if f.upper().startswith(s.upper()) or s.upper().startswith(f.upper()):
                return f, s
    return theirs[0], ours[0]


def _funding(panel: Panel, path: Path, fpath: Path) -> np.ndarray:
    """The separate funding table as a ``(T, N)`` field of ``panel``'s days and symbols."""
    fdf = _check_keys(_read(fpath), fpath, ("date", "symbol", "funding_rate"))
    T, N = panel.shape
    sym_index = {s: j for j, s in enumerate(panel.symbols)}
    fsi = np.array([sym_index.get(s, -1) for s in fdf["symbol"].to_list()], dtype=np.int64)
    if fdf.height == 0 or not (fsi >= 0).any():
        if fdf.height == 0:
            raise SweepError(f"{fpath}: the funding table has no rows")
        theirs, ours = _example_pair(sorted(set(fdf["symbol"].to_list())), panel.symbols)
        raise SweepError(f"{fpath}: no funding row matches a symbol of {path}: the funding table spells them like "
                         f"{theirs!r}, the panel like {ours!r}; give the funding rows the panel's symbols")
    fti = (fdf["date"].to_numpy().astype("datetime64[D]") - panel.dates[0]).astype(np.int64)
    keep = (fti >= 0) & (fti < T) & (fsi >= 0)
    if not keep.any():
        on = fdf.filter(pl.Series(fsi >= 0))["date"]
        raise SweepError(f"{fpath}: no funding row matches a (date, symbol) of {path}: the rows of its symbols "
                         f"run {on.min()} .. {on.max()}, the panel's days {panel.dates[0]} .. {panel.dates[-1]}")
    fdays = (fdf["date"].to_numpy().astype("datetime64[D]").astype(np.int64))
    fsyms = fdf["symbol"].rank("dense").cast(pl.Int64).to_numpy()  # every symbol, the panel's or not
    _check_duplicates(fdf, fpath, fdays, fsyms, " (a day's funding is one row: the sum of that day's payments, "
                                               "SEMANTICS §1)")
    rate = _float_column(fdf, "funding_rate", fpath)
    _check_values(fdf, "funding_rate", rate, fpath)
    rate = rate.fill_null(np.nan).to_numpy()
    if not np.isfinite(rate[keep]).any():
        raise SweepError(f"{fpath}: column 'funding_rate' has no value on the panel's days and symbols "
                         f"(all {int(keep.sum())} matching rows are null or NaN)")
    fr = np.full((T, N), np.nan)
    fr[fti[keep], fsi[keep]] = rate[keep]
    return fr


def panel_from_frame(df: pl.DataFrame, source: str, fingerprint: str | None = None) -> Panel:
    """Validate a long table already in memory and build the dense panel in one pass."""
    path = Path(source)
    df = _check_keys(df, path, REQUIRED)
    if df.height == 0:
        raise SweepError(f"{path}: the table has no rows")
    _check_calendar(df, path)
    close = _float_column(df, "close", path)
    bad = close.is_null() | close.is_nan() | close.is_infinite() | (close <= 0)
    if bad.any():
        raise SweepError(f"{path}: column 'close' has {int(bad.sum())} missing, non-finite or "
                         "non-positive values: " + _rows(df, bad, ["date", "symbol", "close"]))
    first, last = df["date"].min(), df["date"].max()
    dates = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + 1)
    symbols = tuple(sorted(df["symbol"].unique().to_list()))
    sym_index = {s: j for j, s in enumerate(symbols)}
    ti = (df["date"].to_numpy().astype("datetime64[D]") - dates[0]).astype(np.int64)
    si = df["symbol"].replace_strict(sym_index, return_dtype=pl.Int64).to_numpy()
    T, N = len(dates), len(symbols)
    _check_duplicates(df, path, ti, si)

    def dense(values: np.ndarray) -> np.ndarray:
        out = np.full((T, N), np.nan)
        out[ti, si] = values
        return out

    fields = {"close": dense(close.to_numpy())}
    for name in OPTIONAL:
        if name in df.columns:
            values = _float_column(df, name, path)
            _check_values(df, name, values, path)
            fields[name] = dense(values.fill_null(np.nan).to_numpy())
    non_numeric = {}
    for name in df.columns:
        if name in REQUIRED or name in OPTIONAL:
            continue
        values = _extra_column(df, name)
        if values is None:
            non_numeric[name] = str(df.schema[name])
            continue
        _check_values(df, name, values, path)
        fields[name] = dense(values.fill_null(np.nan).to_numpy())
    if fingerprint is None:
        fingerprint = _hash_arrays(fields)
    return Panel(dates=dates, symbols=symbols, fields=fields, source=str(source), fingerprint=fingerprint,
                 non_numeric=non_numeric)


def _extra_column(df: pl.DataFrame, name: str) -> pl.Series | None:
    """An extra column (open interest, supply, a score) as float64, or None when it is not
    numbers: a numeric type, or text every non-missing value of which reads as a number.
    Booleans, dates and text such as a sector name stay out of the panel."""
    col = df[name]
    if col.dtype == pl.Null:
        return pl.Series(name, [None] * len(col), dtype=pl.Float64)
    if col.dtype.is_numeric():
        return col.cast(pl.Float64)
    if col.dtype == pl.String:
        try:
            return col.cast(pl.Float64, strict=True)
        except Exception:  # polars raises several types: any value that is not a number
            return None
    return None


def _hash_arrays(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).tobytes())
    return h.hexdigest()[:16]


def panel_from_arrays(dates: np.ndarray, symbols, close: np.ndarray, source: str = "<arrays>",
                      **fields: np.ndarray) -> Panel:
    """A panel from dense arrays already in shape (for tests, notebooks and resampled panels),
    held to the same rules as a loaded table: every calendar day once, one spelling per symbol,
    ``close`` positive or NaN, the optional fields as SEMANTICS §1 says."""
    dates = np.asarray(dates, dtype="datetime64[D]")
    symbols = tuple(symbols)
    arrays = {"close": np.ascontiguousarray(close, dtype=np.float64)}
    for name, arr in fields.items():
        if arr is not None:
            arrays[name] = np.ascontiguousarray(arr, dtype=np.float64)
    _check_arrays(dates, symbols, arrays, source)
    return Panel(dates=dates, symbols=symbols, fields=arrays, source=source, fingerprint=_hash_arrays(arrays))


def _check_arrays(dates: np.ndarray, symbols: tuple[str, ...], arrays: dict[str, np.ndarray], source: str) -> None:
    T, N = len(dates), len(symbols)
    if T == 0 or (T > 1 and not (np.diff(dates) == np.timedelta64(1, "D")).all()):
        raise SweepError(f"{source}: the dates must be every calendar day once, ascending")
    keys = [str(s).strip().lower() for s in symbols]
    if len(set(keys)) != N:
        twice = sorted(s for s, k in zip(symbols, keys) if keys.count(k) > 1)
        raise SweepError(f"{source}: the symbols must differ by more than letter case: {', '.join(map(repr, twice))}")
    for name, arr in arrays.items():
        if arr.shape != (T, N):
            raise SweepError(f"{source}: field '{name}' has shape {arr.shape}, expected ({T}, {N})")
        finite = np.isfinite(arr)
        bad = np.isinf(arr)
        if name == "close":
            bad |= finite & (arr <= 0)
        if name in NON_NEGATIVE:
            bad |= finite & (arr < 0)
        if name in POSITIVE:
            bad |= arr == 0
        if bad.any():
            t, i = (int(x) for x in np.argwhere(bad)[0])
            raise SweepError(f"{source}: field '{name}' has {int(bad.sum())} values that SEMANTICS §1 refuses, "
                             f"the first {arr[t, i]!r} on {dates[t]} for {symbols[i]!r}")
