"""A full disk and a read-only results folder: one-line errors (exit 2), and the previous
complete results stay byte-identical and readable by `sweep show`; `--force` never removes
the previous manifest before the new tables are all written."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

import sweep
import sweep.core.io as io
from sweep.cli.main import main
from sweep.results import ResultsFolder

STUDY = """
[study]
name = "kept"
data = "{data}"

[backtest]
factor = "{factor}"

[grid]
window = [5, 10]
rebalance_days = [1, 3, 5]
"""


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "panel.parquet"
    sweep.synth_panel(n_symbols=10, n_days=150, seed=8).write_parquet(path)
    return path


@pytest.fixture
def finished(tmp_path, data_file):
    """A complete results folder, and a study file now asking for something else."""
    path = tmp_path / "kept.toml"
    path.write_text(STUDY.format(data=data_file, factor="momentum"))
    out = tmp_path / "out"
    sweep.run_study(sweep.load_study(path), out=out, progress=False)
    before = _snapshot(out)
    path.write_text(STUDY.format(data=data_file, factor="volatility"))
    return path, out, before


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _unchanged_and_readable(out, before):
    after = {name: data for name, data in _snapshot(out).items() if name in before}
    assert after == before  # byte for byte, every file of the complete run
    folder = ResultsFolder(out)
    assert folder.manifest()["study"]["text"].count('factor = "momentum"') == 1
    assert folder.table("trials.parquet").height == 6
    show = subprocess.run([sys.executable, "-m", "sweep", "show", str(out)], capture_output=True, text=True)
    assert show.returncode == 0, show.stderr
    assert "Traceback" not in show.stderr


def _one_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert all(w in err[0] for w in words), err[0]


def _disk_full_on(monkeypatch, name_part):
    real = io.fsync_file

    def full(path):
        if name_part in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path)

    monkeypatch.setattr(io, "fsync_file", full)


@pytest.mark.parametrize("where", ["chunk-", "trials.parquet", "summary.json"])
def test_force_onto_a_full_disk_keeps_the_previous_results(finished, monkeypatch, capsys, where):
    """The disk fills while writing a chunk, the final table, or the summary (after the table)."""
    path, out, before = finished
    _disk_full_on(monkeypatch, where)
    code = main(["run", str(path), "--out", str(out), "--force", "--quiet"])
    assert code == 2
    _one_line(capsys, "cannot write", os.strerror(errno.ENOSPC))
    assert not list(out.glob(".*.tmp-*")) and not list(out.glob(".partial/**/.*.tmp-*"))
    monkeypatch.undo()
    _unchanged_and_readable(out, before)
    # Space again: the same command finishes, and only then replaces the results.
    assert main(["run", str(path), "--out", str(out), "--force", "--quiet"]) == 0
    assert ResultsFolder(out).manifest()["study"]["text"].count('factor = "volatility"') == 1


def _read_only(monkeypatch, folder):
    """Writes under ``folder`` refused as a read-only folder refuses them. As root, chmod is
    ignored, so the refusal is made by the system call every write starts with."""
    real = os.open
    inside = str(folder)

    def refuse(path, flags, *args, **kwargs):
        if str(path).startswith(inside) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)


def test_a_read_only_folder_is_one_line_and_keeps_the_results(finished, monkeypatch, capsys):
    path, out, before = finished
    _read_only(monkeypatch, out)
    assert main(["run", str(path), "--out", str(out), "--force", "--quiet"]) == 2
    _one_line(capsys, "cannot write", str(out), os.strerror(errno.EACCES))
    monkeypatch.undo()
    _unchanged_and_readable(out, before)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores a folder's permissions; the read-only case is covered above "
                           "by refusing the writes' system call")
def test_a_chmod_read_only_folder(finished, capsys):
    path, out, before = finished
    os.chmod(out, 0o555)
    try:
        assert main(["run", str(path), "--out", str(out), "--force", "--quiet"]) == 2
        _one_line(capsys, "cannot write", str(out))
        _unchanged_and_readable(out, before)
    finally:
        os.chmod(out, 0o755)


def test_a_complete_run_in_a_read_only_folder_needs_no_write(tmp_path, data_file, monkeypatch, capsys):
    path = tmp_path / "kept.toml"
    path.write_text(STUDY.format(data=data_file, factor="momentum"))
    out = tmp_path / "out"
    sweep.run_study(sweep.load_study(path), out=out, progress=False)
    before = _snapshot(out)
    _read_only(monkeypatch, out)
    assert main(["run", str(path), "--out", str(out)]) == 0
    assert "already complete" in capsys.readouterr().out
    monkeypatch.undo()
    assert _snapshot(out) == before
