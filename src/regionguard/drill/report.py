"""Drill reports: a Rich table, `drill-report.json`, and a self-contained `drill-report.html`.

The HTML is one file with an inline SVG timeline (requests per 100 ms bucket, ok/error, with
vertical markers for the fault, verdicts and recovery) and, below it, a step waterfall of the
engine's plan over the outage window: steps run milliseconds apart, so as markers their labels
stacked on each other; as rows they stay readable. No scripts, no external `src`, so it opens
offline and can be attached to a post-mortem.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from regionguard.drill.charts import Clock, latency_svg, requests_svg
from regionguard.drill.load import LoadResult
from regionguard.drill.measures import DrillMeasures
from regionguard.reporting.waterfall import StepSpan, waterfall_svg


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f} s"


def write_html(path: Path, m: DrillMeasures, load: LoadResult,
               markers: Sequence[tuple[int, str, str]],
               spans: Sequence[StepSpan] = (), heal: tuple[int, int] | None = None) -> None:
    """`markers`: (monotonic ns, label, colour) point events drawn as vertical lines on the
    charts and the waterfall; `spans`: the engine plan's steps (`spans_from_journal`), drawn
    as a waterfall rather than as markers so their labels never pile up; `heal`: when the
    fault was undone and when the pair replicated again, a shaded band. Every chart runs on
    one clock: seconds since the load started, at the same x."""
    start = load.started_ns
    clock = Clock(start, max(load.stopped_ns, start + 1, *(t for t, _, _ in markers),
                             *(heal or ()), *(s.end_ns or s.start_ns for s in spans)))
    parts = [requests_svg(load, clock, markers, heal), "<h2>Request latency</h2>",
             '<p class="legend">per 100 ms:<span style="background:#2c6fbb"></span>p50'
             '<span style="background:#6a1b9a"></span>p99</p>',
             latency_svg(load, clock, markers, heal)]
    timeline = _timeline_rows(start, markers, spans)
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in [
            ("fault", f"{m.fault} on {m.region}: {m.fault_detail}"),
            ("strategy / replication", f"{m.strategy} / {m.replication}"),
            ("RTO (client)", _s(m.rto_s)),
            ("RTO (journal)", _s(m.engine.get("rto_s") if m.engine else None)),
            ("steps in the RTO", " · ".join(f"{k} {v:.3f} s"
                                            for k, v in m.engine.get("steps", {}).items())
             + f" · other {m.engine.get('other_s', 0):.3f} s" if m.engine else "-"),
            ("steps after it", " · ".join(f"{k} {v:.3f} s" for k, v in
                                          m.engine.get("after_rto", {}).items()) or "none"
             if m.engine else "-"),
            ("availability", f"{m.availability:.2%} ({m.ok} ok / {m.requests})"),
            ("RPO", f"{m.rpo_count} acknowledged writes lost of {m.acked_writes}"),
            ("split brain", "; ".join(m.split_brain) or "none"),
            ("mismatched / phantom rows", f"{len(m.mismatched)} / {len(m.phantoms)}"),
            ("new primary", m.new_primary or "-"),
        ]
    )
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>regionguard drill: {html.escape(m.fault)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse}}
th,td{{text-align:left;padding:4px 10px;border-bottom:1px solid #ddd}}
.legend span{{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}}</style></head>
<body><h1>Drill: {html.escape(m.fault)} on {html.escape(m.region)}</h1>
<p class="legend">requests per 100 ms:<span style="background:#3a9d5d"></span>ok
<span style="background:#d64545"></span>failed</p>
{"".join(parts)}
{_waterfall_section(markers, spans, clock)}
<h2>Measures</h2>
<table>{rows}</table>
<h2>Timeline</h2>
<p>seconds since the load started</p>
<table>{timeline}</table>
</body></html>
"""
    path.write_text(doc)


def _waterfall_section(markers: Sequence[tuple[int, str, str]],
                       spans: Sequence[StepSpan], clock: Clock) -> str:
    """The engine's steps on the charts' clock (seconds since the load started)."""
    if not spans:
        return "<h2>Engine steps</h2>\n<p>the engine ran no plan after the fault</p>"
    svg = waterfall_svg(spans, t0_ns=clock.t0_ns, t_end_ns=clock.t_end_ns, markers=markers)
    return f"<h2>Engine steps</h2>\n<p>seconds since the load started, as above</p>\n{svg}"


def _timeline_rows(start: int, markers: Sequence[tuple[int, str, str]],
                   spans: Sequence[StepSpan]) -> str:
    """The markers and the step starts as text too, in time order, for readers who copy a
    timeline into a post-mortem."""
    rows = [(t, html.escape(label), colour) for t, label, colour in markers]
    rows += [(s.start_ns, html.escape(f"{s.name} {s.outcome}") + (
        f" ({(s.end_ns - s.start_ns) / 1e9:.3f} s)" if s.end_ns is not None else ""), "#2c6fbb")
        for s in spans]
    return "".join(
        f'<tr><td style="color:{colour}">{(t_ns - start) / 1e9:7.3f} s</td><td>{label}</td></tr>'
        for t_ns, label, colour in sorted(rows, key=lambda r: r[0]))


def markers_from(journal_entries: Sequence[Mapping[str, Any]], fault_ns: int,
                 recovery_ns: int | None) -> list[tuple[int, str, str]]:
    """The fault, DOWN verdicts and recovery as point events; the plan's steps are not markers
    (they are `spans_from_journal` rows of the waterfall)."""
    marks: list[tuple[int, str, str]] = [(fault_ns, "fault", "#b00020")]
    for e in journal_entries:
        if e["mono_ns"] < fault_ns:
            continue
        if e["event"] == "verdict_change" and e.get("verdict") == "down":
            marks.append((e["mono_ns"], f"{e.get('region')} DOWN", "#e67e22"))
    if recovery_ns is not None:
        marks.append((recovery_ns, "recovered", "#1b7f3b"))
    return marks
