"""Monte Carlo studies: the bootstrap's resampling, every method against one-off
backtests, the summary against numpy, determinism across --jobs, and errors."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sweep
from sweep.study import monte_carlo as mc
from sweep.results import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2]

STUDY = """
[study]
name = "mc"
kind = "monte_carlo"
objective = "sharpe"
data = "{data}"

[backtest]
factor = "volatility"
fee_bps = 10
exclude = ["S003"]

[grid]
rebalance_days = [1, 2, 3]
window = [5, 10]

[monte_carlo]
{table}
"""
N_CONFIGS = 6
TABLES = {
    "block_bootstrap": 'method = "block_bootstrap"\nn_samples = 6\nblock_days = 15\nseed = 3',
    "phase": 'method = "phase"',
    "subperiod": 'method = "subperiod"\nn_samples = 7\nsubperiod_days = 40\nseed = 1',
}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mcdata") / "panel.parquet"
    sweep.synth_panel(n_symbols=12, n_days=160, seed=5).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def panel(data_file):
    return sweep.load_panel(data_file)


def _study(tmp_path: Path, data, table: str, name: str = "mc.toml") -> Path:
    path = tmp_path / name
    path.write_text(STUDY.format(data=data, table=table))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_file):
    """Each method run once with jobs=1 and once with jobs=2."""
    base = tmp_path_factory.mktemp("mcruns")
    out = {}
    for method, table in TABLES.items():
        study = sweep.load_study(_study(base, data_file, table, f"{method}.toml"))
        for jobs in (1, 2):
            folder = base / f"{method}-{jobs}"
            summary = sweep.run_study(study, out=folder, jobs=jobs, progress=False)
            out[method, jobs] = (folder, summary)
    return out


def _params(row: dict) -> dict:
    return {"factor": row["factor"], "rebalance_days": row["rebalance_days"], "window": row["window"],
            "fee_bps": row["fee_bps"], "exclude": row["exclude"]}


def _assert_metrics(row: dict, metrics: dict, what: str) -> None:
    for m in sweep.METRICS:
        assert metrics[m] == pytest.approx(row[m], rel=1e-12, abs=1e-15, nan_ok=True), f"{what}: {m}"


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("method", list(TABLES))
def test_jobs_do_not_change_results(runs, method):
    (one, s1), (two, s2) = runs[method, 1], runs[method, 2]
    assert (one / "samples.parquet").read_bytes() == (two / "samples.parquet").read_bytes()
    assert (one / "summary.parquet").read_bytes() == (two / "summary.parquet").read_bytes()
    assert s1.n_configs == s2.n_configs == pl.read_parquet(one / "samples.parquet").height
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["method"] == method and manifest["configurations"] == N_CONFIGS
    assert manifest["backtests"] == s2.n_configs
    assert manifest["study"]["kind"] == "monte_carlo"


# --------------------------------------------------------------------------- block bootstrap


def _reference_close(close: np.ndarray, days: np.ndarray) -> np.ndarray:
    """The rebuild rule of kernels/bootstrap.py written again, a symbol at a time."""
    out = np.full((len(days), close.shape[1]), np.nan)
    for i in range(close.shape[1]):
        col = close[:, i]
        priced = np.flatnonzero(np.isfinite(col))
        if not len(priced):
            continue
        first, last = col[priced[0]], None
        for t, j in enumerate(days):
            if j > 0 and np.isfinite(col[j]) and np.isfinite(col[j - 1]):
                last = (first if last is None else last) * (col[j] / col[j - 1])
                out[t, i] = last
            elif last is None and np.isfinite(col[j]):
                last = out[t, i] = first
    return out


def test_bootstrap_panel_keeps_the_cross_section():
    src = sweep.synth(n_symbols=15, n_days=400, seed=11)  # gaps, listings, delistings, funding
    days = mc.bootstrap_days(400, 7, mc.sample_rng(0, 4))
    assert days[0] == 0 and days[1:].min() >= 1 and days.max() <= 399
    sample = mc.resample_panel(src, days)
    np.testing.assert_array_equal(sample.dates, src.dates)
    # Closes follow the documented rule, computed here independently.
    ref = _reference_close(src.close, days)
    np.testing.assert_array_equal(np.isnan(sample.close), np.isnan(ref))
    np.testing.assert_allclose(sample.close, ref, rtol=1e-12)
    # A symbol missing on the source day is missing on the sample day.
    assert not (np.isfinite(sample.close) & ~np.isfinite(src.close[days])).any()
    # Each sample day's returns, across every symbol, come from one source day: the
    # days[t] the bootstrap drew (found from the returns alone, not from days).
    r_new, r_src = sample.simple_returns, src.simple_returns
    matched = 0
    for t in range(1, 400):
        have = np.flatnonzero(np.isfinite(r_new[t]))
        if not len(have):
            continue
        with np.errstate(invalid="ignore"):
            same = np.all(np.abs(r_src[:, have] - r_new[t, have]) <= 1e-12, axis=1)
        assert np.flatnonzero(same).tolist() == [days[t]], t
        matched += len(have) > 1
    assert matched > 300
    # The other fields take the same source days, unchanged.
    np.testing.assert_array_equal(sample.fields["market_cap"], src.fields["market_cap"][days])
    np.testing.assert_array_equal(sample.fields["funding_rate"], src.fields["funding_rate"][days])
    assert (days[1:] != np.arange(1, 400)).mean() > 0.9  # really resampled


def test_one_block_is_a_rotation():
    n = 1000
    shifts = set()
    for k in range(20):
        days = mc.bootstrap_days(n, 10**9, mc.sample_rng(0, k))
        shift = days[1] - 1
        np.testing.assert_array_equal(days[1:], 1 + (np.arange(n - 1) + shift) % (n - 1))
        shifts.add(shift)
    assert len(shifts) >= 18  # the block starts at a random day


def _block_count(days: np.ndarray) -> int:
    # A new block wherever a day is not the successor (wrapping) of the previous one.
    pool = len(days) - 1
    nxt = days[1:-1] % pool + 1
    return 1 + int((days[2:] != nxt).sum())


@pytest.mark.parametrize("block_days", [1, 10, 20])
def test_mean_block_length_is_block_days(block_days):
    n = 2001
    draws = [mc.bootstrap_days(n, block_days, mc.sample_rng(9, k)) for k in range(100)]
    blocks = sum(_block_count(days) for days in draws)
    # Every sample day is a uniform draw from the pool (days 1 .. 2000): tenths of
    # the pool are drawn equally often.
    tenths = np.bincount((np.concatenate([d[1:] for d in draws]) - 1) // 200, minlength=10)
    assert np.abs(tenths / tenths.mean() - 1).max() < 0.15
    mean_length = 100 * (n - 1) / blocks
    # A new block starts with probability 1/b on every day but the first (always
    # new); one in 2000 lands on the successor day and is not seen.
    expected = (n - 1) / (1 + (n - 2) / block_days * (1 - 1 / (n - 1)))
    assert abs(mean_length - expected) / expected < 0.04
    assert abs(mean_length - block_days) / block_days < 0.05


def test_bootstrap_rows_equal_backtests_on_the_rebuilt_panel(runs, panel):
    folder, _ = runs["block_bootstrap", 2]
    samples = pl.read_parquet(folder / "samples.parquet")
    manifest = json.loads((folder / "manifest.json").read_text())
    start, end = manifest["evaluation_window"]["start"], manifest["evaluation_window"]["end"]
    e = panel.day_index(end, "end")
    assert samples.height == 6 * N_CONFIGS
    assert samples["sample"].to_list() == sorted(samples["sample"].to_list())
    assert (samples["schema_version"] == SCHEMA_VERSION).all()
    for k in (0, 5):
        rebuilt = mc.resample_panel(panel, mc.bootstrap_days(e + 1, 15, mc.sample_rng(3, k)))
        for row in samples.filter(pl.col("sample") == k).iter_rows(named=True):
            res = sweep.backtest(rebuilt, start=start, end=end, **_params(row))
            assert res.config_id == row["config_id"]
            _assert_metrics(row, res.metrics, f"sample {k}")
    # Samples differ from one another and from the data itself.
    sharpe = samples.filter(pl.col("config_id") == samples["config_id"][0])["sharpe"].to_numpy()
    assert len(np.unique(sharpe)) == 6
    original = sweep.backtest(panel, start=start, **_params(samples.row(0, named=True)))
    assert original.metrics["sharpe"] not in sharpe


# --------------------------------------------------------------------------- phase, subperiod


def test_phase_rows_equal_backtests_at_each_phase(runs, panel):
    folder, summary = runs["phase", 2]
    samples = pl.read_parquet(folder / "samples.parquet")
    start = json.loads((folder / "manifest.json").read_text())["evaluation_window"]["start"]
    assert samples.height == summary.n_configs == 2 * (1 + 2 + 3)
    assert (samples["phase"] == samples["sample"]).all()
    for cid, rows in samples.group_by("config_id"):
        k = rows["rebalance_days"][0]
        assert sorted(rows["phase"].to_list()) == list(range(k))
    for row in samples.iter_rows(named=True):
        res = sweep.backtest(panel, start=start, phase=row["phase"], **_params(row))
        _assert_metrics(row, res.metrics, f"phase {row['phase']}")
        if row["phase"] == 0:
            assert res.config_id == row["config_id"]
    # The phase moves the calendar: a 3-day schedule has different results at each phase.
    k3 = samples.filter((pl.col("rebalance_days") == 3) & (pl.col("window") == 5))
    assert k3["sharpe"].n_unique() == 3


def test_subperiod_rows_equal_fresh_backtests_over_their_windows(runs, panel):
    folder, _ = runs["subperiod", 2]
    samples = pl.read_parquet(folder / "samples.parquet")
    window = json.loads((folder / "manifest.json").read_text())["evaluation_window"]
    lo, hi = np.datetime64(window["start"]), np.datetime64(window["end"])
    assert samples.height == 7 * N_CONFIGS
    starts = samples["start"].to_numpy().astype("datetime64[D]")
    ends = samples["end"].to_numpy().astype("datetime64[D]")
    assert ((ends - starts).astype(int) + 1 == 40).all()
    assert (starts >= lo).all() and (ends <= hi).all()
    assert len(np.unique(starts)) > 3  # the windows are drawn, not fixed
    for row in samples.iter_rows(named=True):
        res = sweep.backtest(panel, start=row["start"], end=row["end"], **_params(row))
        assert res.returns.height == 40
        _assert_metrics(row, res.metrics, f"subperiod {row['sample']}")


# --------------------------------------------------------------------------- summary


def _numpy_summary(samples: pl.DataFrame, objective: str, method: str) -> dict[str, dict]:
    ids = list(dict.fromkeys(samples["config_id"].to_list()))
    out = {}
    for cid in ids:
        v = samples.filter(pl.col("config_id") == cid)[objective].to_numpy()
        f = v[~np.isnan(v)]
        out[cid] = {"mean": f.mean(), "median": np.median(f), "q05": np.percentile(f, 5),
                    "q95": np.percentile(f, 95), "p_positive": np.sum(v > 0) / len(v),
                    "n_samples": len(v), "p_best": 0.0}
    if method == "phase":
        # Brute force: every combination of one phase per configuration, equally likely.
        values = [samples.filter(pl.col("config_id") == cid)[objective].to_list() for cid in ids]
        combos = list(itertools.product(*values))
        for combo in combos:
            v = np.array(combo)
            if np.isnan(v).all():
                continue
            winners = np.flatnonzero(v == np.nanmax(v))
            for w in winners:
                out[ids[w]]["p_best"] += 1 / len(winners) / len(combos)
    else:
        n = samples["sample"].n_unique()
        for _, rows in samples.group_by("sample"):
            v = rows[objective].to_numpy()
            if np.isnan(v).all():
                continue
            winners = rows["config_id"].to_numpy()[v == np.nanmax(v)]
            for w in winners:
                out[w]["p_best"] += 1 / len(winners) / n
    return out


@pytest.mark.parametrize("method", list(TABLES))
def test_summary_matches_numpy(runs, method):
    folder, _ = runs[method, 1]
    samples = pl.read_parquet(folder / "samples.parquet")
    summary = pl.read_parquet(folder / "summary.parquet")
    expected = _numpy_summary(samples, "sharpe", method)
    assert summary.height == N_CONFIGS and summary["config_id"].to_list() == list(expected)
    assert (summary["objective"] == "sharpe").all()
    for row in summary.iter_rows(named=True):
        for key, want in expected[row["config_id"]].items():
            assert row[key] == pytest.approx(want, rel=1e-12, abs=1e-15), (method, key)
    assert summary["p_best"].sum() == pytest.approx(1.0)


def test_best_shares_split_ties_and_skip_nan():
    values = np.array([[1.0, 1.0, np.nan], [np.nan, np.nan, np.nan], [0.0, 2.0, 2.0], [3.0, -1.0, 0.0]])
    np.testing.assert_array_equal(mc.best_shares(values),
                                  [[0.5, 0.5, 0], [0, 0, 0], [0, 0.5, 0.5], [1, 0, 0]])
    # Lower is better (e.g. turnover): the smallest value wins.
    np.testing.assert_array_equal(mc.best_shares(values, lower_is_better=True)[3], [0, 1, 0])


def test_p_best_independent_by_hand():
    # c0 draws 1 or 3, c1 always 2, c2 always NaN: c0 wins when it draws 3.
    np.testing.assert_allclose(mc.p_best_independent([np.array([1.0, 3.0]), np.array([2.0]),
                                                      np.array([np.nan])]), [0.5, 0.5, 0.0])
    # c0 draws 2 (a tie with c1: half each) or 3 (wins): 1/2 * 1/2 + 1/2.
    np.testing.assert_allclose(mc.p_best_independent([np.array([2.0, 3.0]), np.array([2.0])]), [0.75, 0.25])


# --------------------------------------------------------------------------- folders


def test_rerun_force_and_resume(tmp_path, data_file):
    path = _study(tmp_path, data_file, TABLES["block_bootstrap"])
    out = tmp_path / "out"
    full = sweep.run_study(sweep.load_study(path), out=tmp_path / "ref", jobs=2, progress=False)
    # Interrupted after the first chunk, then resumed: the same table as one run.
    class Stop(Exception):
        pass

    def stop(n):
        raise Stop

    with pytest.raises(Stop):
        sweep.run_study(sweep.load_study(path), out=out, jobs=1, progress=False, on_chunk=stop)
    assert list((out / ".partial").glob("chunk-*.parquet"))
    resumed = sweep.run_study(sweep.load_study(path), out=out, jobs=2, progress=False)
    assert resumed.n_resumed > 0 and resumed.n_run + resumed.n_resumed == full.n_configs
    assert_frame_equal(pl.read_parquet(out / "samples.parquet"),
                       pl.read_parquet(tmp_path / "ref" / "samples.parquet"))
    again = sweep.run_study(sweep.load_study(path), out=out, progress=False)
    assert again.n_run == 0
    # Another seed is another study: refused unless --force.
    path.write_text(path.read_text().replace("seed = 3", "seed = 4"))
    with pytest.raises(sweep.SweepError, match="different study"):
        sweep.run_study(sweep.load_study(path), out=out, progress=False)
    forced = sweep.run_study(sweep.load_study(path), out=out, force=True, progress=False)
    assert forced.n_run == full.n_configs
    reference = pl.read_parquet(tmp_path / "ref" / "samples.parquet")
    assert not pl.read_parquet(out / "samples.parquet").equals(reference)


# --------------------------------------------------------------------------- errors


BAD = [
    ('method = "block_bootstrp"\nn_samples = 5\nblock_days = 5',
     ["method = 'block_bootstrp'", "did you mean 'block_bootstrap'"]),
    ('method = "block_bootstrap"\nn_sample = 5\nblock_days = 5', ["n_sample = 5", "did you mean 'n_samples'"]),
    ('method = "block_bootstrap"\nn_samples = 0\nblock_days = 5', ["n_samples = 0", "minimum 1"]),
    ('method = "block_bootstrap"\nn_samples = "5"\nblock_days = 5', ["n_samples = '5'", "integer"]),
    ('method = "block_bootstrap"\nn_samples = 5\nblock_days = 2.5', ["block_days = 2.5", "integer"]),
    ('method = "block_bootstrap"\nn_samples = 5\nblock_days = 5\nseed = -1', ["seed = -1", "minimum 0"]),
    ('method = "block_bootstrap"\nn_samples = 5\nblock_days = 5\nseed = true', ["seed = True", "integer"]),
    ('method = "block_bootstrap"\nn_samples = 5', ["block_days is missing"]),
    ('method = "block_bootstrap"\nn_samples = 5\nblock_days = 5\nsubperiod_days = 30',
     ["subperiod_days = 30", "does not apply to method 'block_bootstrap'"]),
    ('method = "phase"\nn_samples = 5', ["n_samples = 5", "does not apply to method 'phase'"]),
    ('method = "phase"\nseed = 1', ["seed = 1", "does not apply to method 'phase'"]),
    ('method = "subperiod"\nn_samples = 5\nsubperiod_days = 1', ["subperiod_days = 1", "minimum 2"]),
    ('method = "subperiod"\nsubperiod_days = 20', ["n_samples is missing"]),
    ('n_samples = 5', ["method is missing"]),
]


def test_bad_tables_exit_2_with_one_line(tmp_path):
    # The data file does not exist: the table must be refused before any data is read.
    procs = []
    for k, (table, needles) in enumerate(BAD):
        path = _study(tmp_path, tmp_path / "absent.parquet", table, f"bad{k}.toml")
        procs.append((path, needles, subprocess.Popen(
            [sys.executable, "-m", "sweep", "run", str(path), "--out", str(tmp_path / f"o{k}")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)))
    no_table = tmp_path / "no_table.toml"
    no_table.write_text(STUDY.format(data=tmp_path / "absent.parquet", table="").replace("[monte_carlo]", ""))
    procs.append((no_table, ["needs a [monte_carlo] table"], subprocess.Popen(
        [sys.executable, "-m", "sweep", "run", str(no_table)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=ROOT)))
    phase_axis = tmp_path / "phase_axis.toml"
    phase_axis.write_text(STUDY.format(data=tmp_path / "absent.parquet", table='method = "phase"')
                          .replace("window = [5, 10]", "window = [5, 10]\nphase = [0, 1]"))
    procs.append((phase_axis, ["[grid] phase = [0, 1]", "method = 'phase'"], subprocess.Popen(
        [sys.executable, "-m", "sweep", "run", str(phase_axis)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=ROOT)))
    for path, needles, proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, (path, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr
        assert str(path) in lines[0], lines[0]
        if path.name.startswith("bad"):
            assert "[monte_carlo]" in lines[0], lines[0]
        for needle in needles:
            assert needle in lines[0], (needle, lines[0])


def test_subperiod_longer_than_the_window_is_refused(tmp_path, data_file):
    path = _study(tmp_path, data_file, 'method = "subperiod"\nn_samples = 3\nsubperiod_days = 151')
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(path), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    # 160 days, W = 10: the evaluation window has 150 days.
    assert "[monte_carlo] subperiod_days = 151 is longer than the evaluation window (150 days" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_shipped_study_validates():
    study = sweep.load_study(ROOT / "studies" / "volatility_monte_carlo.toml")
    assert study.kind == "monte_carlo" and study.n_configs == 30
    assert mc.spec(study) == mc.Spec("block_bootstrap", 200, 0, block_days=20)
    assert set(study.fixed["exclude"]) >= {"USDT", "USDC", "DAI"}
    assert study.fixed["fee_bps"] == 10 and study.fixed["slippage_bps"] == 5
    assert len(study.resolved_configs()) == 30
