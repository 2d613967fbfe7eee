"""Questions asked of a results table without loading it: which parameters vary, which rows
match given values. Each answer streams the table in batches (Polars' streaming engine), so a
table of ten million rows costs the memory of a batch, not of the table."""

from __future__ import annotations

from typing import Any

import polars as pl

STREAMING = "streaming"  # polars' batch-wise engine: memory of a batch, not of the table

_SEP = "\x1f"  # joins a list column's items; never inside a symbol


def equals(column: str, dtype: pl.DataType, value: Any) -> pl.Expr:
    """Rows whose ``column`` equals ``value`` (a list column, ``exclude``, compared item by item)."""
    if value is None:
        return pl.col(column).is_null()
    if isinstance(dtype, pl.List):
        return pl.col(column).cast(pl.List(pl.String)).list.join(_SEP) == _SEP.join(str(x) for x in value)
    return pl.col(column) == value


def matching(lf: pl.LazyFrame, values: dict[str, Any]) -> pl.LazyFrame:
    """The rows whose columns equal ``values``."""
    schema = lf.collect_schema()
    for k, v in values.items():
        lf = lf.filter(equals(k, schema[k], v))
    return lf


def varying(lf: pl.LazyFrame, columns: list[str]) -> list[str]:
    """The ``columns`` of ``lf`` that take more than one value, in the order given.

    A column varies when some row differs from the first: one streamed pass, no hash table of
    the distinct values (a list column's distinct values took gigabytes at ten million rows).
    """
    schema = lf.collect_schema()
    columns = [c for c in columns if c in schema]
    first = lf.select(columns).head(1).collect()
    if not columns or first.height == 0:
        return []
    row = first.row(0, named=True)
    differs = [(~equals(c, schema[c], row[c])).fill_null(True).any().alias(c) if row[c] is not None
               else pl.col(c).is_not_null().any().alias(c) for c in columns]
    found = lf.select(differs).collect(engine=STREAMING).row(0, named=True)
    return [c for c in columns if found[c]]


__all__ = ["STREAMING", "equals", "matching", "varying"]
