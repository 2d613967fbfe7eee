"""kernels/cscv.py: both passes over a chunk against sums taken directly with numpy."""

import itertools

import numpy as np
import pytest

from kernels import cscv as k


def _one_pass(sums, sumsq, counts, S):
    table = np.array(list(itertools.combinations(range(S), S // 2)))
    m = len(table) // 2
    ins, outs = table[:m], np.ascontiguousarray(table[::-1][:m])
    chosen, best = np.full(2 * m, -1, dtype=np.int64), np.full((4, 2 * m), np.nan)
    best[[k.BEST_SCORE, k.IS_SHARPE]] = -np.inf
    below, ties = np.zeros(2 * m, dtype=np.int64), np.zeros(2 * m, dtype=np.int64)
    sT, qT = np.ascontiguousarray(sums.T), np.ascontiguousarray(sumsq.T)
    for rank_pass in (False, True):
        k.cscv_pass(sT, qT, counts, ins, outs, 0, m, 0, rank_pass, chosen, best, below, ties)
    return table, chosen, best[k.IS_SHARPE], best[k.OOS_SHARPE], below, ties


def test_pass_against_direct_sums():
    # more than two blocks of configurations, the last one partial: the prefix rows restart
    rng = np.random.default_rng(4)
    S, C = 8, 2 * k.CONFIG_BLOCK + 22
    counts = rng.integers(20, 30, S)
    sums = rng.normal(0.0, 0.1, (C, S))
    sumsq = sums ** 2 / counts + rng.chisquare(20, (C, S)) * 1e-3
    table, chosen, best_is, best_oos, below, ties = _one_pass(sums, sumsq, counts, S)
    n = len(table)
    for slot in range(n):
        j, side = divmod(slot, 2)
        comb = table[j] if side == 0 else table[n - 1 - j]
        rest = [b for b in range(S) if b not in comb]

        def sharpe(idx):
            days = counts[idx].sum()
            s, q = sums[:, idx].sum(axis=1), sumsq[:, idx].sum(axis=1)
            return s / days / np.sqrt((q - s * s / days) / (days - 1))

        sr_in, sr_out = sharpe(list(comb)), sharpe(rest)
        best = int(np.argmax(sr_in))
        assert chosen[slot] == best
        assert best_is[slot] == pytest.approx(sr_in[best], rel=1e-12)
        assert best_oos[slot] == pytest.approx(sr_out[best], rel=1e-12)
        # the winner counts itself once among the ties
        assert below[slot] == (sr_out < best_oos[slot] - 1e-13).sum()
        assert ties[slot] == 1

