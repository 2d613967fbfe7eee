"""The one atomic writer (durable: file and folder flushed) and the one path resolver."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import polars as pl
import pytest

import sweep
import sweep.core.io as io
from sweep.core.paths import PROJECT_ROOT, anchors, candidates, find, locate


def test_a_write_flushes_the_file_then_its_folder(tmp_path, monkeypatch):
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name a file descriptor")
    flushed = []
    real = os.fsync

    def record(fd):
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    target = tmp_path / "t.json"
    io.write_json({"a": 1}, target)
    assert json.loads(target.read_text()) == {"a": 1}
    # The temporary file (its content) before the rename, the folder (the rename) after it.
    assert len(flushed) == 2
    assert Path(flushed[0]).parent == tmp_path and Path(flushed[0]).name.startswith(".t.json.tmp-")
    assert flushed[1] == str(tmp_path)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "t.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(target)
    old = target.read_bytes()

    def full(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(io, "fsync_file", full)
    with pytest.raises(sweep.SweepError) as err:
        io.write_parquet(pl.DataFrame({"x": [2, 3]}), target)
    assert str(err.value) == f"cannot write {target}: {os.strerror(errno.ENOSPC)}"
    assert isinstance(err.value, OSError)  # code that catches OSError still does
    assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_relative_paths_are_found_in_the_documented_order(tmp_path, monkeypatch):
    project = tmp_path / "project"
    studies = project / "studies"
    results = project / "results" / "one"
    for d in (studies, results, tmp_path / "cwd"):
        d.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "cwd")
    study = studies / "s.toml"
    # The study's parent and the results' grandparent are one folder here: looked at once.
    assert anchors(study, results) == [Path("."), studies, project, project / "results", PROJECT_ROOT]
    rel = Path("data") / "x.parquet"
    assert candidates(rel, study, results) == [rel, studies / rel, project / rel, project / "results" / rel,
                                               PROJECT_ROOT / rel]
    assert find(rel, study, results) is None and locate(rel, study, results) == rel
    # Each anchor wins over the ones after it.
    for where in (project / "results", project, studies, Path(".")):
        (where / "data").mkdir(exist_ok=True)
        (where / rel).write_bytes(b"")
        assert locate(rel, study, results) == (rel if where == Path(".") else where / rel)
    # A folder is not a file, and an absolute path is taken as it is.
    assert locate("data", study, want="file") == Path("data")
    assert locate(tmp_path / "nowhere", study) == tmp_path / "nowhere"


def test_a_study_reads_its_data_beside_it_from_anywhere(tmp_path, monkeypatch):
    project = tmp_path / "p"
    (project / "studies").mkdir(parents=True)
    (project / "data").mkdir()
    sweep.synth_panel(n_symbols=6, n_days=80, seed=1).write_parquet(project / "data" / "d.parquet")
    path = project / "studies" / "s.toml"
    path.write_text('[study]\ndata = "data/d.parquet"\n[backtest]\nfactor = "momentum"\nwindow = 5\n')
    monkeypatch.chdir(tmp_path)
    from sweep.run.plan import data_path

    assert data_path(sweep.load_study(path), None) == project / "data" / "d.parquet"
