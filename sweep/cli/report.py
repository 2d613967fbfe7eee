"""``sweep report RESULTS``: one self-contained HTML page of a results folder, with its charts
also as PNG files (the page is built by ``sweep.report.page``)."""

from __future__ import annotations

HELP = {"report": "write an HTML report with charts of a results folder"}


def add_parser(subparsers) -> None:
    """Add ``sweep report`` to the CLI's subparsers (their ``parser_class`` raises ``SweepError``)."""
    p = subparsers.add_parser(
        "report", help=HELP["report"],
        description="Write one self-contained HTML page (charts embedded, no network needed) of a results "
                    "folder of any kind, with the charts also as PNG files in <name>_charts/ beside it.")
    p.add_argument("results", help="results folder (what `sweep run` wrote)")
    p.add_argument("--out", metavar="FILE.html", help="HTML file to write (default RESULTS/report.html)")
    p.add_argument("--data", help="the study's data file, if it moved since the run (to rerun the best)")
    p.add_argument("--funding", help="the study's separate funding table, if it had one and it moved")
    p.add_argument("--monte-carlo", metavar="FOLDER", dest="monte_carlo",
                   help="monte_carlo results folder whose q05..q95 band to draw (default: a sibling folder "
                        "on the same data sharing configurations)")


def command(args) -> int:
    """Run ``sweep report``; print where the page went and which charts were skipped."""
    from sweep.report.page import charts_folder, write_report

    out = write_report(args.results, getattr(args, "out", None), data=getattr(args, "data", None),
                       funding=getattr(args, "funding", None), monte_carlo=getattr(args, "monte_carlo", None))
    n = len(list(charts_folder(out).glob("*.png")))
    print(f"wrote {out} ({n} chart{'s' if n != 1 else ''}, also as PNG in {charts_folder(out)}/)")
    return 0
