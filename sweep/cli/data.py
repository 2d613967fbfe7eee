"""``sweep data synth``: write a seeded synthetic panel with funding rates."""

from __future__ import annotations

from pathlib import Path

from sweep.core.errors import SweepError

HELP = {"data": "data utilities"}


def add_parser(subparsers) -> None:
    data = subparsers.add_parser("data", help=HELP["data"], description="Data utilities.")
    dsub = data.add_subparsers(dest="data_command", required=True, parser_class=type(data))
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


def command(args) -> int:
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
