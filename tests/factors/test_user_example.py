"""The README's worked example of "Your own factor" runs, and computes what it says.

``studies/my_factors.py`` and ``studies/my_factor_study.toml`` are quoted in the
README verbatim (checked here); the study runs on the embedded data; its two
factors equal the same definitions computed with pandas, and a book of each
equals ``sweep.backtest`` of the same configuration.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import sweep
from sweep.factors import user

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "studies" / "my_factors.py"
STUDY = ROOT / "studies" / "my_factor_study.toml"
NAMES = ("my_factors.py:amihud", "my_factors.py:momentum_skip")


@pytest.fixture(scope="module")
def study():
    if not (ROOT / "data" / "crypto_daily.parquet").exists():
        pytest.skip("the embedded data set is absent")
    yield sweep.load_study(STUDY)
    for name in NAMES:
        user.forget(name)


def _section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("### Your own factor", 1)[1].split("\n## ", 1)[0]


def test_readme_quotes_the_files_verbatim():
    blocks = re.findall(r"```(python|toml)\n(.*?)```", _section(), flags=re.S)
    assert [lang for lang, _ in blocks] == ["python", "toml"]
    assert blocks[0][1] == EXAMPLE.read_text(encoding="utf-8")
    assert blocks[1][1] == STUDY.read_text(encoding="utf-8")


def _frame(a: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(a)


def test_features_equal_pandas(study):
    panel = sweep.load_panel(study.data)
    close = _frame(panel.close)
    r = close / close.shift(1) - 1  # SEMANTICS §2: NaN unless both closes are finite
    impact = r.abs() / np.maximum(_frame(panel.fields["volume"]), 1.0) * 1e6
    l = np.log1p(r)
    for window in (30, 60):
        amihud = sweep.factors.compute(panel, sweep.FACTORS[NAMES[0]].cache_key({"window": window}))
        np.testing.assert_allclose(amihud, impact.rolling(window).mean().to_numpy(), rtol=1e-9, atol=1e-12)
        for skip in (0, 7):
            mine = sweep.factors.compute(panel, sweep.FACTORS[NAMES[1]].cache_key({"window": window, "skip": skip}))
            theirs = l.rolling(window - skip).sum().shift(skip).to_numpy()
            np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-12)
    assert np.isfinite(amihud).sum() > 10_000  # the real data has volumes from 2018 on


def test_study_runs_and_rows_are_backtests(study, tmp_path):
    assert study.n_configs == 12 and set(study.code) == set(NAMES)
    sweep.run_study(study, out=tmp_path / "out", progress=False, jobs=2)
    trials = pl.read_parquet(tmp_path / "out" / "trials.parquet")
    assert trials.height == 12 and set(trials["factor"]) == {"volatility", *NAMES}
    panel = sweep.load_panel(study.data)
    for name in NAMES:
        row = trials.filter((pl.col("factor") == name) & (pl.col("window") == 60)
                            & (pl.col("rebalance_days") == 7)).row(0, named=True)
        res = sweep.backtest(panel, start=study.start, factor=name, window=60, rebalance_days=7,
                             **{k: study.fixed[k] for k in ("fee_bps", "slippage_bps", "exclude")})
        assert res.params["long"] == sweep.FACTORS[name].long
        for m in ("sharpe", "total_return", "turnover", "n_rebalances"):
            assert row[m] == pytest.approx(res.metrics[m], rel=1e-9, abs=1e-12), (name, m)
