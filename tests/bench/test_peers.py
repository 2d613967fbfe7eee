"""The benchmark's peers compute what sweep computes (benchmarks/peers.py; needs the bench extra).

A synthetic panel with gaps, listings, delistings and funding: the pandas-vectorized
peer must equal ``sweep.backtest`` to SEMANTICS' 1e-9, and vectorbt, given the same
target weights, must equal sweep's pre-cost Sharpe and, net of fees, SEMANTICS 8 with
vectorbt's own cost convention (positions left at w* of the pre-cost NAV).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("vectorbt")
pd = pytest.importorskip("pandas")

import sweep  # noqa: E402
from conftest import assert_close  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import peers  # noqa: E402

CONFIGS = [(1, 10, "equal", "drift"), (3, 20, "risk_parity", "drift"),
           (5, 10, "risk_parity", "constant"), (7, 20, "equal", "constant")]
START = 40


@pytest.fixture(scope="module")
def synth():
    panel = sweep.synth(n_symbols=30, n_days=400, seed=7)
    index = pd.DatetimeIndex(pd.to_datetime(list(panel.dates)))
    close = pd.DataFrame(panel.close, index=index, columns=list(panel.symbols))
    funding = pd.DataFrame(panel.fields["funding_rate"], index=index, columns=close.columns)
    assert close.isna().to_numpy().any() and funding.notna().to_numpy().any()  # gaps and funding to test
    return panel, close, funding


def _sweep(panel, k, window, weighting, hold, **kw):
    return sweep.backtest(panel, start=panel.dates[START], factor="volatility", window=window, weighting=weighting,
                          hold=hold, rebalance_days=k, fee_bps=peers.FEE_BPS, slippage_bps=peers.SLIPPAGE_BPS,
                          **kw).metrics


@pytest.mark.parametrize("config", CONFIGS)
def test_pandas_peer_equals_sweep(synth, config):
    panel, close, funding = synth
    feat = peers.Features(close, funding, windows=(10, 20))
    k, window, weighting, hold = config
    got = peers.pandas_backtest(feat, dict(rebalance_days=k, window=window, weighting=weighting, hold=hold),
                                START, close.shape[0] - 1)
    want = _sweep(panel, *config)
    assert want["funding_return"] != 0.0
    assert_close(got[0], want["sharpe"], f"sharpe of {config}")
    assert_close(got[1], want["sharpe_pre_cost"], f"sharpe_pre_cost of {config}")


@pytest.mark.parametrize("config", CONFIGS)
def test_vectorbt_given_the_weights(synth, config):
    panel, close, _ = synth
    feat = peers.Features(close, None, windows=(10, 20))  # vectorbt has no funding: compared without it
    k, window, weighting, hold = config
    s, e = START, close.shape[0] - 1
    size, fees = peers.vbt_inputs(feat, dict(rebalance_days=k, window=window, weighting=weighting, hold=hold), s, e)
    want = _sweep(panel, *config, funding=False)
    assert want["ruined"] == 0.0
    close_v = peers.vbt_close(feat, s, e)
    pre = peers.vbt_backtest(close_v, size, 0.0 * fees, "numba")
    assert abs(pre - want["sharpe_pre_cost"]) <= 1e-12 * abs(want["sharpe_pre_cost"])
    net = peers.vbt_backtest(close_v, size, fees, "numba")
    assert_close(net, peers.fee_on_trade_sharpe(feat, size, fees, s, e), f"net sharpe of {config}")
    assert net != want["sharpe"]  # the cost conventions differ (SEMANTICS 8 vs fees on traded value)
