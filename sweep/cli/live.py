"""``sweep export RESULTS... --live-config FILE.json`` and ``sweep check LIVE.json RESULTS...``:
the live trading configuration written from the studies' chosen configurations, and checked
against them (the work is ``sweep.book.live``)."""

from __future__ import annotations

import sys
from pathlib import Path

from sweep.core.errors import SweepError

HELP = {"export": "write the chosen parameters and strategy weights as a live configuration",
        "check": "compare a live configuration with the studies' chosen configurations"}


def add_parser(subparsers) -> None:
    """``sweep export RESULTS... --live-config FILE.json`` and ``sweep check LIVE.json RESULTS...``."""
    from sweep.book.live import WEIGHT_TOL
    from sweep.book.weights import WEIGHT_METHODS

    ex = subparsers.add_parser(
        "export", help=HELP["export"],
        description="Write each factor's chosen configuration (best by the study's objective) and the "
                    "strategy weights as a live trading configuration (JSON).")
    ex.add_argument("results", nargs="+", help="results folders of grid or Optuna studies (same data)")
    ex.add_argument("--live-config", required=True, metavar="FILE.json", help="the file to write")
    ex.add_argument("--weights", default="equal", choices=WEIGHT_METHODS,
                    help="strategy weights, as in `sweep portfolio` (default equal)")
    ex.add_argument("--data", help="the studies' data file, if it moved since the runs")
    ex.add_argument("--funding", help="the studies' funding table, if any")

    ck = subparsers.add_parser(
        "check", help=HELP["check"],
        description="Compare a live configuration with the studies' chosen configurations: one row per "
                    "factor and parameter; exit code 1 when anything differs, 0 when all match.")
    ck.add_argument("live", metavar="LIVE.json", help="the live configuration")
    ck.add_argument("results", nargs="+", help="results folders of grid or Optuna studies (same data)")
    ck.add_argument("--weights", choices=WEIGHT_METHODS,
                    help="how the studies' strategy weights are computed (default: the live file's "
                         "provenance.weights, else equal)")
    ck.add_argument("--weight-tol", type=float, default=WEIGHT_TOL,
                    help=f"largest |live - backtest| strategy weight that still matches (default {WEIGHT_TOL})")
    ck.add_argument("--data", help="the studies' data file, if it moved since the runs")
    ck.add_argument("--funding", help="the studies' funding table, if any")


def command(args) -> int:
    from sweep.book.live import check_live, live_config, print_report
    from sweep.book.livefile import read_live
    from sweep.core.io import write_json

    if args.command == "export":
        out = Path(args.live_config)
        if out.is_dir():
            raise SweepError(f"--live-config {out} is a folder, not a file")
        if not out.parent.exists():
            raise SweepError(f"--live-config {out}: no such folder {out.parent}")
        cfg = live_config(args.results, args.weights, args.data, args.funding)
        write_json(cfg, out)
        w = ", ".join(f"{f} {x:.3f}" for f, x in cfg["strategy_weights"].items())
        print(f"wrote {out}: {len(cfg['params'])} strategies, weights {args.weights} ({w}), "
              f"window {cfg['provenance']['evaluation_window']['start']} .. "
              f"{cfg['provenance']['evaluation_window']['end']}")
        for warning in cfg["provenance"]["warnings"]:
            print(f"warning: {warning}", file=sys.stderr)
        return 0
    live = read_live(args.live)
    report = check_live(live, args.results, args.weights, args.weight_tol, args.data, args.funding)
    print_report(report, live)
    return 1 if report.n_differences else 0
