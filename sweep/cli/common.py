"""What the commands share: the terminal's width, tables that fit it, short config ids,
reading a results file with a one-line error, number formats, and a kind's command-line
module (found through the kind registry's ``show`` string, see ``kind_module``)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import sweep.book  # noqa: F401  (registers the portfolio kind, by name: cheap)
from sweep.core.errors import SweepError
from sweep.study.kind import get as get_kind

# Every module of this package is imported to build the parser, so each imports at its top
# only the standard library and cheap sweep modules; the engine, Polars, Numba and rich are
# imported by the functions that use them (`sweep --help` loads none of them).

MIN_ID = 6  # shortest config_id prefix printed: short enough to type, long enough to read as an id
RUINED_MARK = "†"
DEFAULT_WIDTH = 100
SEP = 3  # characters between two columns of the tables below (rich's SIMPLE_HEAD box, padding 1)


class Parser(argparse.ArgumentParser):
    """An argument parser whose error is one line, exit 2, like every other error."""

    def error(self, message: str):
        raise SweepError(f"{self.prog}: {message}")


def kind_show(kind: str):
    """The ``sweep show`` function of study kind ``kind`` (the registry's ``show`` string)."""
    from sweep.report.sections import resolve

    spec = get_kind(kind).show
    if not spec:
        raise SweepError(f"study kind {kind!r} has nothing to show")
    return resolve(spec, f"study kind {kind!r}: show")


def kind_module(kind: str) -> ModuleType:
    """The command-line module of study kind ``kind``: the module of its ``show`` function,
    which also offers ``ending(study, folder, data) -> (lines, next commands)`` for the end of
    ``sweep run`` and, optionally, ``check(study)``, run before ``sweep run`` and ``sweep
    validate`` read anything."""
    return importlib.import_module(kind_show(kind).__module__)


def is_percent(metric: str | None) -> bool:
    from sweep.metrics import get as get_metric

    try:
        return bool(metric) and get_metric(metric).percent
    except SweepError:
        return False


def term_width() -> int:
    """The terminal's width when printing to one (or $COLUMNS), else 100."""
    import shutil

    if sys.stdout.isatty():
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        return DEFAULT_WIDTH



def console_of(width: int):
    from rich.console import Console

    return Console(width=width)


def fit_table(columns: dict[str, str], rows: list[dict[str, str]], fixed: list[str], optional: list[str],
               width: int | None):
    """A table of the ``fixed`` columns and as many ``optional`` ones, in that order, as fit
    ``width`` (all of them when ``width`` is None), shown in the order of ``columns``
    (header -> justify). Returns the table and its width. A column is never narrower than
    its header or a cell, so nothing is cut or wrapped."""
    from rich import box
    from rich.cells import cell_len
    from rich.table import Table

    widths = {h: max([cell_len(h)] + [cell_len(r[h]) for r in rows]) for h in columns}

    def total(headers) -> int:
        return sum(widths[h] for h in headers) + SEP * (len(headers) - 1)

    chosen = list(dict.fromkeys(fixed))
    for h in optional:
        if h in chosen:
            continue
        if width is not None and total(chosen + [h]) > width:
            break
        chosen.append(h)
    shown = [h for h in columns if h in chosen]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for h in shown:
        table.add_column(h, justify=columns[h], no_wrap=True, min_width=widths[h])
    for r in rows:
        table.add_row(*[r[h] for h in shown])
    return table, total(shown)



def print_table(table_and_width, width: int) -> None:
    table, need = table_and_width
    console_of(max(width, need)).print(table)



def id_length(ids) -> int:
    """The shortest prefix length (at least MIN_ID) that tells every id of ``ids`` apart.

    >>> id_length(["abcdef01", "abcdef02", "abcdef01"])
    8
    """
    import polars as pl

    ids = pl.Series(ids, dtype=pl.String)
    if ids.len() > 1 and ids.str.contains("^[0-9a-f]{16}$").all():
        return _hex_id_length(ids)
    # In Polars: a million ids take a tenth of a second, not the seconds of Python sets.
    ids = ids.unique()
    longest = int(ids.str.len_chars().max() or MIN_ID)
    lo, hi = MIN_ID, max(MIN_ID, longest)  # prefixes of length hi tell every id apart
    while lo < hi:  # a prefix that tells ids apart still does one character longer: bisect
        mid = (lo + hi) // 2
        if ids.str.slice(0, mid).n_unique() == ids.len():
            hi = mid
        else:
            lo = mid + 1
    return lo


def _hex_id_length(ids) -> int:
    """``id_length`` of 16-hex-digit ids (sweep's own) as 64-bit integers: sorted, two neighbours share
    the longest prefix any pair shares, and the hex digits two integers share are the leading
    zero bits of their XOR over 4 (ten million ids: about 2 s, not minutes of string hashing)."""
    import numpy as np
    import polars as pl

    v = np.sort(ids.str.to_integer(base=16, dtype=pl.UInt64).to_numpy())
    x = v[1:] ^ v[:-1]
    x = x[x != 0]  # the same id twice tells nothing apart
    if x.size == 0:
        return MIN_ID
    for k in (1, 2, 4, 8, 16, 32):  # smear the highest set bit down: the bit length is the popcount
        x |= x >> np.uint64(k)
    shared = (64 - int(np.bitwise_count(x).min())) // 4
    return max(MIN_ID, min(16, shared + 1))


def read(path: Path):
    """A JSON or Parquet file of a results folder; unreadable is one line naming it."""
    import polars as pl

    try:
        return json.loads(path.read_text()) if path.suffix == ".json" else pl.read_parquet(path)
    except (ValueError, OSError, pl.exceptions.PolarsError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"{path}: unreadable ({first}); rerun the study with --force") from None


def scan(path: Path):
    """A Parquet table of a results folder read lazily (its footer checked now: unreadable is one
    line naming it), for tables too large to load whole."""
    import polars as pl

    try:
        pl.read_parquet_schema(path)
        return pl.scan_parquet(path)
    except (ValueError, OSError, pl.exceptions.PolarsError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"{path}: unreadable ({first}); rerun the study with --force") from None


def fmt(v, metric: str | None = None) -> str:
    """A value for a terminal table: a parameter as given, a percent metric as a percent, 3 decimals otherwise."""
    from sweep.engine.params import PARAMS

    if v is None:
        return "-"
    if isinstance(v, float) and metric in PARAMS:
        return f"{v:g}"
    if isinstance(v, float):
        if v != v:
            return "nan"
        if is_percent(metric):
            return f"{v:.1%}"
        return f"{v:.3f}" if metric != "n_rebalances" else f"{v:.0f}"
    if isinstance(v, list):
        return ",".join(v) or "-"
    return str(v)
