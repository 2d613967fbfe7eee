"""``sweep run STUDY``: run a study of any kind, write its tables, and end with the answer
(the best book not ruined, the verdict, the next commands) as the kind's command-line
module words it (``sweep.cli.common.kind_module``)."""

from __future__ import annotations

import shlex
import sys
import textwrap
from pathlib import Path

from sweep.cli import audit
from sweep.cli.common import kind_module, term_width
from sweep.core.errors import SweepError
from sweep.study import get, run_study

HELP = {"run": "run a study and write its result tables"}


def add_parser(subparsers) -> None:
    from sweep.study.kind import MAX_CONFIGS

    run = subparsers.add_parser("run", help=HELP["run"],
                                description="Run every configuration of a study file, write parquet tables, and end "
                                            "with the best book, the verdict on the search and the next commands.")
    run.add_argument("study", help="study file (TOML)")
    run.add_argument("--data", help="data file (parquet or CSV); overrides [study] data")
    run.add_argument("--funding", help="separate funding table (date, symbol, funding_rate) to join")
    run.add_argument("--out", help="results folder (default results/<study name>)")
    run.add_argument("--jobs", type=int, help="parallel workers (default: all cores)")
    run.add_argument("--force", action="store_true", help="replace results of a different study or data")
    run.add_argument("--save-returns", action="store_true", help="also write every configuration's daily returns")
    run.add_argument("--max-configs", type=int, metavar="N",
                     help=f"run a grid of up to N configurations (default limit {MAX_CONFIGS:,}: a larger table is "
                          "refused before it starts)")
    run.add_argument("--cluster", metavar="ADDRESS",
                     help="run the chunks on a Dask cluster: 'local:N' (N worker processes on this machine) or a "
                          "scheduler's 'tcp://HOST:8786'; overrides [study] cluster (grids, Monte Carlo, walk-forward)")
    run.add_argument("--quiet", action="store_true",
                     help="no progress and no ending (best book, verdict, next commands)")


def command(args) -> int:
    if args.jobs is not None and args.jobs < 1:
        raise SweepError(f"--jobs = {args.jobs} must be at least 1")
    if args.max_configs is not None and args.max_configs < 1:
        raise SweepError(f"--max-configs = {args.max_configs} must be at least 1")
    from sweep.study import load_study

    study = load_study(args.study)
    for line in study.code_notices():  # the researcher's code this run executes, even with --quiet
        print(line, file=sys.stderr)
    kind = get(study.kind, f"{study.path}: [study] kind")
    module = kind_module(study.kind)
    check = getattr(module, "check", None)
    if check is not None:
        check(study)
    if audit.first_run(study, args.out, args.data, args.funding, args.quiet):  # a user factor's lookahead
        return 1
    summary = run_study(study, data=args.data, funding=args.funding, out=args.out, jobs=args.jobs,
                        force=args.force, save_returns=args.save_returns, progress=not args.quiet,
                        max_configs=args.max_configs, cluster=args.cluster)
    if args.quiet:
        return 0
    if summary.n_run == 0:
        print(f"{summary.out}: already complete ({summary.n_configs} configurations); "
              "use --force to run again")
    else:
        resumed = f", {summary.n_resumed} resumed" if summary.n_resumed else ""
        print(f"{summary.n_run} {kind.counts} in {summary.compute_time:.2f} s "
              f"({summary.configs_per_second:,.0f}/s{resumed}), {summary.start} .. {summary.end}, "
              f"{summary.wall_time:.2f} s in all -> {summary.out}/{kind.main_table}")
    print_ending(study, Path(summary.out), args.data, module)
    return 0


def print_ending(study, folder: Path, data: str | None, module) -> None:
    """The answer a run came for, in the kind's words, and the next commands."""
    q = shlex.quote(str(folder))
    data_opt = f" --data {shlex.quote(str(data))}" if data else ""
    lines, nexts = module.ending(study, folder, data)
    nexts = [f"sweep show {q}", *nexts, f"sweep report {q}{data_opt}"]
    width = term_width()
    for line in lines:
        print(textwrap.fill(line, width, subsequent_indent="  ", break_on_hyphens=False))
    print("Next:")
    for cmd in nexts:
        print(f"  {cmd}")
