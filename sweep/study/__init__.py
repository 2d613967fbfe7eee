"""Study files and their kinds: ``load_study`` parses a file, the registry (``sweep.study.kind``)
knows the kinds, ``run_study`` runs a study of any of them.

Importing this package registers the built-in kinds grid, optuna, walk_forward and
monte_carlo (portfolio is registered by ``sweep.book``), by name: each kind's module (and
what it imports: Polars, Numba, Optuna) is imported when a study of that kind is first
checked or run, so ``sweep --help`` and ``sweep show`` pay for none of them.
"""

from sweep.study.kind import MAX_CONFIGS, LazyKind, ModuleKind, StudyKind, get, names, register, run_study

# The order is the one errors list. What each line declares is the module's own KIND's
# (tests/cli/test_startup.py compares them).
register(LazyKind("grid", "sweep.study.grid", ("trials.parquet", "summary.json"), {"grid"},
                  show="sweep.cli.kind_search:show", report="sweep.report.search:section"))
register(ModuleKind("optuna", "sweep.study.optuna", ("trials.parquet", "summary.json"),
                    {"space", "optuna"}, show="sweep.cli.kind_search:show",
                    report="sweep.report.search:section"))
register(LazyKind("walk_forward", "sweep.study.walk_forward",
                  ("folds.parquet", "oos_returns.parquet", "summary.json"),
                  {"walk_forward", "grid", "space", "optuna"}, counts="backtests",
                  show="sweep.cli.kind_walk_forward:show", report="sweep.report.walk_forward:section"))
register(LazyKind("monte_carlo", "sweep.study.monte_carlo", ("samples.parquet", "summary.parquet"),
                  {"monte_carlo", "grid"}, counts="backtests",
                  show="sweep.cli.kind_monte_carlo:show", report="sweep.report.monte_carlo:section"))
register(LazyKind("diagnostics", "sweep.study.diagnostics",
                  ("summary.parquet", "ic.parquet", "quantiles.parquet", "books.parquet", "autocorr.parquet"),
                  {"grid", "diagnostics"}, show="sweep.cli.kind_diagnostics:show",
                  report="sweep.report.diagnostics:section"))

_FROM_FILE = ("Study", "load_study")  # sweep.study.file: imports the engine (Numba)


def __getattr__(name: str):
    if name in _FROM_FILE:
        from sweep.study import file

        return getattr(file, name)
    raise AttributeError(f"module 'sweep.study' has no attribute {name!r}")


__all__ = ["LazyKind", "MAX_CONFIGS", "ModuleKind", "Study", "StudyKind", "get", "load_study", "names", "register",
           "run_study"]
