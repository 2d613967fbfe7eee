"""The command line learns the study kinds from the registry: a kind registered by a module
of one's own is run, shown, validated and reported on by its own sections, with no list of
kinds to edit; and ``sweep run --max-configs`` bounds a grid before anything is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl

from test_cli_show import grid_study

ROOT = Path(__file__).resolve().parents[2]

# A throwaway kind: its table is the sum and count of [toy] values; its show prints the
# mean; sweep run ends with the largest value. Nothing of it is known to sweep/ beforehand.
PLUGIN = '''
import datetime as dt
import json
from pathlib import Path

from sweep.core.errors import SweepError
from sweep.run.summary import RunSummary
from sweep.study.kind import StudyKind, register


class Toy(StudyKind):
    name = "toy_kind"
    tables = ("toy.json",)
    reads = frozenset({"toy"})
    counts = "toys"
    show = "toy_plugin:show"

    def validate(self, study):
        values = study.raw.get("toy", {}).get("values")
        if not isinstance(values, list) or not values:
            raise SweepError(f"{study.path}: [toy] values must be a non-empty list")

    def describe(self, study, *, data=None, funding=None):
        return [f"toys        {len(study.raw['toy']['values'])}"]

    def run(self, study, *, out=None, **options):
        values = study.raw["toy"]["values"]
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "manifest.json").write_text(json.dumps({"schema_version": 2, "study": {"kind": self.name}}))
        (out / "toy.json").write_text(json.dumps({"sum": sum(values), "n": len(values), "max": max(values)}))
        day = dt.date(2024, 1, 1)
        return RunSummary(out, len(values), len(values), 0, 1.0, 1.0, day, day)


def show(folder, args):
    doc = json.loads((Path(folder) / "toy.json").read_text())
    print(f"toy mean {doc['sum'] / doc['n']:.4f}")
    return 0


def ending(study, folder, data):
    doc = json.loads((Path(folder) / "toy.json").read_text())
    return [f"largest toy {doc['max']}"], [f"toy-next {Path(folder).name}"]


register(Toy())
'''


def sweep_with_plugin(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    """``sweep ARGV`` in a fresh interpreter that first imports the plugin (so the registry
    of this test process is left as it was)."""
    (tmp_path / "toy_plugin.py").write_text(PLUGIN)
    code = "import sys, toy_plugin; from sweep.cli.main import main; sys.exit(main(sys.argv[1:]))"
    env_path = f"{tmp_path}:{ROOT}"
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "COLUMNS": "100"})


def test_a_registered_kind_runs_shows_and_validates_through_its_own_sections(tmp_path):
    values = [3, 11, 4, 7]
    study = tmp_path / "toy.toml"
    study.write_text(f'[study]\nname = "toy"\nkind = "toy_kind"\n\n[toy]\nvalues = {values}\n')
    out = tmp_path / "out"

    r = sweep_with_plugin(tmp_path, "run", str(study), "--out", str(out))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # The closing line counts in the kind's words and points at its main table.
    assert lines[0].startswith(f"{len(values)} toys in ") and lines[0].endswith(f"-> {out}/toy.json")
    assert f"largest toy {max(values)}" in lines  # the kind's own ending
    assert lines[-4:] == ["Next:", f"  sweep show {out}", "  toy-next out", f"  sweep report {out}"]

    r = sweep_with_plugin(tmp_path, "show", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"toy mean {sum(values) / len(values):.4f}"

    r = sweep_with_plugin(tmp_path, "validate", str(study))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"{study}: valid toy_kind study 'toy'", f"  toys        {len(values)}"]

    # The kind has no report section: one line, exit 2, no traceback.
    r = sweep_with_plugin(tmp_path, "report", str(out))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "toy_kind" in r.stderr


def test_without_the_plugin_the_kind_is_unknown(tmp_path):
    study = tmp_path / "toy.toml"
    study.write_text('[study]\nname = "toy"\nkind = "toy_kind"\n')
    r = subprocess.run([sys.executable, "-m", "sweep", "run", str(study)], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "toy_kind" in r.stderr and "grid" in r.stderr  # the known kinds are listed from the registry


def test_max_configs_bounds_a_grid_before_anything_is_written(tmp_path):
    from sweep.cli.main import main

    study = grid_study(tmp_path, "bounded", grid={"rebalance_days": [1, 2], "window": [5, 10]})  # 2 x 2 = 4
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "sweep", "run", study, "--out", str(out), "--max-configs", "3"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert "4 configurations, more than the limit of 3" in r.stderr and "--max-configs 4" in r.stderr
    assert not out.exists()
    assert main(["run", study, "--out", str(out), "--max-configs", "4", "--quiet", "--jobs", "1"]) == 0
    trials = pl.read_parquet(out / "trials.parquet")
    assert sorted(zip(trials["rebalance_days"], trials["window"])) == [(1, 5), (1, 10), (2, 5), (2, 10)]
    assert json.loads((out / "manifest.json").read_text())["configurations"] == 4
    assert main(["run", study, "--out", str(tmp_path / "o2"), "--max-configs", "0"]) == 2
