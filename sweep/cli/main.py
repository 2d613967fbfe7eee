"""The ``sweep`` command line: parse arguments, call the library, print one-line errors."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tomllib
from pathlib import Path

from sweep import __version__
from sweep.stats import compare as _compare
from sweep.book import live as _live
from sweep.book import portfolio as _portfolio
from sweep.report import page as _report
from sweep.core.errors import SweepError
from sweep.engine.params import LOWER_IS_BETTER, PARAMS, closest

# The table each study kind writes first: what `sweep run` points to.
MAIN_TABLE = {"grid": "trials.parquet", "optuna": "trials.parquet", "walk_forward": "folds.parquet",
              "monte_carlo": "samples.parquet", "portfolio": "portfolio.json"}

# What `sweep show` adds after the ranking metric, in this order, while the terminal has room.
KEY_METRICS = ("sharpe", "cagr", "max_drawdown", "turnover", "sharpe_pre_cost", "ann_vol", "sortino",
               "calmar", "n_rebalances")
PERCENT = ("cagr", "total_return", "max_drawdown", "ann_vol", "win_rate")
MIN_ID = 6  # shortest config_id prefix printed: short enough to type, long enough to read as an id
RUINED_MARK = "†"
DEFAULT_WIDTH = 100
SEP = 3  # characters between two columns of the tables below (rich's SIMPLE_HEAD box, padding 1)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other error
        raise SweepError(f"{self.prog}: {message}")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sweep", description="Parameter sweeps of cross-sectional crypto factor backtests.")
    p.add_argument("--version", action="version", version=f"sweep {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a study and write its result tables",
                         description="Run every configuration of a study file, write parquet tables, and end "
                                     "with the best book, the verdict on the search and the next commands.")
    run.add_argument("study", help="study file (TOML)")
    run.add_argument("--data", help="data file (parquet or CSV); overrides [study] data")
    run.add_argument("--funding", help="separate funding table (date, symbol, funding_rate) to join")
    run.add_argument("--out", help="results folder (default results/<study name>)")
    run.add_argument("--jobs", type=int, help="parallel workers (default: all cores)")
    run.add_argument("--force", action="store_true", help="replace results of a different study or data")
    run.add_argument("--save-returns", action="store_true", help="also write every configuration's daily returns")
    run.add_argument("--quiet", action="store_true",
                     help="no progress and no ending (best book, verdict, next commands)")

    show = sub.add_parser("show", help="print the best configurations of a results folder",
                          description="Print the best configurations of a results folder, among the books "
                                      "that were not ruined (NAV never reached zero).")
    show.add_argument("results", help="results folder (or its trials.parquet)")
    show.add_argument("--top", type=int, default=10, help="rows to print (default 10)")
    show.add_argument("--by", help="metric to rank by (default: the study's objective)")
    show.add_argument("--best-per", metavar="COLUMN",
                      help="best configuration per value of a parameter (e.g. factor), with its deflated "
                           "Sharpe and a bootstrap interval of its Sharpe minus the runner-up's")
    show.add_argument("--include-ruined", action="store_true",
                      help=f"also rank the books whose NAV reached zero, marked {RUINED_MARK} "
                           "(default: set aside and counted)")
    show.add_argument("--columns", metavar="A,B,C",
                      help="columns after config_id, comma-separated parameters and metrics (default: the "
                           "swept parameters, the ranking metric, then key metrics as the width allows)")
    show.add_argument("--config", metavar="ID",
                      help="print one configuration's parameters and metrics (its config_id or a unique "
                           f"prefix of at least {MIN_ID} characters, as the table prints it)")
    show.add_argument("--data", help="the study's data file, if it moved since the run (for --best-per)")

    val = sub.add_parser("validate", help="check a study against its data without running it",
                         description="Check a study against its data (a portfolio study: against its "
                                     "results folders); print the configuration count and the evaluation "
                                     "window. Nothing is written.")
    val.add_argument("study", help="study file (TOML)")
    val.add_argument("--data", metavar="PATH",
                     help="data file (parquet or CSV) (default: [study] data, else the embedded data set)")
    val.add_argument("--funding", metavar="PATH",
                     help="separate funding table (date, symbol, funding_rate) to join "
                          "(default: [study] funding, else none)")

    data = sub.add_parser("data", help="data utilities", description="Data utilities.")
    dsub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    syn = dsub.add_parser("synth", help="write a seeded synthetic panel with funding rates",
                          description="Write a seeded synthetic daily panel (close, volume, "
                                      "market_cap, funding_rate) as parquet or CSV.")
    syn.add_argument("--out", required=True, metavar="FILE",
                     help="output file; its extension, .parquet or .csv, picks the format (required)")
    syn.add_argument("--symbols", type=int, default=200, metavar="N", help="number of symbols (default %(default)s)")
    syn.add_argument("--days", type=int, default=3650, metavar="N", help="number of days (default %(default)s)")
    syn.add_argument("--seed", type=int, default=0, metavar="N",
                     help="random seed: the same seed writes the same panel (default %(default)s)")
    syn.add_argument("--start", default="2015-01-01", metavar="DATE",
                     help="first date, YYYY-MM-DD (default %(default)s)")
    _report.add_parser(sub)
    _compare.add_parser(sub)
    _portfolio.add_parser(sub)
    _live.add_parser(sub)
    return p


# ---- sweep run --------------------------------------------------------------------------


def _cmd_run(args) -> int:
    from sweep.study.grid import run_study
    from sweep.study.file import load_study

    if args.jobs is not None and args.jobs < 1:
        raise SweepError(f"--jobs = {args.jobs} must be at least 1")
    study = load_study(args.study)
    if study.kind == "portfolio":
        _check_portfolio_legs(study)
    summary = run_study(study, data=args.data, funding=args.funding, out=args.out, jobs=args.jobs,
                        force=args.force, save_returns=args.save_returns,
                        progress=not args.quiet)
    if args.quiet:
        return 0
    if summary.n_run == 0:
        print(f"{summary.out}: already complete ({summary.n_configs} configurations); "
              "use --force to run again")
    else:
        resumed = f", {summary.n_resumed} resumed" if summary.n_resumed else ""
        what = "configurations" if study.kind in ("grid", "optuna") else "backtests"
        print(f"{summary.n_run} {what} in {summary.compute_time:.2f} s "
              f"({summary.configs_per_second:,.0f}/s{resumed}), {summary.start} .. {summary.end}, "
              f"{summary.wall_time:.2f} s in all -> {summary.out}/{MAIN_TABLE[study.kind]}")
    _print_ending(study, Path(summary.out), args.data)
    return 0


def _print_ending(study, folder: Path, data: str | None) -> None:
    """The answer a run came for: the best book not ruined, the verdict, the next commands."""
    import textwrap

    q = shlex.quote(str(folder))
    data_opt = f" --data {shlex.quote(str(data))}" if data else ""
    lines: list[str] = []
    nexts = [f"sweep show {q}"]
    if study.kind in ("grid", "optuna"):
        from sweep.stats.verdict import overall_verdict

        trials = _read(folder / "trials.parquet")
        params = _read(folder / "manifest.json").get("parameters") or study.columns
        lines += _best_lines(trials, study.objective, params)
        summary = _read(folder / "summary.json") if (folder / "summary.json").exists() else {}
        lines.append(f"The search: {overall_verdict(summary).sentence}")
        swept = [c for c in params if c != "phase" and c in trials.columns and trials[c].n_unique() > 1]
        if study.kind == "grid" and "rebalance_days" in swept:
            lines.append(f"Rebalance period: {_compare_verdict(folder, data)}")
        if study.kind == "grid" and swept:
            param = "rebalance_days" if "rebalance_days" in swept else swept[0]
            nexts.append(f"sweep compare {q} --param {param}{data_opt}")
    elif study.kind == "walk_forward":
        lines += _walk_forward_lines(folder)
    elif study.kind == "monte_carlo":
        lines += _monte_carlo_lines(folder, study.objective)
    elif study.kind == "portfolio":
        lines += _portfolio_lines(folder)
    nexts.append(f"sweep report {q}{data_opt}")
    width = _width()
    for line in lines:
        print(textwrap.fill(line, width, subsequent_indent="  ", break_on_hyphens=False))
    print("Next:")
    for cmd in nexts:
        print(f"  {cmd}")


def _compare_verdict(folder: Path, data: str | None) -> str:
    try:
        return _compare.compare(folder, "rebalance_days", data=data)["verdict"]
    except SweepError as exc:  # the run's results stand; only the comparison is missing
        return f"not compared ({exc})"


def _best_lines(trials, objective: str, params: list[str]) -> list[str]:
    """The best book not ruined of a grid or Optuna table, and how many were set aside."""
    import polars as pl

    from sweep.stats.choose import best_index

    t = trials.unique("config_id", keep="first", maintain_order=True)
    values = t[objective].cast(pl.Float64).fill_null(float("nan")).to_numpy()
    ruined = t["ruined"].cast(pl.Float64).fill_null(0.0).to_numpy() if "ruined" in t.columns else None
    n_ruined = int((ruined > 0).sum()) if ruined is not None else 0
    set_aside = (f"; {n_ruined} of {t.height} books were ruined (NAV reached zero) and set aside"
                 if n_ruined else "")
    i = best_index(values, objective, ruined)
    if i < 0:
        return [f"No book to recommend: none of the {t.height} that was not ruined has a finite "
                f"{objective}{set_aside}."]
    row = t.row(i, named=True)
    swept = [c for c in params if c in t.columns and t[c].n_unique() > 1]
    what = ", ".join(f"{c} {_fmt(row[c], c)}" for c in swept)
    figures = [f"{objective} {_fmt(row[objective], objective)}"]
    figures += [f"{label} {_fmt(row[m], m)}" for m, label in (("cagr", "CAGR"), ("max_drawdown", "max drawdown"))
                if m != objective and m in row]
    return [f"Best book not ruined: {row['config_id']}" + (f" ({what})" if what else "") + ": "
            + ", ".join(figures) + set_aside + "."]


def _walk_forward_lines(folder: Path) -> list[str]:
    s = _read(folder / "summary.json")
    m = s.get("metrics", {})
    line = (f"Out of sample {s.get('oos_start')} .. {s.get('oos_end')} ({s.get('folds')} folds, each "
            f"configuration chosen on its train window): Sharpe {_fmt(m.get('sharpe'))}, CAGR "
            f"{_fmt(m.get('cagr'), 'cagr')}, max drawdown {_fmt(m.get('max_drawdown'), 'max_drawdown')}; "
            f"out-of-sample / in-sample Sharpe {_fmt(s.get('oos_is_sharpe_ratio'))}.")
    folds = _read(folder / "folds.parquet")
    if "test_ruined" in folds.columns:
        n = int((folds["test_ruined"].fill_null(0.0) > 0).sum())
        if n:
            line += f" {n} of {folds.height} chosen books were ruined on their test window."
    return [line]


def _monte_carlo_lines(folder: Path, objective: str) -> list[str]:
    import polars as pl

    from sweep.stats.choose import best_index

    s = _read(folder / "summary.parquet")
    if "objective" in s.columns and s.height:
        objective = s["objective"][0]
    median = s["median"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
    p_ruined = s["p_ruined"].cast(pl.Float64).fill_null(0.0).to_numpy() if "p_ruined" in s.columns else None
    # A configuration ruined in some samples can ruin the real book too: prefer one never ruined.
    i = best_index(median, objective, p_ruined)
    n_ruined = int((p_ruined > 0).sum()) if p_ruined is not None else 0
    note = (f"; {n_ruined} of {s.height} configurations were ruined in some samples and set aside"
            if n_ruined and i >= 0 else "")
    if i < 0:
        i = best_index(median, objective)
    if i < 0:
        return [f"No configuration has a finite median {objective} over the samples."]
    row = s.row(i, named=True)
    manifest = _read(folder / "manifest.json")
    swept = [c for c in manifest.get("parameters", []) if c in s.columns and s[c].n_unique() > 1]
    what = ", ".join(f"{c} {_fmt(row[c], c)}" for c in swept)
    ruined = (f", ruined in {_fmt(row['p_ruined'], 'win_rate')} of them"
              if p_ruined is not None and row["p_ruined"] else "")
    return [f"Best median {objective}: {row['config_id']}" + (f" ({what})" if what else "")
            + f": median {_fmt(row['median'], objective)}, 90 % of samples between {_fmt(row['q05'], objective)} "
              f"and {_fmt(row['q95'], objective)}, best in {_fmt(row['p_best'], 'win_rate')} of the samples"
            + ruined + note + "."]


def _portfolio_lines(folder: Path) -> list[str]:
    doc = _read(folder / "portfolio.json")
    m, win = doc.get("metrics", {}), doc.get("evaluation_window", {})
    names = [s["factor"] for s in doc.get("strategies", [])]
    line = (f"The book of {len(names)} strateg{'y' if len(names) == 1 else 'ies'} ({', '.join(names)}), "
            f"weights {doc.get('weights_method')}, "
            f"{win.get('start')} .. {win.get('end')}: Sharpe {_fmt(m.get('sharpe'))}, CAGR "
            f"{_fmt(m.get('cagr'), 'cagr')}, max drawdown {_fmt(m.get('max_drawdown'), 'max_drawdown')}.")
    warnings = doc.get("warnings") or []
    return [line] + [f"warning: {w}" for w in warnings]


# ---- sweep validate ---------------------------------------------------------------------


def _cmd_validate(args) -> int:
    from sweep.study.grid import plan
    from sweep.study.file import load_study

    study = load_study(args.study)
    if study.kind == "portfolio":
        _check_portfolio_legs(study)
        lines = _portfolio.describe(study)  # everything that can fail, before "valid" is printed
        print(f"{study.path}: valid portfolio study '{study.name}'")
        for line in lines:
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
        from sweep.study.walk_forward import _optuna_space, prepare

        cfg, p, folds = prepare(study, args.data, args.funding)
        per_fold = (f"{_optuna_space(study)[1].n_trials} Optuna trials" if cfg.inner == "optuna"
                    else f"{len(p.configs)} grid configurations")
        lines = [f"candidates  {per_fold} per fold, scored on its train window",
                 f"folds       {len(folds)}: train {cfg.train_days} days, test {cfg.test_days}, step "
                 f"{cfg.step_days}{', anchored' if cfg.anchored else ''}; first test day "
                 f"{p.panel.dates[folds[0].test_start]}, last {p.panel.dates[folds[-1].test_end]}"]
    else:
        from sweep.study.optuna import describe

        p, lines = describe(study, args.data, args.funding)
    T, N = p.panel.shape
    print(f"{study.path}: valid {study.kind} study '{study.name}'")
    print(f"  data        {p.panel.source} ({T} days x {N} symbols, {p.panel.dates[0]} .. {p.panel.dates[-1]})")
    for line in lines:
        print(f"  {line}")
    print(f"  evaluation  {p.start} .. {p.end} ({p.e - p.s + 1} days)")
    print(f"  objective   {study.objective}")
    return 0


def _check_portfolio_legs(study) -> None:
    """Each results folder of a portfolio study exists, finished and is of this schema; a
    missing one is refused with the study to run first."""
    from sweep.results.schema import read_manifest

    for rel in study.raw.get("portfolio", {}).get("results") or []:
        folder = _leg_folder(rel, study)
        if folder is None or not (folder / "manifest.json").exists():
            state = "does not exist" if folder is None else "holds no finished run"
            raise SweepError(f"{study.path}: [portfolio] results {rel!r} {state}; {_leg_hint(rel, study)}")
        read_manifest(folder)  # refuses another schema with the command that reruns it


def _leg_folder(rel: str, study) -> Path | None:
    # The places `sweep run` looks for a leg (sweep/_portfolio.py): as given, or from the
    # study file's folder or its parent.
    p = Path(rel)
    candidates = [p] if p.is_absolute() else [p, study.path.parent / p, study.path.parent.parent / p]
    return next((c for c in candidates if c.is_dir()), None)


def _leg_hint(rel: str, study) -> str:
    """Which study writes the results folder ``rel``: the grid or Optuna study named after it."""
    name = Path(rel).name
    folders = dict.fromkeys([study.path.parent, study.path.parent.parent / "studies", Path("studies")])
    for d in folders:
        for path in sorted(d.glob("*.toml")) if d.is_dir() else []:
            try:
                head = tomllib.loads(path.read_text(encoding="utf-8")).get("study", {})
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
            if head.get("name") == name and head.get("kind", "grid") in ("grid", "optuna"):
                out = "" if Path(rel) == Path("results") / name else f" --out {shlex.quote(rel)}"
                return f"run it first: sweep run {shlex.quote(str(path))}{out}"
    return f"run the grid or Optuna study that writes it first (sweep run STUDY --out {shlex.quote(rel)})"


# ---- sweep show -------------------------------------------------------------------------


def _width() -> int:
    """The terminal's width when printing to one (or $COLUMNS), else 100."""
    import shutil

    if sys.stdout.isatty():
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        return DEFAULT_WIDTH


def _console(width: int):
    from rich.console import Console

    return Console(width=width)


def _fit_table(columns: dict[str, str], rows: list[dict[str, str]], fixed: list[str], optional: list[str],
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


def _print_table(table_and_width, width: int) -> None:
    table, need = table_and_width
    _console(max(width, need)).print(table)


def _id_length(ids) -> int:
    """The shortest prefix length (at least MIN_ID) that tells every id of ``ids`` apart."""
    ids = list(dict.fromkeys(ids))
    longest = max((len(i) for i in ids), default=MIN_ID)
    for n in range(MIN_ID, longest):
        if len({i[:n] for i in ids}) == len(ids):
            return n
    return longest


def _cmd_show(args) -> int:
    import polars as pl

    from kernels.metrics import METRICS

    from sweep.results.schema import check_schema, read_manifest

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
    manifest = read_manifest(folder, required=False)
    df = _read(trials)
    if not manifest and "schema_version" in df.columns and df.height:
        check_schema({"schema_version": df["schema_version"][0]}, trials)
    if args.top < 1:
        raise SweepError(f"--top = {args.top} must be at least 1")
    # An Optuna search may try a configuration twice: show each once.
    df = df.unique("config_id", keep="first", maintain_order=True)
    params = [c for c in manifest.get("parameters") or [c for c in df.columns if c in PARAMS] if c in df.columns]
    objective = manifest.get("study", {}).get("objective", "sharpe")
    if args.config is not None:
        return _show_config(folder, manifest, df, args.config, params, objective)
    by = args.by or objective
    if by not in METRICS or by not in df.columns:
        raise SweepError(f"--by {by!r} is not a metric{closest(by, METRICS)}")
    swept = [c for c in params if df[c].n_unique() > 1]
    metrics = [m for m in METRICS if m in df.columns]
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
        width = _width()

    ruined = (pl.col("ruined") > 0) if "ruined" in df.columns else pl.lit(False)
    ranked = df.filter(pl.col(by).cast(pl.Float64).is_finite())
    n_unranked = df.height - ranked.height
    n_ruined = ranked.filter(ruined).height
    if not args.include_ruined:
        ranked = ranked.filter(~ruined)
    ranked = ranked.sort(by, descending=by not in LOWER_IS_BETTER, maintain_order=True)
    best = ranked.head(args.top)
    marks = best.select(ruined.alias("r"))["r"].to_list() if best.height else []

    n_id = _id_length(df["config_id"])
    head = ["#", "config_id"]
    order = list(dict.fromkeys(head + fixed + optional))
    rows = []
    for rank, (row, mark) in enumerate(zip(best.iter_rows(named=True), marks, strict=True), 1):
        cells = {"#": f"{rank}{RUINED_MARK if mark else ''}", "config_id": row["config_id"][:n_id]}
        cells.update({c: _fmt(row[c], c) for c in order[2:]})
        rows.append(cells)
    columns = {h: "left" if h == "config_id" or h in params else "right" for h in order}
    width_all = _width()
    console = _console(width_all)
    window = manifest.get("evaluation_window", {})
    pool = "books" if args.include_ruined else "books not ruined"
    console.print(f"{manifest.get('study', {}).get('name', folder.name)}: top {best.height} of {ranked.height} "
                  f"{pool} by {by}" + (f", {window['start']} .. {window['end']}" if window else ""))
    _print_table(_fit_table(columns, rows, head + fixed, optional, width), width_all)
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
        _print_overfitting(console, _read(summary_path))
    if args.best_per:
        _print_best_per(console, folder, args.best_per, args.data, args.by, width_all)
    return 0


def _show_config(folder: Path, manifest: dict, df, prefix: str, params: list[str], objective: str) -> int:
    """``sweep show RESULTS --config ID``: one configuration's parameters and every metric,
    metrics printed exactly (shortest repr) so they can be compared with the table."""
    import polars as pl

    from kernels.metrics import METRICS

    prefix = prefix.strip()
    if not prefix:
        raise SweepError("--config: give a config_id or a prefix of one")
    hits = df.filter(pl.col("config_id").str.starts_with(prefix))
    if hits.height == 0:
        raise SweepError(f"--config {prefix}: no configuration of {folder / 'trials.parquet'} has a "
                         "config_id starting so")
    if hits.height > 1:
        some = ", ".join(hits["config_id"].head(4).to_list()) + (", ..." if hits.height > 4 else "")
        raise SweepError(f"--config {prefix} is ambiguous: {hits.height} configurations start so ({some}); "
                         "give more characters")
    row = hits.row(0, named=True)
    ruined = bool(row.get("ruined") or 0.0)
    value = row.get(objective)
    if ruined:
        status = "ruined: its NAV reached zero and the book was closed (SEMANTICS §8)"
    elif value is None or value != value:
        status = f"not ranked: no finite {objective}"
    else:
        alive = df.filter(pl.col(objective).cast(pl.Float64).is_finite())
        if "ruined" in df.columns:
            alive = alive.filter(~(pl.col("ruined") > 0))
        better = alive.filter(pl.col(objective) < value if objective in LOWER_IS_BETTER
                              else pl.col(objective) > value).height
        status = f"rank {better + 1} of {alive.height} books not ruined by {objective}"
    name = manifest.get("study", {}).get("name", folder.name)
    print(f"{row['config_id']}  {name}: {status}")
    metrics = [m for m in METRICS if m in row]
    pad = max(len(k) for k in params + metrics)
    print("parameters")
    for k in params:
        print(f"  {k:<{pad}}  {_fmt(row[k], k)}")
    print("metrics")
    for m in metrics:
        v = row[m]
        exact = repr(float(v)) if isinstance(v, float) else str(v)
        human = f"  ({v:.1%})" if m in PERCENT and isinstance(v, float) and v == v else ""
        print(f"  {m:<{pad}}  {exact}{human}")
    return 0


def _read(path: Path):
    import polars as pl

    try:
        return json.loads(path.read_text()) if path.suffix == ".json" else pl.read_parquet(path)
    except (ValueError, OSError, pl.exceptions.PolarsError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"{path}: unreadable ({first}); rerun the study with --force") from None


def _show_walk_forward(folder: Path) -> int:
    from sweep.results.schema import read_manifest

    folds = _read(folder / "folds.parquet")
    summary = _read(folder / "summary.json") if (folder / "summary.json").exists() else {}
    manifest = read_manifest(folder, required=False)
    objective = manifest.get("study", {}).get("objective", "sharpe")
    params = [c for c in manifest.get("parameters", []) if c in folds.columns and folds[c].n_unique() > 1]
    width = _width()
    console = _console(width)
    console.print(f"{folder.name}: walk-forward, {folds.height} folds (chosen on train, traded on test)")
    train, test = f"train_{objective}", f"test_{objective}"
    cols = ["fold", "test_start", "test_end", *params, train, test, "test_rank"]
    rows = []
    for row in folds.iter_rows(named=True):
        cells = {c: _fmt(row.get(c), objective if c in (train, test) else c) for c in cols[:-1]}
        cells["test_rank"] = (f"{row['test_rank']}/{row['n_candidates']}" if "n_candidates" in row
                              else str(row["test_rank"]))
        rows.append(cells)
    columns = {c: "left" if c in params or "start" in c or "end" in c else "right" for c in cols}
    _print_table(_fit_table(columns, rows, ["fold", "test_start", *params, test],
                            [train, "test_rank", "test_end"], width), width)
    m = summary.get("metrics", {})
    if m:
        console.print(f"Out of sample ({summary.get('oos_start')} .. {summary.get('oos_end')}): Sharpe "
                      f"{_fmt(m.get('sharpe'))}, total return {_fmt(m.get('total_return'), 'total_return')}, "
                      f"max drawdown {_fmt(m.get('max_drawdown'), 'max_drawdown')}; mean in-sample Sharpe of the "
                      f"choices {_fmt(summary.get('is_sharpe_mean'))}, out-of-sample / in-sample "
                      f"{_fmt(summary.get('oos_is_sharpe_ratio'))}.")
    return 0


def _show_monte_carlo(folder: Path, top: int) -> int:
    from sweep.results.schema import read_manifest

    summary = _read(folder / "summary.parquet")
    manifest = read_manifest(folder, required=False)
    objective = summary["objective"][0] if "objective" in summary.columns else "sharpe"
    params = [c for c in manifest.get("parameters", []) if c in summary.columns and summary[c].n_unique() > 1]
    best = summary.sort("median", descending=objective not in LOWER_IS_BETTER, nulls_last=True).head(top)
    mc = manifest.get("monte_carlo", {})
    width = _width()
    console = _console(width)
    console.print(f"{folder.name}: {objective} over {mc.get('method', 'Monte Carlo')} samples "
                  f"(top {best.height} of {summary.height} by median)")
    n_id = _id_length(summary["config_id"])
    stats = [c for c in ("median", "q05", "q95", "p_best", "p_ruined", "mean", "p_positive", "n_samples")
             if c in summary.columns]
    cols = ["config_id", *params, *stats]
    rows = [{c: (row[c][:n_id] if c == "config_id" else _fmt(row[c], c)) for c in cols}
            for row in best.iter_rows(named=True)]
    columns = {c: "left" if c in params or c == "config_id" else "right" for c in cols}
    _print_table(_fit_table(columns, rows, ["config_id", *params, "median"], stats[1:], width), width)
    return 0


def _print_overfitting(console, summary: dict) -> None:
    """The overfitting statistics in words a researcher can act on, and the one verdict."""
    from sweep.stats.verdict import overall_verdict

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
                     f"{f('prob_oos_loss', '.0%', pbo)} of the splits.")
    lines.append(f"Overall: {overall_verdict(summary).sentence}")
    console.print("\n".join(lines))


def _print_best_per(console, folder: Path, column: str, data: str | None, by: str | None, width: int) -> None:
    import polars as pl

    from sweep.stats.best_per import BOOT_BLOCK_DAYS, BOOT_SAMPLES, best_per

    df = best_per(folder, column, data, by)
    console.print(f"Best per {column} among books not ruined: Sharpe, deflated Sharpe within the group, and "
                  f"the 90 % interval of (Sharpe - runner-up's) from {BOOT_SAMPLES} stationary-bootstrap "
                  f"resamples ({BOOT_BLOCK_DAYS}-day blocks).")
    n_id = _id_length(df["config_id"].drop_nulls()) if df.height else MIN_ID
    short = {"runner_up_rebalance_days": "vs_days", "runner_up_sharpe": "vs_sharpe", "n_configs": "n",
             "n_ruined": "ruined"}
    rows = []
    for row in df.iter_rows(named=True):
        cells = {short.get(c, c): (row[c][:n_id] if c == "config_id" and row[c] else _fmt(row[c], c))
                 for c in df.columns}
        rows.append(cells)
    columns = {short.get(c, c): "left" if df[c].dtype == pl.String else "right" for c in df.columns}
    fixed = [column, "config_id", "sharpe", "dsr", "diff_q05", "diff_q95"]
    optional = [h for h in columns if h not in fixed]
    _print_table(_fit_table(columns, rows, [h for h in fixed if h in columns], optional, width), width)
    for row in df.iter_rows(named=True):
        if row["config_id"] is None:
            console.print(f"{column} = {_fmt(row[column], column)}: all {row['n_configs']} books were ruined; "
                          "none to choose.")
    n = int(df["n_ruined"].sum()) if df.height else 0
    if n:
        console.print(f"{n} ruined book{'s' if n > 1 else ''} set aside (never the best nor the runner-up).")


def _fmt(v, metric: str | None = None) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and metric in PARAMS:
        return f"{v:g}"
    if isinstance(v, float):
        if v != v:
            return "nan"
        if metric in PERCENT:
            return f"{v:.1%}"
        return f"{v:.3f}" if metric != "n_rebalances" else f"{v:.0f}"
    if isinstance(v, list):
        return ",".join(v) or "-"
    return str(v)


# ---- sweep data -------------------------------------------------------------------------


def _cmd_data(args) -> int:
    import datetime as dt

    from sweep.data.synth import write_synth

    out = Path(args.out)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise SweepError(f"--out {out}: the extension must be .parquet or .csv (it picks the format)")
    try:
        start = dt.date.fromisoformat(args.start)
    except ValueError:
        raise SweepError(f"--start = {args.start!r} is not a date (YYYY-MM-DD)") from None
    if args.symbols < 1 or args.days < 2:
        raise SweepError("--symbols must be >= 1 and --days >= 2")
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
                   "check": _live.command, "compare": _compare.command}
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
