"""A researcher's factor in a file next to the study (``factor = "mom.py:np_momentum"``).

The file re-implements momentum (SEMANTICS §3: the sum of the last ``w`` log
returns) in plain numpy; run in one grid with the built-in, every one of its
trials must equal the built-in's to 1e-12. Its extra keyword parameter is a
study parameter, validated as built-in ones are; the feature is computed once
per distinct parameter set; changing prices after day ``t`` changes no weight
up to ``t``; the file's sha256 is part of the study's fingerprint and manifest.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import polars as pl
import pytest

import sweep
from kernels.metrics import METRICS
from sweep.core.errors import SweepError
from sweep.factors import user

FACTOR_FILE = '''
import numpy as np
import sweep

CALLS = []


@sweep.factor(long="high", window=30)
def np_momentum(panel, window, scale=1.0):
    """scale x the sum of the last `window` log returns, NaN unless all are finite."""
    CALLS.append((window, scale))
    c = panel.close
    l = np.full(c.shape, np.nan)
    l[1:] = np.log(c[1:] / c[:-1])
    out = np.full(c.shape, np.nan)
    for t in range(window, c.shape[0]):
        out[t] = scale * l[t - window + 1:t + 1].sum(axis=0)
    return out
'''

STUDY = """
[study]
name = "user_file"
data = "{data}"

[backtest]
fee_bps = 10

[grid]
factor = ["momentum", "mom.py:np_momentum"]
window = [5, 12]
rebalance_days = [1, 3]
weighting = ["equal", "risk_parity"]
"""

NAME = "mom.py:np_momentum"


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "panel.parquet"
    sweep.synth_panel(n_symbols=16, n_days=220, seed=11).write_parquet(path)
    return path


@pytest.fixture
def study_dir(tmp_path, data_file):
    (tmp_path / "mom.py").write_text(FACTOR_FILE)
    (tmp_path / "study.toml").write_text(STUDY.format(data=data_file))
    yield tmp_path
    user.forget(NAME)  # later tests see the built-in registry and parameters only


def test_grid_trials_equal_builtin_momentum(study_dir):
    out = study_dir / "out"
    study = sweep.load_study(study_dir / "study.toml")
    sweep.run_study(study, out=out, progress=False, jobs=2)
    trials = pl.read_parquet(out / "trials.parquet")
    keys = ["window", "rebalance_days", "weighting"]
    mine = trials.filter(pl.col("factor") == NAME).sort(keys)
    theirs = trials.filter(pl.col("factor") == "momentum").sort(keys)
    assert mine.height == theirs.height == 8
    assert mine.select(keys).equals(theirs.select(keys))
    for m in METRICS:
        a, b = mine[m].to_numpy(), theirs[m].to_numpy()
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=m)
    assert trials["sharpe"].n_unique() > 4  # distinct books, not one value broadcast
    # Computed once per study and window, shared by the 4 configurations of each window.
    calls = user.USER[NAME].fn.__globals__["CALLS"]
    assert sorted(calls) == [(5, 1.0), (12, 1.0)]
    # The manifest records the file that ran, with its sha256.
    manifest = json.loads((out / "manifest.json").read_text())
    code = manifest["study"]["code"][NAME]
    assert code["sha256"] == hashlib.sha256((study_dir / "mom.py").read_bytes()).hexdigest()
    assert code["origin"] == "file" and code["path"] == str((study_dir / "mom.py").resolve())


def test_extra_parameter_is_a_study_parameter(study_dir):
    text = (study_dir / "study.toml").read_text()
    text = text.replace("window = [5, 12]", "window = [5]").replace('"momentum", ', "")
    (study_dir / "study.toml").write_text(text + "scale = [1.0, 2.5]\n")
    study = sweep.load_study(study_dir / "study.toml")
    configs = study.resolved_configs()
    assert sorted({p["scale"] for p in configs}) == [1.0, 2.5]
    out = study_dir / "out"
    sweep.run_study(study, out=out, progress=False)
    trials = pl.read_parquet(out / "trials.parquet")
    assert "scale" in trials.columns
    # A positive scale ranks alike: the same books.
    keys = ["rebalance_days", "weighting"]
    one = trials.filter(pl.col("scale") == 1.0).sort(keys)
    other = trials.filter(pl.col("scale") == 2.5).sort(keys)
    np.testing.assert_allclose(one["sharpe"].to_numpy(), other["sharpe"].to_numpy(), rtol=1e-12)
    # The factor's default where the study does not set it; another factor's configuration has none.
    panel = sweep.load_panel(study.data)
    assert sweep.backtest(panel, factor=NAME, window=5).params["scale"] == 1.0
    assert "scale" not in sweep.backtest(panel, factor="momentum", window=5).params


@pytest.mark.parametrize("line, message", [
    ("scale = \"big\"", "[backtest]: scale = 'big' must be a number"),
    ("scal = 2.0", "[backtest]: unknown parameter 'scal' (did you mean 'scale'?)"),
])
def test_extra_parameter_validated_like_builtins(study_dir, line, message):
    text = (study_dir / "study.toml").read_text().replace("fee_bps = 10", f"fee_bps = 10\n{line}")
    (study_dir / "study.toml").write_text(text)
    with pytest.raises(SweepError) as err:
        sweep.load_study(study_dir / "study.toml")
    assert str(err.value) == f"{study_dir / 'study.toml'}: {message}"
    assert "\n" not in str(err.value)


def test_changed_file_is_a_changed_study(study_dir):
    before = sweep.load_study(study_dir / "study.toml").fingerprint()
    assert sweep.load_study(study_dir / "study.toml").fingerprint() == before  # stable
    (study_dir / "mom.py").write_text(FACTOR_FILE + "\n# a comment changes the bytes\n")
    study = sweep.load_study(study_dir / "study.toml")
    assert study.fingerprint() != before
    # The registry now holds the new file's function, under a new cache key.
    assert study.code[NAME].sha256 == hashlib.sha256((study_dir / "mom.py").read_bytes()).hexdigest()
    assert sweep.FACTORS[NAME].key.endswith(study.code[NAME].sha256[:16])


def _peek_free_panel(panel, t):
    """``panel`` with every close after day ``t`` replaced by other positive prices."""
    rng = np.random.default_rng(5)
    close = panel.close.copy()
    later = np.isfinite(close[t + 1:])
    close[t + 1:][later] *= np.exp(rng.normal(0.0, 0.3, int(later.sum())))
    fields = {k: v for k, v in panel.fields.items() if k != "close"}
    return sweep.panel_from_arrays(panel.dates, panel.symbols, close, **fields)


def test_no_lookahead(study_dir):
    sweep.load_study(study_dir / "study.toml")  # registers the file's factor
    panel = sweep.synth(n_symbols=14, n_days=160, seed=3)
    for t in (40, 90, 130):
        changed = _peek_free_panel(panel, t)
        feature = sweep.FACTORS[NAME]
        a = sweep.factors.compute(panel, feature.cache_key({"window": 12, "scale": 1.0}))
        b = sweep.factors.compute(changed, feature.cache_key({"window": 12, "scale": 1.0}))
        np.testing.assert_array_equal(a[:t + 1], b[:t + 1])
        assert not np.array_equal(a[t + 1:], b[t + 1:], equal_nan=True)  # the change reached the feature
        for weighting in ("equal", "risk_parity"):
            p = dict(factor=NAME, window=12, rebalance_days=2, weighting=weighting, return_weights=True)
            wa = sweep.backtest(panel, **p).weights
            wb = sweep.backtest(changed, **p).weights
            upto = pl.col("date") <= panel.dates[t].item()
            assert wa.filter(upto).equals(wb.filter(upto))
            assert not wa.equals(wb)


def test_results_folder_brings_its_factor_back(study_dir):
    from sweep.results.schema import read_manifest

    out = study_dir / "out"
    study = sweep.load_study(study_dir / "study.toml")
    sweep.run_study(study, out=out, progress=False)
    row = pl.read_parquet(out / "trials.parquet").filter(pl.col("factor") == NAME).row(0, named=True)
    panel = sweep.load_panel(study.data)
    user.forget(NAME)  # as in a new process: `sweep report` reruns the books of a finished folder
    assert NAME not in sweep.FACTORS
    read_manifest(out)
    assert NAME in sweep.FACTORS
    res = sweep.backtest(panel, factor=NAME, window=row["window"], rebalance_days=row["rebalance_days"],
                         weighting=row["weighting"], fee_bps=10,
                         start=json.loads((out / "manifest.json").read_text())["evaluation_window"]["start"])
    assert res.metrics["sharpe"] == pytest.approx(row["sharpe"], rel=1e-9, abs=1e-12)
    # A file changed since the run is not run in its place: its first use says so, in one line.
    (study_dir / "mom.py").write_text(FACTOR_FILE.replace("scale * l", "-scale * l"))
    user.forget(NAME)
    read_manifest(out)
    with pytest.raises(SweepError, match=rf"factor '{NAME}': .*mom.py changed since the study ran .*rerun the study"):
        sweep.backtest(panel, factor=NAME, window=5)
