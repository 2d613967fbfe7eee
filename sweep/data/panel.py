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


@dataclass(frozen=True, eq=False)
class Panel:
    """Dense daily panel: every calendar day from the first to the last date, symbols sorted.

    Each field is a C-contiguous float64 ``(T, N)`` array with NaN where the
    long table has no row (or a null). Derived return panels are computed on
    first use and kept.
    """

    dates: np.ndarray  # datetime64[D], (T,)
    symbols: tuple[str, ...]
    fields: dict[str, np.ndarray]
    source: str
    fingerprint: str  # sha256 prefix of the input file(s)' bytes
    _extra: dict = field(default_factory=dict, repr=False)

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


def _dates(df: pl.DataFrame, path: Path) -> pl.DataFrame:
    dtype = df.schema["date"]
    if dtype == pl.Date:
        parsed = df["date"]
    elif isinstance(dtype, pl.Datetime):
        parsed = df["date"].dt.date()  # floor a time of day to its calendar day
    elif dtype == pl.String:
        s = df["date"].str.strip_chars()
        parsed = s.str.to_date("%Y-%m-%d", strict=False)
        # A time of day is allowed and floored: fall back to a datetime parse.
        need = parsed.is_null() & s.is_not_null()
        if need.any():
            as_dt = s.str.to_datetime(strict=False, time_unit="us").dt.date()
            parsed = pl.select(pl.when(need).then(as_dt).otherwise(parsed)).to_series()
    else:
        raise SweepError(f"{path}: column 'date' has type {dtype}, expected dates")
    bad = parsed.is_null()
    if bad.any():
        raise SweepError(f"{path}: column 'date' has {int(bad.sum())} unparsable or missing dates: "
                         + _rows(df, bad, ["date"]))
    return df.with_columns(parsed.alias("date"))


def _float_column(df: pl.DataFrame, name: str, path: Path) -> pl.Series:
    try:
        return df[name].cast(pl.Float64, strict=True)
    except Exception:
        cast = df[name].cast(pl.Float64, strict=False)
        bad = cast.is_null() & df[name].is_not_null()
        raise SweepError(f"{path}: column '{name}' has non-numeric values: "
                         + _rows(df, bad, [name])) from None


def _check_keys(df: pl.DataFrame, path: Path, required: tuple[str, ...]) -> pl.DataFrame:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SweepError(f"{path}: missing required column '{missing[0]}' (columns: {', '.join(df.columns)})")
    df = _dates(df, path)
    if df.schema["symbol"] != pl.String:
        df = df.with_columns(pl.col("symbol").cast(pl.String))
    bad = df["symbol"].is_null() | (df["symbol"].str.strip_chars() == "")
    if bad.any():
        raise SweepError(f"{path}: column 'symbol' has missing values: " + _rows(df, bad, ["date", "symbol"]))
    dup = df.select(pl.struct("date", "symbol").is_duplicated()).to_series()
    if dup.any():
        raise SweepError(f"{path}: {int(dup.sum())} rows duplicate a (date, symbol): "
                         + _rows(df, dup, ["date", "symbol"]))
    return df


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
    panel = panel_from_frame(_read(path), str(path), _fingerprint(*[p for p in paths if p.exists()]))
    if funding is not None:
        fpath = Path(funding)
        fdf = _check_keys(_read(fpath), fpath, ("date", "symbol", "funding_rate"))
        rate = _float_column(fdf, "funding_rate", fpath).fill_null(np.nan).to_numpy()
        T, N = panel.shape
        sym_index = {s: j for j, s in enumerate(panel.symbols)}
        fti = (fdf["date"].to_numpy().astype("datetime64[D]") - panel.dates[0]).astype(np.int64)
        fsi = np.array([sym_index.get(s, -1) for s in fdf["symbol"].to_list()], dtype=np.int64)
        keep = (fti >= 0) & (fti < T) & (fsi >= 0)
        if not keep.any():
            raise SweepError(f"{fpath}: no funding row matches a (date, symbol) of {path}")
        fr = np.full((T, N), np.nan)
        fr[fti[keep], fsi[keep]] = rate[keep]
        panel.fields["funding_rate"] = fr
    return panel


def panel_from_frame(df: pl.DataFrame, source: str, fingerprint: str | None = None) -> Panel:
    """Validate a long table already in memory and build the dense panel in one pass."""
    path = Path(source)
    df = _check_keys(df, path, REQUIRED)
    if df.height == 0:
        raise SweepError(f"{path}: the table has no rows")
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

    def dense(values: np.ndarray) -> np.ndarray:
        out = np.full((T, N), np.nan)
        out[ti, si] = values
        return out

    fields = {"close": dense(close.to_numpy())}
    for name in OPTIONAL:
        if name in df.columns:
            fields[name] = dense(_float_column(df, name, path).fill_null(np.nan).to_numpy())
    if fingerprint is None:
        fingerprint = _hash_arrays(fields)
    return Panel(dates=dates, symbols=symbols, fields=fields, source=str(source), fingerprint=fingerprint)


def _hash_arrays(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).tobytes())
    return h.hexdigest()[:16]


def panel_from_arrays(dates: np.ndarray, symbols, close: np.ndarray, source: str = "<arrays>",
                      **fields: np.ndarray) -> Panel:
    """A panel from dense arrays already in shape (for tests and notebooks)."""
    arrays = {"close": np.ascontiguousarray(close, dtype=np.float64)}
    for name, arr in fields.items():
        if arr is not None:
            arrays[name] = np.ascontiguousarray(arr, dtype=np.float64)
    return Panel(dates=np.asarray(dates, dtype="datetime64[D]"), symbols=tuple(symbols),
                 fields=arrays, source=source, fingerprint=_hash_arrays(arrays))
