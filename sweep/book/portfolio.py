"""``sweep portfolio``: the chosen configuration of each factor, combined into one book.

Conventions (each one a decision the brief left open):

* **Chosen configuration.** In each results folder (grid or Optuna), the best
  row by the study's objective (the largest, or the smallest for a
  lower-is-better metric; the first on ties; NaN never wins), per value of
  the ``factor`` column when there is one. A factor chosen by two folders is
  refused: a book holds one sleeve per factor, and a live configuration is
  keyed by factor.
* **Common window.** Every folder must come from the same data (the
  manifests' data fingerprints agree). The book is evaluated over the
  intersection of the folders' evaluation windows; each chosen configuration
  is rerun there with ``sweep.backtest(panel, start, end, ...)``, starting
  flat on the first day, so its figures differ from the study's own row when
  the study's window was longer.
* **The book** holds each strategy ("sleeve") as a constant fraction ``w_s``
  of its NAV, re-mixed at every close at no cost: ``R_book[t] = sum_s w_s *
  R_s[t]``, exactly. Its return-defined metrics (total_return, cagr,
  ann_vol, sharpe, sortino, max_drawdown, calmar, win_rate) are SEMANTICS §9
  on that series, computed by the same ``kernels.metrics.compute_metrics``.
  ``sharpe_pre_cost`` is the Sharpe of ``sum_s w_s * R_pre_s``.
  ``turnover``, ``cost_paid`` and ``funding_return`` are §9 on the weighted
  sums of the sleeves' daily turnover, cost and funding: what the sleeves
  trade and pay, with no netting of trades between sleeves (``R_book`` pays
  exactly these costs). ``avg_long``, ``avg_short``, ``avg_net_exposure``
  and ``avg_gross_exposure`` describe the combined holdings at each close,
  ``H[t, i] = sum_s w_s * W_s[t, i]`` (W after the sleeve's step 4, the mix
  that earns the next day): a coin long in one sleeve and short in another
  nets out. ``n_rebalances`` counts the days on which any sleeve rebalances.
* **Strategy weights** (from the sleeves' daily net returns on the window):
  ``equal``; ``inverse_vol``, proportional to ``1 / std(R_s, ddof=1)``
  (refused when a sleeve's standard deviation is 0 or undefined);
  ``sharpe``, proportional to each positive Sharpe ratio, the others 0
  (refused when no Sharpe is positive: the caller should choose ``equal``
  knowingly rather than receive it silently). Static weights are estimated
  on the same window they are evaluated on, so they are in-sample;
  ``--walk-forward`` is the out-of-sample version.
* **Walk-forward** (``--walk-forward DAYS``): the window is cut into periods
  of DAYS days (the last one may be shorter). A period's weights come from
  the sleeves' returns from the first day of the window up to the day
  before the period starts (an expanding window). The first period has no
  past: it holds equal weights, as does any later period whose estimate is
  undefined (the reason is recorded per period), so the book covers the
  whole window. Changing the weights between periods is free, as the daily
  re-mix is.
* **Contributions.** ``mean_return_share = mean_t(w_s[t] * R_s[t]) /
  mean(R_book)`` (the shares sum to 1); ``total_return_contribution = w_s *
  total_return_s`` (w_s the time-averaged weight under walk-forward). Their
  sum is the total return of a book that buys the sleeves once and never
  re-mixes them; ``rebalancing_effect`` is the book's total return minus
  that sum.
* **Correlation**: Pearson, of the sleeves' daily net returns on the window
  (NaN for a sleeve without variance).
* **A bankrupt sleeve** (its NAV ``prod(1 + R)`` reaches 0 or below on the
  window, which the recursion does not stop) is kept, with a warning in
  ``portfolio.json`` and on screen: its later returns are those of a
  negative-NAV book, which the daily re-mix would keep re-funding.

Writes ``portfolio.json`` (weights, book metrics, correlation, contributions,
walk-forward periods, each strategy's parameters and metrics on the window,
provenance) and ``portfolio_returns.parquet`` (``date``, one column per
strategy, ``book``, ``schema_version``), each atomically. ``validate`` and
``run`` serve a study of ``kind = "portfolio"`` (a ``[portfolio]`` table
naming ``results``, ``weights`` and ``walk_forward_days``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from kernels.metrics import DAYS_PER_YEAR, METRICS, N_METRICS, compute_metrics

from sweep import __version__
from sweep.core.errors import SweepError
from sweep.results.schema import read_manifest
from sweep.engine.params import FACTORS, PARAMS, closest, resolve

WEIGHT_METHODS = ("equal", "inverse_vol", "sharpe")
PORTFOLIO_SCHEMA_VERSION = 1
DEFAULT_OUT = Path("results") / "portfolio"
PROJECT_ROOT = Path(__file__).resolve().parents[2]

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


# ---- results folders and their chosen configurations ---------------------------------


@dataclass
class Source:
    """One results folder of a grid or Optuna study."""

    folder: Path
    manifest: dict[str, Any]
    trials: pl.DataFrame

    @property
    def name(self) -> str:
        return self.manifest.get("study", {}).get("name", self.folder.name)

    @property
    def kind(self) -> str:
        return self.manifest.get("study", {}).get("kind", "grid")

    @property
    def objective(self) -> str:
        return self.manifest.get("study", {}).get("objective", "sharpe")

    @property
    def fingerprint(self) -> str:
        return self.manifest["data"]["fingerprint"]

    @property
    def params(self) -> list[str]:
        return [c for c in self.manifest.get("parameters", []) if c in PARAMS and c in self.trials.columns]

    @property
    def start(self) -> dt.date:
        return dt.date.fromisoformat(self.manifest["evaluation_window"]["start"])

    @property
    def end(self) -> dt.date:
        return dt.date.fromisoformat(self.manifest["evaluation_window"]["end"])


@dataclass
class Choice:
    """The chosen configuration of one factor: where it comes from and what it is."""

    factor: str
    source: Source
    row: dict[str, Any]  # its row of trials.parquet
    params: dict[str, Any]  # fully resolved
    set_aside: int = 0  # ruined configurations of this factor that were not considered
    stats: dict[str, Any] | None = None  # its DSR and PBO among its factor's trials (sweep.book.legs)

    @property
    def config_id(self) -> str:
        return self.row["config_id"]

    @property
    def value(self) -> float:
        """The objective over the study's own window (as the study reported it)."""
        return float(self.row[self.source.objective])


def read_source(path: str | Path) -> Source:
    """A results folder (or its trials.parquet / manifest.json) of a grid or Optuna study."""
    path = Path(path)
    folder = path.parent if path.suffix in (".parquet", ".json") else path
    if not folder.is_dir():
        raise SweepError(f"{folder}: no such results folder")
    mpath = folder / "manifest.json"
    if not mpath.exists():
        raise SweepError(f"{folder}: no manifest.json (not a results folder, or its run did not finish)")
    manifest = read_manifest(folder)
    kind = manifest.get("study", {}).get("kind", "grid")
    if kind not in ("grid", "optuna"):
        raise SweepError(f"{folder}: a {kind} study has no single chosen configuration per factor; "
                         "pass the results of a grid or Optuna study")
    for key in ("data", "evaluation_window"):
        if key not in manifest:
            raise SweepError(f"{mpath}: no '{key}' entry; rerun the study with --force")
    tpath = folder / "trials.parquet"
    try:
        trials = pl.read_parquet(tpath)
    except (OSError, pl.exceptions.PolarsError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"{tpath}: unreadable ({first}); rerun the study with --force") from None
    src = Source(folder, manifest, trials)
    missing = [c for c in ("config_id", src.objective) if c not in trials.columns]
    if missing:
        raise SweepError(f"{tpath}: no column '{missing[0]}'; rerun the study with --force")
    return src


def _resolved_row(src: Source, row: dict[str, Any]) -> dict[str, Any]:
    return resolve({k: row[k] for k in src.params if row[k] is not None}, f"{src.folder}/trials.parquet")


def best_rows(src: Source) -> list[tuple[str, dict[str, Any], int]]:
    """``(factor, row, set_aside)`` of the best configuration of each factor of one folder, among
    the configurations that were not ruined (``set_aside`` counts the ruined ones)."""
    from sweep.stats.choose import best_index

    objective = src.objective
    trials = src.trials
    if "factor" in trials.columns:
        groups = [(g["factor"][0], g) for _, g in trials.group_by("factor", maintain_order=True)]
    else:
        groups = [(None, trials)]
    out = []
    for factor, group in groups:
        ruined = group["ruined"].cast(pl.Float64).fill_null(0.0).to_numpy()
        i = best_index(group[objective].cast(pl.Float64).fill_null(np.nan).to_numpy(), objective, ruined)
        what = f"{factor} configuration" if factor else "configuration"
        if i < 0 and (ruined > 0).any():
            raise SweepError(f"{src.folder}: every {what} with a finite {objective} was ruined (its NAV "
                             f"reached zero, SEMANTICS §8); a ruined leg cannot be traded: drop this folder")
        if i < 0:
            raise SweepError(f"{src.folder}: no {what} has a finite {objective}; drop this folder")
        row = group.row(i, named=True)
        out.append((factor or _resolved_row(src, row)["factor"], row, int((ruined > 0).sum())))
    return out


def choose(sources: list[Source]) -> list[Choice]:
    """The chosen configuration of each factor over all folders (in folder, then table, order)."""
    chosen: dict[str, Choice] = {}
    for src in sources:
        for factor, row, set_aside in best_rows(src):
            if factor in chosen:
                raise SweepError(f"{src.folder} and {chosen[factor].source.folder} both hold a {factor} "
                                 f"configuration; pass only one of them per factor")
            chosen[factor] = Choice(factor, src, row, _resolved_row(src, row), set_aside)
    return list(chosen.values())


def common_window(sources: list[Source]) -> tuple[dt.date, dt.date]:
    """The intersection of the folders' evaluation windows; refuses folders of different data."""
    first = sources[0]
    for src in sources[1:]:
        if src.fingerprint != first.fingerprint:
            raise SweepError(f"{src.folder} and {first.folder} were run on different data (fingerprint "
                             f"{src.fingerprint} != {first.fingerprint}); a portfolio needs one data set")
    start, end = max(s.start for s in sources), min(s.end for s in sources)
    if start > end:
        raise SweepError(f"the evaluation windows of {', '.join(str(s.folder) for s in sources)} do not "
                         f"overlap (latest start {start}, earliest end {end})")
    return start, end


def _locate(rel: str, src: Source) -> Path:
    """A data path as the study saw it: from the current folder, the study file's folder or
    its parent, the results folder's grandparent (the project of ``results/<name>``), or here."""
    p = Path(rel)
    if p.is_absolute():
        return p
    study_dir = Path(src.manifest.get("study", {}).get("path", ".")).parent
    for c in (p, study_dir / p, study_dir.parent / p, src.folder.parent.parent / p, PROJECT_ROOT / p):
        if c.exists():
            return c
    return p


def load_data(sources: list[Source], data: str | Path | None = None, funding: str | Path | None = None):
    """The panel every folder was run on, checked against the manifests' fingerprint."""
    from sweep.data.panel import load_panel

    src = sources[0]
    path = Path(data) if data else _locate(src.manifest["data"]["path"], src)
    if not path.exists():
        raise SweepError(f"{src.folder}: the study's data {path} is not found; pass --data")
    if funding is None:
        try:
            rel = tomllib.loads(src.manifest["study"]["text"]).get("study", {}).get("funding")
        except (KeyError, tomllib.TOMLDecodeError):
            rel = None
        funding = _locate(rel, src) if rel else None
    panel = load_panel(path, funding)
    if panel.fingerprint != src.fingerprint:
        raise SweepError(f"{panel.source}: not the data {src.folder} was run on (fingerprint "
                         f"{panel.fingerprint} != {src.fingerprint}); pass --data (and --funding) "
                         "or rerun the studies")
    return panel


# ---- the sleeves' daily series ----------------------------------------------------------


@dataclass
class Sleeves:
    """The chosen configurations rerun over one window: ``(S, n)`` daily series."""

    names: list[str]
    dates: np.ndarray  # datetime64[D], (n,)
    R: np.ndarray  # net returns
    R_pre: np.ndarray
    tau: np.ndarray
    cost: np.ndarray
    fund: np.ndarray
    holdings: np.ndarray  # (S, n, N): weights after each day's step 4
    rebalance: np.ndarray  # (S, n) bool
    metrics: list[dict[str, float]]


def rebalance_days_mask(p: dict[str, Any], n: int) -> np.ndarray:
    """SEMANTICS §7's schedule on a window of ``n`` days: ``(d - phase) mod k == 0``."""
    d = np.arange(n)
    return (d - p["phase"]) % p["rebalance_days"] == 0


def rerun(panel, choices: list[Choice], start: dt.date, end: dt.date) -> Sleeves:
    """Each chosen configuration, flat on ``start``, over ``start .. end``."""
    from sweep.engine.backtest import backtest

    series: dict[str, list[np.ndarray]] = {k: [] for k in ("ret", "ret_pre_cost", "turnover", "cost", "funding")}
    holdings, rebalance, metrics = [], [], []
    for c in choices:
        res = backtest(panel, start=start, end=end, return_weights=True, **c.params)
        for k in series:
            series[k].append(res.returns[k].to_numpy())
        holdings.append(res.weights.drop("date").to_numpy())
        rebalance.append(rebalance_days_mask(c.params, res.returns.height))
        metrics.append(res.metrics)
    dates = panel.dates[panel.day_index(start, "start"):panel.day_index(end, "end") + 1]
    for c, m, r in zip(choices, metrics, series["ret"]):
        if m["ruined"] > 0:  # not ruined on its study's window, but on this one
            raise SweepError(f"{c.factor} ({c.config_id} of {c.source.folder}) is ruined on "
                             f"{dates[int(np.argmax(r == -1.0))]} over the common window {start} .. {end} "
                             "(its NAV reached zero, SEMANTICS §8); a ruined leg cannot be traded")
    return Sleeves([c.factor for c in choices], dates, *(np.array(series[k]) for k in series),
                   np.array(holdings), np.array(rebalance), metrics)


# ---- strategy weights ----------------------------------------------------------------------


class NoWeights(ValueError):
    """A weighting method is undefined on the data given (the reason is the message)."""


def equal_weights(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def sharpe_weights(sharpes) -> np.ndarray:
    """Weights proportional to each positive Sharpe ratio; non-positive (or NaN) ones get 0."""
    s = np.asarray(sharpes, dtype=np.float64)
    pos = np.where(np.isfinite(s) & (s > 0.0), s, 0.0)
    total = pos.sum()
    if not total > 0.0:
        raise NoWeights("no strategy has a positive Sharpe ratio")
    return pos / total


def inverse_vol_weights(stds) -> np.ndarray:
    """Weights proportional to ``1 / std``; every std must be finite and positive."""
    sd = np.asarray(stds, dtype=np.float64)
    if not (np.isfinite(sd) & (sd > 0.0)).all():
        raise NoWeights("a strategy's daily returns have no variance (or fewer than 2 days)")
    inv = 1.0 / sd
    return inv / inv.sum()


def _sharpe(R: np.ndarray) -> np.ndarray:
    """Per row: ``mean / std(ddof=1) * sqrt(365)``; NaN where std is 0 or undefined."""
    if R.shape[1] < 2:
        return np.full(R.shape[0], np.nan)
    sd = R.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0.0, R.mean(axis=1) / sd * math.sqrt(DAYS_PER_YEAR), np.nan)


def strategy_weights(R: np.ndarray, method: str) -> np.ndarray:
    """Weights of ``S`` strategies from their ``(S, m)`` daily returns; raises ``NoWeights``."""
    S = R.shape[0]
    if method == "equal":
        return equal_weights(S)
    if method == "inverse_vol":
        return inverse_vol_weights(R.std(axis=1, ddof=1) if R.shape[1] >= 2 else np.full(S, np.nan))
    if method == "sharpe":
        return sharpe_weights(_sharpe(R))
    raise SweepError(f"--weights {method!r} is not one of {', '.join(WEIGHT_METHODS)}"
                     f"{closest(method, WEIGHT_METHODS)}")


def static_weights(R: np.ndarray, method: str, names: list[str]) -> np.ndarray:
    """``strategy_weights`` with an undefined estimate turned into a user-facing error."""
    try:
        return strategy_weights(R, method)
    except NoWeights as exc:
        if method == "inverse_vol":
            sd = R.std(axis=1, ddof=1) if R.shape[1] >= 2 else np.full(len(names), np.nan)
            flat = [n for n, v in zip(names, sd) if not (np.isfinite(v) and v > 0)]
            raise SweepError(f"--weights inverse_vol: {', '.join(flat)} has no variance over the "
                             "window; choose --weights equal or drop it") from None
        sh = ", ".join(f"{n} {v:.2f}" for n, v in zip(names, _sharpe(R)))
        raise SweepError(f"--weights {method}: {exc} over the window ({sh}); choose --weights equal "
                         "knowingly, or drop the losers") from None


@dataclass
class Period:
    start: int  # day offsets within the window, inclusive
    end: int
    weights: np.ndarray
    note: str = ""


def walk_forward_weights(R: np.ndarray, method: str, days: int) -> tuple[np.ndarray, list[Period]]:
    """Daily weights ``(n, S)``: period ``k`` covers days ``k*days .. (k+1)*days - 1`` and is
    weighted from days ``0 .. k*days - 1`` only; the first period (and any period whose
    estimate is undefined) holds equal weights."""
    S, n = R.shape
    W = np.empty((n, S))
    periods = []
    for lo in range(0, n, days):
        hi = min(lo + days, n) - 1
        if lo == 0:
            w, note = equal_weights(S), "no past returns: equal weights"
        else:
            try:
                w, note = strategy_weights(R[:, :lo], method), ""
            except NoWeights as exc:
                w, note = equal_weights(S), f"{exc}: equal weights"
        W[lo:hi + 1] = w
        periods.append(Period(lo, hi, w, note))
    return W, periods


# ---- the book ----------------------------------------------------------------------------


def correlation(R: np.ndarray) -> np.ndarray:
    """Pearson correlation of the rows; NaN rows and columns for a row without variance."""
    d = R - R.mean(axis=1, keepdims=True)
    ss = np.sqrt((d * d).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (d @ d.T) / np.outer(ss, ss)
    c[~np.isfinite(c)] = np.nan
    ok = ss > 0
    c[ok, ok] = 1.0
    return c


def book_series(sl: Sleeves, W: np.ndarray) -> dict[str, np.ndarray]:
    """The book's daily series under daily weights ``W`` ``(n, S)`` (see the module docstring)."""
    def mix(x: np.ndarray) -> np.ndarray:
        return np.einsum("ts,st->t", W, x)

    # The holdings at the close of t are the mix that earns day t + 1.
    W_hold = np.vstack([W[1:], W[-1:]])
    H = np.einsum("ts,stn->tn", W_hold, sl.holdings)
    return {"ret": mix(sl.R), "ret_pre_cost": mix(sl.R_pre), "turnover": mix(sl.tau), "cost": mix(sl.cost),
            "funding": mix(sl.fund), "n_long": (H > 0).sum(axis=1).astype(np.float64),
            "n_short": (H < 0).sum(axis=1).astype(np.float64), "net": H.sum(axis=1),
            "gross": np.abs(H).sum(axis=1), "n_rebalances": float(sl.rebalance.any(axis=0).sum())}


def book_metrics(b: dict[str, np.ndarray]) -> dict[str, float]:
    """SEMANTICS §9 of the book, by the engine's own ``compute_metrics``."""
    out = np.empty(N_METRICS)
    compute_metrics(*(np.ascontiguousarray(b[k]) for k in
                      ("ret", "ret_pre_cost", "turnover", "cost", "funding", "n_long", "n_short", "net", "gross")),
                    b["n_rebalances"], out)
    return {m: float(v) for m, v in zip(METRICS, out)}


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
        from sweep.study.grid import SCHEMA_VERSION

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


def live_params(p: dict[str, Any]) -> dict[str, Any]:
    """The resolved parameters that change this configuration's backtest (``weighting`` as
    ``weighting_method``); e.g. ``q`` only with quantile selection, ``vol_window`` only with
    risk parity, ``window`` not for size."""
    return {("weighting_method" if k == "weighting" else k): (list(p[k]) if k == "exclude" else p[k])
            for k in relevant(p)}


def relevant(p: dict[str, Any]) -> list[str]:
    """Names (sweep spelling) of the resolved parameters that matter for ``p``, in display order."""
    f = FACTORS[p["factor"]]
    long_short = f.long is not None
    keep = {
        "rebalance_days": True,
        "weighting": True,
        "window": f.window is not None,
        "long": long_short,
        "selection": long_short,
        "q": long_short and p["selection"] == "quantile",
        "top_n": long_short and p["selection"] == "top_n",
        "vol_window": p["weighting"] == "risk_parity",
        "hold": True,
        "buffer": True,
        "long_allocation": True,
        "short_allocation": True,
        "fee_bps": True,
        "slippage_bps": True,
        "exclude": True,
        "top_by_market_cap": True,
        "phase": True,
        "max_days": not long_short,
        "market": f.feature == "beta",
        "market_symbol": f.feature == "beta" and p["market"] == "symbol",
    }
    return [k for k, v in keep.items() if v]


def select(results: list[str | Path]) -> tuple[list[Source], list[Choice], tuple[dt.date, dt.date]]:
    """Read the folders, choose each factor's configuration and find the common window
    (no data is read)."""
    if not results:
        raise SweepError("no results folder given")
    sources = [read_source(r) for r in results]
    seen: dict[Path, Path] = {}
    for s, r in zip(sources, results):
        key = s.folder.resolve()
        if key in seen:
            raise SweepError(f"{r}: the same results folder is given twice")
        seen[key] = s.folder
    window = common_window(sources)
    return sources, choose(sources), window


def build_portfolio(results: list[str | Path], weights: str = "equal", walk_forward: int | None = None,
                    data: str | Path | None = None, funding: str | Path | None = None) -> Portfolio:
    """Combine the chosen configuration of each factor into one book (see the module docstring)."""
    if weights not in WEIGHT_METHODS:
        raise SweepError(f"--weights {weights!r} is not one of {', '.join(WEIGHT_METHODS)}"
                         f"{closest(str(weights), WEIGHT_METHODS)}")
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


def bankruptcies(names: list[str], R: np.ndarray, dates: np.ndarray) -> list[str]:
    """A warning per series whose NAV ``prod(1 + R)`` reaches 0 or below: after that day its
    returns are those of a negative-NAV book (the recursion does not stop it), not of a
    tradable one, and the constant mix would re-fund it every day."""
    out = []
    for name, r in zip(names, R):
        V = np.cumprod(1.0 + r)
        if (V <= 0).any():
            t = int(np.argmax(V <= 0))
            out.append(f"{name}: NAV falls to {V[t]:.3g} on {dates[t]} (daily return {r[t]:.1%}); "
                       "its later returns and its metrics are not those of a tradable book")
    return out


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


# ---- printing -----------------------------------------------------------------------------

_PCT = ("total_return", "cagr", "ann_vol", "max_drawdown", "win_rate", "mean_return_share",
        "total_return_contribution", "weight")


def _fmt(v: Any, name: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if not math.isfinite(v):
            return "nan"
        if name in _PCT:
            return f"{v:.1%}"
        if name == "n_rebalances":
            return f"{v:.0f}"
        return f"{v:.3f}"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v)) or "-"
    return str(v)


def print_portfolio(doc: dict[str, Any], out: Path | None = None) -> None:
    """The summary of a portfolio (its ``portfolio.json`` document) as rich tables."""
    from rich.console import Console
    from rich.table import Table

    names = [s["factor"] for s in doc["strategies"]]
    win = doc["evaluation_window"]
    console = Console(width=max(160, 14 * (len(names) + 2)))
    wf = f", walk-forward every {doc['walk_forward_days']} days" if doc["walk_forward_days"] else ""
    shown = ["rebalance_days", "weighting_method", "window", "phase"]
    t = Table(title=f"portfolio of {len(names)} strategies, {win['start']} .. {win['end']} ({win['days']} days), "
                    f"weights {doc['weights_method']}{wf}", title_justify="left")
    for col in ["factor", "study", *shown, "weight", "sharpe", "cagr", "max_drawdown", "mean_return_share"]:
        t.add_column(col, justify="left" if col in ("factor", "study", "weighting_method") else "right")
    contrib = doc["contributions"]["strategies"]
    for s in doc["strategies"]:
        f, m = s["factor"], s["metrics"]
        t.add_row(f, s["study"], *[_fmt(s["params"].get(k)) for k in shown],
                  _fmt(contrib[f]["weight"], "weight"), _fmt(m["sharpe"]), _fmt(m["cagr"], "cagr"),
                  _fmt(m["max_drawdown"], "max_drawdown"),
                  _fmt(contrib[f]["mean_return_share"], "mean_return_share"))
    console.print(t)
    for part, title in ((METRICS[:9], "the book (SEMANTICS §9 on R_book = sum_s w_s R_s)"),
                        (METRICS[9:], "turnover, cost and funding: the strategies' weighted sums; "
                                      "exposures: the combined holdings")):
        mt = Table(title=title, title_justify="left")
        for m in part:
            mt.add_column(m, justify="right")
        mt.add_row(*[_fmt(doc["metrics"][m], m) for m in part])
        console.print(mt)
    ct = Table(title="correlation of daily net returns", title_justify="left")
    ct.add_column("")
    for name in names:
        ct.add_column(name, justify="right")
    for name, row in zip(names, doc["correlation"]["matrix"]):
        ct.add_row(name, *[_fmt(v) for v in row])
    console.print(ct)
    if doc["periods"]:
        pt = Table(title=f"walk-forward weights ({len(doc['periods'])} periods, each from the returns before it)",
                   title_justify="left")
        for col in ["start", "end", *names, "note"]:
            pt.add_column(col, justify="left" if col in ("start", "end", "note") else "right")
        for p in doc["periods"]:
            pt.add_row(p["start"], p["end"], *[_fmt(p["weights"][n], "weight") for n in names], p["note"])
        console.print(pt)
    c = doc["contributions"]
    console.print(f"Sum of weight x total return {_fmt(c['buy_and_hold_total_return'], 'total_return')} "
                  f"(strategies bought once, never re-mixed); the daily re-mix adds "
                  f"{_fmt(c['rebalancing_effect'], 'total_return')}.")
    for w in doc.get("warnings", []):
        console.print(f"[bold yellow]warning:[/] {w}")
    if out is not None:
        console.print(f"-> {out}/portfolio.json, {out}/portfolio_returns.parquet")


def show(folder: str | Path) -> int:
    """``sweep show`` of a portfolio folder: its summary, from ``portfolio.json``."""
    path = Path(folder) / "portfolio.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SweepError(f"{path}: unreadable ({exc}); run the portfolio again") from None
    print_portfolio(doc)
    return 0


def describe(study) -> list[str]:
    """``sweep validate`` of a portfolio study: what it would combine (no backtest runs)."""
    table = _table(study)
    sources, choices, (start, end) = select([_study_folder(r, study) for r in table["results"]])
    lines = [f"results     {len(sources)} folders: " + ", ".join(s.name for s in sources),
             "strategies  " + ", ".join(f"{c.factor} ({c.source.objective} {c.value:.3f})" for c in choices),
             f"weights     {table.get('weights', 'equal')}" + (f", walk-forward every {table['walk_forward_days']} days"
                                                         if table.get("walk_forward_days") else ""),
             f"evaluation  {start} .. {end} ({(end - start).days + 1} days, the folders' common window)"]
    return lines


# ---- the command line --------------------------------------------------------------------


def add_parser(subparsers) -> None:
    """``sweep portfolio RESULTS... [--weights M] [--walk-forward DAYS] [--out DIR]``."""
    p = subparsers.add_parser(
        "portfolio", help="combine each factor's best configuration into one book",
        description="Combine the chosen (best by the study's objective) configuration of each factor "
                    "into one book, rerun over the common evaluation window; write portfolio.json and "
                    "portfolio_returns.parquet.")
    p.add_argument("results", nargs="+", help="results folders of grid or Optuna studies (same data)")
    p.add_argument("--weights", default="equal", choices=WEIGHT_METHODS,
                   help="strategy weights: equal, inverse_vol (1 / daily std) or sharpe (positive Sharpe)")
    p.add_argument("--walk-forward", type=int, metavar="DAYS",
                   help="re-estimate the weights every DAYS days from the returns before each period")
    p.add_argument("--out", help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--data", help="the studies' data file, if it moved since the runs")
    p.add_argument("--funding", help="the studies' funding table, if any")
    p.add_argument("--quiet", action="store_true", help="write the files, print nothing")


def command(args) -> int:
    pf = build_portfolio(args.results, args.weights, args.walk_forward, args.data, args.funding)
    out = write_portfolio(pf, args.out or DEFAULT_OUT)
    if not getattr(args, "quiet", False):
        print_portfolio(pf.to_json(), out)
    return 0


# ---- a [portfolio] study (kind = "portfolio") --------------------------------------------

PORTFOLIO_KEYS = ("results", "weights", "walk_forward_days")


def _table(study) -> dict[str, Any]:
    return study.raw.get("portfolio", {})


def validate(study) -> None:
    """A ``kind = "portfolio"`` study: ``[portfolio] results = [...]``, ``weights``,
    ``walk_forward_days``; nothing else (no [backtest], no [grid])."""
    where = f"{study.path}: [portfolio]"
    table = _table(study)
    if study.fixed or study.axes:
        raise SweepError(f"{study.path}: a portfolio study takes its configurations from its results "
                         "folders; remove [backtest] and [grid]")
    for key in table:
        if key not in PORTFOLIO_KEYS:
            raise SweepError(f"{where} unknown key '{key}'{closest(key, PORTFOLIO_KEYS)}")
    res = table.get("results")
    if not isinstance(res, list) or not res or not all(isinstance(r, str) and r for r in res):
        raise SweepError(f"{where} results must be a non-empty list of results folders")
    w = table.get("weights", "equal")
    if w not in WEIGHT_METHODS:
        raise SweepError(f"{where} weights = {w!r} is not one of {', '.join(WEIGHT_METHODS)}"
                         f"{closest(str(w), WEIGHT_METHODS)}")
    d = table.get("walk_forward_days")
    if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 2):
        raise SweepError(f"{where} walk_forward_days = {d!r} must be an integer of at least 2")


def _study_folder(rel: str, study) -> Path:
    p = Path(rel)
    if p.is_absolute():
        return p
    for c in (p, study.path.parent / p, study.path.parent.parent / p):
        if c.exists():
            return c
    return p


def run(study, *, data=None, funding=None, out=None, jobs: int = 1, force: bool = False,
        progress: bool | None = None, on_chunk=None):
    """``sweep run`` of a portfolio study: ``results/<name>/`` gets portfolio.json,
    portfolio_returns.parquet and manifest.json."""
    from sweep.core.io import write_json
    from sweep.study.grid import RunSummary, SCHEMA_VERSION, _versions

    validate(study)
    t0 = time.perf_counter()
    table = _table(study)
    results = [_study_folder(r, study) for r in table["results"]]
    pf = build_portfolio(results, table.get("weights", "equal"), table.get("walk_forward_days"),
                         data if data is not None else study.data, funding)
    out = Path(out) if out is not None else Path("results") / study.name
    write_portfolio(pf, out)
    wall = time.perf_counter() - t0
    summary = RunSummary(out, len(pf.names), len(pf.names), 0, wall, wall, pf.start, pf.end)
    src = pf.choices[0].source
    write_json({"schema_version": SCHEMA_VERSION,
                "study": {"name": study.name, "kind": study.kind, "objective": study.objective,
                          "path": str(study.path), "fingerprint": study.fingerprint(), "text": study.text},
                "data": {"path": src.manifest["data"]["path"], "fingerprint": src.fingerprint},
                "evaluation_window": {"start": str(pf.start), "end": str(pf.end), "days": len(pf.sleeves.dates)},
                "results": [str(r) for r in results], "factors": pf.names, "parameters": [],
                "configurations": len(pf.names), "wall_time_s": round(wall, 4), "versions": _versions(),
                "created": pf.created}, out / "manifest.json")
    if on_chunk is not None:
        on_chunk(1)
    return summary
