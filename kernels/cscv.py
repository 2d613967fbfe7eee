"""Combinatorially symmetric cross-validation (CSCV) from per-block moments.

Convention: a configuration's daily returns are cut into ``S`` contiguous
blocks (``S`` even) and reduced to per-block moments, ``sums[c, b]`` (sum of
returns), ``sumsq[c, b]`` (sum of squared returns) and ``counts[b]`` (days).
Every split of the blocks into two halves of ``S / 2`` (``C(S, S/2)`` splits,
each partition twice, once per side) gives every configuration an in-sample
and an out-of-sample Sharpe ratio from the combined moments alone, so the
return matrix is read once (``block_moments``) and can be reduced chunk by
chunk. Sharpe ratios here are per day (not annualised): ``mean / std`` with
ddof = 1, NaN where the half has fewer than 2 days or no variance (a centred
sum of squares at or below ``1e-12`` of the raw one, which is the rounding
residue of a constant series). A NaN Sharpe ranks below every number.

``cscv_pass`` evaluates partitions (a split and its complement at once) for
one chunk of configurations at a time, in two passes (the in-sample best of
each split, then its out-of-sample rank), so memory is one chunk plus a few
numbers per split. Partitions are walked in lexicographic order with the sums
of each half kept as prefix sums that consecutive partitions share: about
two block additions per split and configuration instead of ``S / 2``, each
half still summed in ascending block order from 0.0, so every Sharpe is
bit-for-bit the one of a direct sum (a revolving-door order would add and
subtract blocks, which leaves rounding residue where a half is flat).

Reference: Bailey, Borwein, Lopez de Prado, Zhu, "The Probability of Backtest
Overfitting", Journal of Computational Finance 20(4), 2017.
"""

import numpy as np
from numba import njit

# A centred sum of squares this small next to the raw one is rounding, not variance.
ZERO_VARIANCE = 1e-12


@njit(cache=True, nogil=True)
def block_moments(returns, n_blocks):
    """Per-block ``(sums (C, S), sumsq (C, S), counts (S,) int64)`` of ``returns (C, n)``.

    Blocks are contiguous in time; the first ``n % S`` blocks are one day
    longer than the others (``n // S + 1`` days against ``n // S``). Requires
    ``1 <= S <= n``; the returns should be finite (a NaN propagates into its
    block's sums).
    """
    C, n = returns.shape
    S = n_blocks
    counts = np.empty(S, dtype=np.int64)
    base = n // S
    extra = n % S
    for b in range(S):
        counts[b] = base + 1 if b < extra else base
    sums = np.zeros((C, S))
    sumsq = np.zeros((C, S))
    for c in range(C):
        t = 0
        for b in range(S):
            a = 0.0
            a2 = 0.0
            for _ in range(counts[b]):
                x = returns[c, t]
                a += x
                a2 += x * x
                t += 1
            sums[c, b] = a
            sumsq[c, b] = a2
    return sums, sumsq, counts


@njit(cache=True, nogil=True)
def sharpe_from_moments(s, s2, n):
    """Per-day Sharpe ``mean / std(ddof=1)`` of ``n`` days with sum ``s`` and sum of squares ``s2``."""
    if n < 2:
        return np.nan
    m = s / n
    ss = s2 - s * m
    if not ss > ZERO_VARIANCE * s2:
        return np.nan
    return m / np.sqrt(ss / (n - 1))


# Configurations per inner pass, so that the prefix rows of one block stay in cache:
# 10.2, 8.7, 7.9, 8.7, 11.0 ns per configuration and partition (both passes, one core)
# measured for 32, 64, 128, 256 and 2,048.
CONFIG_BLOCK = 128


@njit(inline="always")
def _advance(sT, qT, counts, cur, prev, P, Q, c_lo, width):
    """Bring the prefix rows ``P[d] = sum of sT over cur[:d]`` (and ``Q`` of ``qT``) from
    the combination ``prev`` to ``cur``; only rows past their first difference are redone.
    Each row adds one block to the row before, in ascending block order from 0.0, which
    is exactly the order of a direct sum over the blocks: no drift, a flat half stays 0."""
    h = cur.shape[0]
    j = 0
    while j < h and cur[j] == prev[j]:
        j += 1
    for d in range(j, h):
        b = cur[d]
        # one-dimensional rows and one array per loop: vectorised (2.5x the 2-D form)
        p0, p1, add = P[d], P[d + 1], sT[b, c_lo:c_lo + width]
        for c in range(width):
            p1[c] = p0[c] + add[c]
        q0, q1, add = Q[d], Q[d + 1], qT[b, c_lo:c_lo + width]
        for c in range(width):
            q1[c] = q0[c] + add[c]
        prev[d] = b
    days = 0
    for d in range(h):
        days += counts[cur[d]]
    return days


# Rows of ``cscv_pass``'s ``best``: the in-sample winner's score, its out-of-sample score,
# and its in-sample and out-of-sample Sharpe ratios.
BEST_SCORE, OOS_SCORE, IS_SHARPE, OOS_SHARPE = 0, 1, 2, 3


@njit(inline="always")
def _scores(s, s2, n, out, width):
    """The score ``y |y|`` of the Sharpe ``y = sharpe_from_moments(s, s2, n)`` along a row,
    NaN where ``y`` is: ``m |m| (n - 1) / ss`` from the same ``m`` and ``ss``, so NaN
    exactly where ``y`` is and increasing with ``y``, for one division instead of two
    and a square root (CSCV's cost). Rounding can order two scores within ``SLACK`` of
    each other unlike their Sharpes (distinct sparse series with equal Sharpes do it):
    those are compared by the exact Sharpe."""
    if n < 2:
        for c in range(width):
            out[c] = np.nan
        return
    nf = float(n)
    dof = float(n - 1)
    for c in range(width):
        m = s[c] / nf
        ss = s2[c] - s[c] * m
        r = m * abs(m) * dof / ss
        out[c] = r if ss > ZERO_VARIANCE * s2[c] else np.nan


# Scores this close (relative) may order unlike their Sharpes: a Sharpe and a score each
# carry three roundings, so 1e-14 (45 units in the last place) is room to spare.
SLACK = 1e-14


@njit(inline="always")
def _winner(p, s, s2, n, width, best, slot, cho, c_first):
    """Pass 1 for one split over a row of scores ``p``: the first configuration of the
    highest exact Sharpe, if strictly above the winner so far (``best[IS_SHARPE]``).
    Returns its column or -1; exact Sharpes only for scores near the row's top."""
    top = -np.inf
    for c in range(width):
        top = max(top, p[c])  # keeps ``top`` against a NaN
    held = best[BEST_SCORE, slot]
    if top == -np.inf or top < held - SLACK * abs(held):
        return -1
    cut = top - SLACK * abs(top)
    y_best = best[IS_SHARPE, slot]
    win = -1
    for c in range(width):
        if p[c] >= cut:
            y = sharpe_from_moments(s[c], s2[c], n)
            if y > y_best:
                y_best = y
                win = c
    if win >= 0:
        best[BEST_SCORE, slot] = p[win]
        best[IS_SHARPE, slot] = y_best
        cho[slot] = c_first + win
    return win


@njit(inline="always")
def _rank(p, s, s2, n, width, x_p, x):
    """Pass 2 for one split over a row of scores ``p``: how many exact Sharpes are below
    ``x`` (NaN below a number) and equal to it (NaN equal to NaN), ``x_p`` its score.
    Exact Sharpes only where the scores are too close to tell."""
    below = 0
    equal = 0
    if np.isnan(x):
        for c in range(width):
            equal += np.isnan(p[c])
        return below, equal
    lo = x_p - SLACK * abs(x_p)
    hi = x_p + SLACK * abs(x_p)
    above = 0
    for c in range(width):
        v = p[c]
        below += (v < lo) | np.isnan(v)
        above += v > hi
    if below + above < width:
        for c in range(width):
            v = p[c]
            if not ((v < lo) | np.isnan(v) | (v > hi)):
                y = sharpe_from_moments(s[c], s2[c], n)
                below += y < x
                equal += y == x
    return below, equal


# error_model="numpy": the score of a half without variance is computed and then
# discarded, so its division by zero must not raise (and the loop then vectorises).
@njit(cache=True, nogil=True, error_model="numpy")
def cscv_pass(sT, qT, counts, ins, outs, j_lo, j_hi, c0, rank_pass, chosen, best, below, ties):
    """One pass of CSCV over one chunk of configurations, for pairs ``j_lo .. j_hi - 1``.

    ``sT``, ``qT`` ``(S, c)``: the chunk's per-block sums and sums of squares,
    TRANSPOSED (configurations along the contiguous axis); ``c0`` the index of
    its first configuration. Pair ``j`` is a partition of the blocks into
    ``ins[j]`` and its complement ``outs[j]`` (``(m, S/2)`` ascending block
    numbers, as ``itertools.combinations`` gives them); it owns slot ``2 j``
    (in-sample ``ins[j]``) and slot ``2 j + 1`` (in-sample ``outs[j]``): one
    pass over the blocks serves both, the in-sample Sharpe of one being the
    out-of-sample Sharpe of the other. Pairs in lexicographic order of ``ins``
    (and so reverse order of ``outs``) share the longest prefixes: over all
    ``C(S, S/2) / 2`` partitions about two block additions per split and
    configuration instead of ``S / 2``.

    Pass 1 (``rank_pass`` false): a configuration replaces ``chosen[slot]``
    when its in-sample Sharpe is strictly above ``best[IS_SHARPE, slot]``
    (start at -1, and -inf in the rows ``BEST_SCORE`` and ``IS_SHARPE``), so
    NaN never wins and, chunks passed in ascending ``c0``, a tie keeps the
    lowest index; the winner's scores and out-of-sample Sharpe go to the
    other rows of ``best``. Pass 2: add to ``below[slot]`` the configurations
    whose out-of-sample Sharpe is below ``best[OOS_SHARPE, slot]`` (NaN is
    below a number) and to ``ties[slot]`` those equal to it (NaN ties NaN);
    the winner counts itself as a tie. Configurations are compared by their
    scores (``_scores``) and by their exact Sharpes where those are close, so
    every decision is the one of the Sharpes. Disjoint pair ranges write
    disjoint slots: threads may share the outputs.
    """
    h = ins.shape[1]
    n_conf = sT.shape[1]
    B = CONFIG_BLOCK
    Pi = np.zeros((h + 1, B))
    Qi = np.zeros((h + 1, B))
    Po = np.zeros((h + 1, B))
    Qo = np.zeros((h + 1, B))
    pi = np.empty(h, dtype=np.int64)
    po = np.empty(h, dtype=np.int64)
    ri = np.empty(B)
    ro = np.empty(B)
    for c_lo in range(0, n_conf, B):
        width = min(B, n_conf - c_lo)
        pi[:] = -1
        po[:] = -1
        for j in range(j_lo, j_hi):
            ni = _advance(sT, qT, counts, ins[j], pi, Pi, Qi, c_lo, width)
            no = _advance(sT, qT, counts, outs[j], po, Po, Qo, c_lo, width)
            _scores(Pi[h], Qi[h], ni, ri, width)
            _scores(Po[h], Qo[h], no, ro, width)
            for side in range(2):
                slot = 2 * j + side
                if side == 0:
                    p_in, s_in, q_in, n_in, p_out, s_out, q_out, n_out = ri, Pi[h], Qi[h], ni, ro, Po[h], Qo[h], no
                else:
                    p_in, s_in, q_in, n_in, p_out, s_out, q_out, n_out = ro, Po[h], Qo[h], no, ri, Pi[h], Qi[h], ni
                if not rank_pass:
                    win = _winner(p_in, s_in, q_in, n_in, width, best, slot, chosen, c0 + c_lo)
                    if win >= 0:
                        best[OOS_SCORE, slot] = p_out[win]
                        best[OOS_SHARPE, slot] = sharpe_from_moments(s_out[win], q_out[win], n_out)
                else:
                    lo, eq = _rank(p_out, s_out, q_out, n_out, width, best[OOS_SCORE, slot],
                                   best[OOS_SHARPE, slot])
                    below[slot] += lo
                    ties[slot] += eq
