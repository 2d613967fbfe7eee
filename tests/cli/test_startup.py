"""What a command imports: `sweep --help` needs neither Numba nor Polars, a grid's `sweep run`
needs no Optuna, matplotlib, SciPy or pandas (issue 13, start-up). Each check runs the command
in a fresh interpreter and reads its ``sys.modules`` at the end; no timing is asserted (the
figures are the benchmark's)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Run sweep's main() with the arguments given, then print the top-level packages loaded.
CHILD = textwrap.dedent("""
    import json, sys
    from sweep.cli.main import main
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # --help exits from argparse
        code = exc.code
    print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules}),
                      "sweep": sorted(m for m in sys.modules if m.startswith("sweep."))}))
""")


def _child(*args: str, cwd: Path = ROOT, code: str = CHILD) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_imports_neither_numba_nor_polars():
    got = _child("--help")
    assert got["code"] == 0
    assert {"numba", "polars", "numpy", "pyarrow", "rich", "optuna", "matplotlib"} & set(got["modules"]) == set()


def test_help_lists_every_command_as_the_full_parser_does():
    from sweep.cli.main import build_parser

    full = build_parser().format_help()
    for only in ("", "run", "show", "check"):  # no command, and one command built in full
        assert build_parser(only).format_help() == full


@pytest.mark.parametrize("name", ["run", "show", "validate", "audit", "data", "report", "compare", "portfolio",
                                  "export", "check"])
def test_a_command_parser_built_alone_is_the_full_one(name):
    from sweep.cli.main import build_parser

    def sub(parser):
        return next(a for a in parser._actions if a.dest == "command").choices[name]

    assert sub(build_parser(name)).format_help() == sub(build_parser()).format_help()


def test_import_sweep_loads_no_engine():
    got = _child(code="import json, sys, sweep\n"
                      "print(json.dumps({'modules': sorted({m.split('.')[0] for m in sys.modules})}))")
    assert {"numba", "polars", "numpy"} & set(got["modules"]) == set()


def test_public_names_resolve_to_their_modules():
    import sweep
    from sweep.data.panel import load_panel
    from sweep.engine.params import PARAMS
    from sweep.study.file import load_study

    assert sweep.load_study is load_study and sweep.PARAMETERS is PARAMS and sweep.load_panel is load_panel
    assert all(getattr(sweep, name) is not None for name in sweep.__all__)
    with pytest.raises(AttributeError):
        sweep.no_such_name  # noqa: B018


def test_grid_run_imports_no_optuna_matplotlib_scipy_or_pandas(tmp_path):
    import sweep

    sweep.synth_panel(n_symbols=8, n_days=120, seed=3).write_parquet(tmp_path / "panel.parquet")
    (tmp_path / "study.toml").write_text(
        '[study]\nname = "tiny"\ndata = "panel.parquet"\n[backtest]\nfactor = "momentum"\n'
        '[grid]\nrebalance_days = [1, 5]\nwindow = [10]\n')
    got = _child("run", str(tmp_path / "study.toml"), "--out", str(tmp_path / "out"), "--quiet", cwd=tmp_path)
    assert got["code"] == 0
    assert (tmp_path / "out" / "summary.json").exists() and (tmp_path / "out" / "trials.parquet").exists()
    assert {"optuna", "matplotlib", "scipy", "pandas", "rich"} & set(got["modules"]) == set()
    # Nor the other kinds' modules, the report or the book.
    assert not [m for m in got["sweep"] if m.startswith(("sweep.study.optuna", "sweep.study.monte_carlo",
                                                         "sweep.study.walk_forward", "sweep.report.page",
                                                         "sweep.book."))]


def test_numba_still_does_linear_algebra_after_a_kernel_ran():
    # SciPy is hidden from Numba's import only (kernels/__init__.py): np.dot compiles later.
    got = _child(code=textwrap.dedent("""
        import json, sys
        import numpy as np
        from kernels.returns import simple_returns
        from numba import njit
        r = simple_returns(np.array([[1.0], [2.0]]))
        hidden = "scipy" not in sys.modules
        dot = njit(lambda a, b: np.dot(a, b))(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
        print(json.dumps({"r": r[1, 0], "hidden": hidden, "dot": dot}))
    """))
    assert got == {"r": 1.0, "hidden": True, "dot": 14.0}


def test_kinds_registered_by_name_declare_what_their_modules_do():
    # In a fresh interpreter: in this one another test may have imported the kinds' modules.
    got = _child(code=textwrap.dedent("""
        import importlib, json
        import sweep
        from sweep.study.kind import LazyKind, get, names
        attrs = lambda k: [k.name, list(k.tables), sorted(k.reads), k.counts, k.show, k.report]
        order = names()
        lazy = {n: get(n) for n in order if isinstance(get(n), LazyKind)}
        out = {n: [attrs(k), attrs(importlib.import_module(k.module).KIND)] for n, k in lazy.items()}
        replaced = {n: not isinstance(get(n), LazyKind) for n in lazy}
        print(json.dumps({"kinds": out, "replaced": replaced, "same_order": names() == order}))
    """))
    assert set(got["kinds"]) == {"grid", "walk_forward", "monte_carlo", "diagnostics", "portfolio"}
    for name, (declared, real) in got["kinds"].items():
        assert declared == real, name
    assert all(got["replaced"].values()) and got["same_order"]
