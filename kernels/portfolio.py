"""The portfolio recursion (SEMANTICS §7-§8) over precomputed daily rankings.

Weights live in a dense vector of length N, but every per-day loop runs over
the list of held symbols only, so a day costs O(held) and a rebalance
O(bucket sizes): a configuration costs about one pass over the panel's held
cells instead of ``T * N``.

The weight path never depends on costs (drift divides by ``1 + P + F``, a
rebalance sets the target), so the pre-cost series of §8 is ``P + F`` of the
same pass and needs no second backtest.

Arguments travel in small tuples instead of long positional lists:
``panels = (q, funding)``, ``ranking = (order, count, ivol, feature)``, and
the daily outputs as one ``(N_SERIES, n)`` array whose rows are the
``kernels.metrics.S_*`` constants.
"""

import numpy as np
from numba import njit

from .metrics import N_SERIES, S_COST, S_FUNDING, S_GROSS, S_LONG, S_NET, S_RET, S_RET_PRE, S_SHORT, S_TURNOVER

# Integer parameters, one row per configuration (``ip``).
I_RANK = 0  # index into the stack of rankings
I_VOL = 1  # index into the stack of inverse volatilities, -1 for equal weights
I_FEAT = 2  # index into the stack of features (threshold selection only)
I_MODE = 3  # MODE_QUANTILE, MODE_TOP_N or MODE_THRESHOLD
I_Q = 4
I_TOP_N = 5
I_LONG_LOW = 6  # 1: long the bottom bucket, 0: long the top bucket
I_K = 7  # rebalance_days
I_PHASE = 8
I_DRIFT = 9  # 1: hold = "drift", 0: hold = "constant"
I_FUNDING = 10  # 1: charge funding (SEMANTICS §8), 0: funding = false (F = 0)
N_INT = 11

# Float parameters (``fp``).
F_LONG = 0  # long_allocation
F_SHORT = 1  # short_allocation
F_BUFFER = 2
F_COST = 3  # (fee_bps + slippage_bps) / 10_000
F_MAX_DAYS = 4
N_FLOAT = 5

MODE_QUANTILE = 0
MODE_TOP_N = 1
MODE_THRESHOLD = 2  # long-only: every eligible symbol with feature <= max_days
MODE_TARGET = 3  # SEMANTICS §11 trend rules: w* read from a target panel (the feature slot), not ranked


@njit(inline="always")
def _take(i, x, w, buffer, mark, tgt, tw, nt, tau):
    """Append symbol ``i`` with target ``x`` to ``tgt``/``tw``; return ``(nt, tau)``. The one
    place of SEMANTICS §8 step 4's buffer: a non-zero target within ``buffer * |x|`` of the
    held weight keeps the held weight (and trades nothing)."""
    if buffer > 0.0 and x != 0.0 and abs(x - w[i]) <= buffer * abs(x):
        x = w[i]
    tau += abs(x - w[i])
    mark[i] = True
    tgt[nt] = i
    tw[nt] = x
    return nt + 1, tau


# Inlined at the IR level: a call that passes arrays costs reference-count
# updates per array, which at one rebalance a day outweighed the work itself.
@njit(inline="always")
def _target_side(order, t, lo, hi, ivol, use_vol, alloc, w, buffer, mark, tgt, tw, nt, tau):
    """Append one side's targets (``order[t, lo:hi]``) to ``tgt``/``tw``; return ``(nt, tau)``.

    The buffer and the turnover against the current weights are applied as
    each target is made, so a rebalance reads every target once.
    """
    k = hi - lo
    if k <= 0:
        return nt, tau
    scale = 0.0
    each = 0.0
    if use_vol:
        # ivol is 1 / volatility, precomputed once per study.
        inv_sum = 0.0
        for j in range(lo, hi):
            inv_sum += ivol[t, order[t, j]]
        scale = alloc / inv_sum
    else:
        each = alloc / k
    for j in range(lo, hi):
        i = order[t, j]
        nt, tau = _take(i, scale * ivol[t, i] if use_vol else each, w, buffer, mark, tgt, tw, nt, tau)
    return nt, tau


@njit(inline="always")
def _target_read(order, t, n, target, w, buffer, mark, tgt, tw, nt, tau):
    """``_target_side`` for precomputed targets (``MODE_TARGET``, SEMANTICS §11.8): the
    symbols ``order[t, :n]`` get ``target[t, i]``, buffered as in §8 step 4."""
    for j in range(n):
        i = order[t, j]
        nt, tau = _take(i, target[t, i], w, buffer, mark, tgt, tw, nt, tau)
    return nt, tau


@njit(cache=True, nogil=True)
def simulate(panels, ranking, ip, fp, s, e, series, weights_out):
    """Run one configuration over days ``s .. e`` (inclusive); fill its daily series.

    ``panels = (q, funding)``: ``q`` is the carried-forward return panel with its
    NaNs (before a listing) replaced by 0, ``funding`` the funding panel with
    NaNs replaced by 0 or an empty ``(0, 0)`` array; both as ``kernel_panels`` in
    ``sweep.engine.workspace`` prepares them, so the inner loops carry no
    finiteness tests. ``ranking = (order, count, ivol, feature)``: the
    configuration's ranking, the ``(T, N)`` inverse of the risk-parity
    volatility (``(0, 0)`` for equal weights) and the feature panel (read by
    threshold selection only; with ``MODE_TARGET`` it is the target panel
    ``w*`` and ``order[t, :count[t]]`` lists its non-zero symbols). ``ip``/``fp`` are the parameter rows (``I_*``,
    ``F_*``). Short weights are negative; the long side gets ``+fp[F_LONG]`` of
    NAV and the short side ``-fp[F_SHORT]``. ``series`` ``(N_SERIES, e - s + 1)``
    receives the daily series, one row per ``kernels.metrics.S_*``;
    ``weights_out`` is filled when it has rows (the net book's weights: 0 from
    its ruin on). Returns the rebalance count of the schedule.

    A ruined book (§8) has ``R = -1`` on its ruin day and every series 0 after
    it; ``R_pre`` is the pre-cost book's own series, closed on its own ruin day.
    """
    q, funding = panels
    order, count, ivol, feature = ranking
    N = q.shape[1]
    has_funding = funding.shape[0] > 0 and ip[I_FUNDING] == 1
    use_vol = ip[I_VOL] >= 0
    record = weights_out.shape[0] > 0
    mode = ip[I_MODE]
    k_reb = ip[I_K]
    phase = ip[I_PHASE]
    drift = ip[I_DRIFT] == 1
    long_low = ip[I_LONG_LOW] == 1
    a_long = fp[F_LONG]
    a_short = -fp[F_SHORT]
    buffer = fp[F_BUFFER]
    cost_rate = fp[F_COST]
    max_days = fp[F_MAX_DAYS]
    q_div = ip[I_Q]
    top_n = ip[I_TOP_N]

    w = np.zeros(N)
    tw = np.empty(N)
    mark = np.zeros(N, dtype=np.bool_)
    held = np.empty(N, dtype=np.int64)
    tgt = np.empty(N, dtype=np.int64)
    n_held = 0
    n_reb = 0
    nl = 0
    ns = 0
    sw = 0.0
    sa = 0.0
    # Ruin (SEMANTICS §8): the net book closes when its NAV reaches zero. The
    # pre-cost book follows the same weights until then; after a ruin by cost
    # it goes on along its own path, so the weight path runs while either is open.
    net_open = True
    pre_open = True
    next_reb = s + phase  # a counter instead of a modulo per day
    for t in range(s, e + 1):
        d = t - s
        is_reb = t == next_reb
        if is_reb:
            next_reb += k_reb
            n_reb += 1  # the schedule counts a closed book's rebalance days too
        for k in range(N_SERIES):
            series[k, d] = 0.0
        if record:
            for i in range(N):
                weights_out[d, i] = 0.0
        if not pre_open:
            continue
        # 1-2. What yesterday's book earns today: price and funding.
        # (2-D indexing, not row views: a view per day costs reference counting.)
        P = 0.0
        F = 0.0
        for j in range(n_held):
            P += w[held[j]] * q[t, held[j]]
        if has_funding:
            for j in range(n_held):
                F -= w[held[j]] * funding[t, held[j]]
        g = 1.0 + P + F
        # 3. Ruin by price closes both books (they hold the same weights while open).
        if g <= 0.0:
            series[S_RET_PRE, d] = -1.0
            if net_open:
                series[S_RET, d] = -1.0
                series[S_FUNDING, d] = F
            net_open = False
            pre_open = False
            for j in range(n_held):
                w[held[j]] = 0.0
            n_held = 0
            continue
        # Drift with prices; "constant" keeps the weights (no cost).
        if drift and n_held > 0:
            # One division per day, not per symbol: the product differs from
            # w * (1 + q) / g by at most an ulp.
            inv_g = 1.0 / g
            sw = 0.0
            sa = 0.0
            for j in range(n_held):
                i = held[j]
                x = w[i] * (1.0 + q[t, i]) * inv_g
                w[i] = x
                sw += x
                sa += abs(x)
        # 4. Rebalance.
        tau = 0.0
        if is_reb:
            n = count[t]
            nt = 0
            if mode == MODE_TARGET:
                nt, tau = _target_read(order, t, n, feature, w, buffer, mark, tgt, tw, nt, tau)
            else:
                # The bottom side order[t, 0:k], then the top side order[t, hi_lo:n] (none for
                # threshold selection). One call site in a loop: each inlined copy of
                # _target_side cost a second of the first run's compilation.
                if mode == MODE_THRESHOLD:
                    k = 0
                    while k < n and feature[t, order[t, k]] <= max_days:
                        k += 1
                    lo_alloc = a_long
                    hi_alloc = 0.0
                    hi_lo = n
                else:
                    k = n // q_div if mode == MODE_QUANTILE else min(top_n, n // 2)
                    lo_alloc = a_long if long_low else a_short
                    hi_alloc = a_short if long_low else a_long
                    hi_lo = n - k
                for side in range(2):
                    lo = 0 if side == 0 else hi_lo
                    hi = k if side == 0 else n
                    alloc = lo_alloc if side == 0 else hi_alloc
                    nt, tau = _target_side(order, t, lo, hi, ivol, use_vol, alloc, w, buffer, mark, tgt, tw,
                                           nt, tau)
            # Held names without a target are sold.
            for j in range(n_held):
                i = held[j]
                if not mark[i]:
                    tau += abs(w[i])
                    w[i] = 0.0
            n_held = 0
            nl = 0
            ns = 0
            sw = 0.0
            sa = 0.0
            for j in range(nt):
                i = tgt[j]
                x = tw[j]
                w[i] = x
                mark[i] = False
                if x != 0.0:
                    held[n_held] = i
                    n_held += 1
                    if x > 0.0:
                        nl += 1
                    else:
                        ns += 1
                    sw += x
                    sa += abs(x)
        series[S_RET_PRE, d] = P + F
        if not net_open:
            continue
        # 5. Net of costs; a cost of the whole NAV or more ruins the net book.
        C = tau * cost_rate
        series[S_TURNOVER, d] = tau
        series[S_COST, d] = C
        series[S_FUNDING, d] = F
        if C >= 1.0:
            series[S_RET, d] = -1.0
            net_open = False
            continue
        series[S_RET, d] = g * (1.0 - C) - 1.0
        series[S_LONG, d] = nl
        series[S_SHORT, d] = ns
        series[S_NET, d] = sw
        series[S_GROSS, d] = sa
        if record:
            for j in range(n_held):
                weights_out[d, held[j]] = w[held[j]]
    return n_reb
