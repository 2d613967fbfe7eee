"""ResultsFolder directly: staged tables become visible only at the commit, manifest last; a
commit cut short is finished by the next run; every table reads back, or fails in one line."""

from __future__ import annotations

import json
import os

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep
from sweep.results import SCHEMA_VERSION, ResultsFolder


def _write_run(folder: ResultsFolder, fp: str, value: int, replace=os.replace):
    with folder.claim():
        assert folder.begin(fp, "study.toml", force=True) is False
        folder.write_chunk(pl.DataFrame({"idx": [0, 1]}), 0)
        assert [p.name for p in folder.chunks()] == ["chunk-000000000.parquet"]
        folder.put("a.parquet", pl.DataFrame({"v": [value]}))
        folder.put("b.json", {"v": value})
        folder.commit({"schema_version": SCHEMA_VERSION, "fingerprint": fp})


def test_tables_appear_at_the_commit_and_read_back(tmp_path):
    folder = ResultsFolder(tmp_path / "out", ("a.parquet", "b.json"))
    assert folder.complete("one", force=False) is False
    _write_run(folder, "one", 1)
    assert sorted(p.name for p in folder.path.iterdir()) == ["a.parquet", "b.json", "manifest.json"]
    assert folder.complete("one", force=False) is True
    assert folder.manifest()["fingerprint"] == "one"
    assert_frame_equal(folder.table("a.parquet"), pl.DataFrame({"v": [1]}))
    assert folder.table("b.json") == {"v": 1}
    with pytest.raises(sweep.SweepError, match="different study"):
        folder.complete("two", force=False)


def test_unreadable_and_missing_tables_are_one_line(tmp_path):
    folder = ResultsFolder(tmp_path / "out", ("a.parquet",))
    _write_run(folder, "one", 1)
    (folder.path / "a.parquet").write_bytes(b"PAR1 cut")
    with pytest.raises(sweep.SweepError) as err:
        folder.table("a.parquet")
    assert "\n" not in str(err.value) and "a.parquet: unreadable" in str(err.value)
    with pytest.raises(sweep.SweepError, match="c.parquet: missing"):
        folder.table("c.parquet")
    (folder.path / "manifest.json").write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(sweep.SweepError, match="schema_version 1"):
        folder.manifest()


def test_a_commit_cut_short_is_finished_by_the_next_run(tmp_path, monkeypatch):
    folder = ResultsFolder(tmp_path / "out", ("a.parquet", "b.json"))
    _write_run(folder, "one", 1)
    # The second run dies (kill -9 stands for the exception) after its first table is in place.
    real = os.replace
    moved = []

    def die_after_one(src, dst):
        if os.path.dirname(dst) == str(folder.path):  # the swap, not the staging writes
            if moved:
                raise KeyboardInterrupt
            moved.append(dst)
        real(src, dst)

    monkeypatch.setattr(os, "replace", die_after_one)
    with pytest.raises(KeyboardInterrupt):
        _write_run(folder, "two", 2)
    monkeypatch.undo()
    # No manifest: the folder says it is not complete, rather than pair the old manifest with a new table.
    assert not (folder.path / "manifest.json").exists()
    assert folder.complete("two", force=False) is False
    with folder.claim():
        assert folder.begin("two", "study.toml", force=False) is True
    assert folder.manifest()["fingerprint"] == "two"
    assert folder.table("a.parquet")["v"].to_list() == [2] and folder.table("b.json") == {"v": 2}
    assert not folder.partial.exists()


def test_a_partial_run_of_another_study_needs_force(tmp_path):
    folder = ResultsFolder(tmp_path / "out", ("a.parquet",))
    with folder.claim():
        folder.begin("one", "s.toml", force=False)
        folder.write_chunk(pl.DataFrame({"idx": [0]}), 0)
    with folder.claim():
        with pytest.raises(sweep.SweepError, match="unfinished run of a different study"):
            folder.begin("two", "s.toml", force=False)
        assert folder.begin("two", "s.toml", force=True) is False
        assert folder.chunks() == []
