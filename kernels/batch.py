"""Many configurations in one call: the runner's unit of parallel work.

One call runs a contiguous chunk of configurations with the GIL released, so
a thread pool scales across cores with shared, read-only panels. The daily
series buffers are allocated once per chunk and reused by every
configuration: memory does not grow with the chunk. Arguments come in small
tuples (panels, stacks, block outputs), as ``portfolio.simulate`` takes them.

Numba's cache is keyed on this file alone, not on the kernels it calls: a
change to ``portfolio.py`` or ``metrics.py`` (a new metric, SEMANTICS §8's
ruin, the funding switch, §11's target mode, the buffer rule) must come with an edit here, or a
warm cache keeps the old machine code.
"""

import numpy as np
from numba import njit

from .metrics import N_METRICS, N_SERIES, S_RET, compute_metrics
from .portfolio import I_FEAT, I_RANK, I_VOL, simulate


@njit(cache=True, nogil=True)
def run_batch(panels, stacks, ip, fp, s, e, returns_out, blocks):
    """Metrics ``(C, N_METRICS)`` of the ``C`` configurations ``ip[c], fp[c]``.

    ``panels = (q, funding)`` as ``portfolio.simulate`` reads them;
    ``stacks = (order_stack, count_stack, ivol_stack, feature_stack)``: each
    configuration reads ``order_stack[ip[c, I_RANK]]``,
    ``ivol_stack[ip[c, I_VOL]]`` (when >= 0) and ``feature_stack[ip[c, I_FEAT]]``
    (when >= 0): the stacks hold every distinct array once for the whole study.
    When ``returns_out`` has rows, row ``c`` receives configuration ``c``'s
    daily net returns. ``blocks = (block_sums, block_sumsq)``: when they have
    rows (shape ``(C, S)``), they receive the sums of the net returns and of
    their squares over ``S`` contiguous blocks of the window (the first
    ``n % S`` blocks one day longer): what the overfitting statistics need,
    without keeping the ``C x n`` return matrix.
    """
    order_stack, count_stack, ivol_stack, feature_stack = stacks
    block_sums, block_sumsq = blocks
    C = ip.shape[0]
    n = e - s + 1
    out = np.empty((C, N_METRICS))
    series = np.empty((N_SERIES, n))
    no_weights = np.empty((0, 0))
    no_panel = np.empty((0, 0))
    for c in range(C):
        r = ip[c, I_RANK]
        v = ip[c, I_VOL]
        f = ip[c, I_FEAT]
        ivol = ivol_stack[v] if v >= 0 else no_panel
        feature = feature_stack[f] if f >= 0 else no_panel
        n_reb = simulate(panels, (order_stack[r], count_stack[r], ivol, feature), ip[c], fp[c], s, e,
                         series, no_weights)
        compute_metrics(series, n_reb, out[c])
        if returns_out.shape[0] > 0:
            # Element by element: a row assignment compiles Numba's broadcasting and its
            # error messages, seconds of the first run for a copy.
            for d in range(n):
                returns_out[c, d] = series[S_RET, d]
        if block_sums.shape[0] > 0:
            S = block_sums.shape[1]
            base = n // S
            extra = n % S
            start = 0
            for b in range(S):
                stop = start + base + (1 if b < extra else 0)
                s1 = 0.0
                s2 = 0.0
                for d in range(start, stop):
                    s1 += series[S_RET, d]
                    s2 += series[S_RET, d] * series[S_RET, d]
                block_sums[c, b] = s1
                block_sumsq[c, b] = s2
                start = stop
    return out
