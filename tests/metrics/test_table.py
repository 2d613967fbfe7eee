"""The metrics table: one row per kernel output slot, directions, labels, extra metrics."""

from __future__ import annotations

import numpy as np
import pytest

import kernels.metrics as K
import sweep
from sweep import metrics
from sweep.core.errors import SweepError


def test_rows_follow_the_kernel_layout():
    assert tuple(m.name for m in metrics.METRICS) == K.METRICS == sweep.METRICS
    # Each named slot constant points at its own row.
    for name in K.METRICS:
        assert metrics.METRICS[getattr(K, "M_" + name.upper())].name == name
    assert all(m.direction in ("max", "min") and m.label and m.unit for m in metrics.METRICS)


def test_directions():
    lower = {m.name for m in metrics.METRICS if metrics.lower_is_better(m.name)}
    assert lower == {"ann_vol", "turnover", "cost_paid", "ruined"}
    assert not metrics.lower_is_better("no_such_metric")
    assert metrics.get("cagr").percent and not metrics.get("sharpe").percent


def test_unknown_metric_is_one_line():
    with pytest.raises(SweepError, match="unknown metric 'sharp'.*sharpe"):
        metrics.get("sharp")


def test_register_compute_unregister():
    try:
        row = metrics.register("worst_day", np.min, direction="min", label="worst day", percent=True)
        assert metrics.get("worst_day") is row and metrics.lower_is_better("worst_day")
        assert metrics.names() == K.METRICS + ("worst_day",)
        R = np.array([[0.01, -0.02, 0.03], [0.0, 0.05, -0.04]])
        np.testing.assert_array_equal(metrics.compute_extra(R)["worst_day"], [-0.02, -0.04])
    finally:
        metrics.unregister("worst_day")
    assert metrics.names() == K.METRICS and metrics.compute_extra(np.zeros((2, 3))) == {}


@pytest.mark.parametrize("kw, msg", [
    ({"name": "sharpe"}, "built in"),
    ({"name": "two words"}, "identifier"),
    ({"name": "x", "direction": "up"}, "direction"),
])
def test_register_refuses(kw, msg):
    args = {"name": "x", "fn": np.mean} | kw
    with pytest.raises(SweepError, match=msg):
        metrics.register(**args)
    assert metrics.names() == K.METRICS
