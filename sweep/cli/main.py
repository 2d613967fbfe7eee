"""The ``sweep`` command line: build the parser from the command modules, dispatch, and print
every error as one line (exit 2).

Each command is a module of this package with ``add_parser(subparsers)`` and
``command(args) -> int``; what a command does for each study kind comes from the kind
registry (``sweep.study.kind``), never from a list of kinds here.
"""

from __future__ import annotations

import argparse
import sys

from sweep.cli import audit, compare, data, live, portfolio, report, run, show, validate
from sweep.cli.common import Parser
from sweep.core.errors import SweepError
from sweep.core.version import __version__

# In `sweep --help` order; `live` adds two commands, export and check.
COMMANDS = (run, show, validate, audit, data, report, compare, portfolio, live)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="sweep", description="Parameter sweeps of cross-sectional crypto factor backtests.")
    p.add_argument("--version", action="version", version=f"sweep {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in COMMANDS:
        before = set(sub.choices)
        module.add_parser(sub)
        for name in set(sub.choices) - before:
            sub.choices[name].set_defaults(handler=module.command)
    return p



def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except SweepError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sweep: interrupted; finished chunks are kept, run the same command again to resume",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sweep show ... | head`
        return 0
