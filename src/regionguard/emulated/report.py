"""The emulated drill's report: `drill-report.json` and a self-contained `drill-report.html`.

The HTML has one inline SVG: a waterfall of the outage window on world time since the fault,
one lane per thing that happened (the fault, DNS's answer, the verdict, each plan step as a bar)
so labels never overlap, and a table per measure. No scripts, no external references.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

LANE_H = 22
LEFT = 150
WIDTH = 900
COLORS = {"ok": "#2e7d32", "fault": "#c62828", "step": "#1565c0", "unfinished": "#ef6c00",
          "failed": "#c62828", "dns": "#6a1b9a", "verdict": "#ad1457"}


def write_reports(out_dir: Path, result: dict[str, Any]) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "drill-report.json"
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    html_path = out_dir / "drill-report.html"
    html_path.write_text(render_html(result))
    return json_path, html_path


def _lanes(result: dict[str, Any]) -> tuple[list[tuple[str, list[tuple[float, float, str,
                                                                        str]]]], float]:
    """(label, [(start, end, color, title)]) per lane, in seconds since the fault."""
    t0 = float(result["fault"]["at"])
    lanes: list[tuple[str, list[tuple[float, float, str, str]]]] = []
    journal = result.get("journal", [])
    end = max([0.0, *(e["mono_ns"] / 1e9 - t0 for e in journal if "mono_ns" in e),
               *(a["t"] - t0 for a in result["dns"]["answers"])]) + 30
    lanes.append((f"fault: {result['fault']['kind']}", [(0.0, end, COLORS["fault"],
                                                         result["fault"]["region"])]))
    answers = result["dns"]["answers"]
    segs = []
    for i, a in enumerate(answers):
        start = max(-60.0, a["t"] - t0)
        stop = answers[i + 1]["t"] - t0 if i + 1 < len(answers) else end
        segs.append((start, stop, COLORS["dns"] if i else "#90a4ae", f"DNS: {a['answer']}"))
    lanes.append(("DNS answer", segs))
    for e in journal:
        if e.get("event") == "verdict":
            at = e["mono_ns"] / 1e9 - t0
            first = e.get("first_failure_ns")
            start = first / 1e9 - t0 if first else at
            lanes.append(("verdict: DOWN", [(start, max(at, start + 0.5), COLORS["verdict"],
                                             f"first failed probe -> verdict ({at:.1f} s)")]))
    open_steps: dict[str, float] = {}
    for e in journal:
        if e.get("event") != "step":
            continue
        at = e["mono_ns"] / 1e9 - t0
        if e["outcome"] == "started":
            open_steps[e["step"]] = at
        elif e["step"] in open_steps:
            start = open_steps.pop(e["step"])
            color = COLORS.get(e["outcome"], COLORS["step"])
            lanes.append((f"step: {e['step']}", [(start, at, color,
                                                  f"{e['step']} {e['outcome']}: "
                                                  f"{at - start:.1f} s")]))
    return lanes, end


def _svg(result: dict[str, Any]) -> str:
    lanes, end = _lanes(result)
    begin = -60.0
    span = max(1.0, end - begin)

    def x(t: float) -> float:
        return LEFT + (t - begin) / span * WIDTH

    rows = []
    for i, (label, segs) in enumerate(lanes):
        y = 20 + i * LANE_H
        rows.append(f'<text x="4" y="{y + 14}" font-size="12">{html.escape(label)}</text>')
        for start, stop, color, title in segs:
            w = max(2.0, x(stop) - x(start))
            rows.append(f'<rect x="{x(start):.1f}" y="{y + 3}" width="{w:.1f}" height="14" '
                        f'fill="{color}"><title>{html.escape(title)}</title></rect>')
    height = 40 + len(lanes) * LANE_H
    ticks = []
    step = 60 if span <= 1200 else 300
    t = 0.0
    while t <= end:
        ticks.append(f'<line x1="{x(t):.1f}" y1="12" x2="{x(t):.1f}" y2="{height - 18}" '
                     f'stroke="#ddd"/><text x="{x(t):.1f}" y="{height - 4}" font-size="10" '
                     f'text-anchor="middle">{t:.0f} s</text>')
        t += step
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{LEFT + WIDTH + 20}" '
            f'height="{height}" font-family="sans-serif">{"".join(ticks)}{"".join(rows)}</svg>')


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"


def _tiers(r: dict[str, Any]) -> str:
    """The relational tier (fails over) beside the sessions' global table (never needed to):
    what each kept serving, and what each lost, in one table."""
    rpo, sessions = r.get("rpo"), r.get("sessions")
    if rpo is None and sessions is None:
        return ""
    head = ("<tr><th>data</th><th>on failure</th><th>RTO</th><th>RPO</th>"
            "<th>during the outage</th><th>after it</th></tr>")
    rows = []
    if rpo is not None:
        rto = "-" if r["rto_client_s"] is None else f"{r['rto_client_s']} s (client)"
        rows.append((f"orders ({r['topology']['database']})", "fails over (promote, DNS)", rto,
                     f"{rpo['lost']} of {rpo['acknowledged_before_fault']} acknowledged lost"
                     f" ({rpo['rpo_s']} s)",
                     f"{r['availability']['acknowledged']} of {r['availability']['writes']} "
                     "writes through DNS acknowledged", f"checked in {rpo['checked_in']}"))
    if sessions is not None:
        served = sessions["survivor_acked_after_fault"]
        sent = sessions["survivor_writes_after_fault"]
        rows.append((f"sessions ({sessions['table']}, DynamoDB global table)",
                     "none needed: every Region writes its own replica",
                     "0 s: the survivors acknowledged every write" if served == sent
                     else f"{sent - served} of {sent} writes refused in the survivors",
                     f"{sessions['unreplicated_at_fault']} not yet replicated at the fault "
                     f"({sessions['rpo_s']} s)",
                     f"{sessions['survivor_acked_after_fault']} of "
                     f"{sessions['survivor_writes_after_fault']} acknowledged in the surviving "
                     f"Region; {sessions['faulted_region_acked_after_fault']} of "
                     f"{sessions['faulted_region_writes_after_fault']} in the faulted one",
                     f"{sessions['conflicts_resolved_after_heal']} conflicts resolved (last "
                     f"writer wins); replicas {'converged' if sessions['converged'] else 'DIFFER'}"
                     ))
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                    for row in rows)
    return f"<h2>Data tiers</h2><table>{head}{cells}</table>"


def render_html(result: dict[str, Any]) -> str:
    r = result
    summary = _table([
        ("outcome", r["outcome"]), ("fault", f"{r['fault']['kind']} of {r['fault']['region']}"),
        ("topology", ", ".join(f"{k} {v}" for k, v in r["topology"].items())),
        ("old -> new primary", f"{r['old_primary_region']} -> {r['new_primary_region']}"),
        ("epoch", f"{r['epoch_before']} -> {r['epoch_after']}"),
        ("client RTO (modelled: the resolver's, plus the record's TTL)",
         "-" if r["rto_client_s"] is None else f"{r['rto_client_s']} s"),
        ("resolver RTO (fault -> DNS answers the standby)",
         "-" if r["rto_modeled_s"] is None else f"{r['rto_modeled_s']} s"),
        ("breakdown (s)", ", ".join(f"{k} {v}" for k, v in r["rto_breakdown_s"].items())),
        ("the record's TTL (clients follow within it)", f"{r['dns_ttl_s']} s"),
        ("regions that would accept a write at the end",
         ", ".join(r["writable_regions_after"]) or "none"),
        ("split brain", f"{r['split_brain']} ({len(r['anomalies'])} anomalies)"),
        ("promote calls (attempted / succeeded)",
         f"{r['promote_calls']['attempted']} / {r['promote_calls']['succeeded']}"),
        ("writes through DNS after the fault (acknowledged / sent)",
         f"{r['availability']['acknowledged']} / {r['availability']['writes']}"),
        ("time factor (real s per world s)", r["time_factor"]),
    ])
    calls = _table([(region, f"{c['succeeded']} of {c['attempted']} answered")
                    for region, c in r["calls"].items()])
    models = _table([(k, v) for k, v in r["models"].items()])
    events = "".join(
        f"<tr><td>{(e['mono_ns'] / 1e9 - r['fault']['at']):.1f}</td>"
        f"<td>{html.escape(str(e.get('event')))}</td>"
        f"<td>{html.escape(str(e.get('step') or e.get('outcome') or ''))}</td>"
        f"<td>{html.escape(str(e.get('detail') or e.get('reason') or '')[:160])}</td></tr>"
        for e in r["journal"] if "mono_ns" in e)
    style = ("body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:"
             "collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:4px 8px;"
             "text-align:left;font-size:13px}th{background:#f5f5f5}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>regionguard drill: "
            f"{html.escape(r['fault']['kind'])}</title><style>{style}</style></head><body>"
            f"<h1>Emulated AWS drill: {html.escape(r['fault']['kind'])} of "
            f"{html.escape(r['fault']['region'])}</h1>{summary}{_tiers(r)}"
            f"<h2>Outage window (world seconds since the fault)</h2>{_svg(r)}"
            f"<h2>AWS calls per Region after the fault</h2>{calls}"
            f"<h2>Models (world seconds)</h2>{models}"
            f"<h2>Journal</h2><table><tr><th>s</th><th>event</th><th>what</th>"
            f"<th>detail</th></tr>{events}</table></body></html>")
