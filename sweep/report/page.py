"""``sweep report RESULTS``: one self-contained HTML page of a results folder, with its charts
also written as PNG files.

Convention: the page is ``RESULTS/report.html`` unless ``--out`` names another
file; every chart is embedded in it as a base64 ``data:image/png`` URI and also
written to ``<stem>_charts/<chart>.png`` beside the HTML (``report_charts/``
by default), so the page opens from disk with no server and no network (no
external CSS, script, font or link: text that came from the study, such as a
URL in a comment, has its ``://`` escaped), and the PNG files can go into a
paper or a slide as they are.

The first screen is the answer: the best book that was not ruined (SEMANTICS
§8: a book whose NAV reached zero is never "the best", in a table or a chart;
one line says how many were set aside), its Sharpe, CAGR, maximum drawdown and
turnover, and ONE overall verdict (``id="verdict"``) with the rule it follows.
The provenance (study, data and its fingerprint, window, versions, the study
file) closes the page. Every table sits in a wrapper that scrolls sideways, so
the page fits an 800 px window.

What each kind shows (charts named as in ``CHARTS``; each kind's section is the function
the kind registry names as its ``report``, see ``sweep.report.sections``):

* ``grid`` / ``optuna``: verdict of ``sweep.stats.verdict.overall_verdict`` on
  ``summary.json``. ``equity_drawdown``: distinct strategies (the best of each
  factor when ``factor`` is swept, else the best that differ in more than
  ``phase``) rerun with ``sweep.backtest``, net and gross of fees and slippage,
  and their calendar-year returns read off the NAV, beside the BTC buy-and-hold and
  the equal-weight market (with each book's alpha and beta to them);
  ``rolling_risk`` (180-day Sharpe and volatility), ``monthly_returns`` (years x
  months) and ``exposure`` (gross, net, names long and short) of the best book
  (``sweep.report.risk``); the best table; each
  overfitting statistic marked passing or failing by the verdict's own bars;
  with a swept ``factor``, a section per factor with its best book's deflated
  Sharpe deflated by that factor's own trials and by the whole study's
  (pooled). ``heatmap``: the objective over two swept parameters on a
  diverging scale centred on 0 (signed metrics), impossible cells (phase >=
  period) blank. ``objective_vs_rebalance_days``: one line per ``factor``
  (else ``window``), with the q05..q95 interval of a Monte Carlo study only at
  the points that are one configuration that study sampled on the same data,
  window and objective (``--monte-carlo FOLDER``, else a sibling folder).
* ``walk_forward``: ``oos_equity`` (the stitched out-of-sample NAV, fold
  numbers above the chart) and ``train_vs_test``; the verdict by ``WF_RULE``.
* ``monte_carlo``: ``distribution`` (box plots, whiskers q05..q95, the actual
  value on the real data as a diamond, computed by rerunning each
  configuration) and ``objective_vs_rebalance_days``; the verdict by ``MC_RULE``.
* ``portfolio`` (a folder of ``sweep portfolio`` or of a portfolio study):
  ``book_equity``, the sleeves, their correlation and weights; the verdict is
  the least credible leg's.
* ``diagnostics``: the IC table ranked by |IR| with a sentence per factor;
  ``ic_series`` (daily IC and its rolling mean), ``ic_decay``,
  ``quantile_returns`` (bars with error bars), ``quantile_books`` and
  ``rank_autocorr`` (``sweep.report.diagnostics``); the verdict is the strongest
  IC's significance after a Bonferroni correction.

A missing optional piece (no ``summary.json``, no swept ``rebalance_days``,
data that moved or changed) skips its chart or table with a sentence saying
why; a folder that is not a results folder, or an unreadable file in it, is a
``SweepError`` naming the file.

Figures are built on ``matplotlib.figure.Figure`` directly and rendered by the
Agg canvas, never through ``pyplot``: no global backend switch (the caller's
Jupyter or GUI backend is left alone), no figure registry to leak, and no
display needed.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from pathlib import Path

from sweep.core.errors import SweepError
from sweep.core.io import write_bytes
from sweep.core.version import __version__
from sweep.report.base import DPI, Chart, Report, esc, metric_label
from sweep.report.folder import read_results
from sweep.report.sections import report_module, report_section

CHARTS_SUFFIX = "_charts"


def build_report(folder: str | Path, *, data: str | Path | None = None, funding: str | Path | None = None,
                 monte_carlo: str | Path | None = None) -> Report:
    """Read a results folder, build every chart (matplotlib figures) and the page's blocks."""
    res = read_results(folder)
    rep = Report(res)
    report_section(res.kind)(rep, data=data, funding=funding, monte_carlo=monte_carlo)
    provenance(rep, report_module(res.kind))
    return rep


def provenance(rep: Report, module) -> None:
    """Where the numbers came from: the page's last section (``module``: the kind's report module)."""
    res, m = rep.results, rep.results.manifest
    d = m.get("data") or {}
    start, end = res.window
    days = (m.get("evaluation_window") or {}).get("days")
    counts = getattr(module, "counts", None)
    extra = getattr(module, "provenance_rows", None)
    versions = ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items())
    rows = [
        ("study", f"{res.name} ({(m.get('study') or {}).get('path', '?')})"),
        ("kind", res.kind),
        ("objective", f"{res.objective}: {metric_label(res.objective)}, "
                      f"{'lower' if res.lower else 'higher'} is better"),
        ("data", f"{d.get('path', '?')}: {d.get('days', '?')} days x {d.get('symbols', '?')} symbols, "
                 f"{d.get('first_date', '?')} .. {d.get('last_date', '?')}, fingerprint {d.get('fingerprint', '?')}"),
        ("evaluation window", f"{start} .. {end}" + (f" ({days} days)" if days else "")),
        ("configurations", counts(res) if counts else str(m.get("configurations", "?"))),
        ("versions", versions or "?"),
        ("created", str(m.get("created", "?"))),
    ]
    if extra is not None:
        rows[2:2] = extra(res)
    if res.study_table.get("description"):
        rows.insert(1, ("description", str(res.study_table["description"])))
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    out = ['<h2 id="provenance">Provenance</h2>', f'<table class="meta">{body}</table>'] + rep.provenance
    text = (m.get("study") or {}).get("text")
    if text:
        out.append(f"<details><summary>Study file</summary><pre>{esc(text)}</pre></details>")
    rep.provenance = out


# --------------------------------------------------------------------------- HTML and files

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1250px;
 padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.3em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
table.meta th,table.meta td{text-align:left}table.meta th{background:#f4f4f4;white-space:nowrap}
table.data tr:nth-child(even){background:#fafafa}table.data th{background:#f0f0f0}
td.neg{color:#b00020}td.pos{color:#1b6e20}tr.total td,tr.total th{font-weight:600}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#555;margin-top:.3em}p.skipped{color:#8a5a00;font-style:italic}
ul.detail li{margin:.3em 0}pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em;white-space:pre-wrap}
div.scroll{overflow-x:auto;max-width:100%}h3{font-size:1.05em;margin-bottom:.2em}
table.meta td{overflow-wrap:anywhere}code{overflow-wrap:anywhere}
#answer{border:1px solid #ccc;border-radius:6px;padding:.4em 1em;margin:.6em 0 1.2em;background:#fcfcfc}
#answer p{margin:.45em 0}table.key td{font-size:1.1em;font-weight:600}
div.verdict{border-left:6px solid #888;padding:.1em .8em;margin:.6em 0}div.verdict.good{border-color:#2166ac}
div.verdict.mixed{border-color:#e08214}div.verdict.bad{border-color:#b2182b}p.rule{font-size:.85em;color:#555}
p.notice{color:#8a5a00}
footer{margin-top:3em;font-size:.8em;color:#777}
"""


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": "sweep"})
    return buf.getvalue()


def render_html(rep: Report, images: dict[str, bytes], charts_dir: str) -> str:
    h1 = f"<h1>{esc(rep.results.name)}: {esc(rep.results.kind.replace('_', '-'))} report</h1>"
    parts = [h1, *rep.answer]
    for b in rep.blocks:
        if isinstance(b, Chart):
            uri = "data:image/png;base64," + base64.b64encode(images[b.name]).decode("ascii")
            parts.append(f'<figure id="{b.name}"><img src="{uri}" alt="{esc(b.title)}">'
                         f"<figcaption>{esc(b.caption)} (File: {esc(charts_dir)}/{b.name}.png.)</figcaption></figure>")
        else:
            parts.append(b)
    parts += rep.provenance
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    title = f"{rep.results.name}: {rep.results.kind} report"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts)
            + f"\n<footer>Written by sweep {__version__} on {now} from {esc(rep.results.folder)}; the charts are "
              f"also in {esc(charts_dir)}/ as PNG files.</footer>\n</body></html>\n")


def charts_folder(out_html: Path) -> Path:
    """Where the PNG files of a report go: ``<stem>_charts/`` beside the HTML."""
    return out_html.with_name(out_html.stem + CHARTS_SUFFIX)


def write_report(folder: str | Path, out_html: str | Path | None = None, *, data: str | Path | None = None,
                 funding: str | Path | None = None, monte_carlo: str | Path | None = None) -> Path:
    """Write the HTML report of a results folder and its charts as PNG files; return the HTML's path.

    Default ``out_html``: ``<folder>/report.html``; the PNG files go to
    ``<stem>_charts/`` beside it (PNG files of an earlier report there that this
    one does not produce are removed, so the folder matches the page).
    """
    rep = build_report(folder, data=data, funding=funding, monte_carlo=monte_carlo)
    out = Path(out_html) if out_html is not None else rep.results.folder / "report.html"
    if out.is_dir():
        raise SweepError(f"--out {out} is a folder; give the HTML file to write (e.g. {out / 'report.html'})")
    if not out.parent.exists():
        raise SweepError(f"--out {out}: no such folder {out.parent}")
    cdir = charts_folder(out)
    try:
        cdir.mkdir(exist_ok=True)
        images = {name: _png(c.figure) for name, c in rep.charts.items()}
        for name, png in images.items():
            write_bytes(png, cdir / f"{name}.png")
        for old in cdir.glob("*.png"):
            if old.stem not in images:
                old.unlink()
        write_bytes(render_html(rep, images, cdir.name).encode("utf-8"), out)
    except OSError as exc:
        raise SweepError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None
    return out
