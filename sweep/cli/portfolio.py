"""``sweep portfolio RESULTS...``: combine each factor's chosen configuration into one book and
print its summary (the work is ``sweep.book``)."""

from __future__ import annotations

HELP = {"portfolio": "combine each factor's best configuration into one book"}


def add_parser(subparsers) -> None:
    """``sweep portfolio RESULTS... [--weights M] [--walk-forward DAYS] [--out DIR]``."""
    from sweep.book.combine import DEFAULT_OUT
    from sweep.book.weights import WEIGHT_METHODS

    p = subparsers.add_parser(
        "portfolio", help=HELP["portfolio"],
        description="Combine the chosen (best by the study's objective) configuration of each factor "
                    "into one book, rerun over the common evaluation window; write portfolio.json and "
                    "portfolio_returns.parquet.")
    p.add_argument("results", nargs="+", help="results folders of grid or Optuna studies (same data)")
    p.add_argument("--weights", default="equal", choices=WEIGHT_METHODS,
                   help="strategy weights: equal, inverse_vol (1 / daily std) or sharpe (positive Sharpe)")
    p.add_argument("--walk-forward", type=int, metavar="DAYS",
                   help="re-estimate the weights every DAYS days from the returns before each period")
    p.add_argument("--out", help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--data", help="the studies' data file, if it moved since the runs")
    p.add_argument("--funding", help="the studies' funding table, if any")
    p.add_argument("--quiet", action="store_true", help="write the files, print nothing")


def command(args) -> int:
    from sweep.book.combine import DEFAULT_OUT, build_portfolio, write_portfolio
    from sweep.book.summary import print_portfolio

    pf = build_portfolio(args.results, args.weights, args.walk_forward, args.data, args.funding)
    out = write_portfolio(pf, args.out or DEFAULT_OUT)
    if not getattr(args, "quiet", False):
        print_portfolio(pf.to_json(), out)
    return 0
