"""A grid's configurations generated a range at a time (``ConfigSpace``) equal the plain
enumeration: ``resolve`` of every raw combination in ``itertools.product`` order, their
``config_id``, their kernel rows from ``compile_configs`` and their table columns."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from polars.testing import assert_frame_equal

import sweep
from sweep.engine.params import config_id, resolve
from sweep.engine.space import ConfigSpace
from sweep.engine.workspace import Workspace, compile_configs
from sweep.study.tables import config_frame, config_schema


def enumerate_plainly(fixed, axes):
    """The grid written the obvious way: every combination, last axis fastest, phases innermost."""
    every = axes.get("phase") == "all"
    plain = {k: v for k, v in axes.items() if not (k == "phase" and every)}
    out = []
    for combo in itertools.product(*plain.values()):
        raw = {**fixed, **dict(zip(plain, combo))}
        phases = range(raw.get("rebalance_days", 1)) if every else [None]
        for ph in phases:
            out.append(resolve(raw if ph is None else {**raw, "phase": ph}, checked=True))
    return out


GRIDS = [
    ({"factor": "volatility", "fee_bps": 10}, {"rebalance_days": [1, 3, 5], "window": [10, 20],
                                                 "hold": ["drift", "constant"], "phase": "all"}),
    ({"fee_bps": 10, "exclude": ["B", "A"]}, {"factor": ["size", "volatility", "ewmac"], "window": [32, 64],
                                              "buffer": [0.0, 0.1], "weighting": ["equal", "risk_parity"]}),
    ({"rebalance_days": 4}, {"window": [10, 20], "phase": "all", "q": [3, 5]}),
    ({}, {}),
    ({"factor": "momentum"}, {"q": [2, 4], "rebalance_days": [7, 14], "phase": [0, 3, 6],
                              "slippage_bps": [0.0, 2.5], "top_n": [1, 3], "selection": ["quantile", "top_n"]}),
    ({"factor": "days_from_high"}, {"max_days": [5, 20], "fee_bps": [0, 10], "window": [20, 40],
                                    "rebalance_days": [2, 1], "phase": "all"}),
    ({}, {"factor": ["breakout", "ewmac"], "forecast_scalar": [3.75, "auto"], "rebalance_days": [1, 5]}),
]


@pytest.mark.parametrize("fixed, axes", GRIDS)
def test_the_space_is_the_plain_enumeration(fixed, axes):
    space = ConfigSpace(fixed, axes)
    plain = enumerate_plainly(fixed, axes)
    assert len(space) == len(plain)
    assert list(space) == plain
    assert space[-1] == plain[-1] and space[1:3] == plain[1:3]
    for a, b in ((0, len(plain)), (1, max(2, len(plain) - 1)), (len(plain) // 2, len(plain))):
        d = space.digits(a, b)
        assert all(len(v) == b - a for v in d.values())


@pytest.mark.parametrize("fixed, axes", GRIDS)
def test_ids_columns_and_dtypes_built_in_bulk_equal_those_of_each_configuration(fixed, axes):
    space = ConfigSpace(fixed, axes)
    plain = enumerate_plainly(fixed, axes)
    columns = list(axes) + [k for k in fixed if k not in axes]

    class Study:  # what config_frame reads of a study
        pass

    Study.columns = columns
    schema = space.column_schema(columns)
    assert schema == config_schema(Study, plain)
    n = len(plain)
    for a, b in ((0, n), (n // 3, n)):
        frame = space.frame(a, b, columns, schema)
        assert_frame_equal(frame, config_frame(Study, plain[a:b], schema))
        assert frame["config_id"].to_list() == [config_id(p) for p in plain[a:b]]


@pytest.mark.parametrize("fixed, axes", [g for g in GRIDS if "ewmac" not in str(g) and "breakout" not in str(g)])
def test_kernel_rows_encoded_in_bulk_equal_compile_configs(fixed, axes):
    panel = sweep.synth(n_symbols=8, n_days=120, seed=2)
    space = ConfigSpace(fixed, axes)
    plain = enumerate_plainly(fixed, axes)
    reps = compile_configs(Workspace(panel), space.reps)
    whole = compile_configs(Workspace(panel), plain)
    ip, fp = space.encode(0, len(plain), reps.ip, reps.fp)
    np.testing.assert_array_equal(fp, whole.fp)
    # The ranking indices number the same rankings in another order: compare what they point to.
    np.testing.assert_array_equal(np.delete(ip, [0, 1, 2], axis=1), np.delete(whole.ip, [0, 1, 2], axis=1))
    for col, mine, theirs in ((0, reps.order_stack, whole.order_stack), (1, reps.ivol_stack, whole.ivol_stack),
                              (2, reps.feature_stack, whole.feature_stack)):
        for i in range(len(plain)):
            if whole.ip[i, col] < 0:
                assert ip[i, col] < 0
            else:
                np.testing.assert_array_equal(mine[ip[i, col]], theirs[whole.ip[i, col]])


def test_the_first_impossible_configuration_is_named():
    with pytest.raises(sweep.SweepError, match=r"configuration .*phase=3.*rebalance_days = 2"):
        ConfigSpace({"factor": "momentum"}, {"rebalance_days": [5, 2], "phase": [0, 3]}, "s.toml")
    with pytest.raises(sweep.SweepError, match=r"s.toml: configuration window=3.*below the minimum"):
        ConfigSpace({"factor": "kurtosis"}, {"window": [5, 3], "rebalance_days": [1, 2]}, "s.toml")


def test_a_million_configurations_are_not_listed():
    space = ConfigSpace({"factor": "volatility"}, {"rebalance_days": list(range(1, 101)), "window": [10, 20],
                                                   "buffer": [0.0, 0.1, 0.2, 0.3, 0.5], "phase": "all"})
    assert len(space) == 2 * 5 * sum(range(1, 101))
    assert len(space.reps) == 2  # only the windows change features
    last = space[len(space) - 1]
    assert (last["rebalance_days"], last["phase"], last["window"], last["buffer"]) == (100, 99, 20, 0.5)
