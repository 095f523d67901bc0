"""A fault campaign's page: the RTOs as a histogram and every drill's outcome as a strip.

A campaign runs tens of drills; its JSON answers "how many", the page answers "how spread" and
"which ones" at a glance: a histogram of the client RTOs of the drills that failed over (with
its p50 and p95 marked), and one cell per drill in run order, coloured by what the history
checker and the heal said. Self-contained like every report here: inline SVG, no script, no
URL, every text escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

OUTCOME_COLOURS = {"failover": "#1b7f3b", "no failover": "#8c96a5", "anomaly": "#b3261e",
                   "not healed": "#c77700"}
HIST_W, HIST_H, PAD_L, PAD_B, PAD_T = 640, 220, 40, 34, 36
# a white outline behind text, so a bar or a line under it leaves it readable
HALO = ' paint-order="stroke" stroke="#ffffff" stroke-width="3"'
CELL, CELL_GAP = 18, 3


def drill_outcome(drill: Mapping[str, Any]) -> str:
    """What one drill came to: an anomaly outranks everything, then an unhealed lab."""
    if drill.get("anomalies") or drill.get("split_brain"):
        return "anomaly"
    if not drill.get("healed", True):
        return "not healed"
    return "failover" if drill.get("failover") else "no failover"


def _bins(values: Sequence[float], count: int = 12) -> tuple[float, float, list[int]]:
    """Equal-width bins from the smallest to the largest value (one bin when all are equal)."""
    low, high = min(values), max(values)
    if math.isclose(low, high):
        return low, high + 1e-9, [len(values)]
    width = (high - low) / count
    counts = [0] * count
    for v in values:
        counts[min(count - 1, int((v - low) / width))] += 1
    return low, high, counts


def histogram_svg(rtos: Sequence[float], p50: float | None, p95: float | None) -> str:
    """Client RTO (s) on x, drills on y, with a labelled y-axis and the p50/p95 lines."""
    if not rtos:
        return "<p>no drill failed over, so there is no RTO to plot</p>"
    low, high, counts = _bins(rtos)
    plot_w, plot_h = HIST_W - PAD_L - 10, HIST_H - PAD_B - PAD_T
    top = max(counts)
    bar_w = plot_w / len(counts)

    def x(v: float) -> float:
        return PAD_L + (v - low) / (high - low) * plot_w

    parts = [f'<svg width="{HIST_W}" height="{HIST_H}" viewBox="0 0 {HIST_W} {HIST_H}" '
             'role="img" aria-label="client RTO histogram" font-family="sans-serif">']
    for i, n in enumerate(counts):
        h = n / top * plot_h
        parts.append(f'<rect x="{PAD_L + i * bar_w + 1:.1f}" y="{PAD_T + plot_h - h:.1f}" '
                     f'width="{max(1.0, bar_w - 2):.1f}" height="{h:.1f}" fill="#2c6fbb">'
                     f"<title>{n} drills</title></rect>")
    base = PAD_T + plot_h
    parts.append(f'<line x1="{PAD_L}" y1="{base}" x2="{PAD_L + plot_w}" y2="{base}" '
                 'stroke="#5c6778"/>')
    parts.append(f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{base}" stroke="#5c6778"/>')
    for tick in sorted({0, top // 2, top}):  # the y-axis: drills
        y = base - tick / top * plot_h
        parts.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" font-size="11" '
                     f'text-anchor="end">{tick}</text>')
    parts.append('<text x="4" y="12" font-size="11" fill="#5c6778">drills</text>')
    for v, anchor in ((low, "start"), ((low + high) / 2, "middle"), (high, "end")):
        parts.append(f'<text x="{x(v):.1f}" y="{base + 14}" font-size="11" '
                     f'text-anchor="{anchor}">{v:.2f} s</text>')  # the x-axis: seconds
    for label, value, colour, y in (("p50", p50, "#1b7f3b", 12), ("p95", p95, "#b3261e", 26)):
        if value is None:  # each percentile's label on its own line above the plot
            continue
        vx = x(min(max(value, low), high))
        anchor = "end" if vx > PAD_L + plot_w * 0.8 else "start"
        parts.append(f'<line x1="{vx:.1f}" y1="{y + 2}" x2="{vx:.1f}" y2="{base}" '
                     f'stroke="{colour}" stroke-dasharray="4,3"/>')
        parts.append(f'<text x="{vx + (-4 if anchor == "end" else 4):.1f}" y="{y}" '
                     f'font-size="11" fill="{colour}" text-anchor="{anchor}"{HALO}>'
                     f"{label} {value:.2f} s</text>")
    parts.append(f'<text x="{PAD_L + plot_w / 2:.1f}" y="{HIST_H - 4}" font-size="11" '
                 'text-anchor="middle" fill="#5c6778">client RTO</text>')
    return "".join(parts) + "</svg>"


def strip_svg(drills: Sequence[Mapping[str, Any]]) -> str:
    """One cell per drill, in run order, coloured by its outcome, with a legend."""
    per_row = 30
    rows = max(1, math.ceil(len(drills) / per_row))
    width = per_row * (CELL + CELL_GAP) + 10
    height = rows * (CELL + CELL_GAP) + 26
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             'role="img" aria-label="drill outcomes" font-family="sans-serif">']
    for i, drill in enumerate(drills):
        outcome = drill_outcome(drill)
        col, row = i % per_row, i // per_row
        title = html.escape(f"drill {drill.get('index', i + 1)}: {drill.get('fault')} on "
                            f"{drill.get('site')}: {outcome}")
        parts.append(f'<rect x="{col * (CELL + CELL_GAP)}" y="{row * (CELL + CELL_GAP)}" '
                     f'width="{CELL}" height="{CELL}" rx="3" '
                     f'fill="{OUTCOME_COLOURS[outcome]}"><title>{title}</title></rect>')
    x = 0
    legend_y = rows * (CELL + CELL_GAP) + 16
    for outcome, colour in OUTCOME_COLOURS.items():
        parts.append(f'<rect x="{x}" y="{legend_y - 10}" width="10" height="10" '
                     f'fill="{colour}"/><text x="{x + 14}" y="{legend_y}" '
                     f'font-size="11">{html.escape(outcome)}</text>')
        x += 14 + 7 * len(outcome) + 16
    return "".join(parts) + "</svg>"


def campaign_html(summary: Mapping[str, Any]) -> str:
    e = html.escape
    drills = list(summary.get("per_drill") or [])
    rtos = [float(d["client_rto_s"]) for d in drills if d.get("client_rto_s") is not None]
    rto = summary.get("client_rto_s") or {}
    head = [("drills", f"{summary.get('drills')} of {summary.get('asked')} (seed "
                       f"{summary.get('seed')})"),
            ("failovers", summary.get("failovers")),
            ("client RTO", " · ".join(f"{k} {v:.2f} s" for k, v in rto.items()
                                      if v is not None) or "n/a"),
            ("acknowledged writes / lost", f"{summary.get('acked_writes')} / "
                                           f"{summary.get('lost_acked')}"),
            ("split brain", summary.get("split_brain")),
            ("anomalies", len(summary.get("anomalies") or [])),
            ("not healed", ", ".join(str(i) for i in summary.get("unhealed") or []) or "none")]
    rows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in head)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>regionguard fault campaign</title>
<style>
body{{margin:0;font:14px/1.45 system-ui,sans-serif;color:#1d2430;background:#f4f6f9}}
header{{padding:12px 20px;background:#1d2430;color:#fff}} header h1{{margin:0;font-size:19px}}
main{{display:grid;gap:14px;padding:14px 20px 28px}}
section{{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:12px 14px;
overflow-x:auto}}
h2{{margin:0 0 8px;font-size:15px}} table{{border-collapse:collapse}}
th,td{{text-align:left;padding:4px 8px;border-bottom:1px solid #eceff3}}
th{{color:#5c6778;font-weight:600;font-size:12px}}
</style></head><body>
<header><h1>Fault campaign: {e(str(summary.get('drills')))} drills</h1></header>
<main>
<section><h2>Summary</h2><table>{rows}</table></section>
<section><h2>Client RTO of the drills that failed over</h2>
{histogram_svg(rtos, rto.get('p50'), rto.get('p95'))}</section>
<section><h2>Each drill, in run order</h2>{strip_svg(drills)}</section>
</main></body></html>
"""
