"""``sweep show`` of a Monte Carlo study and the end of its ``sweep run`` (the kind
registry's ``show``)."""

from __future__ import annotations

from pathlib import Path

from sweep.cli.common import (
    console_of,
    fit_table,
    fmt,
    id_length,
    print_table,
    read,
    term_width,
)
from sweep.metrics import lower_is_better


def show(folder: Path, args) -> int:
    """``sweep show`` of a Monte Carlo folder: the best configurations by their median over the
    samples, with the spread."""
    top = args.top
    from sweep.results.schema import read_manifest

    summary = read(folder / "summary.parquet")
    manifest = read_manifest(folder, required=False)
    objective = summary["objective"][0] if "objective" in summary.columns else "sharpe"
    params = [c for c in manifest.get("parameters", []) if c in summary.columns and summary[c].n_unique() > 1]
    best = summary.sort("median", descending=not lower_is_better(objective), nulls_last=True).head(top)
    mc = manifest.get("monte_carlo", {})
    width = term_width()
    console = console_of(width)
    console.print(f"{folder.name}: {objective} over {mc.get('method', 'Monte Carlo')} samples "
                  f"(top {best.height} of {summary.height} by median)")
    n_id = id_length(summary["config_id"])
    stats = [c for c in ("median", "q05", "q95", "p_best", "p_ruined", "mean", "p_positive", "n_samples")
             if c in summary.columns]
    cols = ["config_id", *params, *stats]
    rows = [{c: (row[c][:n_id] if c == "config_id" else fmt(row[c], c)) for c in cols}
            for row in best.iter_rows(named=True)]
    columns = {c: "left" if c in params or c == "config_id" else "right" for c in cols}
    print_table(fit_table(columns, rows, ["config_id", *params, "median"], stats[1:], width), width)
    return 0


def ending(study, folder: Path, data: str | None) -> tuple[list[str], list[str]]:
    """The end of ``sweep run``: the best configuration by its median, not ruined in any sample."""
    objective = study.objective
    import polars as pl

    from sweep.stats.choose import best_index

    s = read(folder / "summary.parquet")
    if "objective" in s.columns and s.height:
        objective = s["objective"][0]
    median = s["median"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
    p_ruined = s["p_ruined"].cast(pl.Float64).fill_null(0.0).to_numpy() if "p_ruined" in s.columns else None
    # A configuration ruined in some samples can ruin the real book too: prefer one never ruined.
    i = best_index(median, objective, p_ruined)
    n_ruined = int((p_ruined > 0).sum()) if p_ruined is not None else 0
    note = (f"; {n_ruined} of {s.height} configurations were ruined in some samples and set aside"
            if n_ruined and i >= 0 else "")
    if i < 0:
        i = best_index(median, objective)
    if i < 0:
        return [f"No configuration has a finite median {objective} over the samples."], []
    row = s.row(i, named=True)
    manifest = read(folder / "manifest.json")
    swept = [c for c in manifest.get("parameters", []) if c in s.columns and s[c].n_unique() > 1]
    what = ", ".join(f"{c} {fmt(row[c], c)}" for c in swept)
    ruined = (f", ruined in {fmt(row['p_ruined'], 'win_rate')} of them"
              if p_ruined is not None and row["p_ruined"] else "")
    return [f"Best median {objective}: {row['config_id']}" + (f" ({what})" if what else "")
            + f": median {fmt(row['median'], objective)}, 90 % of samples between {fmt(row['q05'], objective)} "
              f"and {fmt(row['q95'], objective)}, best in {fmt(row['p_best'], 'win_rate')} of the samples"
            + ruined + note + "."], []
