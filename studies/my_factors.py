"""A researcher's own factors, the worked example of the README's "Your own factor".

Named by studies/my_factor_study.toml as "my_factors.py:amihud" and
"my_factors.py:momentum_skip" (a path relative to the study file). Each function
takes the panel's read-only (T, N) float64 arrays and its parameters and returns
a (T, N) float64 feature whose value on day t reads days up to t only; NaN means
"not eligible that day". Run the study with
    sweep run studies/my_factor_study.toml
and check the factors for lookahead with
    sweep audit lookahead studies/my_factor_study.toml
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import sweep


def trailing_mean(x, window):
    """Mean of x[t-window+1 .. t] on day t; NaN unless all `window` values are finite."""
    out = np.full(x.shape, np.nan)
    if window <= x.shape[0]:
        out[window - 1:] = sliding_window_view(x, window, axis=0).mean(axis=-1)
    return out


@sweep.factor(long="low", window=30, needs=("volume",))
def amihud(panel, window):
    """Amihud illiquidity: the mean over the window of |return| per million traded.

    Long the liquid coins (low values), short the illiquid ones. `volume` is the
    day's traded value in the quote currency; a day with less than one unit
    traded counts as one, so the ratio stays finite.
    """
    impact = np.abs(panel.returns) / np.maximum(panel.volume, 1.0) * 1e6
    return trailing_mean(impact, window)


@sweep.factor(long="high", window=60)
def momentum_skip(panel, window, skip=7):
    """Momentum that skips the latest days: the sum of the log returns of days
    t-window+1 .. t-skip (the last `skip` days, prone to short-term reversal, left out).

    `skip` is a study parameter like any other (default 7): set it in [backtest]
    or sweep it in [grid].
    """
    if not 0 <= skip < window:
        raise ValueError(f"skip = {skip} must be at least 0 and below window = {window}")
    l = panel.log_returns
    out = np.full(l.shape, np.nan)
    span = window - skip  # the returns summed, ending `skip` days ago
    sums = sliding_window_view(l, span, axis=0).sum(axis=-1)  # sums[k] covers days k .. k+span-1
    out[window - 1:] = sums[:l.shape[0] - window + 1]
    return out
