"""The campaign's report: `campaign-report.json` (the contract) and `campaign-report.html`
(one self-contained file: no scripts, no external sources; opens offline, attaches to a
post-mortem)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from regionguard.drill.campaign import CampaignResult, summary


def write_reports(result: CampaignResult) -> tuple[Path, Path, dict[str, Any]]:
    out = result.settings.out_dir
    data = summary(result)
    json_path = out / "campaign-report.json"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    html_path = out / "campaign-report.html"
    html_path.write_text(render_html(data))
    return json_path, html_path, data


def rich_summary(data: dict[str, Any]) -> Table:
    c = data["campaign"]
    table = Table(title=f"campaign: {data['drills']} drills, seed {c['seed']} "
                        f"({c['strategy']}, {c['replication']})")
    table.add_column("measure")
    table.add_column("value")
    rto = data["rto_s"]
    rows = [
        ("scenarios", ", ".join(f"{k} {v}" for k, v in data["scenarios"].items())),
        ("faults", ", ".join(f"{k} {v}" for k, v in data["faults"].items())),
        ("failovers", str(data["failovers"])),
        ("RTO p50 / p95 / max (s)",
         "-" if not rto["n"] else f"{rto['p50']} / {rto['p95']} / {rto['max']}"),
        ("acknowledged writes", str(data["acked_writes"])),
        ("lost acknowledged", str(data["lost_acked"])),
        ("split brain", str(data["split_brain"])),
        ("anomalies", str(len(data["anomalies"]))),
        ("unavailable (writes not back in time)", str(len(data["unavailable"]))),
        ("duration", f"{c['duration_s']} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    if c["stopped_early"]:
        table.caption = f"stopped early: {c['stopped_early']}"
    return table


def _e(value: Any) -> str:
    return html.escape(str(value))


def render_html(data: dict[str, Any]) -> str:
    c = data["campaign"]
    anomalies = data["anomalies"]
    unavailable = data["unavailable"]
    verdict = ("no anomaly" if not anomalies else f"{len(anomalies)} anomalies") + (
        f", {len(unavailable)} drills unavailable" if unavailable else "")
    drill_rows = "\n".join(
        "<tr{cls}><td>{index}</td><td>{seed}</td><td>{kind}</td><td>{desc}</td><td>{plans}</td>"
        "<td>{rto}</td><td>{acked}</td><td>{lost}</td><td>{anom}</td><td>{healed}</td></tr>"
        .format(
            cls=' class="bad"' if d["anomalies"] or d["unavailable"] or not d["healed"] else "",
            index=d["index"] + 1, seed=d["seed"], kind=_e(d["kind"]),
            desc=_e(d["description"]),
            plans=_e(", ".join(f"{p['kind']} {p['source']}→{p['target']} ({p['outcome']})"
                               for p in d["plans"]) or "-"),
            rto="-" if d["rto_s"] is None or not d["failover"] else f"{d['rto_s']:.2f}",
            acked=d["acked_writes"], lost=d["lost_acked"],
            anom=_e(", ".join([*d["anomalies"], *(["unavailable: " + d["unavailable"]]
                                                  if d["unavailable"] else [])]) or "-"),
            healed="yes" if d["healed"] else "NO")
        for d in data["per_drill"])
    anomaly_blocks = "\n".join(
        f"<section class=anomaly><h3>drill {a['drill']} (seed {a['seed']}, {_e(a['scenario'])})"
        f": {_e(a['kind'])} (x{a['count']})</h3><p>{_e(a['detail'])}</p>"
        f"<pre>{_e(json.dumps(a['excerpt'], indent=1))}</pre>"
        f"<p>replay: <code>regionguard drill --campaign 1 --seed {a['seed']}</code></p></section>"
        for a in anomalies) or "<p>The checker found nothing.</p>"
    rto = data["rto_s"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>regionguard campaign, seed {c['seed']}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 6px; }}
th {{ background: #f3f3f3; text-align: left; }} tr.bad td {{ background: #fde2e2; }}
.ok {{ color: #176e2c; }} .fail {{ color: #b3261e; }} pre {{ background: #f6f6f6;
padding: .5em; overflow-x: auto; font-size: 12px; }}
</style></head><body>
<h1>Fault campaign:
<span class="{'fail' if anomalies or unavailable else 'ok'}">{_e(verdict)}</span></h1>
<p>{data['drills']} of {c['requested']} drills, seed {c['seed']}, {_e(c['strategy'])},
{_e(c['replication'])} replication, started {_e(c['started_at'])}, {c['duration_s']} s.
{('<b>Stopped early: ' + _e(c['stopped_early']) + '</b>') if c['stopped_early'] else ''}</p>
<table>
<tr><th>failovers</th><td>{data['failovers']}</td></tr>
<tr><th>RTO p50 / p95 / max</th><td>{rto['p50']} / {rto['p95']} / {rto['max']} s
 (n={rto['n']})</td></tr>
<tr><th>acknowledged writes</th><td>{data['acked_writes']}</td></tr>
<tr><th>lost acknowledged writes</th><td>{data['lost_acked']}</td></tr>
<tr><th>split brain</th><td>{data['split_brain']}</td></tr>
<tr><th>unavailable drills</th><td>{len(unavailable)}</td></tr>
<tr><th>scenarios</th><td>{_e(', '.join(f'{k} {v}' for k, v in data['scenarios'].items()))}
</td></tr>
<tr><th>faults</th><td>{_e(', '.join(f'{k} {v}' for k, v in data['faults'].items()))}</td></tr>
</table>
<h2>Anomalies</h2>
{anomaly_blocks}
<h2>Drills</h2>
<table><tr><th>#</th><th>seed</th><th>scenario</th><th>actions</th><th>plans</th>
<th>RTO (s)</th><th>acked</th><th>lost</th><th>anomalies</th><th>healed</th></tr>
{drill_rows}
</table>
</body></html>
"""
