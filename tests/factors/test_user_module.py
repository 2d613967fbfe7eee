"""A researcher's factor in an importable module (``factor = "userfac.risk:np_volatility"``).

The package is written into a temporary folder put on ``sys.path`` (and on
``PYTHONPATH`` for the command line). Its factor re-implements volatility
(SEMANTICS §3: the sample standard deviation, ddof = 1, of the last ``w`` log
returns) in numpy; in one grid with the built-in its trials must equal the
built-in's, and ``sweep run`` must say which code the study runs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import sweep
from kernels.metrics import METRICS
from sweep.factors import user

MODULE = '''
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import sweep


@sweep.factor(long="low", window=30, min_window=2)
def np_volatility(panel, window):
    l = np.log(panel.close[1:] / panel.close[:-1])
    out = np.full(panel.shape, np.nan)
    out[window:] = sliding_window_view(l, window, axis=0).std(axis=-1, ddof=1)
    return out
'''

STUDY = """
[study]
name = "user_module"
data = "{data}"

[backtest]
slippage_bps = 5

[grid]
factor = ["volatility", "userfac.risk:np_volatility"]
window = [7, 20]
rebalance_days = [2, 5]
weighting = ["equal", "risk_parity"]
"""

NAME = "userfac.risk:np_volatility"


@pytest.fixture
def package(tmp_path, monkeypatch):
    root = tmp_path / "site"
    (root / "userfac").mkdir(parents=True)
    (root / "userfac" / "__init__.py").write_text("")
    (root / "userfac" / "risk.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(root))
    data = tmp_path / "panel.parquet"
    sweep.synth_panel(n_symbols=15, n_days=200, seed=4).write_parquet(data)
    (tmp_path / "study.toml").write_text(STUDY.format(data=data))
    yield root
    user.forget(NAME)
    for name in ("userfac.risk", "userfac"):
        sys.modules.pop(name, None)


def test_module_factor_trials_equal_builtin_volatility(package, tmp_path):
    study = sweep.load_study(tmp_path / "study.toml")
    assert study.code[NAME].origin == "module"
    assert study.code[NAME].path == str(package / "userfac" / "risk.py")
    sweep.run_study(study, out=tmp_path / "out", progress=False, jobs=2)
    trials = pl.read_parquet(tmp_path / "out" / "trials.parquet")
    keys = ["window", "rebalance_days", "weighting"]
    mine = trials.filter(pl.col("factor") == NAME).sort(keys)
    theirs = trials.filter(pl.col("factor") == "volatility").sort(keys)
    assert mine.height == theirs.height == 8
    assert mine.select(keys).equals(theirs.select(keys))
    for m in METRICS:
        np.testing.assert_allclose(mine[m].to_numpy(), theirs[m].to_numpy(), rtol=1e-9, atol=1e-12, err_msg=m)
    assert sweep.FACTORS[NAME].long == "low" and sweep.FACTORS[NAME].min_window == 2


def test_cli_run_with_pythonpath_names_the_code(package, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package), str(Path(sweep.__file__).parents[1])])}
    proc = subprocess.run([sys.executable, "-m", "sweep", "run", str(tmp_path / "study.toml"), "--out",
                           str(tmp_path / "cli"), "--quiet", "--jobs", "1"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    notice = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    file = package / "userfac" / "risk.py"
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
    assert notice == [f"note: this study runs code from module {NAME} ({file}, sha256 {digest}): factor '{NAME}'"]
    trials = pl.read_parquet(tmp_path / "cli" / "trials.parquet")
    assert set(trials["factor"]) == {"volatility", NAME} and trials.height == 16
