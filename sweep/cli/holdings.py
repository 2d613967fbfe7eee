"""``sweep show RESULTS --config ID --holdings DATE``: what one configuration of a grid or Optuna
study held on one day, by rerunning that one backtest on the run's own data (the data the
manifest names, checked against its fingerprint: ``sweep.results.data``).

Convention: the holdings of day ``t`` are the weights after ``t``'s rebalance (SEMANTICS §8
step 4: ``Result.weights``), fractions of NAV, longs positive and shorts negative; they
earn ``q[t+1]`` onward. Every calendar day is a day of the panel (SEMANTICS §1), so DATE is
the day itself; it must lie in the study's evaluation window. The factor value printed is
the feature the configuration ranks (after no sign flip), read on the last rebalance day
on or before DATE by the schedule (SEMANTICS §7), the day that chose the names.

``--holdings all --out FILE`` (or ``--holdings DATE --out FILE``) writes ``holdings.parquet``
(any name): ``schema_version`` (Int32), ``config_id``, ``date`` (Date), ``symbol``,
``weight`` (Float64), one row per day and symbol with a non-zero weight (a flat day has no
row), sorted by date then symbol.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sweep.core.errors import SweepError


def parse_day(text: str) -> dt.date | None:
    """DATE as given to ``--holdings`` (``None`` for ``all``); anything else is one line."""
    text = text.strip()
    if text == "all":
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise SweepError(f"--holdings {text!r}: not a date (YYYY-MM-DD) nor 'all'") from None


def holdings(folder: Path, manifest: dict[str, Any], row: dict[str, Any], params: list[str], args) -> int:
    """Print (and with ``--out`` write) the holdings of configuration ``row``."""
    import numpy as np
    import polars as pl

    from sweep.engine.backtest import backtest
    from sweep.engine.params import PARAMS
    from sweep.results.data import load_study_panel
    from sweep.results.schema import SCHEMA_VERSION

    day = parse_day(args.holdings)
    out = getattr(args, "out", None)
    if day is None and not out:
        raise SweepError("--holdings all writes every day's weights: give --out FILE (a .parquet file)")
    window = manifest.get("evaluation_window") or {}
    if not window.get("start") or not window.get("end"):
        raise SweepError(f"{folder / 'manifest.json'}: no evaluation_window; rerun the study")
    start, end = dt.date.fromisoformat(str(window["start"])), dt.date.fromisoformat(str(window["end"]))
    if day is not None and not start <= day <= end:
        raise SweepError(f"--holdings {day}: outside the evaluation window {start} .. {end} of {folder}")
    panel, why = load_study_panel(manifest, folder, getattr(args, "data", None), getattr(args, "funding", None))
    if panel is None:
        raise SweepError(why)
    p = {k: row[k] for k in params if k in PARAMS and k in row and row[k] is not None}
    result = backtest(panel, start=start, end=end, return_weights=True, **p)
    objective = (manifest.get("study") or {}).get("objective", "sharpe")
    got, want = result.metrics.get(objective), row.get(objective)
    if isinstance(want, float) and want == want and not abs(got - want) <= 1e-9 * max(1.0, abs(want)):
        print(f"Warning: the rerun gives {objective} {got:.6g}, the results table {want:.6g}: the engine changed "
              "since the study ran; rerun the study.")
    w = result.weights
    symbols = [c for c in w.columns if c != "date"]
    dates = w["date"].to_numpy().astype("datetime64[D]")
    if out:
        write(out, w, symbols, row["config_id"], day, pl, SCHEMA_VERSION)
    if day is None:
        return 0
    i = int((np.datetime64(day, "D") - dates[0]).astype(int))
    weights = w.row(i)[1:]
    s = int((np.datetime64(start, "D") - panel.dates[0]).astype(int))
    t = s + i
    k, phase = int(result.params.get("rebalance_days", 1)), int(result.params.get("phase", 0))
    u = t - ((t - s - phase) % k)
    chose = u if u >= s else t
    values = factor_values(panel, result.params, chose)
    name = (manifest.get("study") or {}).get("name", folder.name)
    held = sorted(((sym, wt) for sym, wt in zip(symbols, weights) if wt != 0.0), key=lambda x: (-x[1], x[0]))
    print(f"{row['config_id']}  {name}: holdings on {day}, weights after the day's rebalance (fractions of NAV)")
    if u >= s:
        print(f"last rebalance day on or before it (the schedule's): {panel.dates[u]}"
              + ("" if values is None else f"; factor = {result.params['factor']}, its value on that day"))
    if not held:
        print("flat: no position on this day")
        return 0
    pad = max(6, max(len(sym) for sym, _ in held))
    print(f"  {'symbol':<{pad}}  {'side':<5}  {'weight':>12}" + ("" if values is None else f"  {'factor':>12}"))
    index = {sym: j for j, sym in enumerate(panel.symbols)}
    for sym, wt in held:
        line = f"  {sym:<{pad}}  {'long' if wt > 0 else 'short':<5}  {wt:>12.6f}"
        if values is not None:
            line += f"  {values[index[sym]]:>12.6g}"
        print(line)
    longs, shorts = [x for _, x in held if x > 0], [x for _, x in held if x < 0]
    print(f"{len(longs)} long (sum {sum(longs):.4f}), {len(shorts)} short (sum {sum(shorts):.4f}); "
          f"gross {sum(abs(x) for _, x in held):.4f}, net {sum(x for _, x in held):.4f}")
    return 0


def factor_values(panel, p: dict[str, Any], t: int):
    """The configuration's feature on day ``t`` ``(N,)``, or None where it cannot be had cheaply."""
    from sweep.engine.workspace import Workspace, feature_key

    try:
        return Workspace(panel).feature(feature_key(p))[t]
    except (SweepError, KeyError, TypeError, ValueError, IndexError):
        return None


def write(out: str, w, symbols: list[str], config_id: str, day, pl, version: int) -> None:
    """``holdings.parquet``: every day's (or ``day``'s) non-zero weights, long (module docstring)."""
    from sweep.core.io import write_parquet

    path = Path(out)
    if path.is_dir():
        raise SweepError(f"--out {out}: a folder; give a file name (e.g. {path / 'holdings.parquet'})")
    if not path.parent.is_dir():
        raise SweepError(f"--out {out}: no such folder {path.parent}")
    if day is not None:
        w = w.filter(pl.col("date") == day)
    long = (w.unpivot(index="date", on=symbols, variable_name="symbol", value_name="weight")
            .filter(pl.col("weight") != 0.0).sort("date", "symbol"))
    table = long.select(pl.lit(version, dtype=pl.Int32).alias("schema_version"),
                        pl.lit(config_id, dtype=pl.String).alias("config_id"),
                        pl.col("date").cast(pl.Date), pl.col("symbol").cast(pl.String),
                        pl.col("weight").cast(pl.Float64))
    write_parquet(table, path)
    print(f"wrote {table.height:,} rows (date, symbol, weight; non-zero weights only) to {path}")
