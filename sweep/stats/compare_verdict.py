"""The verdict of ``sweep compare`` in words: where the value ranks, and whether the data tell
it apart from the best (or, for the best, from the runner-up); the figures formatted as the
sentence and the table print them."""

from __future__ import annotations

from typing import Any

from sweep.core.errors import SweepError
from sweep.metrics import get as get_metric

# The metrics computed from a daily return series R; sharpe_pre_cost is `sharpe` of the
# pre-cost series. Every other metric of METRICS is not computed from R: a tranche's
# is the mean over its phase books (`ruined`: all of them ruined).
SERIES = ("total_return", "cagr", "ann_vol", "sharpe", "sortino", "max_drawdown", "calmar", "win_rate")
PRE_COST = {"sharpe_pre_cost": "sharpe"}  # metric -> the SERIES metric of the pre-cost series


def from_returns(metric: str) -> bool:
    """Whether ``metric`` is computed from a daily return series (so it can be bootstrapped)."""
    return metric in SERIES or metric in PRE_COST


# --------------------------------------------------------------------------- words

def _metric(name: str):
    """The row of ``sweep.metrics`` for ``name``; None for a name that is no metric."""
    try:
        return get_metric(name)
    except SweepError:
        return None


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def format_value(metric: str, x: float | None) -> str:
    """A value of ``metric`` in words: a percent for a percent metric, 2 decimals otherwise."""
    if x is None:
        return "n/a"
    scale, unit, digits = (100.0, " %", 1) if getattr(_metric(metric), "percent", False) else (1.0, "", 2)
    v = x * scale
    if v != 0 and abs(v) < 0.5 * 10 ** -digits:  # never print a non-zero bound as 0.00
        return f"{v:.1g}{unit}"
    return f"{v:.{digits}f}{unit}"


def _apart(row: dict[str, Any]) -> bool:
    """Whether the 90 % interval of the value's difference from the best excludes zero."""
    lo, hi = row["diff_q05"], row["diff_q95"]
    return lo is not None and hi is not None and (lo > 0 or hi < 0)


def verdict(obj: dict[str, Any], best: int, target: int, ranks: list[int], periods: list[int]) -> str:
    """The sentence a researcher can act on: where the value ranks, and whether the data
    tell it apart from the best (or, for the best, from the runner-up)."""
    P, metric, rows = obj["param"], obj["objective"], obj["values"]
    label, k = getattr(_metric(metric), "short", metric), len(rows)
    b, t = rows[best], rows[target]
    f = lambda x: format_value(metric, x)
    if target == best:
        r = rows[min((j for j in range(k) if j != best), key=lambda j: (ranks[j], j))]
        text = (f"{P} = {b['value']} ranks 1st of {k} with a tranche {label} of {f(b['objective'])}; "
                f"the runner-up {r['value']} has {f(r['objective'])}")
        versus, pair = r, (b["value"], r["value"])
        interval = f"the 90 % interval of {r['value']} minus {b['value']}"
    else:
        text = (f"{P} = {t['value']} ranks {_ordinal(t['rank'])} of {k}"
                + (" (ruined: every phase book's NAV reached zero)" if t["ruined"] else "")
                + f"; its tranche {label} {f(t['objective'])} against {f(b['objective'])} at {b['value']}")
        versus, pair = t, (b["value"], t["value"])
        interval = "the 90 % interval of the difference"
    if not from_returns(metric):
        text += f". {label} is not computed from daily returns, so there is no bootstrap interval."
    else:
        text += f"; {interval}, {f(versus['diff_q05'])} .. {f(versus['diff_q95'])}, "
        text += (f"excludes zero: on these data {pair[0]} is better than {pair[1]}" if _apart(versus)
                 else "includes zero: these data cannot tell them apart")
        if target == best:
            n_apart = sum(_apart(x) for j, x in enumerate(rows) if j != best)
            text += (f" ({n_apart} of the other {k - 1} values are told apart from {b['value']}; "
                     f"P(best) {format_p(b['p_best'])} for {b['value']}).")
        else:
            text += f" (P(best) {format_p(t['p_best'])} for {t['value']})." if _apart(t) else "."
    if t["n_phases"] > 1:
        text += (f" Phase alone moves {t['value']}'s {label} from {f(t['phase_min'])} to "
                 f"{f(t['phase_max'])} ({t['n_phases']} phases).")
    elif periods[target] > 1:
        text += (f" Only one phase of {P} = {t['value']} was run, so its timing luck is not measured "
                 "(phase = \"all\" in [grid] measures it).")
    n_ruined = sum(r["ruined"] for r in rows)
    return text + (f" {n_ruined} of the {k} values {'was' if n_ruined == 1 else 'were'} ruined and rank last."
                   if n_ruined else "")


def format_p(x: float | None) -> str:
    """A probability, 2 decimals."""
    return "n/a" if x is None else f"{x:.2f}"
