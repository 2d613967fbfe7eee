"""``sweep show`` of a walk-forward study and the end of its ``sweep run`` (the kind
registry's ``show``)."""

from __future__ import annotations

from pathlib import Path

from sweep.cli.common import console_of, fit_table, fmt, print_table, read, term_width


def show(folder: Path, args) -> int:
    """``sweep show`` of a walk-forward folder: each fold's choice, train and test, and the
    out-of-sample book."""
    from sweep.results.schema import read_manifest

    folds = read(folder / "folds.parquet")
    summary = read(folder / "summary.json") if (folder / "summary.json").exists() else {}
    manifest = read_manifest(folder, required=False)
    objective = manifest.get("study", {}).get("objective", "sharpe")
    params = [c for c in manifest.get("parameters", []) if c in folds.columns and folds[c].n_unique() > 1]
    width = term_width()
    console = console_of(width)
    console.print(f"{folder.name}: walk-forward, {folds.height} folds (chosen on train, traded on test)")
    train, test = f"train_{objective}", f"test_{objective}"
    cols = ["fold", "test_start", "test_end", *params, train, test, "test_rank"]
    rows = []
    for row in folds.iter_rows(named=True):
        cells = {c: fmt(row.get(c), objective if c in (train, test) else c) for c in cols[:-1]}
        cells["test_rank"] = (f"{row['test_rank']}/{row['n_candidates']}" if "n_candidates" in row
                              else str(row["test_rank"]))
        rows.append(cells)
    columns = {c: "left" if c in params or "start" in c or "end" in c else "right" for c in cols}
    print_table(fit_table(columns, rows, ["fold", "test_start", *params, test],
                            [train, "test_rank", "test_end"], width), width)
    m = summary.get("metrics", {})
    if m:
        console.print(f"Out of sample ({summary.get('oos_start')} .. {summary.get('oos_end')}): Sharpe "
                      f"{fmt(m.get('sharpe'))}, total return {fmt(m.get('total_return'), 'total_return')}, "
                      f"max drawdown {fmt(m.get('max_drawdown'), 'max_drawdown')}; mean in-sample Sharpe of the "
                      f"choices {fmt(summary.get('is_sharpe_mean'))}, out-of-sample / in-sample "
                      f"{fmt(summary.get('oos_is_sharpe_ratio'))}.")
    return 0


def ending(study, folder: Path, data: str | None) -> tuple[list[str], list[str]]:
    """The end of ``sweep run``: the out-of-sample book in one line."""
    s = read(folder / "summary.json")
    m = s.get("metrics", {})
    line = (f"Out of sample {s.get('oos_start')} .. {s.get('oos_end')} ({s.get('folds')} folds, each "
            f"configuration chosen on its train window): Sharpe {fmt(m.get('sharpe'))}, CAGR "
            f"{fmt(m.get('cagr'), 'cagr')}, max drawdown {fmt(m.get('max_drawdown'), 'max_drawdown')}; "
            f"out-of-sample / in-sample Sharpe {fmt(s.get('oos_is_sharpe_ratio'))}.")
    folds = read(folder / "folds.parquet")
    if "test_ruined" in folds.columns:
        n = int((folds["test_ruined"].fill_null(0.0) > 0).sum())
        if n:
            line += f" {n} of {folds.height} chosen books were ruined on their test window."
    return [line], []
