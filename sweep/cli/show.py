"""``sweep show RESULTS``: print a results folder of any kind, by the kind's own ``show``
(found through the kind registry: the manifest's kind, else the kind whose main table the
folder holds)."""

from __future__ import annotations

from pathlib import Path

from sweep.cli.common import MIN_ID, RUINED_MARK, kind_show
from sweep.core.errors import SweepError
from sweep.study import get, names

SEARCH_SHOW = "sweep.cli.kind_search:show"  # the kinds whose configurations are backtests (grid, optuna)
HELP = {"show": "print the best configurations of a results folder"}


def add_parser(subparsers) -> None:
    show = subparsers.add_parser("show", help=HELP["show"],
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
    show.add_argument("--holdings", metavar="DATE",
                      help="with --config (a grid or Optuna folder): the configuration's holdings (symbol, side, "
                           "weight, factor value) on DATE (YYYY-MM-DD, in the evaluation window), rerun on the "
                           "study's data; 'all' with --out writes every day's")
    show.add_argument("--out", metavar="FILE",
                      help="with --holdings: write the weights as Parquet (schema_version, config_id, date, "
                           "symbol, weight; non-zero weights only), e.g. holdings.parquet")
    show.add_argument("--data", help="the study's data file, if it moved since the run (for --best-per and "
                                     "--holdings)")
    show.add_argument("--funding", help="the study's funding table, if it moved since the run (for --holdings)")


def folder_kind(folder: Path) -> str:
    """The study kind of a results folder: its manifest's, else the first registered kind
    whose main table is there (a ``sweep portfolio`` folder, an older folder)."""
    from sweep.results.schema import read_manifest

    kind = (read_manifest(folder, required=False).get("study") or {}).get("kind")
    if kind:
        return kind
    found = next((k for k in names() if (folder / get(k).main_table).exists()), None)
    if found is None:
        tables = ", ".join(dict.fromkeys(get(k).main_table for k in names()))
        raise SweepError(f"{folder}: no manifest.json and none of {tables} (run the study first, or check "
                         "the folder)")
    return found


def command(args) -> int:
    path = Path(args.results)
    folder = path.parent if path.suffix in (".parquet", ".json") and not path.is_dir() else path
    if not folder.is_dir():
        raise SweepError(f"{folder}: no such folder (run the study first, or check the folder)")
    kind = folder_kind(folder)
    if args.out is not None and args.holdings is None:
        raise SweepError("--out writes holdings: give --holdings DATE or --holdings all with it")
    if args.holdings is not None:
        if args.config is None:
            raise SweepError("--holdings needs --config ID: the configuration whose holdings to print")
        if get(kind).show != SEARCH_SHOW:
            raise SweepError(f"--holdings: {folder} is a {kind} folder; holdings are shown for a grid or an "
                             "Optuna study")
    return kind_show(kind)(folder, args)
