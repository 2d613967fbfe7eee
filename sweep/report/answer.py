"""The first screen of every report: the answer (the best book not ruined, its key figures)
and ONE verdict with the rule it follows (``id="verdict"``)."""

from __future__ import annotations

from typing import Any

from sweep.report.base import KEY_METRICS, Report, esc, fmt, html_table, metric_name


def key_metrics_table(row: dict[str, Any], objective: str) -> str:
    cols = [m for m in dict.fromkeys((objective,) + KEY_METRICS) if m in row]
    return html_table([metric_name(m) for m in cols], [[fmt(row[m], m) for m in cols]], "key-metrics", "key")



def verdict_block(label: str, sentence: str, rule: str) -> str:
    cls = {"credible": "good", "holds up": "good", "established": "good", "doubtful": "mixed", "mixed": "mixed",
           "not assessed": "none"}.get(label, "bad")
    if sentence.lower().startswith(label.lower() + ":"):  # the sentence opens with the label: say it once
        sentence = sentence[len(label) + 1:].lstrip()
        sentence = sentence[:1].upper() + sentence[1:]
    return (f'<div id="verdict" class="verdict {cls}"><p><b>Verdict: {esc(label)}.</b> {esc(sentence)}</p>'
            f'<p class="rule">{esc(rule)}</p></div>')


def kind_answer(rep: Report, lead: str, metrics: dict[str, Any] | None, objective: str, set_aside: str | None,
            label: str, sentence: str, rule: str) -> None:
    """The first screen of a kind's report: ``lead`` in words, the key figures, the
    set-aside line and the verdict by ``rule``."""
    out = ['<section id="answer">', f'<p class="best">{esc(lead)}</p>']
    if metrics:
        out.append(key_metrics_table(metrics, objective))
    if set_aside:
        out.append(f'<p class="setaside">{esc(set_aside)}</p>')
    out.append(verdict_block(label, sentence, rule))
    out.append("</section>")
    rep.answer.extend(out)
    rep.verdict = label
