"""The words of a diagnostics study, shared by its report (``sweep.report.diagnostics``), its
charts and ``sweep show`` / the end of ``sweep run`` (``sweep.cli.kind_diagnostics``):
``ranked`` orders summary.parquet by |IR| (NaN last), ``sentence`` says what one row means,
``significance`` gives the verdict, ``cell`` formats a table cell.

"The sign is stable in x % of days" is the share of days whose IC has the mean IC's sign
(``ic_positive`` for a positive mean, 1 - ``ic_positive`` for a negative one)."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from sweep.report.base import show, swept

ALPHA = 0.05
NOT_PARAMS = {"config_id", "horizon", "schema_version"}


def ranked(summary: pl.DataFrame, by: str = "ic_ir") -> pl.DataFrame:
    """summary.parquet's rows by |``by``| descending, rows where it is NaN or missing last
    (ties keep the table's order)."""
    key = pl.col(by).cast(pl.Float64).fill_nan(None).abs().alias("__rank_key")
    return (summary.with_columns(key).sort("__rank_key", descending=True, nulls_last=True, maintain_order=True)
            .drop("__rank_key"))


def shown_params(summary: pl.DataFrame, params: list[str]) -> list[str]:
    """The configuration's parameters worth naming: the swept ones, and ``factor`` and
    ``window`` always (a sentence names the factor)."""
    cands = [c for c in params if c in summary.columns and c not in NOT_PARAMS]
    moving = swept(summary, cands)
    return [c for c in cands if c in moving or c in ("factor", "window")]


def label(row: dict[str, Any], shown: list[str]) -> str:
    """``volatility(30)``, ``size``, ``momentum(10; q 10)``: a configuration in words."""
    name = str(row.get("factor") or "the factor")
    # A factor without a window (size) resolves to window 0: no window to name.
    parts = [show(row["window"])] if row.get("window") not in (None, 0) else []
    parts += [f"{c} {show(row[c])}" for c in shown if c not in ("factor", "window") and c in row]
    return f"{name}({'; '.join(parts)})" if parts else name


def finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and v is not None and math.isfinite(v)


def ic_text(v: Any) -> str:
    return f"{v:.3f}" if finite(v) else "-"


def t_text(v: Any) -> str:
    return f"{v:.1f}" if finite(v) else "-"


def p_text(v: Any) -> str:
    if not finite(v):
        return "-"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def p_is(v: Any) -> str:
    """``p = 0.003``, ``p < 0.001``."""
    t = p_text(v)
    return f"p {t}" if t.startswith("<") else f"p = {t}"


def pct_text(v: Any) -> str:
    return f"{v * 100:.0f} %" if finite(v) else "-"


def stable_share(row: dict[str, Any]) -> float:
    """The share of days whose IC has the mean IC's sign."""
    m, pos = row.get("ic_mean"), row.get("ic_positive")
    if not (finite(m) and finite(pos)):
        return math.nan
    return pos if m >= 0 else 1.0 - pos


def side_clause(row: dict[str, Any]) -> str:
    """Which side the strategy buys and whether the IC's sign suits it."""
    side, m = row.get("long_side") or "", row.get("ic_mean")
    if side not in ("low", "high") or not finite(m):
        return ""
    wants = "negative" if side == "low" else "positive"
    buys = "lowest" if side == "low" else "highest"
    fits = (m < 0) == (side == "low")
    return (f"; the strategy buys its {buys} values, so it wants a {wants} IC: "
            + ("it has one" if fits else "its IC has the other sign, so the book bets against the ranking"))


def sentence(row: dict[str, Any], shown: list[str]) -> str:
    """``volatility(30) ranks 5-day returns with mean IC -0.031, t = -3.4; the sign is stable
    in 61 % of days; ...``: one row of summary.parquet in words."""
    who, h = label(row, shown), row.get("horizon")
    if not finite(row.get("ic_mean")):
        return (f"{who} has no finite IC at {h}-day returns (fewer than 2 names ranked with a return on every "
                "day, or a factor constant across names).")
    return (f"{who} ranks {h}-day returns with mean IC {ic_text(row['ic_mean'])}, t = {t_text(row.get('ic_t'))}; "
            f"the sign is stable in {pct_text(stable_share(row))} of {row.get('n_days', '?')} days"
            + side_clause(row) + ".")


def factor_sentences(rows: pl.DataFrame, shown: list[str]) -> list[str]:
    """One sentence per factor (``rows`` ranked): its strongest configuration and horizon."""
    seen, out = set(), []
    for row in rows.iter_rows(named=True):
        f = row.get("factor")
        if f in seen:
            continue
        seen.add(f)
        out.append(sentence(row, shown))
    return out


def n_tests(summary: pl.DataFrame) -> int:
    """The configuration x horizon pairs with a p-value: what the Bonferroni correction divides by."""
    return summary.filter(pl.col("ic_p").cast(pl.Float64).is_finite()).height


def significance(row: dict[str, Any] | None, tests: int) -> tuple[str, str]:
    """The verdict on the strongest row by ``DIAG_RULE``: (label, sentence)."""
    if row is None or not finite(row.get("ic_p")):
        return "not assessed", "Not assessed: no configuration has a finite IC at any horizon."
    p = row["ic_p"]
    adj = min(1.0, p * max(tests, 1))
    what = f"{p_is(p)}; adjusted for {tests} configuration x horizon pairs (Bonferroni): {p_is(adj)}"
    if adj < ALPHA:
        return "established", f"Established: the IC is significant at 5 % even after the correction ({what})."
    if p < ALPHA:
        return "doubtful", (f"Doubtful: significant at 5 % on its own but not after the correction for the "
                            f"{tests} pairs tested ({what}).")
    return "not established", f"Not established: not significant at 5 % ({what})."



TABLE_HEAD = {"horizon": "horizon (days)", "ic_mean": "mean IC", "ic_std": "IC std", "ic_ir": "IR",
              "ic_t": "t", "ic_p": "p", "ic_positive": "IC > 0", "n_days": "days",
              "spread_mean": "spread top - bottom", "rank_autocorr_1": "rank autocorr (lag 1)",
              "turnover_top": "turnover top", "turnover_bottom": "turnover bottom"}


def cell(v: Any, col: str) -> str:
    if col in ("ic_mean", "ic_std", "ic_ir", "rank_autocorr_1"):
        return ic_text(v)
    if col == "ic_t":
        return t_text(v)
    if col == "ic_p":
        return p_text(v)
    if col in ("ic_positive", "turnover_top", "turnover_bottom"):
        return f"{v:.1%}" if finite(v) else "-"
    if col == "spread_mean":
        return f"{v:.2%}" if finite(v) else "-"
    return show(v)
