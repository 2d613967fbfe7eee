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

This module gathers the book's public names; the work lives in ``sources``
(results folders, the chosen configurations, the common window), ``series``
(the sleeves rerun, the book's series and metrics), ``weights`` (strategy
weights), ``combine`` (the book and its files), ``summary`` (printing),
``study`` (the portfolio study kind) and ``relevant`` (the parameters that
matter to a configuration).
"""

from __future__ import annotations

from sweep.book.combine import (CONVENTIONS, DEFAULT_OUT, PORTFOLIO_SCHEMA_VERSION, Portfolio, assemble,
                                build_portfolio, judge_legs, write_portfolio)
from sweep.book.relevant import live_params, relevant
from sweep.book.series import (Sleeves, bankruptcies, book_metrics, book_series, correlation,
                               rebalance_days_mask, rerun)
from sweep.book.sources import (Choice, Source, best_rows, choose, common_window, load_data, read_source,
                                select)
from sweep.book.study import PORTFOLIO_KEYS, describe, run, validate
from sweep.book.summary import print_portfolio, show
from sweep.book.weights import (WEIGHT_METHODS, NoWeights, Period, equal_weights, inverse_vol_weights,
                                sharpe_ratios, sharpe_weights, static_weights, strategy_weights,
                                walk_forward_weights)

__all__ = [
    "CONVENTIONS", "DEFAULT_OUT", "PORTFOLIO_KEYS", "PORTFOLIO_SCHEMA_VERSION", "WEIGHT_METHODS", "Choice",
    "NoWeights", "Period", "Portfolio", "Sleeves", "Source", "assemble", "bankruptcies",
    "best_rows", "book_metrics", "book_series", "build_portfolio", "choose", "common_window",
    "correlation", "describe", "equal_weights", "inverse_vol_weights", "judge_legs", "live_params",
    "load_data", "print_portfolio", "read_source", "rebalance_days_mask", "relevant", "rerun", "run",
    "select", "sharpe_ratios", "sharpe_weights", "show", "static_weights", "strategy_weights", "validate",
    "walk_forward_weights", "write_portfolio",
]
