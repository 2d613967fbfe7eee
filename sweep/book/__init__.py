"""The book: each factor's chosen configuration combined into one portfolio (``sweep portfolio``,
``kind = "portfolio"``), and the live trading configuration exported from it and checked
against it (``sweep export``, ``sweep check``).

Importing this package registers the ``portfolio`` study kind, by name: ``sweep.book.study``
(and the engine it imports) is imported when a portfolio study is first checked or run.
"""

from sweep.study.kind import LazyKind, register

# What this line declares is sweep.book.study's KIND's (tests/cli/test_startup.py compares them).
register(LazyKind("portfolio", "sweep.book.study", ("portfolio.json", "portfolio_returns.parquet"),
                  {"portfolio"}, counts="strategies", show="sweep.cli.kind_portfolio:show",
                  report="sweep.report.portfolio:section"))


def __getattr__(name: str):
    if name == "KIND":
        from sweep.book.study import KIND

        return KIND
    raise AttributeError(f"module 'sweep.book' has no attribute {name!r}")


__all__ = ["KIND"]
