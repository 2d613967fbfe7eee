"""A researcher's factor from an installed package's ``sweep.factors`` entry point: ``factor = "np_carry"``.

The "installed package" is a module plus a ``*.dist-info`` folder (``METADATA``,
``entry_points.txt``) in a temporary folder on ``sys.path``: what pip leaves,
found by ``importlib.metadata`` without pip. The factor re-implements carry
(SEMANTICS §3: the mean of the last ``w`` funding rates, NaN unless all are
finite) in numpy and needs ``funding_rate``; its trials must equal the built-in's.
"""

from __future__ import annotations

import sys

import numpy as np
import polars as pl
import pytest

import sweep
from kernels.metrics import METRICS
from sweep.core.errors import SweepError
from sweep.factors import user

MODULE = '''
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import sweep


@sweep.factor(long="low", window=3, needs=("funding_rate",))
def np_carry(panel, window):
    f = panel.funding_rate
    out = np.full(panel.shape, np.nan)
    out[window - 1:] = sliding_window_view(f, window, axis=0).mean(axis=-1)
    return out
'''

STUDY = """
[study]
name = "user_entry_point"
data = "{data}"

[grid]
factor = ["carry", "np_carry"]
window = [1, 5]
rebalance_days = [1, 4]
top_n = [3]
selection = ["top_n"]
"""


@pytest.fixture
def installed(tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist = site / "sweep_np_carry-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "npcarry.py").write_text(MODULE)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sweep-np-carry\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[sweep.factors]\nnp_carry = npcarry:np_carry\n")
    monkeypatch.syspath_prepend(str(site))
    data = tmp_path / "panel.parquet"
    sweep.synth_panel(n_symbols=14, n_days=240, seed=9).write_parquet(data)
    (tmp_path / "study.toml").write_text(STUDY.format(data=data))
    yield site
    user.forget("np_carry")
    sys.modules.pop("npcarry", None)


def test_entry_point_trials_equal_builtin_carry(installed, tmp_path):
    study = sweep.load_study(tmp_path / "study.toml")
    code = study.code["np_carry"]
    assert (code.origin, code.target, code.path) == ("entry point", "np_carry = npcarry:np_carry",
                                                     str(installed / "npcarry.py"))
    sweep.run_study(study, out=tmp_path / "out", progress=False)
    trials = pl.read_parquet(tmp_path / "out" / "trials.parquet")
    keys = ["window", "rebalance_days"]
    mine = trials.filter(pl.col("factor") == "np_carry").sort(keys)
    theirs = trials.filter(pl.col("factor") == "carry").sort(keys)
    assert mine.height == theirs.height == 4
    for m in METRICS:
        np.testing.assert_allclose(mine[m].to_numpy(), theirs[m].to_numpy(), rtol=1e-9, atol=1e-12, err_msg=m)
    assert trials["sharpe"].n_unique() > 2


def test_needs_refuses_data_without_the_column(installed, tmp_path):
    data = tmp_path / "no_funding.parquet"
    sweep.synth_panel(n_symbols=14, n_days=240, seed=9).drop("funding_rate").write_parquet(data)
    text = (tmp_path / "study.toml").read_text().replace('["carry", "np_carry"]', '["np_carry"]')
    (tmp_path / "study.toml").write_text(text)
    study = sweep.load_study(tmp_path / "study.toml")
    with pytest.raises(SweepError, match=r"the np_carry factor .*needs the column 'funding_rate'"):
        sweep.run_study(study, data=data, out=tmp_path / "out", progress=False)


def test_unknown_entry_point_lists_the_factors(installed, tmp_path):
    (tmp_path / "study.toml").write_text((tmp_path / "study.toml").read_text().replace('"np_carry"', '"np_cary"'))
    with pytest.raises(SweepError, match=r"factor = 'np_cary' is not one of .*\(did you mean 'np_carry'\?\)|"
                                         r"factor = 'np_cary' is not one of"):
        sweep.load_study(tmp_path / "study.toml")
