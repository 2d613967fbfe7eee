"""What the strategy report adds beside the equity curves (issue 15): the benchmarks (the
buy and hold of ``market_symbol``, default BTC, and the equal-weight market) with the best
books' alpha and beta to them, rolling 180-day Sharpe and volatility, the monthly returns
heatmap and the exposure over time (gross, net, names long and short).

Conventions, all over the evaluation window ``s .. e`` of the study and the books' own
daily net returns ``R_t`` (SEMANTICS §8-§9):

* Benchmark returns on day ``t``: ``market_symbol`` bought at the close of ``s - 1`` and
  held, so it earns the carried return ``q[t]`` of SEMANTICS §2 (a missing day earns 0,
  the day its price comes back the whole move; 0 before its first close); the
  equal-weight market earns the mean of day ``t``'s finite simple returns ``r`` (SEMANTICS
  §5's market ``M``: ``M_t / M_{t-1} - 1``), 0 on a day without any.
* Alpha and beta: the ordinary least squares fit ``R_t = a + beta * b_t + e_t`` over the
  window's days (``numpy.polyfit(b, R, 1)``, ``scipy.stats.linregress(b, R)``); alpha is
  ``a * 365`` (a daily intercept times 365, not compounded); NaN when ``b`` is constant.
* Rolling Sharpe and volatility at ``t``: over the ``ROLLING_DAYS`` returns ``R[t-179 .. t]``,
  ``mean / std(ddof=1) * sqrt(365)`` and ``std(ddof=1) * sqrt(365)`` as SEMANTICS §9's
  ``sharpe`` and ``ann_vol``, each window computed afresh (pandas
  ``s.rolling(180).mean() / s.rolling(180).std() * sqrt(365)``); NaN before 180 days and
  where the standard deviation is 0.
* Monthly returns: NAV at the month's last day over NAV at the previous month's last
  day, minus 1 (NAV 1 before the first day): the compounded ``prod(1 + R) - 1`` of the
  month's days, as pandas ``(1 + s).resample("ME").prod() - 1``, except that a month that
  opens with the book already ruined (NAV 0) is "closed", not 0.
* Exposure on day ``t``: from the weights after step 4 (SEMANTICS §8), gross
  ``sum |w|``, net ``sum w``, names long ``count(w > 0)`` and short ``count(w < 0)``; their
  means over the window are SEMANTICS §9's ``avg_gross_exposure``, ``avg_net_exposure``,
  ``avg_long`` and ``avg_short``.
"""

from __future__ import annotations

import math
import numpy as np

from sweep.report.base import Chart, esc, html_table, short
from sweep.report.figures import (WIDTH, as_dates, below_legend, nav_series, new_figure, percent_axis,
                                  period_returns, wrap)

ROLLING_DAYS = 180
DAYS_A_YEAR = 365  # SEMANTICS §9's annualisation
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --------------------------------------------------------------------------- numbers


def benchmarks(panel, s: int, e: int, market_symbol: str) -> tuple[list[tuple[str, np.ndarray]], str]:
    """``([(label, daily returns over s .. e)], note)``: the buy and hold of ``market_symbol``
    (absent, with a note, when the panel has no such symbol) and the equal-weight market."""
    from kernels.returns import mean_finite_by_day

    out, note = [], ""
    if market_symbol in panel.symbols:
        q = panel.carried_returns[s:e + 1, panel.symbols.index(market_symbol)]
        out.append((f"{market_symbol} buy and hold", np.where(np.isfinite(q), q, 0.0)))
    else:
        note = (f"The data has no symbol {market_symbol} (the study's market_symbol): no buy-and-hold "
                "benchmark, only the equal-weight market.")
    m = mean_finite_by_day(np.ascontiguousarray(panel.simple_returns))[s:e + 1]
    out.append(("equal-weight market", np.where(np.isfinite(m), m, 0.0)))
    return out, note


def alpha_beta(ret, bench) -> tuple[float, float, float]:
    """``(alpha a year, beta, correlation)`` of the OLS fit ``ret = a + beta * bench``; alpha is
    the daily intercept ``a`` times 365. NaN when ``bench`` is constant or fewer than 2 days."""
    y, x = np.asarray(ret, dtype=np.float64), np.asarray(bench, dtype=np.float64)
    if len(x) < 2:
        return math.nan, math.nan, math.nan
    dx, dy = x - x.mean(), y - y.mean()
    sxx, syy, sxy = float(dx @ dx), float(dy @ dy), float(dx @ dy)
    if not sxx > 0.0 or x.min() == x.max():  # a constant benchmark (its residues are rounding)
        return math.nan, math.nan, math.nan
    beta = sxy / sxx
    alpha = float(y.mean()) - beta * float(x.mean())
    corr = sxy / math.sqrt(sxx * syy) if syy > 0.0 else math.nan
    return alpha * DAYS_A_YEAR, beta, corr


def rolling_sharpe_vol(ret, window: int = ROLLING_DAYS) -> tuple[np.ndarray, np.ndarray]:
    """Rolling annualised Sharpe and volatility (module docstring); NaN before ``window`` days."""
    r = np.asarray(ret, dtype=np.float64)
    sharpe, vol = np.full(len(r), np.nan), np.full(len(r), np.nan)
    if len(r) < window:
        return sharpe, vol
    win = np.lib.stride_tricks.sliding_window_view(r, window)
    mean, sd = win.mean(axis=1), win.std(axis=1, ddof=1)
    vol[window - 1:] = sd * math.sqrt(DAYS_A_YEAR)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe[window - 1:] = np.where(sd > 0.0, mean / sd * math.sqrt(DAYS_A_YEAR), np.nan)
    return sharpe, vol


def monthly_returns(dates, ret) -> list[tuple[int, int, str, str, float | None]]:
    """``[(year, month, first day, last day, return or None)]``, in order (module docstring)."""
    return [(k // 12 + 1970, k % 12 + 1, a, b, r) for k, a, b, r in period_returns(dates, ret, "M")]


def exposure(weights) -> dict[str, np.ndarray]:
    """Gross, net, names long and names short a day from ``Result.weights`` (a ``date``
    column and one per symbol)."""
    w = weights.drop("date").to_numpy().astype(np.float64) if weights.width > 1 else np.zeros((weights.height, 0))
    return {"gross": np.abs(w).sum(axis=1), "net": w.sum(axis=1),
            "long": (w > 0).sum(axis=1), "short": (w < 0).sum(axis=1)}


# --------------------------------------------------------------------------- the benchmark's words and table


def benchmark_rows(runs, bench: list[tuple[str, np.ndarray]], names: list[str]) -> list[list[str]]:
    """One row per shown strategy and benchmark: beta, alpha a year, correlation."""
    rows = []
    for label, params, result, _ in runs:
        ret = result.returns["ret"].to_numpy()
        for blabel, b in bench:
            a, beta, corr = alpha_beta(ret, b)
            rows.append([f"{label} {short(params, names)}", blabel, _num(beta, "{:.3f}"), _num(a, "{:.1%}"),
                         _num(corr, "{:.3f}")])
    return rows


def benchmark_sentence(result, bench: list[tuple[str, np.ndarray]]) -> str:
    """The first screen's line: the best book's beta and alpha to each benchmark."""
    ret = result.returns["ret"].to_numpy()
    parts = []
    for blabel, b in bench:
        a, beta, _ = alpha_beta(ret, b)
        parts.append(f"to {blabel}: beta {_num(beta, '{:.2f}')}, alpha {_num(a, '{:.1%}')} a year")
    return ("Against the benchmarks (daily OLS of the book's net return on the benchmark's over the window; "
            "alpha is the daily intercept x 365), " + "; ".join(parts) + ".")


def _num(v: float, spec: str) -> str:
    return spec.format(v) if isinstance(v, (int, float)) and math.isfinite(v) else "nan"


# --------------------------------------------------------------------------- charts


def rolling_chart(res, runs, names: list[str]) -> Chart | str:
    """Rolling 180-day Sharpe (above) and volatility (below) of the shown strategies, net."""
    import matplotlib

    n = runs[0][2].returns.height if runs else 0
    if n < ROLLING_DAYS:
        return (f"No rolling Sharpe or volatility: the window has {n} days, fewer than the {ROLLING_DAYS} "
                "of one rolling window.")
    fig = new_figure(WIDTH, 5.6)
    ax, axv = fig.subplots(2, 1, sharex=True)
    cm = matplotlib.colormaps["tab10"]
    for i, (label, params, result, _) in enumerate(runs):
        r = result.returns
        dates = as_dates(r["date"].to_numpy())
        sharpe, vol = rolling_sharpe_vol(r["ret"].to_numpy())
        ax.plot(dates, sharpe, color=cm(i), linewidth=1.3, label=f"{label} {short(params, names)}")
        axv.plot(dates, vol, color=cm(i), linewidth=1.3)
    ax.axhline(0.0, color="grey", linewidth=0.7, linestyle=":")
    ax.set_ylabel(f"Sharpe, {ROLLING_DAYS} days (a year)")
    axv.set_ylabel(f"volatility, {ROLLING_DAYS} days (a year)")
    percent_axis(axv.yaxis, "ann_vol")
    axv.set_xlim(dates[0], dates[-1])  # the whole window, as the equity chart's
    axv.set_xlabel("date (each point: the 180 days ending on it)")
    for a in (ax, axv):
        a.grid(True, alpha=0.3)
    below_legend(fig, *ax.get_legend_handles_labels(), ncols=2)
    start, end = res.window
    fig.suptitle(wrap(f"{res.name}: rolling {ROLLING_DAYS}-day Sharpe and volatility of the best strategies, net, "
                      f"{start} .. {end}", WIDTH), fontsize=11)
    caption = (f"At each day, the Sharpe ratio and volatility of the {ROLLING_DAYS} daily net returns ending on it, "
               "annualised as the metrics are (mean / std with ddof 1, times sqrt(365); std times sqrt(365)); "
               f"the first {ROLLING_DAYS - 1} days have no value.")
    return Chart("rolling_risk", "Rolling Sharpe and volatility", fig, caption)


def monthly_grid(months) -> tuple[list[int], np.ndarray]:
    """Years and a ``(years, 12)`` array of monthly returns (NaN: no day, or closed)."""
    years = sorted({y for y, *_ in months})
    z = np.full((len(years), 12), np.nan)
    for y, m, _, _, v in months:
        if v is not None:
            z[years.index(y), m - 1] = v
    return years, z


def monthly_chart(res, run, names: list[str]) -> Chart | str:
    """Monthly net returns of the best book, years x months, on a diverging scale centred on 0."""
    from sweep.report.figures import diverging

    label, params, result, _ = run
    months = monthly_returns(result.returns["date"].to_numpy(), result.returns["ret"].to_numpy())
    years, z = monthly_grid(months)
    fig = new_figure(WIDTH, 1.6 + 0.45 * len(years))
    ax = fig.subplots()
    cmap, norm = diverging(z, False, "total_return")
    im = ax.imshow(np.ma.masked_invalid(z), cmap=cmap, norm=norm, aspect="auto")
    for yi in range(len(years)):
        for mi in range(12):
            if np.isfinite(z[yi, mi]):
                dark = abs(norm(z[yi, mi]) - 0.5) > 0.3
                ax.text(mi, yi, f"{z[yi, mi]:.1%}", ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
    ax.set_xticks(range(12), MONTHS)
    ax.set_yticks(range(len(years)), [str(y) for y in years])
    ax.set_xlabel("month")
    ax.set_ylabel("year")
    cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cb.ax.set_ylabel("monthly net return")
    percent_axis(cb.ax.yaxis, "total_return")
    start, end = res.window
    fig.suptitle(wrap(f"{res.name}: monthly net returns of the best book {label} {short(params, names)}, "
                      f"{start} .. {end}", WIDTH), fontsize=11)
    caption = ("Each cell: the NAV at the month's last day over the NAV at the previous month's last day, minus 1 "
               "(the month's daily net returns compounded); the first and last months may be partial (the table "
               "below gives their dates); grey: no day of the window, or the book already ruined.")
    return Chart("monthly_returns", "Monthly returns", fig, caption)


def monthly_table(run) -> str:
    """The heatmap's numbers: one row per year, one cell per month, and the year's return."""
    _, _, result, row = run
    months = monthly_returns(result.returns["date"].to_numpy(), result.returns["ret"].to_numpy())
    by_year: dict[int, dict[int, tuple]] = {}
    for y, m, first, last, v in months:
        by_year.setdefault(y, {})[m] = (first, last, v)
    rows = []
    cid = esc(row["config_id"])
    for y in sorted(by_year):
        cells = [f"<th>{y}</th>"]
        for m in range(1, 13):
            got = by_year[y].get(m)
            if got is None:
                cells.append("<td>-</td>")
                continue
            first, last, v = got
            if v is None:
                cells.append(f'<td data-config="{cid}" data-month="{y}-{m:02d}" data-value="closed" '
                             f'title="{first} .. {last}">closed</td>')
            else:
                cells.append(f'<td data-config="{cid}" data-month="{y}-{m:02d}" data-value="{v!r}" '
                             f'title="{first} .. {last}" class="{"neg" if v < 0 else "pos"}">{v:.1%}</td>')
        vals = [g[2] for g in by_year[y].values()]
        year = None if any(v is None for v in vals) else float(np.prod([1.0 + v for v in vals])) - 1.0
        cells.append("<td>closed</td>" if year is None else f"<td>{year:.1%}</td>")
        rows.append(cells)
    return html_table(["year", *MONTHS, "year (its months compounded)"], rows, "monthly-returns", raw=True)


def exposure_chart(res, run, names: list[str]) -> Chart | str:
    """Gross and net exposure (above) and names long and short (below) of the best book."""
    label, params, result, _ = run
    if result.weights is None:
        return "No exposure chart: the best book was rerun without its weights."
    ex = exposure(result.weights)
    dates = as_dates(result.weights["date"].to_numpy())
    fig = new_figure(WIDTH, 5.6)
    ax, axn = fig.subplots(2, 1, sharex=True)
    ax.plot(dates, ex["gross"], color="tab:purple", linewidth=1.3, label="gross (sum of |w|)")
    ax.plot(dates, ex["net"], color="tab:green", linewidth=1.3, label="net (sum of w)")
    ax.axhline(0.0, color="grey", linewidth=0.7, linestyle=":")
    ax.set_ylabel("exposure (% of NAV)")
    percent_axis(ax.yaxis, "total_return")
    axn.step(dates, ex["long"], where="post", color="tab:blue", linewidth=1.2, label="names long")
    axn.step(dates, -ex["short"], where="post", color="tab:red", linewidth=1.2, label="names short (below 0)")
    axn.axhline(0.0, color="grey", linewidth=0.7)
    from matplotlib.ticker import MaxNLocator

    axn.yaxis.set_major_locator(MaxNLocator(integer=True))
    axn.set_ylabel("names held (short < 0)")
    axn.set_xlabel("date (weights after the day's rebalance)")
    for a in (ax, axn):
        a.grid(True, alpha=0.3)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = axn.get_legend_handles_labels()
    below_legend(fig, h1 + h2, l1 + l2, ncols=4)
    start, end = res.window
    fig.suptitle(wrap(f"{res.name}: exposure of the best book {label} {short(params, names)}, {start} .. {end}",
                      WIDTH), fontsize=11)
    m = result.metrics
    caption = ("From the weights after each day's rebalance (SEMANTICS §8 step 4), drifted between rebalances: "
               "gross is the sum of |w|, net the sum of w (fractions of NAV); below, the names held long and "
               f"short. Means over the window: gross {m.get('avg_gross_exposure', math.nan):.2f}, net "
               f"{m.get('avg_net_exposure', math.nan):.2f}, {m.get('avg_long', math.nan):.1f} names long, "
               f"{m.get('avg_short', math.nan):.1f} short.")
    return Chart("exposure", "Exposure over time", fig, caption)


def benchmark_table(runs, bench, names: list[str], note: str) -> list[str]:
    """The HTML blocks of the alpha/beta table (a sentence and the table)."""
    text = ("Beta and alpha of each shown strategy to each benchmark: the ordinary least squares fit of the "
            "book's daily net return on the benchmark's over the window (R = a + beta x b); alpha is the daily "
            "intercept a times 365 (not compounded), correlation is Pearson's. The benchmark earns the buy and "
            "hold of the symbol from the close before the window's first day (0 on its missing days) or the "
            "mean of each day's finite simple returns (the equal-weight market of SEMANTICS §5).")
    out = [f"<p>{esc(text + (' ' + note if note else ''))}</p>"]
    out.append(html_table(["strategy", "benchmark", "beta", "alpha (a year)", "correlation"],
                          benchmark_rows(runs, bench, names), "benchmarks"))
    return out


def benchmark_lines(ax, dates, bench) -> None:
    """The benchmarks' NAV on the equity chart: black and grey, dotted."""
    for (label, b), colour in zip(bench, ("black", "0.55")):
        nav, _ = nav_series(b)
        ax.plot(dates, nav, color=colour, linestyle=":", linewidth=1.4, label=f"benchmark: {label}")
