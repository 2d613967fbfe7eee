"""One configuration's factor diagnostics, from its factor panel to the rows of the five tables
of a diagnostics study (``sweep.study.diagnostics``): the kernels of ``kernels.diagnostics``
give the daily series, numpy averages them over the days.

Conventions (what ``summary.parquet`` and the others hold; README "Factor diagnostics"):
the factor at ``t`` is the feature the strategy ranks, NaN where the name is not eligible
(universe filters, feature and close finite), not sign-flipped; the forward return of
horizon ``h`` at ``t`` is ``close[t+h] / close[t] - 1``, missing past the evaluation
window's end; every average over days counts the days where its value is finite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from kernels import diagnostics as K

from sweep.results.schema import SCHEMA_VERSION
from sweep.stats.ic import ic_stats, mean_stderr

SUMMARY_STATS = ("ic_mean", "ic_std", "ic_ir", "ic_t", "ic_p", "ic_positive", "n_days", "spread_mean",
                 "spread_stderr", "long_side", "rank_autocorr_1", "turnover_top", "turnover_bottom")


@dataclass
class Inputs:
    """What every configuration of a study shares: the forward returns of each horizon (and of
    one day, for the books), the window ``s .. e`` and the number of autocorrelation lags."""

    fwd: dict[int, np.ndarray]  # horizon -> (T, N)
    horizons: tuple[int, ...]
    lags: int
    s: int
    e: int


def forward_panels(close: np.ndarray, horizons: tuple[int, ...], e: int) -> dict[int, np.ndarray]:
    """Forward returns of each horizon and of 1 day (the quantile books), computed once."""
    close = np.ascontiguousarray(close, dtype=np.float64)
    return {h: K.forward_returns(close, h, e) for h in sorted({1, *horizons})}


@dataclass
class Diagnostics:
    """One configuration's daily series: ``ic`` ``(H, D)``, ``qmean`` ``(H, D, q)`` (the daily
    mean forward return of each quantile), ``nav`` ``(D, q)`` (the quantile books),
    ``autocorr`` ``(lags, D)`` and ``turnover`` ``(D, q)``; ``D`` the window's days."""

    ic: np.ndarray
    qmean: np.ndarray
    nav: np.ndarray
    autocorr: np.ndarray
    turnover: np.ndarray


def diagnose(x: np.ndarray, q: int, inp: Inputs) -> Diagnostics:
    """The daily diagnostics of factor panel ``x`` (NaN = not eligible) with ``q`` quantiles."""
    s, e = inp.s, inp.e
    labels = K.quantile_labels(x, q, s, e)
    ic = np.stack([K.rank_ic(x, inp.fwd[h], s, e) for h in inp.horizons])
    qmean = np.stack([K.quantile_means(labels, inp.fwd[h], q, s) for h in inp.horizons])
    # Book k holds quantile k of day t over day t + 1: it earns that day's mean 1-day return (0
    # when the quantile is empty or the day has no quantiles); its NAV is 1 on the first day.
    daily = K.quantile_means(labels, inp.fwd[1], q, s)
    growth = np.where(np.isfinite(daily[:-1]), 1.0 + daily[:-1], 1.0)
    nav = np.vstack([np.ones((1, q)), np.cumprod(growth, axis=0)])
    autocorr = K.rank_autocorr(K.daily_ranks(x, s, e), inp.lags).T
    return Diagnostics(ic, qmean, nav, autocorr, K.quantile_turnover(labels, q))


def _finite_means(a: np.ndarray) -> np.ndarray:
    """Row means of ``a`` over its finite values (NaN for a row without any)."""
    ok = np.isfinite(a)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, a, 0.0).sum(axis=1) / np.maximum(n, 1), np.nan)


def chunk_tables(params: pl.DataFrame, configs: list[dict[str, Any]], results: list[Diagnostics],
                 dates: np.ndarray, inp: Inputs) -> dict[str, pl.DataFrame]:
    """The rows of the five tables for a chunk of configurations (``params``: their
    ``config_id`` and parameter columns, in the order of ``configs``)."""
    H, D = len(inp.horizons), len(dates)
    hs = np.array(inp.horizons, dtype=np.int32)
    ids = params["config_id"].to_list()
    version = pl.lit(SCHEMA_VERSION, dtype=pl.Int32).alias("schema_version")
    summary: dict[str, list] = {k: [] for k in SUMMARY_STATS}
    quant: dict[str, list] = {k: [] for k in ("config_id", "horizon", "quantile", "mean", "stderr", "n_days",
                                               "turnover")}
    ic_parts, book_parts, ac_parts = [], [], []
    for cid, p, r in zip(ids, configs, results):
        q = r.qmean.shape[2]
        turnover = _finite_means(r.turnover.T)
        autocorr = _finite_means(r.autocorr)
        for j in range(H):
            st = ic_stats(r.ic[j])
            spread, spread_se, _ = mean_stderr(r.qmean[j, :, q - 1] - r.qmean[j, :, 0])
            st.update(spread_mean=spread, spread_stderr=spread_se, long_side=p["long"] or "",
                      rank_autocorr_1=float(autocorr[0]), turnover_top=float(turnover[q - 1]),
                      turnover_bottom=float(turnover[0]))
            for k in SUMMARY_STATS:
                summary[k].append(st[k])
            for k in range(q):
                mean, se, n = mean_stderr(r.qmean[j, :, k])
                for name, v in (("config_id", cid), ("horizon", int(hs[j])), ("quantile", k + 1), ("mean", mean),
                                ("stderr", se), ("n_days", n), ("turnover", float(turnover[k]))):
                    quant[name].append(v)
        ic_parts.append(pl.DataFrame({"config_id": [cid] * (H * D), "date": np.tile(dates, H),
                                      "horizon": np.repeat(hs, D), "ic": r.ic.ravel()}))
        book_parts.append(pl.DataFrame({"config_id": [cid] * (D * q), "date": np.repeat(dates, q),
                                        "quantile": np.tile(np.arange(1, q + 1, dtype=np.int32), D),
                                        "nav": r.nav.ravel()}))
        ac_parts.append(pl.DataFrame({"config_id": [cid] * inp.lags,
                                      "lag": np.arange(1, inp.lags + 1, dtype=np.int32), "autocorr": autocorr}))
    rows = params[np.repeat(np.arange(len(ids)), H)]
    floats = [k for k in SUMMARY_STATS if k not in ("n_days", "long_side")]
    summary_frame = pl.concat([rows, pl.DataFrame({
        "horizon": pl.Series(np.tile(hs, len(ids)), dtype=pl.Int32),
        **{k: pl.Series(summary[k], dtype=pl.Float64) for k in floats[:6]},
        "n_days": pl.Series(summary["n_days"], dtype=pl.Int64),
        **{k: pl.Series(summary[k], dtype=pl.Float64) for k in floats[6:8]},
        "long_side": pl.Series(summary["long_side"], dtype=pl.Utf8),
        **{k: pl.Series(summary[k], dtype=pl.Float64) for k in floats[8:]},
    })], how="horizontal").with_columns(version)
    quant_frame = pl.DataFrame(quant, schema={"config_id": pl.Utf8, "horizon": pl.Int32, "quantile": pl.Int32,
                                              "mean": pl.Float64, "stderr": pl.Float64, "n_days": pl.Int64,
                                              "turnover": pl.Float64}).with_columns(version)
    return {
        "summary.parquet": summary_frame,
        "ic.parquet": pl.concat(ic_parts).with_columns(pl.col("horizon").cast(pl.Int32), version),
        "quantiles.parquet": quant_frame,
        "books.parquet": pl.concat(book_parts).with_columns(version),
        "autocorr.parquet": pl.concat(ac_parts).with_columns(pl.col("autocorr").cast(pl.Float64), version),
    }


__all__ = ["Diagnostics", "Inputs", "SUMMARY_STATS", "chunk_tables", "diagnose", "forward_panels"]
