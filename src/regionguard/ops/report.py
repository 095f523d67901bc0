"""The execution report of one plan (as AWS ARC Region switch gives one per execution),
computed from the journal alone: the observation and verdict that triggered it, the plan, each
step's start, end, attempts and outcome, the RTO breakdown, readiness at the time, and who
approved it. JSON, and a self-contained HTML page (no script, no external reference) with the
step waterfall.

Both worlds journal every plan (locally a file, on AWS the arbiter), so `regionguard report`
can rebuild any plan's report; the local world also writes both files at each plan's end.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from regionguard.orchestrator.journal import rto_breakdown
from regionguard.reporting.waterfall import spans_from_journal, waterfall_svg

Entry = Mapping[str, Any]
FINAL = ("done", "failed", "interrupted", "superseded")


def plan_entries(entries: Sequence[Entry], plan_id: str) -> list[Entry]:
    return [e for e in entries if e.get("plan") == plan_id]


def plan_report(entries: Sequence[Entry], plan_id: str) -> dict[str, Any] | None:
    """None when the journal has no such plan."""
    mine = plan_entries(entries, plan_id)
    started = next((e for e in mine if e.get("event") == "plan"
                    and e.get("outcome") == "started"), None)
    if started is None:
        return None
    before = entries[:next(i for i, e in enumerate(entries) if e is started)]  # journal order
    readiness = next((e for e in reversed(before) if e.get("event") == "readiness"), None)
    plan_events = [e for e in mine if e.get("event") == "plan"]
    final = next((e for e in reversed(plan_events) if e.get("outcome") in FINAL), None)
    return {
        "plan_id": plan_id,
        "kind": started.get("name"),
        "source": started.get("source"),
        "target": started.get("target"),
        "reason": started.get("reason"),
        "epoch": started.get("epoch"),
        "started_at": started.get("ts"),
        "outcome": final.get("outcome") if final else "running",
        "finished_at": final.get("ts") if final else None,
        "resumed": sum(1 for e in plan_events if e.get("outcome") == "resumed"),
        "planned_steps": started.get("steps", []),
        "observation": _strip(next((e for e in mine if e.get("event") == "observation"), None)),
        "verdict": _strip(next((e for e in mine if e.get("event") == "verdict"), None)),
        "steps": _steps(mine),
        "rto": rto_breakdown(entries, plan_id),
        "readiness": (readiness or {}).get("checks"),
        "approvals": [_strip(e) for e in mine if e.get("event") == "approval"],
        "asked_by": [e.get("by") for e in mine if e.get("event") == "ungraceful"],
        "warnings": [e.get("detail") for e in mine if e.get("event") == "rpo_warning"],
    }


def _strip(entry: Entry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {k: v for k, v in entry.items() if k not in ("event", "plan", "mono_ns")}


def _steps(mine: Sequence[Entry]) -> list[dict[str, Any]]:
    """One row per step: first start, last end, attempts (starts), the last outcome."""
    rows: dict[str, dict[str, Any]] = {}
    opened: dict[str, int] = {}
    for e in mine:
        if e.get("event") != "step":
            continue
        name = str(e.get("step"))
        row = rows.setdefault(name, {"step": name, "started_at": e.get("ts"), "ended_at": None,
                                     "attempts": 0, "outcome": "running", "duration_s": 0.0,
                                     "detail": None, "in_rto": e.get("in_rto", True)})
        if e.get("outcome") == "started":
            row["attempts"] += 1
            opened[name] = int(e.get("mono_ns", 0))
        else:
            row.update(ended_at=e.get("ts"), outcome=e.get("outcome"),
                       detail=e.get("detail"))
            if name in opened:
                row["duration_s"] = round(
                    row["duration_s"] + (int(e.get("mono_ns", 0)) - opened.pop(name)) / 1e9, 4)
    return list(rows.values())


def plan_waterfall_svg(entries: Sequence[Entry], plan_id: str) -> str | None:
    spans = spans_from_journal(entries, plan_id)
    if not spans:
        return None
    t0 = min(s.start_ns for s in spans)
    t_end = max(s.end_ns or s.start_ns for s in spans)
    return waterfall_svg(spans, t0_ns=t0, t_end_ns=max(t_end, t0 + 1))


def plan_report_html(entries: Sequence[Entry], plan_id: str) -> str | None:
    report = plan_report(entries, plan_id)
    if report is None:
        return None
    return render_html(report, plan_waterfall_svg(entries, plan_id))


def render_html(report: Mapping[str, Any], svg: str | None) -> str:
    e = html.escape
    rto = report.get("rto") or {}
    head = [("plan", f"{report['kind']} {report['plan_id']}"),
            ("from → to", f"{report['source']} → {report['target']}"),
            ("reason", report.get("reason")), ("outcome", report.get("outcome")),
            ("epoch", report.get("epoch")), ("started", report.get("started_at")),
            ("finished", report.get("finished_at")), ("resumed", report.get("resumed")),
            ("RTO", f"{rto['rto_s']:.3f} s (first failure to the last step that counts; "
                    "steps after it are not in it)" if rto.get("rto_s") is not None else "n/a"),
            ("approved by", ", ".join(f"{a.get('by')} ({a.get('outcome')})"
                                      for a in report.get("approvals") or []) or "automatic")]
    rows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in head)
    steps = "".join(
        f"<tr><td>{e(s['step'])}</td><td>{'yes' if s.get('in_rto', True) else 'after'}</td>"
        f"<td>{e(str(s['outcome']))}</td><td>{s['attempts']}</td>"
        f"<td>{s['duration_s']:.3f}</td><td>{e(str(s.get('started_at') or ''))}</td>"
        f"<td>{e(str(s.get('ended_at') or ''))}</td><td>{e(str(s.get('detail') or ''))}</td></tr>"
        for s in report["steps"])
    tries = rto.get("attempts") or {}
    breakdown = "".join(
        f"<tr><td>{e(k)}</td><td>{v:.3f}</td><td>{tries.get(k, '') if k != 'detect' else ''}"
        "</td><td>counts</td></tr>" for k, v in (rto.get("steps") or {}).items())
    if rto.get("other_s") is not None:
        breakdown += (f"<tr><td>other</td><td>{rto['other_s']:.3f}</td><td></td>"
                      "<td>counts (between steps)</td></tr>")
    breakdown += "".join(
        f"<tr><td>{e(k)}</td><td>{v:.3f}</td><td>{tries.get(k, '')}</td>"
        "<td>after the RTO: not in it</td></tr>" for k, v in (rto.get("after_rto") or {}).items())
    readiness = "".join(
        f"<tr><td>{e(str(c.get('name')))}</td><td>{e(str(c.get('status')))}</td>"
        f"<td>{e(str(c.get('observed', '')))}</td></tr>" for c in report.get("readiness") or [])
    trigger = _trigger_html(report)
    outcome = str(report.get("outcome"))
    badge = {"done": "yes", "failed": "no", "interrupted": "waiting",
             "running": "waiting"}.get(outcome, "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>regionguard {e(str(report['kind']))} {e(report['plan_id'])}</title>
<style>
body{{margin:0;font:14px/1.45 system-ui,sans-serif;color:#1d2430;background:#f4f6f9}}
header{{display:flex;flex-wrap:wrap;gap:6px 24px;align-items:baseline;padding:12px 20px;
background:#1d2430;color:#c5cedb}}
header h1{{margin:0;font-size:19px;color:#fff}} header b{{color:#fff}}
main{{display:grid;gap:14px;padding:14px 20px 28px}}
section{{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:12px 14px;
overflow-x:auto}}
h2{{margin:0 0 8px;font-size:15px}}
table{{border-collapse:collapse;width:100%}}
th,td{{text-align:left;padding:4px 8px;border-bottom:1px solid #eceff3;vertical-align:top}}
th{{color:#5c6778;font-weight:600;font-size:12px}}
.badge{{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
background:#eceff3;color:#5c6778}}
.yes{{background:#e3f4e8;color:#1b7f3b}} .no{{background:#fde7e5;color:#b3261e}}
.waiting{{background:#fff2d6;color:#8a5a00}}
</style></head><body>
<header><h1>{e(str(report['kind']))} {e(str(report['source']))} &rarr;
{e(str(report['target']))}</h1>
<span>outcome <span class="badge {badge}">{e(outcome)}</span></span>
<span>RTO <b>{e(f"{rto['rto_s']:.2f} s" if rto.get("rto_s") is not None else "n/a")}</b></span>
<span>plan <b>{e(report['plan_id'])}</b></span></header>
<main>
<section><h2>The plan</h2><table>{rows}</table></section>
<section><h2>Step waterfall</h2>
{svg or "<p>no step ran</p>"}</section>
<section><h2>Steps</h2>
<table><tr><th>step</th><th>in the RTO</th><th>outcome</th><th>attempts</th><th>seconds</th>
<th>started</th><th>ended</th><th>detail</th></tr>{steps}</table></section>
<section><h2>RTO breakdown (s)</h2>
<table><tr><th>part</th><th>seconds (attempts summed)</th><th>attempts</th><th>RTO</th></tr>
{breakdown}</table></section>
<section><h2>What triggered it</h2>{trigger}</section>
<section><h2>Readiness when it started</h2>
<table><tr><th>check</th><th>status</th><th>observed</th></tr>{readiness}</table></section>
</main>
</body></html>
"""


def _trigger_html(report: Mapping[str, Any]) -> str:
    """The verdict, each region's database as observed, and the warnings, as tables: what a
    person reads after a failover, not a JSON dump."""
    e = html.escape
    parts = []
    verdict = report.get("verdict") or {}
    if verdict:
        rows = [("verdict", f"{verdict.get('region')} {verdict.get('verdict')}"),
                ("vantage points", verdict.get("vantages")), ("at", verdict.get("ts"))]
        parts.append("<table>" + "".join(
            f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows if v) + "</table>")
    else:
        parts.append(f"<p>{e(str(report.get('reason') or 'a person asked for it'))}</p>")
    observation = report.get("observation") or {}
    databases = observation.get("databases") or {}
    if databases:
        keys = sorted({k for db in databases.values() for k in db})
        head = "".join(f"<th>{e(k)}</th>" for k in ["region", *keys])
        body = "".join(
            "<tr>" + f"<td>{e(region)}</td>" + "".join(
                f"<td>{e(str(db.get(k, '')))}</td>" for k in keys) + "</tr>"
            for region, db in sorted(databases.items()))
        roles = ", ".join(f"{r}: {role}" for r, role in (observation.get("roles") or {}).items())
        parts.append(f"<p>roles then: {e(roles)}; epoch {e(str(observation.get('epoch')))}</p>"
                     f"<table><tr>{head}</tr>{body}</table>")
    for warning in report.get("warnings") or []:
        parts.append(f'<p><span class="badge waiting">accepted</span> {e(str(warning))}</p>')
    return "\n".join(parts)


def write_report(folder: Path, entries: Sequence[Entry], plan_id: str) -> Path | None:
    """`<folder>/<plan id>.json` and `.html`; the HTML's path, or None (no such plan)."""
    report = plan_report(entries, plan_id)
    if report is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / f"{plan_id}.html"
    _atomic(page, render_html(report, plan_waterfall_svg(entries, plan_id)))
    _atomic(folder / f"{plan_id}.json", json.dumps(report, indent=2, default=str) + "\n")
    return page


def _atomic(path: Path, text: str) -> None:
    """Readers (the status page, a test) see the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
