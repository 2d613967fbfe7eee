"""``sweep show`` of a grid or an Optuna study and the end of its ``sweep run`` (the kind
registry's ``show`` of both kinds): the best books not ruined, one configuration in full
(``--config``) or its holdings on a day (``--config ID --holdings DATE``, ``sweep.cli.holdings``),
the overfitting statistics in words, the best per value of a parameter."""

from __future__ import annotations

import shlex
from pathlib import Path

from sweep.cli.common import (
    MIN_ID,
    RUINED_MARK,
    console_of,
    fit_table,
    fmt,
    id_length,
    is_percent,
    print_table,
    read,
    scan,
    term_width,
)
from sweep.core.errors import SweepError
from sweep.engine.params import PARAMS, closest
from sweep.metrics import lower_is_better
from sweep.metrics import names as metric_names
from sweep.results.lazy import STREAMING, varying

# What `sweep show` adds after the ranking metric, in this order, while the terminal has room.
KEY_METRICS = ("sharpe", "cagr", "max_drawdown", "turnover", "sharpe_pre_cost", "ann_vol", "sortino",
               "calmar", "n_rebalances")


def show(folder: Path, args) -> int:
    """``sweep show`` of a grid or Optuna results folder: the best books not ruined, ranked."""
    import polars as pl

    from sweep.results.schema import check_schema, read_manifest

    trials = folder / "trials.parquet"
    if not trials.exists():
        raise SweepError(f"{folder}: no trials.parquet (run the study first, or check the folder)")
    manifest = read_manifest(folder, required=False)
    # Lazily: a million-row table is filtered, counted and sorted in Polars, and only the rows
    # shown are materialised (a full load of every column took seconds).
    lf = scan(trials)
    names = lf.collect_schema().names()
    if not manifest and "schema_version" in names:
        first = lf.select("schema_version").head(1).collect()
        if first.height:
            check_schema({"schema_version": first["schema_version"][0]}, trials)
    if args.top < 1:
        raise SweepError(f"--top = {args.top} must be at least 1")
    if (manifest.get("study") or {}).get("kind") != "grid":
        # An Optuna search may try a configuration twice: show each once (a grid's ids are unique).
        lf = lf.unique("config_id", keep="first", maintain_order=True)
    params = [c for c in manifest.get("parameters") or [c for c in names if c in PARAMS] if c in names]
    objective = manifest.get("study", {}).get("objective", "sharpe")
    if args.config is not None:
        if getattr(args, "holdings", None) is not None:
            from sweep.cli.holdings import holdings

            return holdings(folder, manifest, find_config(folder, lf, args.config), params, args)
        return show_config(folder, manifest, lf, args.config, params, objective)
    by = args.by or objective
    if by not in metric_names() or by not in names:
        raise SweepError(f"--by {by!r} is not a metric{closest(by, metric_names())}")
    swept = varying(lf, params)
    metrics = [m for m in metric_names() if m in names]
    if args.columns is not None:
        wanted = [c.strip() for c in args.columns.split(",") if c.strip() and c.strip() != "config_id"]
        valid = params + metrics
        bad = next((c for c in wanted if c not in valid), None) if wanted else args.columns
        if bad is not None:
            raise SweepError(f"--columns {args.columns!r}: '{bad}' is not a column{closest(bad, valid)}; "
                             f"valid: {', '.join(valid)}")
        fixed, optional, width = list(dict.fromkeys(wanted)), [], None
    else:
        fixed = swept + [by]
        optional = [m for m in KEY_METRICS if m in metrics]
        width = term_width()

    ruined = (pl.col("ruined") > 0) if "ruined" in names else pl.lit(False)
    finite = pl.col(by).cast(pl.Float64).is_finite()
    n_all, n_ranked, n_ruined = lf.select(pl.len().alias("n"), finite.sum().alias("ranked"),
                                          (finite & ruined).sum().alias("ruined")).collect(engine=STREAMING).row(0)
    n_unranked = n_all - n_ranked
    n_pool = n_ranked if args.include_ruined else n_ranked - n_ruined
    # The top rows by their index and the one column first (a sort of every column of ten million
    # rows took gigabytes), then those rows alone.
    top = (lf.with_row_index("_i").filter(finite if args.include_ruined else finite & ~ruined)
           .select("_i", pl.col(by)).sort(by, descending=not lower_is_better(by), maintain_order=True)
           .head(args.top).collect(engine=STREAMING)["_i"])
    best = (lf.with_row_index("_i").filter(pl.col("_i").is_in(top.implode())).collect(engine=STREAMING)
            .join(pl.DataFrame({"_i": top}).with_row_index("_rank"), on="_i").sort("_rank").drop("_i", "_rank"))
    marks = best.select(ruined.alias("r"))["r"].to_list() if best.height else []

    n_id = id_length(lf.select("config_id").collect(engine=STREAMING)["config_id"])
    head = ["#", "config_id"]
    order = list(dict.fromkeys(head + fixed + optional))
    rows = []
    for rank, (row, mark) in enumerate(zip(best.iter_rows(named=True), marks, strict=True), 1):
        cells = {"#": f"{rank}{RUINED_MARK if mark else ''}", "config_id": row["config_id"][:n_id]}
        cells.update({c: fmt(row[c], c) for c in order[2:]})
        rows.append(cells)
    columns = {h: "left" if h == "config_id" or h in params else "right" for h in order}
    width_all = term_width()
    console = console_of(width_all)
    window = manifest.get("evaluation_window", {})
    pool = "books" if args.include_ruined else "books not ruined"
    console.print(f"{manifest.get('study', {}).get('name', folder.name)}: top {best.height} of {n_pool} "
                  f"{pool} by {by}" + (f", {window['start']} .. {window['end']}" if window else ""))
    print_table(fit_table(columns, rows, head + fixed, optional, width), width_all)
    if n_ruined and not args.include_ruined:
        console.print(f"{n_ruined} ruined book{'s' if n_ruined > 1 else ''} set aside (NAV reached zero, "
                      f"SEMANTICS §8); --include-ruined ranks them, marked {RUINED_MARK}.")
    elif any(marks):
        console.print(f"{RUINED_MARK} ruined: the NAV reached zero and the book was closed (SEMANTICS §8); "
                      "never a candidate for the best.")
    if n_unranked:
        console.print(f"{n_unranked} configuration{'s' if n_unranked > 1 else ''} with no finite {by} "
                      "not ranked.")
    summary_path = folder / "summary.json"
    if summary_path.exists():
        print_overfitting(console, read(summary_path))
    if args.best_per:
        print_best_per(console, folder, args.best_per, args.data, args.by, width_all)
    return 0


def find_config(folder: Path, lf, prefix: str) -> dict:
    """The one row of ``lf`` whose config_id starts with ``prefix``; none or several is one line."""
    import polars as pl

    prefix = prefix.strip()
    if not prefix:
        raise SweepError("--config: give a config_id or a prefix of one")
    hits = lf.filter(pl.col("config_id").str.starts_with(prefix)).head(5).collect()
    if hits.height == 0:
        raise SweepError(f"--config {prefix}: no configuration of {folder / 'trials.parquet'} has a "
                         "config_id starting so")
    if hits.height > 1:
        n_hits = lf.filter(pl.col("config_id").str.starts_with(prefix)).select(pl.len()).collect().item()
        some = ", ".join(hits["config_id"].head(4).to_list()) + (", ..." if n_hits > 4 else "")
        raise SweepError(f"--config {prefix} is ambiguous: {n_hits} configurations start so ({some}); "
                         "give more characters")
    return hits.row(0, named=True)


def show_config(folder: Path, manifest: dict, lf, prefix: str, params: list[str], objective: str) -> int:
    """``sweep show RESULTS --config ID``: one configuration's parameters and every metric,
    metrics printed exactly (shortest repr) so they can be compared with the table."""
    import polars as pl

    row = find_config(folder, lf, prefix)
    ruined = bool(row.get("ruined") or 0.0)
    value = row.get(objective)
    if ruined:
        status = "ruined: its NAV reached zero and the book was closed (SEMANTICS §8)"
    elif value is None or value != value:
        status = f"not ranked: no finite {objective}"
    else:
        alive = lf.filter(pl.col(objective).cast(pl.Float64).is_finite())
        if "ruined" in lf.collect_schema().names():
            alive = alive.filter(~(pl.col("ruined") > 0))
        better = pl.col(objective) < value if lower_is_better(objective) else pl.col(objective) > value
        n_better, n_alive = alive.select(better.sum().alias("better"), pl.len().alias("n")).collect().row(0)
        status = f"rank {n_better + 1} of {n_alive} books not ruined by {objective}"
    name = manifest.get("study", {}).get("name", folder.name)
    print(f"{row['config_id']}  {name}: {status}")
    metrics = [m for m in metric_names() if m in row]
    pad = max(len(k) for k in params + metrics)
    print("parameters")
    for k in params:
        print(f"  {k:<{pad}}  {fmt(row[k], k)}")
    print("metrics")
    for m in metrics:
        v = row[m]
        exact = repr(float(v)) if isinstance(v, float) else str(v)
        human = f"  ({v:.1%})" if is_percent(m) and isinstance(v, float) and v == v else ""
        print(f"  {m:<{pad}}  {exact}{human}")
    return 0



def print_overfitting(console, summary: dict) -> None:
    """The overfitting statistics in words a researcher can act on, and the one verdict."""
    from sweep.stats.verdict import overall_verdict, sampled_splits

    o = summary.get("overfitting", summary)
    if "dsr" not in o:
        return

    def f(key: str, spec: str, src: dict = o) -> str:
        v = src.get(key)
        return "n/a" if not isinstance(v, (int, float)) or v != v else format(v, spec)

    pbo = o.get("pbo") or {}
    n = o.get("n_trials")
    years = f"{o['n_obs'] / 365:.1f}" if isinstance(o.get("n_obs"), (int, float)) else "n/a"
    lines = [
        f"Best of {n} configurations: Sharpe {f('best_sharpe_annual', '.2f')} a year; the best of {n} tries "
        f"of pure luck would be expected near {f('expected_max_sharpe_annual', '.2f')}.",
        f"Deflated Sharpe ratio {f('dsr', '.3f')}: the confidence that the best's Sharpe beats what the luck "
        f"of {n} tries would give (against zero, without deflation: {f('psr', '.3f')}).",
        f"Minimum backtest length for this Sharpe among {n} tries: {f('min_backtest_years', '.1f')} "
        f"years (the window has {years}).",
    ]
    if pbo:
        lines.append(f"Probability of backtest overfitting (CSCV, {pbo.get('n_blocks')} blocks): "
                     f"{f('pbo', '.2f', pbo)}; the in-sample winner lost money out of sample in "
                     f"{f('prob_oos_loss', '.0%', pbo)} of the splits"
                     + (f"; CSCV used {sampled_splits(pbo)}." if pbo.get("splits_sampled") else "."))
    lines.append(f"Overall: {overall_verdict(summary).sentence}")
    console.print("\n".join(lines))



def print_best_per(console, folder: Path, column: str, data: str | None, by: str | None, width: int) -> None:
    import polars as pl

    from sweep.stats.best_per import BOOT_BLOCK_DAYS, BOOT_SAMPLES, best_per

    df = best_per(folder, column, data, by)
    console.print(f"Best per {column} among books not ruined: Sharpe, deflated Sharpe within the group, and "
                  f"the 90 % interval of (Sharpe - runner-up's) from {BOOT_SAMPLES} stationary-bootstrap "
                  f"resamples ({BOOT_BLOCK_DAYS}-day blocks).")
    n_id = id_length(df["config_id"].drop_nulls()) if df.height else MIN_ID
    short = {"runner_up_rebalance_days": "vs_days", "runner_up_sharpe": "vs_sharpe", "n_configs": "n",
             "n_ruined": "ruined"}
    rows = []
    for row in df.iter_rows(named=True):
        cells = {short.get(c, c): (row[c][:n_id] if c == "config_id" and row[c] else fmt(row[c], c))
                 for c in df.columns}
        rows.append(cells)
    columns = {short.get(c, c): "left" if df[c].dtype == pl.String else "right" for c in df.columns}
    fixed = [column, "config_id", "sharpe", "dsr", "diff_q05", "diff_q95"]
    optional = [h for h in columns if h not in fixed]
    print_table(fit_table(columns, rows, [h for h in fixed if h in columns], optional, width), width)
    for row in df.iter_rows(named=True):
        if row["config_id"] is None:
            console.print(f"{column} = {fmt(row[column], column)}: all {row['n_configs']} books were ruined; "
                          "none to choose.")
    n = int(df["n_ruined"].sum()) if df.height else 0
    if n:
        console.print(f"{n} ruined book{'s' if n > 1 else ''} set aside (never the best nor the runner-up).")


# ---- the end of sweep run ----------------------------------------------------------------


def ending(study, folder: Path, data: str | None) -> tuple[list[str], list[str]]:
    """The end of ``sweep run``: the best book not ruined, the verdict on the search and, for
    a grid that sweeps the rebalance period, the compare verdict; the next commands."""
    from sweep.stats.verdict import overall_verdict

    q = shlex.quote(str(folder))
    data_opt = f" --data {shlex.quote(str(data))}" if data else ""
    # Lazily: after a run of ten million configurations, a full load of the table took 10 GB.
    trials = scan(folder / "trials.parquet")
    if study.kind != "grid":  # an Optuna search may try a configuration twice
        trials = trials.unique("config_id", keep="first", maintain_order=True)
    params = read(folder / "manifest.json").get("parameters") or study.columns
    shown = varying(trials, params)
    swept = [c for c in shown if c != "phase"]
    lines = best_lines(trials, study.objective, shown)
    summary = read(folder / "summary.json") if (folder / "summary.json").exists() else {}
    lines.append(f"The search: {overall_verdict(summary).sentence}")
    nexts = []
    # `sweep compare` reads a full grid only: an Optuna search leaves holes in the slices.
    if study.kind == "grid" and "rebalance_days" in swept:
        lines.append(f"Rebalance period: {compare_verdict(folder, data)}")
    if study.kind == "grid" and swept:
        param = "rebalance_days" if "rebalance_days" in swept else swept[0]
        nexts.append(f"sweep compare {q} --param {param}{data_opt}")
    return lines, nexts


def compare_verdict(folder: Path, data: str | None) -> str:
    from sweep.stats import compare

    try:
        return compare.compare(folder, "rebalance_days", data=data)["verdict"]
    except SweepError as exc:  # the run's results stand; only the comparison is missing
        return f"not compared ({exc})"


def best_lines(trials, objective: str, swept: list[str]) -> list[str]:
    """The best book not ruined of a grid or Optuna table (a ``polars.LazyFrame``: only the best
    row is materialised), first on ties as ``sweep.stats.choose.best_index``, and how many books
    were set aside; ``swept`` names the parameters to show."""
    import polars as pl

    names = trials.collect_schema().names()
    value = pl.col(objective).cast(pl.Float64)
    ruined = (pl.col("ruined").cast(pl.Float64).fill_null(0.0) > 0) if "ruined" in names else pl.lit(False)
    n, n_ruined = trials.select(pl.len().alias("n"), ruined.sum().alias("ruined")).collect(engine=STREAMING).row(0)
    set_aside = (f"; {n_ruined} of {n} books were ruined (NAV reached zero) and set aside"
                 if n_ruined else "")
    best = (trials.with_row_index("_i").filter(value.is_finite() & ~ruined).select("_i", value.alias("_v"))
            .sort("_v", descending=not lower_is_better(objective), maintain_order=True).head(1)
            .collect(engine=STREAMING))
    if best.height == 0:
        return [f"No book to recommend: none of the {n} that was not ruined has a finite "
                f"{objective}{set_aside}."]
    row = trials.slice(int(best["_i"][0]), 1).collect(engine=STREAMING).row(0, named=True)
    what = ", ".join(f"{c} {fmt(row[c], c)}" for c in swept)
    figures = [f"{objective} {fmt(row[objective], objective)}"]
    figures += [f"{label} {fmt(row[m], m)}" for m, label in (("cagr", "CAGR"), ("max_drawdown", "max drawdown"))
                if m != objective and m in row]
    return [f"Best book not ruined: {row['config_id']}" + (f" ({what})" if what else "") + ": "
            + ", ".join(figures) + set_aside + "."]
