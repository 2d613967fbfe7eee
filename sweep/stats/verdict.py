"""One overall verdict on a search, from the overfitting statistics of ``summary.json``.

The four statistics answer different questions, and read one by one they can
seem to disagree ("DSR 1.000: unlikely to be luck" beside "PBO 0.69: no
better than a coin flip"): the DSR asks whether the best configuration's
Sharpe beats the best of as many tries of pure luck; the PBO whether choosing
the in-sample best carries over out of sample; the degradation slope whether
more in-sample Sharpe came with more out-of-sample Sharpe; the minimum
backtest length whether the window is long enough for that many tries. A
researcher who wants to trade the best needs all four to pass, so the rule is
a conjunction:

* ``credible``: DSR >= 0.95, PBO < 0.5, degradation slope > 0 and the window
  at least the minimum backtest length;
* ``doubtful``: exactly one of the four fails;
* ``not credible``: two or more fail;
* ``not assessed``: a statistic is missing (too few configurations or days).

Examples:
    >>> v = overall_verdict({"overfitting": {"dsr": 0.99, "min_backtest_years": 2.0,
    ...     "backtest_years": 6.0, "pbo": {"pbo": 0.69, "degradation_slope": -0.2}}})
    >>> v.label
    'not credible'
    >>> v.failed
    ['PBO 0.69 >= 0.5', 'degradation slope -0.20 <= 0']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

DSR_BAR = 0.95
PBO_BAR = 0.5

RULE = (f"Rule: credible when all four tests pass (deflated Sharpe >= {DSR_BAR}, PBO < {PBO_BAR}, "
        "degradation slope > 0, window at least the minimum backtest length); doubtful when one fails; "
        "not credible when two or more fail.")


@dataclass
class Verdict:
    """The overall verdict: ``label`` (one of the four above), the tests that ``passed`` and
    ``failed`` (each a short phrase with its figure) and a one-line ``sentence``."""

    label: str
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def sentence(self) -> str:
        if self.label == "not assessed":
            return ("Not assessed: " + ", ".join(self.missing)
                    + " could not be computed (too few configurations or days).")
        head = {"credible": "Credible", "doubtful": "Doubtful", "not credible": "Not credible"}[self.label]
        if not self.failed:
            return f"{head}: {'; '.join(self.passed)}."
        out = f"{head}: fails {'; '.join(self.failed)}"
        return out + (f" (passes {'; '.join(self.passed)})." if self.passed else ".")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def overall_verdict(summary: dict[str, Any] | None) -> Verdict:
    """The verdict of ``summary.json`` (a grid's or an Optuna study's) by the rule above."""
    o = (summary or {}).get("overfitting")
    if not isinstance(o, dict):
        return Verdict("not assessed", missing=["the overfitting statistics"])
    pbo = o.get("pbo") if isinstance(o.get("pbo"), dict) else {}
    passed: list[str] = []
    failed: list[str] = []
    missing: list[str] = []
    dsr = o.get("dsr")
    if _finite(dsr):
        (passed if dsr >= DSR_BAR else failed).append(
            f"deflated Sharpe {dsr:.3f} {'>=' if dsr >= DSR_BAR else '<'} {DSR_BAR}")
    else:
        missing.append("the deflated Sharpe")
    p = pbo.get("pbo")
    if _finite(p):
        (passed if p < PBO_BAR else failed).append(f"PBO {p:.2f} {'<' if p < PBO_BAR else '>='} {PBO_BAR}")
    else:
        missing.append("the PBO")
    slope = pbo.get("degradation_slope")
    if _finite(slope):
        (passed if slope > 0 else failed).append(f"degradation slope {slope:.2f} {'>' if slope > 0 else '<='} 0")
    else:
        missing.append("the degradation slope")
    need, have = o.get("min_backtest_years"), o.get("backtest_years")
    if _finite(need) and _finite(have):
        (passed if have >= need else failed).append(
            f"{have:.1f} years of data {'>=' if have >= need else '<'} the {need:.1f} the search needs")
    else:
        missing.append("the minimum backtest length")
    if missing:
        return Verdict("not assessed", passed, failed, missing)
    label = "credible" if not failed else "doubtful" if len(failed) == 1 else "not credible"
    return Verdict(label, passed, failed)


def sampled_splits(pbo: dict[str, Any]) -> str:
    """How the PBO was estimated when CSCV used a sample of its splits (a grid too large for all
    of them, ``sweep.stats.overfit.pbo_chunks``); ``""`` when every split was used.

    >>> sampled_splits({"splits_sampled": True, "n_splits_used": 2000, "n_combinations_total": 12870})
    'a seeded sample of 2,000 of the 12,870 splits (1,000 halvings, each both ways; standard error at most 0.016)'
    """
    if not pbo.get("splits_sampled"):
        return ""
    used, total = pbo.get("n_splits_used"), pbo.get("n_combinations_total")
    m = used // 2
    return (f"a seeded sample of {used:,} of the {total:,} splits ({m:,} halvings, each both ways; standard "
            f"error at most {0.5 / math.sqrt(m):.3f})")
