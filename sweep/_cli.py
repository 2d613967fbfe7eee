"""The ``sweep`` command line: parse arguments, call the library, print one-line errors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from . import _live, _portfolio, _report
from ._errors import SweepError
from ._params import LOWER_IS_BETTER

# The table each study kind writes first: what `sweep run` points to.
MAIN_TABLE = {"grid": "trials.parquet", "optuna": "trials.parquet", "walk_forward": "folds.parquet",
              "monte_carlo": "samples.parquet", "portfolio": "portfolio.json"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other error
        raise SweepError(f"{self.prog}: {message}")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sweep", description="Parameter sweeps of cross-sectional crypto factor backtests.")
    p.add_argument("--version", action="version", version=f"sweep {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a study and write its result tables",
                         description="Run every configuration of a study file and write parquet tables.")
    run.add_argument("study", help="study file (TOML)")
    run.add_argument("--data", help="data file (parquet or CSV); overrides [study] data")
    run.add_argument("--funding", help="separate funding table (date, symbol, funding_rate) to join")
    run.add_argument("--out", help="results folder (default results/<study name>)")
    run.add_argument("--jobs", type=int, help="parallel workers (default: all cores)")
    run.add_argument("--force", action="store_true", help="replace results of a different study or data")
    run.add_argument("--save-returns", action="store_true", help="also write every configuration's daily returns")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")

    show = sub.add_parser("show", help="print the best configurations of a results folder",
                          description="Print the best configurations of a results folder.")
    show.add_argument("results", help="results folder (or its trials.parquet)")
    show.add_argument("--top", type=int, default=10, help="rows to print (default 10)")
    show.add_argument("--by", help="metric to rank by (default: the study's objective)")
    show.add_argument("--best-per", metavar="COLUMN",
                      help="best configuration per value of a parameter (e.g. factor), with its deflated "
                           "Sharpe and a bootstrap interval of its Sharpe minus the runner-up's")
    show.add_argument("--data", help="the study's data file, if it moved since the run")

    val = sub.add_parser("validate", help="check a study against its data without running it",
                         description="Check a study against its data; print the configuration count "
                                     "and the evaluation window.")
    val.add_argument("study")
    val.add_argument("--data")
    val.add_argument("--funding")

    data = sub.add_parser("data", help="data utilities", description="Data utilities.")
    dsub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    syn = dsub.add_parser("synth", help="write a seeded synthetic panel with funding rates",
                          description="Write a seeded synthetic daily panel (close, volume, "
                                      "market_cap, funding_rate) as parquet or CSV.")
    syn.add_argument("--out", required=True, help="output file (.parquet or .csv)")
    syn.add_argument("--symbols", type=int, default=200)
    syn.add_argument("--days", type=int, default=3650)
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--start", default="2015-01-01", help="first date (YYYY-MM-DD)")
    _report.add_parser(sub)
    _portfolio.add_parser(sub)
    _live.add_parser(sub)
    return p


def _cmd_run(args) -> int:
    from ._runner import run_study
    from ._study import load_study

    if args.jobs is not None and args.jobs < 1:
        raise SweepError(f"--jobs = {args.jobs} must be at least 1")
    study = load_study(args.study)
    summary = run_study(study, data=args.data, funding=args.funding, out=args.out, jobs=args.jobs,
                        force=args.force, save_returns=args.save_returns,
                        progress=False if args.quiet else None)
    if not args.quiet:
        if summary.n_run == 0:
            print(f"{summary.out}: already complete ({summary.n_configs} configurations); "
                  "use --force to run again")
        else:
            resumed = f", {summary.n_resumed} resumed" if summary.n_resumed else ""
            what = "configurations" if study.kind in ("grid", "optuna") else "backtests"
            print(f"{summary.n_run} {what} in {summary.compute_time:.2f} s "
                  f"({summary.configs_per_second:,.0f}/s{resumed}), {summary.start} .. {summary.end}, "
                  f"{summary.wall_time:.2f} s in all -> {summary.out}/{MAIN_TABLE[study.kind]}")
    return 0


def _cmd_validate(args) -> int:
    from ._runner import plan
    from ._study import load_study

    study = load_study(args.study)
    if study.kind == "portfolio":
        print(f"{study.path}: valid portfolio study '{study.name}'")
        for line in _portfolio.describe(study):
            print(f"  {line}")
        return 0
    if study.kind in ("walk_forward", "optuna"):
        return _validate_kind(study, args)
    p = plan(study, args.data, args.funding)
    T, N = p.panel.shape
    print(f"{study.path}: valid {study.kind} study '{study.name}'")
    print(f"  data        {p.panel.source} ({T} days x {N} symbols, {p.panel.dates[0]} .. {p.panel.dates[-1]})")
    print(f"  configs     {len(p.configs)}" + (" = " + " x ".join(
        "every phase" if v == "all" else f"{len(v)} {k}" for k, v in study.axes.items()) if study.axes else ""))
    print(f"  evaluation  {p.start} .. {p.end} ({p.e - p.s + 1} days)")
    print(f"  objective   {study.objective}")
    return 0


def _validate_kind(study, args) -> int:
    if study.kind == "walk_forward":
        from ._walkforward import _optuna_space, prepare

        cfg, p, folds = prepare(study, args.data, args.funding)
        per_fold = (f"{_optuna_space(study)[1].n_trials} Optuna trials" if cfg.inner == "optuna"
                    else f"{len(p.configs)} grid configurations")
        lines = [f"candidates  {per_fold} per fold, scored on its train window",
                 f"folds       {len(folds)}: train {cfg.train_days} days, test {cfg.test_days}, step "
                 f"{cfg.step_days}{', anchored' if cfg.anchored else ''}; first test day "
                 f"{p.panel.dates[folds[0].test_start]}, last {p.panel.dates[folds[-1].test_end]}"]
    else:
        from ._optuna import describe

        p, lines = describe(study, args.data, args.funding)
    T, N = p.panel.shape
    print(f"{study.path}: valid {study.kind} study '{study.name}'")
    print(f"  data        {p.panel.source} ({T} days x {N} symbols, {p.panel.dates[0]} .. {p.panel.dates[-1]})")
    for line in lines:
        print(f"  {line}")
    print(f"  evaluation  {p.start} .. {p.end} ({p.e - p.s + 1} days)")
    print(f"  objective   {study.objective}")
    return 0


def _cmd_show(args) -> int:
    import polars as pl

    from kernels.metrics import METRICS

    path = Path(args.results)
    folder = path.parent if path.suffix == ".parquet" else path
    trials = folder / "trials.parquet"
    if (folder / "portfolio.json").exists() and not trials.exists():
        return _portfolio.show(folder)
    if (folder / "folds.parquet").exists() and not trials.exists():
        return _show_walk_forward(folder)
    if (folder / "summary.parquet").exists() and not trials.exists():
        return _show_monte_carlo(folder, args.top)
    if not trials.exists():
        raise SweepError(f"{folder}: no trials.parquet (run the study first, or check the folder)")
    manifest = {}
    reading = folder / "manifest.json"
    try:
        if reading.exists():
            manifest = json.loads(reading.read_text())
        reading = trials
        df = pl.read_parquet(trials)
    except (ValueError, OSError, pl.exceptions.PolarsError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"{reading}: unreadable ({first}); rerun the study with --force") from None
    by = args.by or manifest.get("study", {}).get("objective", "sharpe")
    if by not in METRICS:
        from ._params import closest

        raise SweepError(f"--by {by!r} is not a metric{closest(by, METRICS)}")
    if args.top < 1:
        raise SweepError(f"--top = {args.top} must be at least 1")
    params = [c for c in manifest.get("parameters", []) if c in df.columns and df[c].n_unique() > 1]
    shown = [by] + [m for m in ("sharpe", "sharpe_pre_cost", "cagr", "ann_vol", "max_drawdown",
                                "turnover", "n_rebalances") if m != by]
    # An Optuna search may try a configuration twice: show each once.
    best = (df.unique("config_id", keep="first", maintain_order=True)
            .sort(by, descending=by not in LOWER_IS_BETTER, nulls_last=True).head(args.top))

    from rich.console import Console
    from rich.table import Table

    window = manifest.get("evaluation_window", {})
    title = (f"{manifest.get('study', {}).get('name', folder.name)}: top {len(best)} of {df.height} "
             f"by {by}" + (f", {window['start']} .. {window['end']}" if window else ""))
    table = Table(title=title, title_justify="left")
    for col in ["#", "config_id", *params, *shown]:
        table.add_column(col, justify="left" if col in ("config_id",) or col in params else "right")
    for rank, row in enumerate(best.iter_rows(named=True), 1):
        # A drawdown of -100 % or worse: NAV reached zero and the later returns are
        # those of a negative book (SEMANTICS does not stop it); flag, do not hide.
        mark = "!" if row["max_drawdown"] is not None and row["max_drawdown"] <= -1.0 else ""
        cells = [f"{rank}{mark}", row["config_id"]] + [_fmt(row[c]) for c in params] + [_fmt(row[m], m) for m in shown]
        table.add_row(*cells)
    console = Console(width=max(100, 12 * (len(params) + len(shown) + 2)))
    console.print(table)
    if (best["max_drawdown"] <= -1.0).any():
        console.print("! max_drawdown <= -100 %: the book's NAV reached zero and went negative; its Sharpe "
                      "and later returns describe a wiped-out book, not a strategy to trade.")
    summary_path = folder / "summary.json"
    if summary_path.exists():
        _print_overfitting(console, json.loads(summary_path.read_text()))
    if args.best_per:
        _print_best_per(console, folder, args.best_per, args.data)
    return 0


def _read(path: Path):
    import polars as pl

    try:
        return json.loads(path.read_text()) if path.suffix == ".json" else pl.read_parquet(path)
    except (ValueError, OSError, pl.exceptions.PolarsError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"{path}: unreadable ({first}); rerun the study with --force") from None


def _show_walk_forward(folder: Path) -> int:
    from rich.console import Console
    from rich.table import Table

    folds = _read(folder / "folds.parquet")
    summary = _read(folder / "summary.json") if (folder / "summary.json").exists() else {}
    manifest = _read(folder / "manifest.json") if (folder / "manifest.json").exists() else {}
    objective = manifest.get("study", {}).get("objective", "sharpe")
    params = [c for c in manifest.get("parameters", []) if c in folds.columns and folds[c].n_unique() > 1]
    table = Table(title=f"{folder.name}: walk-forward, {folds.height} folds (chosen on train, traded on test)",
                  title_justify="left")
    cols = ["fold", "test_start", "test_end", *params, f"train_{objective}", f"test_{objective}", "test_rank"]
    for c in cols:
        table.add_column(c, justify="left" if c in params or "start" in c or "end" in c else "right")
    for row in folds.iter_rows(named=True):
        rank = f"{row['test_rank']}/{row['n_candidates']}" if "n_candidates" in row else str(row["test_rank"])
        table.add_row(*[_fmt(row[c]) for c in cols[:-1]], rank)
    console = Console(width=max(100, 14 * len(cols)))
    console.print(table)
    m = summary.get("metrics", {})
    if m:
        console.print(f"Out of sample ({summary.get('oos_start')} .. {summary.get('oos_end')}): Sharpe "
                      f"{_fmt(m.get('sharpe'))}, total return {_fmt(m.get('total_return'), 'total_return')}, "
                      f"max drawdown {_fmt(m.get('max_drawdown'), 'max_drawdown')}; mean in-sample Sharpe of the "
                      f"choices {_fmt(summary.get('is_sharpe_mean'))}, out-of-sample / in-sample "
                      f"{_fmt(summary.get('oos_is_sharpe_ratio'))}.")
    return 0


def _show_monte_carlo(folder: Path, top: int) -> int:
    from rich.console import Console
    from rich.table import Table

    summary = _read(folder / "summary.parquet")
    manifest = _read(folder / "manifest.json") if (folder / "manifest.json").exists() else {}
    objective = summary["objective"][0] if "objective" in summary.columns else "sharpe"
    params = [c for c in manifest.get("parameters", []) if c in summary.columns and summary[c].n_unique() > 1]
    best = summary.sort("median", descending=True, nulls_last=True).head(top)
    mc = manifest.get("monte_carlo", {})
    table = Table(title=f"{folder.name}: {objective} over {mc.get('method', 'Monte Carlo')} samples "
                        f"(top {len(best)} of {summary.height} by median)", title_justify="left")
    cols = ["config_id", *params, "mean", "median", "q05", "q95", "p_positive", "p_best", "n_samples"]
    for c in cols:
        table.add_column(c, justify="left" if c in params or c == "config_id" else "right")
    for row in best.iter_rows(named=True):
        table.add_row(*[_fmt(row[c]) for c in cols])
    Console(width=max(100, 12 * len(cols))).print(table)
    return 0


def _print_overfitting(console, summary: dict) -> None:
    """The overfitting statistics in words a researcher can act on."""
    o = summary.get("overfitting", summary)
    if "dsr" not in o:
        return
    pbo = o.get("pbo", {})
    lines = [
        f"Best of {o['n_trials']} configurations: Sharpe {o['best_sharpe_annual']:.2f} a year; "
        f"the best of {o['n_trials']} tries of pure luck would be expected near "
        f"{o['expected_max_sharpe_annual']:.2f}.",
        f"Deflated Sharpe ratio {o['dsr']:.3f}: the confidence that the best's Sharpe beats what the luck "
        f"of {o['n_trials']} tries would give (against zero, without deflation: {o['psr']:.3f}).",
        f"Minimum backtest length for this Sharpe among {o['n_trials']} tries: {o['min_backtest_years']:.1f} "
        f"years (the window has {o['n_obs'] / 365:.1f}).",
    ]
    if pbo:
        lines.append(f"Probability of backtest overfitting (CSCV, {pbo['n_blocks']} blocks): {pbo['pbo']:.2f}; "
                     f"the in-sample winner lost money out of sample in {pbo['prob_oos_loss']:.0%} of the splits.")
    console.print("\n".join(lines))


def _print_best_per(console, folder: Path, column: str, data: str | None) -> None:
    from rich.table import Table

    from ._bestper import BOOT_BLOCK_DAYS, BOOT_SAMPLES, best_per

    df = best_per(folder, column, data)
    table = Table(title=f"best per {column}: Sharpe, deflated Sharpe within the group, and the 90 % "
                        f"interval of (Sharpe - runner-up's) from {BOOT_SAMPLES} stationary-bootstrap "
                        f"resamples ({BOOT_BLOCK_DAYS}-day blocks)", title_justify="left")
    for col in df.columns:
        table.add_column(col, justify="left" if df[col].dtype == pl_string() else "right")
    for row in df.iter_rows():
        table.add_row(*[_fmt(v) for v in row])
    console.print(table)


def pl_string():
    import polars as pl

    return pl.String


def _fmt(v, metric: str | None = None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:
            return "nan"
        if metric in ("cagr", "total_return", "max_drawdown", "ann_vol", "win_rate"):
            return f"{v:.1%}"
        return f"{v:.3f}" if metric != "n_rebalances" else f"{v:.0f}"
    if isinstance(v, list):
        return ",".join(v) or "-"
    return str(v)


def _cmd_data(args) -> int:
    import datetime as dt

    from ._synth import write_synth

    try:
        start = dt.date.fromisoformat(args.start)
    except ValueError:
        raise SweepError(f"--start = {args.start!r} is not a date (YYYY-MM-DD)") from None
    if args.symbols < 1 or args.days < 2:
        raise SweepError("--symbols must be >= 1 and --days >= 2")
    out = Path(args.out)
    if not out.parent.exists():
        raise SweepError(f"{out.parent}: no such folder")
    write_synth(out, n_symbols=args.symbols, n_days=args.days, seed=args.seed, start=start)
    print(f"wrote {out} ({args.symbols} symbols x {args.days} days, seed {args.seed})")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = _build_parser().parse_args(argv)
        handler = {"run": _cmd_run, "show": _cmd_show, "validate": _cmd_validate, "data": _cmd_data,
                   "report": _report.command, "portfolio": _portfolio.command, "export": _live.command,
                   "check": _live.command}
        return handler[args.command](args)
    except SweepError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sweep: interrupted; finished chunks are kept, run the same command again to resume",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sweep show ... | head`
        return 0
