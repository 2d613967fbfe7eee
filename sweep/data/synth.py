"""Seeded synthetic daily crypto panel, with funding rates.

The real data shipped with the project (``data/crypto_daily.parquet``) has no
multi-year funding history and is survivor-biased (dead coins are mostly
absent).  This generator produces a panel with the same long layout plus a
``funding_rate`` column, so that loaders, factor code and carry arithmetic can
be exercised end to end, and so that a sweep can be run on data whose
data-generating process is known.

What it models, and why:

* Returns: log return = per-symbol drift + beta x market factor + idiosyncratic
  noise.  Betas spread 0.5..1.8 because crypto cross-sections are dominated by
  one common factor with very unequal loadings; idiosyncratic noise is
  Student-t with 3..4.5 degrees of freedom because daily crypto returns are
  strongly fat-tailed.  Idiosyncratic volatilities are heterogeneous
  (total daily volatility roughly 2%..8%) and higher right after a listing.
* Volatility regimes: the calendar is cut into a few long segments (calm,
  normal, stressed) that scale the volatility of every symbol at once, so
  volatility clusters in time as it does in real markets.
* Price levels: each symbol is anchored at listing to a price drawn
  log-uniformly over ~11 orders of magnitude (1e-6 .. 1e5), so code that
  divides, logs or formats prices is tested on micro-priced tokens as well as
  BTC-like ones.
* Listings, delistings and gaps: about a third of the symbols list after the
  first day and about 15% stop before the last day; a coin that will be
  delisted bleeds value over its final months (the dead coins that the real
  data lacks).  A few interior gaps of 1..40 missing rows per symbol mimic
  vendor outages; prices keep moving during a gap, so the first return after
  it spans several days.  Nothing is forward-filled.
* Market cap = close x circulating supply, the supply growing slowly (token
  emissions) with a small random wobble.  Volume (USD) = market cap x a
  per-symbol turnover with a persistent component, higher on large moves and
  just after listing.
* Funding (daily sum of perpetual funding, as a fraction; positive means longs
  pay): a persistent AR(1) around ~+1e-4 per day, plus a positive loading on
  the trailing 30-day log return (crowded longs in recent winners pay more),
  with the negative side of that premium damped (exchanges' interest/clamp
  term keeps funding near its positive baseline), plus occasional
  market-wide negative regimes (deleveraging episodes).  It is null before a
  symbol's perpetual exists (some never get one) and on a few random days.

No cross-sectional alpha is planted beyond the per-symbol drift (a weak,
long-horizon persistence) and the delisting bleed, so the panel is close to a
null for most factor tests; it is a plumbing and robustness fixture, not
evidence about real markets.

Only ``numpy.random.default_rng(seed)`` is used, with a fixed order of draws,
so the same arguments always give the same frame.
"""

from __future__ import annotations

import datetime
import os
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from sweep.core.io import write_csv, write_parquet

__all__ = ["synth_panel", "write_synth"]

# Volatility regimes: multipliers of every symbol's volatility, and how often
# each regime is drawn.  Stressed periods are rarer but much louder.
_REGIME_MULT = np.array([0.6, 1.0, 1.9])
_REGIME_PROB = np.array([0.35, 0.45, 0.20])
_REGIME_MEAN_DAYS = 240.0

_MARKET_VOL = 0.022  # daily, in the "normal" regime
_MARKET_DRIFT = 0.0007  # daily log drift: a long-run bull market, ~+29%/yr
_LOGRET_CLIP = (-2.3, 1.6)  # -90% .. +400% in a day: extreme but real-looking

_FUNDING_MEAN = 1.0e-4
_FUNDING_CAP = 0.0075  # exchanges cap funding; keeps t-noise from running away

_VOLUME_LOG_SD = 0.35  # stationary sd of the persistent log-volume component


def _regime_path(rng: np.random.Generator, n_days: int) -> np.ndarray:
    """Per-day volatility multiplier made of a few long regimes."""
    # Enough exponential segments to cover the calendar with room to spare.
    n_seg = int(n_days / _REGIME_MEAN_DAYS) + 8
    lengths = np.maximum(1, rng.exponential(_REGIME_MEAN_DAYS, n_seg).astype(np.int64))
    states = rng.choice(len(_REGIME_MULT), size=n_seg, p=_REGIME_PROB)
    path = np.repeat(_REGIME_MULT[states], lengths)
    while path.size < n_days:  # only for absurdly long calendars
        path = np.concatenate([path, path])
    return path[:n_days]


def _interval_mask(n_days: int, n_symbols: int, sym: np.ndarray,
                   start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Boolean (day, symbol) mask of the union of [start, stop) intervals.

    A difference array keeps this O(T*N + intervals) without a Python loop.
    """
    diff = np.zeros((n_days + 1, n_symbols), dtype=np.int32)
    np.add.at(diff, (np.clip(start, 0, n_days), sym), 1)
    np.add.at(diff, (np.clip(stop, 0, n_days), sym), -1)
    return np.cumsum(diff[:n_days], axis=0) > 0


def synth_panel(n_symbols: int = 200, n_days: int = 3650, seed: int = 0,
                start: datetime.date = date(2015, 1, 1)) -> pl.DataFrame:
    """Build a synthetic daily panel sorted by (date, symbol).

    Columns: ``date`` (Date), ``symbol`` (String, "S000", ...), ``close``,
    ``volume`` (USD), ``market_cap`` (USD), ``funding_rate`` (daily sum,
    fraction, nullable); all floats are float64.
    """
    if n_symbols < 1 or n_days < 1:
        raise ValueError("n_symbols and n_days must be >= 1")
    if isinstance(start, datetime.datetime):  # a datetime would make a Datetime column
        start = start.date()
    T, N = int(n_days), int(n_symbols)
    rng = np.random.default_rng(seed)
    day = np.arange(T)[:, None]  # (T, 1), broadcasts against (1, N) / (N,)

    # ---- symbol life cycle -------------------------------------------------
    # Exact shares rather than coin flips, so that even a small test panel has
    # late listings and delistings.
    late = np.zeros(N, dtype=bool)
    late[rng.permutation(N)[: round(N / 3)]] = True
    # Later years see more listings, hence the u**0.7 skew.
    latest_listing = max(1, int(0.85 * T))
    list_day = np.where(late, 1 + (rng.random(N) ** 0.7 * (latest_listing - 1)).astype(np.int64), 0)
    list_day = np.minimum(list_day, T - 1)
    min_life = max(1, min(60, T // 4))
    delist_wanted = np.zeros(N, dtype=bool)
    delist_wanted[rng.permutation(N)[: round(0.15 * N)]] = True
    room = (T - 2) - (list_day + min_life)  # a delisted coin's last day is <= T-2
    can_delist = delist_wanted & (room >= 0)
    last_day = np.where(
        can_delist,
        list_day + min_life + (rng.random(N) * (np.maximum(room, 0) + 1)).astype(np.int64),
        T - 1,
    )
    life = last_day - list_day + 1

    # ---- returns -------------------------------------------------------------
    regime = _regime_path(rng, T)
    mkt_df = 4.0
    mkt = _MARKET_DRIFT + _MARKET_VOL * regime * (
        rng.standard_t(mkt_df, T) / np.sqrt(mkt_df / (mkt_df - 2.0)))

    beta = rng.uniform(0.5, 1.8, N)
    idio_vol = np.exp(rng.uniform(np.log(0.012), np.log(0.055), N))
    t_df = rng.uniform(3.0, 4.5, N)
    # Unit-variance Student-t, so idio_vol really is the (finite) std.
    eps = rng.standard_t(t_df, size=(T, N)) / np.sqrt(t_df / (t_df - 2.0))
    # Log drift carries the variance drag: for a given expected simple return
    # the most volatile tokens (idiosyncratic or high-beta) shrink in log
    # terms, as lottery-like small caps do.  Without it a decade of 5%-a-day
    # random walks would produce absurd market caps.
    regime_var = float(np.mean((regime ** 0.6) ** 2))
    mkt_var = _MARKET_VOL ** 2 * float(np.mean(regime ** 2))
    drift = (rng.normal(0.0, 0.0004, N)
             - 0.5 * idio_vol ** 2 * regime_var
             - 0.5 * beta * (beta - 1.0) * mkt_var)

    since_list = day - list_day  # negative before listing: harmless, masked later
    # New listings are far more volatile for their first couple of months.
    fresh = 1.0 + 1.2 * np.exp(-np.maximum(since_list, 0) / 45.0)
    # Idiosyncratic risk rises in stressed regimes too, but less than the factor.
    idio = idio_vol * (regime[:, None] ** 0.6) * fresh * eps

    # Coins that will die bleed first: a negative drift over their last months.
    bleed_rate = np.where(can_delist, rng.uniform(0.002, 0.008, N), 0.0)
    bleed_len = np.minimum(120, life)
    bleeding = (day > last_day - bleed_len) & (day <= last_day)
    logret = drift + beta * mkt[:, None] + idio - bleed_rate * bleeding
    np.clip(logret, *_LOGRET_CLIP, out=logret)
    logret[0] = 0.0

    # Anchor each path so the listing-day price sits at a chosen level; the
    # pre-listing part of the path is never emitted.
    cum = np.cumsum(logret, axis=0)
    log10_p0 = rng.uniform(-6.0, 5.0, N)
    cols = np.arange(N)
    logp = cum - cum[list_day, cols] + log10_p0 * np.log(10.0)
    close = np.exp(logp)

    # ---- supply and market cap -------------------------------------------------
    # Listing-day size scales with how far the market has come: the later and
    # the richer the market, the larger a newcomer's debut.
    mkt_level = np.cumsum(mkt) - mkt[0]
    log_mcap0 = rng.uniform(np.log(1e6), np.log(2e9), N) + mkt_level[list_day]
    emission = np.where(rng.random(N) < 0.3, 0.0, rng.uniform(0.0, 0.25, N))  # per year
    wobble = np.cumsum(rng.normal(0.0, 0.002, (T, N)), axis=0)
    wobble -= wobble[list_day, cols]
    log_supply = (log_mcap0 - logp[list_day, cols]) + emission * since_list / 365.0 + wobble
    market_cap = close * np.exp(log_supply)

    # ---- funding and volume: persistent components ---------------------------
    # Trailing 30-day return, never reaching back before the listing.
    ref = np.maximum(day - 30, list_day)
    ret30 = logp - np.take_along_axis(logp, ref, axis=0)

    n_neg = 1 + rng.poisson(T / 1000.0)
    neg_start = rng.integers(0, T, n_neg)
    neg_len = rng.integers(7, 61, n_neg)
    neg_depth = rng.uniform(2e-4, 6e-4, n_neg)
    neg_regime = np.zeros(T + 1)
    np.add.at(neg_regime, neg_start, -neg_depth)
    np.add.at(neg_regime, np.minimum(neg_start + neg_len, T), neg_depth)
    neg_regime = np.cumsum(neg_regime)[:T]

    f_mu = rng.normal(_FUNDING_MEAN, 3e-5, N)
    f_load = rng.uniform(2e-4, 6e-4, N)
    f_phi = rng.uniform(0.85, 0.97, N)
    f_sd = np.exp(rng.uniform(np.log(5e-5), np.log(2e-4), N))
    f_shock = rng.standard_t(4.0, size=(T, N)) / np.sqrt(2.0) * f_sd * np.sqrt(1.0 - f_phi ** 2)

    v_phi = 0.9
    v_shock = rng.normal(0.0, _VOLUME_LOG_SD * np.sqrt(1.0 - v_phi ** 2), (T, N))

    # The AR(1) recursions are inherently sequential in time; looping over
    # days with vector ops over symbols stays in the low milliseconds.
    f_ar = np.empty((T, N))
    v_ar = np.empty((T, N))
    f_ar[0] = f_shock[0] / np.sqrt(1.0 - f_phi ** 2)  # start in the stationary law
    v_ar[0] = v_shock[0] / np.sqrt(1.0 - v_phi ** 2)
    for t in range(1, T):
        f_ar[t] = f_phi * f_ar[t - 1] + f_shock[t]
        v_ar[t] = v_phi * v_ar[t - 1] + v_shock[t]

    # Exchanges add an interest component and clamp the gap between it and the
    # premium, so funding sticks near its positive baseline and falls below it
    # less readily than it rises: the negative side of the premium is damped.
    # Market-wide negative regimes (forced deleveraging) are not damped.
    premium = f_load * ret30 + f_ar
    premium = np.where(premium < 0.0, 0.5 * premium, premium)
    funding = f_mu + premium + neg_regime[:, None]
    np.clip(funding, -_FUNDING_CAP, _FUNDING_CAP, out=funding)

    # A perpetual usually appears some time after spot listing; some never do.
    perp_lag = np.where(rng.random(N) < 0.5, 0, rng.exponential(180.0, N).astype(np.int64))
    perp_lag = np.where(rng.random(N) < 0.1, T, perp_lag)
    funding_missing = (day < list_day + perp_lag) | (rng.random((T, N)) < 0.003)

    # Volume: turnover of market cap, with a unit-mean persistent lognormal
    # wobble, spikes on big moves and a burst of trading after listing.
    turnover = np.exp(rng.uniform(np.log(0.003), np.log(0.3), N))
    volume = market_cap * turnover * np.exp(v_ar - 0.5 * _VOLUME_LOG_SD ** 2) \
        * (1.0 + 6.0 * np.abs(logret)) \
        * (1.0 + 2.0 * np.exp(-np.maximum(since_list, 0) / 30.0))

    # ---- which rows exist --------------------------------------------------------
    alive = (day >= list_day) & (day <= last_day)
    n_gaps = rng.poisson(2.5, N)
    g_sym = np.repeat(cols, n_gaps)
    g_len = np.minimum(40, 1 + rng.exponential(6.0, g_sym.size).astype(np.int64))
    # Gaps are strictly interior: the listing day and the last day stay.
    g_room = last_day[g_sym] - list_day[g_sym] - g_len
    g_start = list_day[g_sym] + 1 + (rng.random(g_sym.size) * np.maximum(g_room, 0)).astype(np.int64)
    ok = g_room >= 1
    gap = _interval_mask(T, N, g_sym[ok], g_start[ok], g_start[ok] + g_len[ok])
    present = alive & ~gap

    # Row-major nonzero walks day by day, symbols ascending: the required sort.
    t_idx, s_idx = np.nonzero(present)
    width = max(3, len(str(N - 1)))
    names = pl.Series("symbol", [f"S{i:0{width}d}" for i in range(N)], dtype=pl.String)
    dates = pl.date_range(start, start + datetime.timedelta(days=T - 1), interval="1d", eager=True)

    f_rows = funding[t_idx, s_idx]
    f_rows[funding_missing[t_idx, s_idx]] = np.nan
    return pl.DataFrame(
        [
            dates.gather(t_idx).alias("date"),
            names.gather(s_idx),
            pl.Series("close", close[t_idx, s_idx], dtype=pl.Float64),
            pl.Series("volume", volume[t_idx, s_idx], dtype=pl.Float64),
            pl.Series("market_cap", market_cap[t_idx, s_idx], dtype=pl.Float64),
            pl.Series("funding_rate", f_rows, dtype=pl.Float64).fill_nan(None),
        ]
    )


def write_synth(path: str | os.PathLike, **kwargs) -> None:
    """Write ``synth_panel(**kwargs)`` to ``path`` atomically.

    CSV if the name ends with ``.csv`` (any case), parquet otherwise.  The data
    goes to a hidden temporary file in the same directory (same filesystem, so
    the rename is atomic) and replaces ``path`` only once fully written:
    readers never see a half-written file.
    """
    path = Path(path)
    df = synth_panel(**kwargs)
    (write_csv if path.suffix.lower() == ".csv" else write_parquet)(df, path)  # sweep.core.io: fsync, rename
