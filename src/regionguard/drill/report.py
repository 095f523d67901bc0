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

from regionguard.drill.load import LoadResult
from regionguard.drill.measures import DrillMeasures
from regionguard.reporting.waterfall import StepSpan, waterfall_svg

BUCKET_NS = 100_000_000


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values (a measure nothing produced)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f} s"


def write_html(path: Path, m: DrillMeasures, load: LoadResult,
               markers: Sequence[tuple[int, str, str]],
               spans: Sequence[StepSpan] = ()) -> None:
    """`markers`: (monotonic ns, label, colour) point events drawn as vertical lines on the
    timeline and the waterfall; `spans`: the engine plan's steps (`spans_from_journal`), drawn
    as a waterfall rather than as markers so their labels never pile up."""
    start = load.started_ns
    n = max(1, (load.stopped_ns - start) // BUCKET_NS + 1)
    ok = [0] * n
    err = [0] * n
    for r in load.requests:
        b = min(n - 1, max(0, (r.t_ns - start) // BUCKET_NS))
        (ok if r.ok else err)[b] += 1
    peak = max(1, max(a + b for a, b in zip(ok, err, strict=True)))
    width, height, pad = 960, 260, 40
    bw = (width - 2 * pad) / n
    scale = (height - 2 * pad) / peak
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" '
             f'role="img" aria-label="requests per 100 ms">']
    base = height - pad
    for i in range(n):
        x = pad + i * bw
        h_ok, h_err = ok[i] * scale, err[i] * scale
        if h_ok:
            parts.append(f'<rect x="{x:.1f}" y="{base - h_ok:.1f}" '
                         f'width="{max(bw - 0.5, 0.5):.1f}" height="{h_ok:.1f}" fill="#3a9d5d">'
                         f'<title>{ok[i]} ok</title></rect>')
        if h_err:
            parts.append(f'<rect x="{x:.1f}" y="{base - h_ok - h_err:.1f}" '
                         f'width="{max(bw - 0.5, 0.5):.1f}" height="{h_err:.1f}" fill="#d64545">'
                         f'<title>{err[i]} failed</title></rect>')
    parts.append(f'<line x1="{pad}" y1="{base}" x2="{width - pad}" y2="{base}" stroke="#444"/>')
    seconds = int((load.stopped_ns - start) / 1e9) + 1
    step = max(1, seconds // 10)
    for s in range(0, seconds + 1, step):
        x = pad + (s * 1e9 / BUCKET_NS) * bw
        parts.append(f'<text x="{x:.1f}" y="{base + 14}" font-size="10" '
                     f'text-anchor="middle">{s}s</text>')
    for i, (t_ns, label, colour) in enumerate(markers):
        x = pad + ((t_ns - start) / BUCKET_NS) * bw
        y = pad - 6 + (i % 4) * 11
        parts.append(f'<line x1="{x:.1f}" y1="{pad - 10}" x2="{x:.1f}" y2="{base}" '
                     f'stroke="{colour}" stroke-dasharray="3,2"/>')
        parts.append(f'<text x="{x + 2:.1f}" y="{y}" font-size="9" fill="{colour}">'
                     f'{html.escape(label)}</text>')
    parts.append("</svg>")
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
{_waterfall_section(markers, spans)}
<h2>Measures</h2>
<table>{rows}</table>
<h2>Timeline</h2>
<p>seconds since the load started</p>
<table>{timeline}</table>
</body></html>
"""
    path.write_text(doc)


def _waterfall_section(markers: Sequence[tuple[int, str, str]],
                       spans: Sequence[StepSpan]) -> str:
    """The outage window as a waterfall: zoomed on the spans and markers, not the whole load, so
    steps milliseconds apart still get visible bars."""
    if not spans:
        return "<h2>Engine steps</h2>\n<p>the engine ran no plan after the fault</p>"
    t0, t_end = _window(markers, spans)
    svg = waterfall_svg(spans, t0_ns=t0, t_end_ns=t_end, markers=markers)
    return f"<h2>Engine steps</h2>\n<p>seconds since the first event shown</p>\n{svg}"


def _window(markers: Sequence[tuple[int, str, str]],
            spans: Sequence[StepSpan]) -> tuple[int, int]:
    """From the earliest span or marker to the latest end, plus 5% so the last bar's end and
    marker do not sit on the frame. A running span has no end: it runs to the window's end."""
    times = [t for t, _, _ in markers] + [s.start_ns for s in spans]
    times += [s.end_ns for s in spans if s.end_ns is not None]
    t0, t_end = min(times), max(times)
    return t0, t_end + max(1, (t_end - t0) // 20)


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
