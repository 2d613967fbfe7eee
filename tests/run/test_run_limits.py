"""A grid too large for memory: refused before it is built unless --max-configs raises the
limit; rows are written chunk by chunk and the table streamed from the chunks equals the one
built at once; the pool holds a bounded number of chunks whatever their count."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep
from sweep.engine.workspace import Evaluator
from sweep.metrics import names as metric_names
from sweep.run.plan import plan
from sweep.run.pool import run_chunks
from sweep.study import MAX_CONFIGS, Study
import sweep.study.grid as grid_module
from sweep.study.grid import chunk_size
from sweep.study.tables import trials_table

HUGE = """
[study]
name = "huge"
data = "{data}"

[backtest]
factor = "momentum"

[grid]
window = {windows}
rebalance_days = {days}
top_n = {tops}
"""

SMALL = """
[study]
name = "streamed"
data = "{data}"

[backtest]
fee_bps = 5

[grid]
factor = ["volatility", "momentum", "days_from_high"]
window = [5, 10, 20]
rebalance_days = [1, 3, 5, 7, 9]
weighting = ["equal", "risk_parity"]
"""


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "panel.parquet"
    sweep.synth_panel(n_symbols=12, n_days=160, seed=11).write_parquet(path)
    return path


def _huge(tmp_path, data_file):
    # 1000 x 1000 x 1000 = 10^9 configurations, each axis valid on its own.
    path = tmp_path / "huge.toml"
    path.write_text(HUGE.format(data=data_file, windows=list(range(2, 1002)), days=list(range(1, 1001)),
                                tops=list(range(1, 1001))))
    return path


def test_a_billion_configurations_are_refused_without_building_one(tmp_path, data_file, monkeypatch):
    study = sweep.load_study(_huge(tmp_path, data_file))
    assert study.n_configs == 1000 ** 3

    def expanded(self):
        raise AssertionError("the grid was enumerated")

    monkeypatch.setattr(Study, "raw_configs", expanded)
    with pytest.raises(sweep.SweepError) as err:
        sweep.run_study(study, out=tmp_path / "out", progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert "1,000,000,000 configurations" in message and f"{MAX_CONFIGS:,}" in message
    assert "--max-configs" in message
    assert not (tmp_path / "out").exists()


def test_the_command_line_refuses_it_in_one_line_with_exit_2(tmp_path, data_file):
    path = _huge(tmp_path, data_file)
    # The timeout only keeps a regression (building 10^9 configurations) from hanging the suite.
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "1,000,000,000 configurations" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_max_configs_moves_the_limit_both_ways(tmp_path, data_file):
    path = tmp_path / "s.toml"
    path.write_text(SMALL.format(data=data_file))
    study = sweep.load_study(path)
    assert study.n_configs == 3 * 3 * 5 * 2
    with pytest.raises(sweep.SweepError, match="90 configurations, more than the limit of 89"):
        sweep.run_study(study, out=tmp_path / "a", progress=False, max_configs=89)
    summary = sweep.run_study(study, out=tmp_path / "b", progress=False, max_configs=90)
    assert summary.n_configs == 90


@pytest.mark.parametrize("grid", [
    {"rebalance_days": [1, 3, 4], "phase": "all", "window": [5, 10]},
    {"phase": "all", "window": [5, 10, 20]},
    {"rebalance_days": [2, 7]},
])
def test_the_count_without_enumeration_matches_the_enumeration(tmp_path, data_file, grid):
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in grid.items()]
    fixed = "" if "rebalance_days" in grid else "rebalance_days = 6\n"
    path = tmp_path / "c.toml"
    path.write_text(f'[study]\ndata = "{data_file}"\n[backtest]\nfactor = "momentum"\n{fixed}[grid]\n'
                    + "\n".join(lines) + "\n")
    study = sweep.load_study(path)
    assert study.n_configs == sum(1 for _ in study.raw_configs())


def test_the_streamed_table_equals_the_table_built_at_once(tmp_path, data_file, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text(SMALL.format(data=data_file))
    study = sweep.load_study(path)
    # Small chunks, so that several chunk files are streamed into the table.
    monkeypatch.setattr(grid_module, "chunk_size", lambda n: max(1, n // 5))
    monkeypatch.setattr(grid_module, "ROW_GROUP", 20)  # row groups of two chunks, then the rest
    assert grid_module.chunk_size(study.n_configs) < study.n_configs
    assert chunk_size(10**6) <= 2048 and chunk_size(10) >= 1  # the real rule: bounded chunks
    sweep.run_study(study, out=tmp_path / "out", jobs=3, progress=False, save_returns=True)
    streamed = pl.read_parquet(tmp_path / "out" / "trials.parquet")
    # Built another way: every configuration in one call, the table assembled in memory.
    p = plan(study)
    metrics, rets = Evaluator(p.panel).run(p.configs, p.s, p.e, returns=True)
    names = metric_names()
    at_once = trials_table(study, p.configs, pl.DataFrame({m: metrics[:, j] for j, m in enumerate(names)}))
    assert_frame_equal(streamed, at_once)
    returns = pl.read_parquet(tmp_path / "out" / "returns.parquet")
    assert returns.height == len(p.configs) * (p.e - p.s + 1)
    np.testing.assert_array_equal(returns["ret"].to_numpy().reshape(len(p.configs), -1), rets)
    assert returns["config_id"].unique(maintain_order=True).to_list() == at_once["config_id"].to_list()
    assert pq_row_groups(tmp_path / "out" / "trials.parquet") > 1


def pq_row_groups(path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).num_row_groups


def test_the_pool_draws_chunks_lazily_and_holds_a_bounded_number():
    """Memory stays flat: a million chunks, but never more than 2 x jobs of them drawn and
    unfinished at once, and each result is dropped once finished."""
    jobs = 3
    drawn = 0
    finished = 0
    most = 0
    lock = threading.Lock()

    def chunks():
        nonlocal drawn, most
        for k in range(10 ** 6):
            with lock:
                drawn += 1
                most = max(most, drawn - finished)
            yield k

    def finish(k, result):
        nonlocal finished
        assert result == k * k
        finished += 1
        return 1

    seen = []
    run_chunks(itertools.islice(chunks(), 500), lambda k: k * k, finish, jobs=jobs, total=500,
               progress=False, on_chunk=seen.append)
    assert finished == 500 and seen == list(range(1, 501))
    assert most <= 2 * jobs
