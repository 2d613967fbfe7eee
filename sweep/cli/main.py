"""The ``sweep`` command line: build the parser from the command modules, dispatch, and print
every error as one line (exit 2).

Each command is a module of this package with ``add_parser(subparsers)`` and
``command(args) -> int``; what a command does for each study kind comes from the kind
registry (``sweep.study.kind``), never from a list of kinds here.
"""

from __future__ import annotations

import argparse
import os
import sys

from sweep.cli import audit, compare, data, live, portfolio, report, run, show, validate
from sweep.cli.common import Parser
from sweep.core.errors import SweepError
from sweep.core.version import __version__

# In `sweep --help` order; `live` adds two commands, export and check. Each module names its
# commands and their help lines in HELP, and imports nothing heavy at its top.
COMMANDS = (run, show, validate, audit, data, report, compare, portfolio, live)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, the arguments of that command alone, every other one
    listed by its name and help line (what `sweep --help` prints is the same), so that
    building it imports only what that command's options name (defaults, choices)."""
    p = Parser(prog="sweep", description="Parameter sweeps of cross-sectional crypto factor backtests.")
    p.add_argument("--version", action="version", version=f"sweep {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in COMMANDS:
        if only is None or only in module.HELP:
            module.add_parser(sub)
        else:
            for name, text in module.HELP.items():
                sub.add_parser(name, help=text)
        for name in module.HELP:
            sub.choices[name].set_defaults(handler=module.command)
    return p


def _command(argv: list[str]) -> str:
    # The top-level options (--help, --version) take no value: the first word is the command.
    return next((a for a in argv if not a.startswith("-")), "")


def entry() -> None:
    """The ``sweep`` command (and ``python -m sweep``): ``main`` on ``sys.argv``, then the process
    ends here (``_exit``)."""
    _exit(main(sys.argv[1:]))


def main(argv: list[str] | None = None) -> int:
    """Run one command (``argv``, default ``sys.argv[1:]``); its exit code."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        args = build_parser(_command(argv)).parse_args(argv)
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


def _exit(code: int) -> None:
    # The interpreter's own shutdown frees every module and object one by one: 0.2-0.3 s of CPU
    # after a run (Numba, llvmlite, Polars), a quarter of a small study's wall time, for nothing
    # a finished command needs. Every file sweep writes is closed (and fsynced) by now; the
    # exit handlers (logging's, a researcher's own) still run and the streams are flushed.
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to say
            pass
    os._exit(code)
