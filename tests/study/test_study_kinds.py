"""The study-kind registry: the file parser, run_study and the CLI learn the kinds from it."""

from __future__ import annotations

import importlib

import polars as pl
import pytest

import sweep
from sweep.results import ResultsFolder
from sweep.run.summary import RunSummary
from sweep.study import kind as kinds


class Echo(kinds.StudyKind):
    """A throwaway kind: reads an [echo] table, writes it back as a one-row table."""

    name = "echo_test"
    tables = ("echo.parquet",)
    reads = frozenset({"echo"})

    def validate(self, study):
        if not isinstance(study.tables.get("echo", {}).get("value"), int):
            raise sweep.SweepError(f"{study.path}: [echo] value must be an integer")

    def describe(self, study, *, data=None, funding=None):
        return [f"echo        {study.tables['echo']['value']}"]

    def run(self, study, *, out=None, **_):
        folder = ResultsFolder(out, self.tables)
        fp = study.fingerprint()
        if not folder.complete(fp, False):
            with folder.claim():
                folder.begin(fp, study.path, False)
                folder.put("echo.parquet", pl.DataFrame({"value": [study.tables["echo"]["value"] * 2]}))
                folder.commit({"schema_version": sweep.results.SCHEMA_VERSION, "fingerprint": fp})
        return RunSummary(folder.path, 1, 1, 0, 0.0, 0.0, None, None)


@pytest.fixture
def echo():
    kinds.register(Echo())
    yield
    kinds.unregister("echo_test")


def test_built_in_kinds_are_registered_in_order():
    assert kinds.names()[:6] == ("grid", "optuna", "walk_forward", "monte_carlo", "diagnostics", "portfolio")
    grid = kinds.get("grid")
    assert grid.main_table == "trials.parquet" and grid.tables[0] == grid.main_table
    assert kinds.get("walk_forward").main_table == "folds.parquet"
    assert kinds.get("monte_carlo").main_table == "samples.parquet"
    for name in kinds.names():
        k = kinds.get(name)
        for attr in ("show", "report"):
            module, _, function = getattr(k, attr).partition(":")
            assert module and function, (name, attr)


def test_show_and_report_strings_resolve_to_functions():
    for name in kinds.names():
        k = kinds.get(name)
        for attr in ("show", "report"):
            module, _, function = getattr(k, attr).partition(":")
            assert callable(getattr(importlib.import_module(module), function)), (name, attr, getattr(k, attr))


def test_unknown_kind_is_one_line_listing_the_registered_kinds(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[study]\nkind = "gird"\n')
    with pytest.raises(sweep.SweepError) as err:
        sweep.load_study(path)
    msg = str(err.value)
    assert "\n" not in msg and "[study] kind = 'gird' is not one of grid, optuna" in msg
    assert "did you mean 'grid'" in msg


def test_a_kind_registered_from_a_test_module_loads_validates_and_runs(tmp_path, echo):
    path = tmp_path / "e.toml"
    path.write_text('[study]\nname = "e"\nkind = "echo_test"\n[echo]\nvalue = 21\n')
    study = sweep.load_study(path)
    assert study.tables == {"echo": {"value": 21}}
    assert kinds.get(study.kind).describe(study) == ["echo        21"]
    sweep.run_study(study, out=tmp_path / "out", progress=False)
    assert pl.read_parquet(tmp_path / "out" / "echo.parquet")["value"].to_list() == [42]
    # Its table is refused in another kind's study, and another kind's table in its study.
    path.write_text('[study]\nkind = "echo_test"\n[echo]\nvalue = 1\n[grid]\nwindow = [5]\n')
    with pytest.raises(sweep.SweepError, match=r"\[grid\] does not apply to a study of kind 'echo_test'"):
        sweep.load_study(path)
    path.write_text('[study]\nkind = "echo_test"\n[echo]\nvalue = "x"\n')
    with pytest.raises(sweep.SweepError, match=r"\[echo\] value must be an integer"):
        sweep.load_study(path)


def test_a_table_no_kind_reads_is_unknown(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[study]\n[echo]\nvalue = 1\n')
    with pytest.raises(sweep.SweepError, match=r"unknown table \[echo\]"):
        sweep.load_study(path)
