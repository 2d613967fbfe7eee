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
def half_splits(n_blocks):
    """Every choice of ``S / 2`` in-sample blocks out of ``S``: ``(C(S, S/2), S)`` uint8.

    Row ``k`` marks the in-sample blocks (1) of the ``k``-th combination in the
    order of ``itertools.combinations(range(S), S // 2)`` (lexicographic), so a
    slow implementation can be compared combination by combination.
    """
    S = n_blocks
    h = S // 2
    n_combos = 1
    for i in range(h):  # C(S, h), exact in integers
        n_combos = n_combos * (S - i) // (i + 1)
    out = np.zeros((n_combos, S), dtype=np.uint8)
    idx = np.empty(h, dtype=np.int64)
    for j in range(h):
        idx[j] = j
    for k in range(n_combos):
        for j in range(h):
            out[k, idx[j]] = 1
        # next combination: bump the rightmost index that can move, reset the ones after it
        j = h - 1
        while j >= 0 and idx[j] == S - h + j:
            j -= 1
        if j < 0:
            break
        idx[j] += 1
        for i in range(j + 1, h):
            idx[i] = idx[i - 1] + 1
    return out


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


@njit(inline="always")
def _record(k, ins, outs, chosen, is_sr, oos_sr, rank, logit):
    """Combination ``k`` with in-sample Sharpes ``ins`` and out-of-sample ``outs``."""
    C = ins.shape[0]
    best = -1
    best_is = -np.inf
    for c in range(C):
        if ins[c] > best_is:  # NaN never wins; a tie keeps the lower index
            best = c
            best_is = ins[c]
    chosen[k] = best
    if best < 0:
        is_sr[k] = np.nan
        oos_sr[k] = np.nan
        rank[k] = np.nan
        logit[k] = np.nan
        return
    x = outs[best]
    below = 0
    ties = 0
    x_nan = np.isnan(x)
    for c in range(C):
        if c == best:
            continue
        y = outs[c]
        if x_nan:
            if np.isnan(y):
                ties += 1
        elif np.isnan(y) or y < x:
            below += 1
        elif y == x:
            ties += 1
    r = 1.0 + below + 0.5 * ties
    w = r / (C + 1.0)
    is_sr[k] = best_is
    oos_sr[k] = x
    rank[k] = r
    logit[k] = np.log(w / (1.0 - w))


@njit(cache=True, nogil=True)
def cscv_range(sums, sumsq, counts, splits, k_lo, k_hi, chosen, is_sr, oos_sr, rank, logit):
    """Fill combinations ``k_lo .. k_hi - 1`` of the first half of ``splits`` AND their
    complements ``n - 1 - k``: in lexicographic order the complement of the k-th
    half-split is the (n-1-k)-th, so one pass over the blocks gives both
    (the in-sample Sharpes of one are the out-of-sample Sharpes of the other).
    Disjoint ranges write disjoint outputs: threads may share the arrays."""
    C, S = sums.shape
    n_combos = splits.shape[0]
    in_idx = np.empty(S, dtype=np.int64)
    out_idx = np.empty(S, dtype=np.int64)
    sr_in = np.empty(C)
    sr_out = np.empty(C)
    for k in range(k_lo, k_hi):
        ni = 0
        no = 0
        n_in = 0
        n_out = 0
        for b in range(S):
            if splits[k, b]:
                in_idx[ni] = b
                ni += 1
                n_in += counts[b]
            else:
                out_idx[no] = b
                no += 1
                n_out += counts[b]
        for c in range(C):
            # Both halves summed directly (no total minus part): a configuration that
            # is flat over a half keeps an exact zero variance there.
            a = 0.0
            a2 = 0.0
            for j in range(ni):
                a += sums[c, in_idx[j]]
                a2 += sumsq[c, in_idx[j]]
            o = 0.0
            o2 = 0.0
            for j in range(no):
                o += sums[c, out_idx[j]]
                o2 += sumsq[c, out_idx[j]]
            sr_in[c] = sharpe_from_moments(a, a2, n_in)
            sr_out[c] = sharpe_from_moments(o, o2, n_out)
        _record(k, sr_in, sr_out, chosen, is_sr, oos_sr, rank, logit)
        _record(n_combos - 1 - k, sr_out, sr_in, chosen, is_sr, oos_sr, rank, logit)


@njit(cache=True, nogil=True)
def cscv(sums, sumsq, counts, splits):
    """CSCV over the combinations ``splits`` (rows of ``half_splits``, an even
    number of them in lexicographic order).

    Returns, per combination ``k``: ``chosen[k]`` (int64, the configuration with
    the best in-sample Sharpe; ties to the lowest index; -1 when every
    in-sample Sharpe is NaN), its in-sample and out-of-sample per-day Sharpe
    ``is_sr[k]``, ``oos_sr[k]``, and its out-of-sample rank ``rank[k]`` among
    the ``C`` configurations (1 = worst, ``C`` = best; a tie counts half, so
    ranks are mid-ranks). The relative rank is ``w = rank / (C + 1)`` and the
    logit ``ln(w / (1 - w))`` (NaN where ``chosen`` is -1).
    """
    n_combos = splits.shape[0]
    chosen = np.empty(n_combos, dtype=np.int64)
    is_sr = np.empty(n_combos)
    oos_sr = np.empty(n_combos)
    rank = np.empty(n_combos)
    logit = np.empty(n_combos)
    cscv_range(sums, sumsq, counts, splits, 0, n_combos // 2, chosen, is_sr, oos_sr, rank, logit)
    return chosen, is_sr, oos_sr, rank, logit
