"""Shared fixtures: small generated panels with gaps, listings and delistings."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # the independent reference lives beside the tests

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

# SEMANTICS' agreement rule: 1e-9 relative, with a 1e-12 floor for values 0 by construction.
RTOL = 1e-9
ATOL = 1e-12


def assert_close(actual: float, expected: float, what: str = "") -> None:
    if math.isnan(expected) or math.isnan(actual):
        assert math.isnan(expected) and math.isnan(actual), f"{what}: {actual!r} != {expected!r}"
        return
    assert abs(actual - expected) <= ATOL + RTOL * abs(expected), f"{what}: {actual!r} != {expected!r}"


def assert_panels_close(actual, expected, rtol: float = RTOL, atol: float = ATOL) -> None:
    """Same shape and NaN pattern; finite values within rtol/atol."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


@pytest.fixture(scope="session")
def small_panel():
    """20 synthetic symbols x 260 days, with funding, market caps, gaps, listings, delistings."""
    import sweep

    panel = sweep.synth(n_symbols=20, n_days=260, seed=7)
    close = panel.close
    listed_late = np.isnan(close[0]).sum()
    delisted = np.isnan(close[-1]).sum()
    assert listed_late > 0 and delisted > 0, "the fixture must have listings and delistings"
    return panel


@pytest.fixture(scope="session")
def crypto_path():
    path = SHARED_DATA / "crypto_daily.parquet"
    if not path.exists():
        pytest.skip(f"real data not available ({path} is absent)")
    return path
