"""Study files and their kinds: ``load_study`` parses a file, the registry (``sweep.study.kind``)
knows the kinds, ``run_study`` runs a study of any of them.

Importing this package registers the built-in kinds grid, optuna, walk_forward and
monte_carlo (portfolio is registered by ``sweep.book``).
"""

from sweep.study import grid  # noqa: F401  (registers its kind; the order is the one errors list)
from sweep.study.kind import ModuleKind, StudyKind, get, names, register, run_study

# Optuna's module is imported only when an Optuna study is checked or run (Optuna is slow to import).
register(ModuleKind("optuna", "sweep.study.optuna", ("trials.parquet", "summary.json"),
                    {"space", "optuna"}, show="sweep.cli.kind_search:show",
                    report="sweep.report.search:section"))

from sweep.study import walk_forward  # noqa: E402,F401  (registers its kind)
from sweep.study import monte_carlo  # noqa: E402,F401  (registers its kind)
from sweep.study.file import MAX_CONFIGS, Study, load_study  # noqa: E402

__all__ = ["MAX_CONFIGS", "ModuleKind", "Study", "StudyKind", "get", "load_study", "names", "register", "run_study"]
