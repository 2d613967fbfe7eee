"""``sweep compare RESULTS --param P``: the values of one parameter of a grid as tranche
books, ranked, with a paired bootstrap of days (the computation is ``sweep.stats.compare``)."""

from __future__ import annotations

import json
from typing import Any

from sweep.core.errors import SweepError

HELP = {"compare": "compare the values of one parameter of a grid as tranche books"}


def add_parser(subparsers) -> None:
    """Add ``sweep compare`` to the CLI's subparsers (their ``parser_class`` raises ``SweepError``)."""
    from sweep.stats.compare import BLOCK_DAYS, N_RESAMPLES, SEED

    p = subparsers.add_parser(
        "compare", help=HELP["compare"],
        description="For each value of a grid parameter (usually rebalance_days): the tranche book over the "
                    "phases the study ran (SEMANTICS §10), its objective, the spread over the single-phase "
                    "books, its rank, and from a paired stationary bootstrap of days "
                    f"({N_RESAMPLES:,} resamples, {BLOCK_DAYS}-day mean blocks, seed {SEED}) the probability "
                    "that it is the best and the 90 % interval of its objective minus the best value's.")
    p.add_argument("results", help="results folder of a grid study (what `sweep run` wrote)")
    p.add_argument("--param", required=True, help="the parameter whose values are compared")
    p.add_argument("--value", help="the value the verdict is about (default: the best, against the runner-up)")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="hold another parameter at this value (repeatable; default: the best variant's)")
    p.add_argument("--by", help="metric to compare by (default: the study's objective)")
    p.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    p.add_argument("--data", help="the study's data file, if it moved since the run")


def command(args) -> int:
    from sweep.stats.compare import summarise, tranche_slice

    where: dict[str, str] = {}
    for item in args.where:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SweepError(f"--where {item!r}: expected KEY=VALUE (e.g. --where window=30)")
        where[key.strip()] = text.strip()
    sl = tranche_slice(args.results, args.param, where, args.by, args.data)
    out = summarise(sl, args.value)
    if args.json:
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print_comparison(sl, out)
    return 0


def print_comparison(sl: Any, out: dict[str, Any]) -> None:
    """The comparison (of the ``sweep.stats.compare.Slice`` ``sl``) as a table fitting 100
    columns, then its verdict."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from sweep.stats.compare_verdict import format_p, format_value

    metric = out["objective"]
    held = ", ".join(f"{k}={v}" for k, v in out["where"].items()) or "nothing else swept"
    table = Table(title=escape(f"{sl.folder.name}: {out['param']} by tranche {metric}; held: {held}"),
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, caption_justify="left",
                  caption=f"phase mean/min/max: over the single-phase books; P(best) and the difference from "
                          f"the best ({out['best']}, marked *) by {out['n_resamples']} resamples, "
                          f"{out['block_days']}-day blocks; ! = ruined (every phase book's NAV reached zero)")
    heads = (out["param"], "phases", "tranche", "phase\nmean", "phase\nmin", "phase\nmax", "rank", "P(best)",
             "diff\nq05", "diff\nq95")
    for col in heads:  # a header is never cut: each column is at least as wide as its widest word
        table.add_column(col, justify="left" if col == out["param"] else "right", no_wrap=True,
                         min_width=max(len(w) for w in col.split()))
    cell = lambda x: "-" if x is None else format_value(metric, x)
    for r in out["values"]:
        mark = (" *" if r["value"] == out["best"] else "") + (" !" if r["ruined"] else "")
        table.add_row(escape(str(r["value"])) + mark, str(r["n_phases"]), cell(r["objective"]), cell(r["phase_mean"]),
                      cell(r["phase_min"]), cell(r["phase_max"]), str(r["rank"]), format_p(r["p_best"]),
                      cell(r["diff_q05"]), cell(r["diff_q95"]))
    console = Console(width=100)
    console.print(table)
    console.print(out["verdict"], markup=False, highlight=False)
