"""The book: the sleeves under strategy weights, its metrics, contributions and files
(the conventions are in ``sweep.book.portfolio``'s docstring)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sweep.core.errors import SweepError
from sweep.core.version import __version__
from sweep.results import SCHEMA_VERSION
from sweep.book.relevant import live_params
from sweep.book.series import Sleeves, bankruptcies, book_metrics, book_series, correlation, rerun
from sweep.book.sources import Choice, load_data, select
from sweep.book.weights import (NoWeights, Period, check_method, static_weights, strategy_weights,
                                walk_forward_weights)

PORTFOLIO_SCHEMA_VERSION = 1
DEFAULT_OUT = Path("results") / "portfolio"

# Which book metrics are §9 on the book's own return series, and how the others are built.
CONVENTIONS = {
    "returns": "R_book[t] = sum_s w_s[t] * R_s[t]: a constant mix of the sleeves, re-mixed daily at no cost",
    "total_return, cagr, ann_vol, sharpe, sortino, max_drawdown, calmar, win_rate":
        "SEMANTICS §9 on R_book",
    "sharpe_pre_cost": "Sharpe of sum_s w_s[t] * R_pre_cost_s[t]",
    "turnover, cost_paid, funding_return":
        "SEMANTICS §9 on the weighted sums sum_s w_s[t] * x_s[t] of the sleeves' daily turnover, cost and "
        "funding (no netting of trades between sleeves)",
    "avg_long, avg_short, avg_net_exposure, avg_gross_exposure":
        "of the combined holdings H[t] = sum_s w_s * W_s[t] at each close (opposite positions net out)",
    "n_rebalances": "days on which at least one sleeve rebalances",
}


@dataclass
class Portfolio:
    choices: list[Choice]
    method: str
    walk_forward_days: int | None
    sleeves: Sleeves
    W: np.ndarray  # (n, S) daily weights
    periods: list[Period]
    next_weights: np.ndarray | None  # from the whole window: what a live book would hold next
    book: dict[str, np.ndarray]
    metrics: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    @property
    def names(self) -> list[str]:
        return self.sleeves.names

    @property
    def weights(self) -> np.ndarray:
        """The static weights, or the time-averaged ones under walk-forward."""
        return self.W.mean(axis=0) if self.walk_forward_days else self.W[0]

    @property
    def start(self) -> dt.date:
        return self.sleeves.dates[0].item()

    @property
    def end(self) -> dt.date:
        return self.sleeves.dates[-1].item()

    def contributions(self) -> dict[str, Any]:
        R, W = self.sleeves.R, self.W
        mean_book = self.book["ret"].mean()
        total = np.prod(1.0 + R, axis=1) - 1.0
        each = {}
        for j, name in enumerate(self.names):
            share = float((W[:, j] * R[j]).mean() / mean_book) if mean_book != 0 else float("nan")
            each[name] = {"weight": float(self.weights[j]), "mean_daily_return": float(R[j].mean()),
                          "mean_return_share": share, "total_return": float(total[j]),
                          "total_return_contribution": float(self.weights[j] * total[j])}
        bh = float(sum(v["total_return_contribution"] for v in each.values()))
        return {"strategies": each, "buy_and_hold_total_return": bh,
                "rebalancing_effect": self.metrics["total_return"] - bh}

    def to_json(self) -> dict[str, Any]:
        corr = correlation(self.sleeves.R)
        srcs = list(dict.fromkeys(c.source.folder for c in self.choices))
        by_folder = {c.source.folder: c.source for c in self.choices}
        return _clean({
            "schema_version": PORTFOLIO_SCHEMA_VERSION,
            "weights_method": self.method,
            "walk_forward_days": self.walk_forward_days,
            "weights": dict(zip(self.names, map(float, self.weights))),
            "next_weights": (dict(zip(self.names, map(float, self.next_weights)))
                             if self.next_weights is not None else None),
            "periods": [{"start": str(self.sleeves.dates[p.start]), "end": str(self.sleeves.dates[p.end]),
                         "weights": dict(zip(self.names, map(float, p.weights))), "note": p.note}
                        for p in self.periods] if self.walk_forward_days else None,
            "evaluation_window": {"start": str(self.start), "end": str(self.end), "days": len(self.sleeves.dates)},
            "metrics": self.metrics,
            "metric_conventions": CONVENTIONS,
            "warnings": self.warnings,
            "strategies": [{"factor": c.factor, "study": c.source.name, "results": str(c.source.folder),
                            "config_id": c.config_id, "params": live_params(c.params),
                            "objective": c.source.objective, "study_value": c.value,
                            "dsr": (c.stats or {}).get("dsr"), "pbo": (c.stats or {}).get("pbo"),
                            "n_trials": (c.stats or {}).get("n_trials"), "ruined_set_aside": c.set_aside,
                            "metrics": m} for c, m in zip(self.choices, self.sleeves.metrics)],
            "correlation": {"strategies": self.names, "matrix": corr.tolist()},
            "contributions": self.contributions(),
            "provenance": {"results": [str(f) for f in srcs], "studies": [by_folder[f].name for f in srcs],
                           "data": {"path": self.choices[0].source.manifest["data"]["path"],
                                    "fingerprint": self.choices[0].source.fingerprint},
                           "sweep_version": __version__, "created": self.created},
        })

    def returns_frame(self) -> pl.DataFrame:
        return pl.DataFrame({"date": self.sleeves.dates,
                             **{name: self.sleeves.R[j] for j, name in enumerate(self.names)},
                             "book": self.book["ret"]}).with_columns(
            pl.lit(SCHEMA_VERSION, dtype=pl.Int32).alias("schema_version"))


def _clean(obj: Any) -> Any:
    """JSON has no NaN: a NaN or infinite number becomes null."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def build_portfolio(results: list[str | Path], weights: str = "equal", walk_forward: int | None = None,
                    data: str | Path | None = None, funding: str | Path | None = None) -> Portfolio:
    """Combine the chosen configuration of each factor into one book (see the module docstring)."""
    check_method(weights)
    if walk_forward is not None and walk_forward < 2:
        raise SweepError(f"--walk-forward = {walk_forward}: a period needs at least 2 days")
    sources, choices, (start, end) = select(results)
    panel = load_data(sources, data, funding)
    pf = assemble(choices, rerun(panel, choices, start, end), weights, walk_forward)
    pf.warnings[:0] = judge_legs(panel, choices)
    return pf


def judge_legs(panel, choices: list[Choice]) -> list[str]:
    """Fill each choice's ``stats`` (DSR and PBO among its factor's trials); the warnings they give,
    and one line per leg whose ruined configurations were set aside."""
    from sweep.book.legs import leg_statistics, leg_warning

    out = []
    for c in choices:
        src = c.source
        c.stats = leg_statistics(panel, src.trials, c.factor if "factor" in src.trials.columns else None,
                                 src.params, c.params, str(src.start), str(src.end), f"{src.folder}/trials.parquet")
        if c.set_aside:
            out.append(f"{c.factor}: {c.set_aside} ruined configuration{'s' if c.set_aside != 1 else ''} of "
                       f"{src.name} set aside before choosing")
        w = leg_warning(c.factor, c.stats)
        if w:
            out.append(w)
    return out


def assemble(choices: list[Choice], sl: Sleeves, weights: str, walk_forward: int | None) -> Portfolio:
    """The book of the sleeves ``sl`` (one per choice) under a weighting method."""
    n = len(sl.dates)
    if walk_forward is not None:
        if walk_forward >= n:
            raise SweepError(f"--walk-forward = {walk_forward} days leaves one period in the {n}-day window "
                             f"{sl.dates[0]} .. {sl.dates[-1]}; choose fewer days")
        W, periods = walk_forward_weights(sl.R, weights, walk_forward)
        try:
            nxt = strategy_weights(sl.R, weights)
        except NoWeights:
            nxt = None
    else:
        w = static_weights(sl.R, weights, sl.names)
        W, periods, nxt = np.tile(w, (n, 1)), [Period(0, n - 1, w)], w
    book = book_series(sl, W)
    return Portfolio(choices, weights, walk_forward, sl, W, periods, nxt, book, book_metrics(book),
                     bankruptcies(sl.names + ["book"], np.vstack([sl.R, book["ret"]]), sl.dates))


def write_portfolio(pf: Portfolio, out: str | Path) -> Path:
    """``portfolio.json`` and ``portfolio_returns.parquet`` in ``out``, each written atomically."""
    from sweep.core.io import write_json, write_parquet

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SweepError(f"--out {out} is a file, not a folder")
    if (out / "trials.parquet").exists():
        raise SweepError(f"--out {out} holds a study's results; choose another folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"cannot create {out}: {exc.strerror}") from None
    write_parquet(pf.returns_frame(), out / "portfolio_returns.parquet")
    write_json(pf.to_json(), out / "portfolio.json")
    return out
