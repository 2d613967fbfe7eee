"""The streamed questions asked of a results table equal the same questions asked of the loaded
table in Python: which columns vary, which rows match."""

from __future__ import annotations

import math

import polars as pl
import pytest

from sweep.results.lazy import matching, varying

TABLE = pl.DataFrame({
    "window": [10, 10, 10, 10],
    "buffer": [0.0, 0.1, 0.0, 0.1],
    "exclude": [["A", "B"], ["A", "B"], ["A", "B"], ["A", "C"]],
    "same_list": [["A"], ["A"], ["A"], ["A"]],
    "forecast_scalar": [None, None, "auto", None],
    "all_null": pl.Series([None, None, None, None], dtype=pl.Float64),
    "nan": [math.nan, math.nan, math.nan, math.nan],
    "factor": ["x", "x", "x", "x"],
})


def python_varying(df: pl.DataFrame) -> list[str]:
    def key(v):
        return tuple(v) if isinstance(v, list) else ("nan",) if isinstance(v, float) and v != v else v
    return [c for c in df.columns if len({key(v) for v in df[c].to_list()}) > 1]


def test_the_columns_that_vary_are_those_with_two_values():
    assert varying(TABLE.lazy(), TABLE.columns) == python_varying(TABLE) == ["buffer", "exclude", "forecast_scalar"]
    assert varying(TABLE.lazy(), ["window", "missing"]) == []
    assert varying(TABLE.head(0).lazy(), TABLE.columns) == []


@pytest.mark.parametrize("values", [{"buffer": 0.1}, {"exclude": ["A", "B"]}, {"exclude": ["A", "B"], "buffer": 0.1},
                                    {"forecast_scalar": None}, {"factor": "y"}])
def test_matching_rows_are_those_equal_in_python(values):
    got = matching(TABLE.lazy(), values).collect()
    want = TABLE.filter(pl.Series([all(row[k] == v for k, v in values.items()) for row in TABLE.iter_rows(named=True)]))
    assert got.equals(want)
