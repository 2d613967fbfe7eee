"""``sweep validate STUDY``: check a study against its data (a portfolio study: against its
results folders) and print what a run would do, in the kind's words (``StudyKind.describe``).
Nothing is written."""

from __future__ import annotations

from sweep.cli.common import kind_module
from sweep.study import get

HELP = {"validate": "check a study against its data without running it"}


def add_parser(subparsers) -> None:
    val = subparsers.add_parser("validate", help=HELP["validate"],
                                description="Check a study against its data (a portfolio study: against its "
                                            "results folders); print the configuration count and the evaluation "
                                            "window. Nothing is written.")
    val.add_argument("study", help="study file (TOML)")
    val.add_argument("--data", metavar="PATH",
                     help="data file (parquet or CSV) (default: [study] data, else the embedded data set)")
    val.add_argument("--max-configs", type=int, metavar="N", dest="max_configs",
                     help="refuse a grid of more configurations than N (default: the limit of sweep run)")
    val.add_argument("--funding", metavar="PATH",
                     help="separate funding table (date, symbol, funding_rate) to join "
                          "(default: [study] funding, else none)")


def command(args) -> int:
    from sweep.study import load_study

    study = load_study(args.study)
    kind = get(study.kind, f"{study.path}: [study] kind")
    study.check_size(args.max_configs)  # before anything expands the grid
    check = getattr(kind_module(study.kind), "check", None)
    if check is not None:
        check(study)
    lines = kind.describe(study, data=args.data, funding=args.funding)  # all that can fail, before "valid"
    print(f"{study.path}: valid {study.kind} study '{study.name}'")
    for line in study.code_notices():  # the researcher's code a run executes
        print(f"  {line}")
    for line in lines:
        print(f"  {line}")
    return 0
