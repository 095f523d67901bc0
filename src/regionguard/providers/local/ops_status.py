"""What the live status page shows (`/api/status` of the controller's ops endpoint), for a
local sandbox: `status --json`'s regions, the running plan and its current step, the last
failover's step waterfall, readiness, a pending approval and the journal's last events.

Read-only, like `status`. Shape (the page, `ops/status_page.html`, reads exactly this):
`generated_at`, `epoch`, `primary`, `regions` (as `status --json`), `front_door`, `controller`,
`plan` (null, or `id`, `kind`, `source`, `target`, `status`, `steps`, `done`, `current_step`),
`awaiting_approval` (null or the pending request), `last_failover` (the RTO breakdown, or
null), `last_plan_id`, `last_failover_svg` (the step waterfall, inline SVG, or null),
`last_report_url`, `readiness` (list of `name`, `status`, `observed`, `action`), `events`
(the last journal entries, newest last) and `metrics_url`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from regionguard.ops.events import last_events
from regionguard.orchestrator.records import PlanRecord
from regionguard.providers.local.sandbox import Sandbox
from regionguard.providers.local.status import journal_entries, sandbox_status


def running_plan(record: PlanRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    plan = record.plan
    remaining = record.remaining()
    return {"id": plan.id, "kind": plan.kind.value, "source": plan.source,
            "target": plan.target, "status": record.status.value,
            "steps": [s.name for s in plan.steps],
            "done": [plan.steps[i].name for i in sorted(record.done)],
            "current_step": remaining[0] if remaining else None}


def ops_status(sb: Sandbox, readiness: Callable[[], list[Mapping[str, Any]]],
               awaiting: Callable[[], Mapping[str, Any] | None],
               waterfall: Callable[[Sequence[Mapping[str, Any]], str], str | None]
               ) -> dict[str, Any]:
    entries = journal_entries(sb)  # once per poll: the summary, the waterfall, the events
    status = sandbox_status(sb, entries)
    state = sb.store.read()
    last_plan = state.get("last_plan")
    primary = next((r["name"] for r in status["regions"] if r["role"] == "primary"), None)
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "app": sb.topology.app,
        "epoch": status["epoch"],
        "primary": primary,
        "regions": status["regions"],
        "front_door": status["front_door"],
        "controller": status["controller"],
        "plan": running_plan(sb.store.read_plan()),
        "awaiting_approval": awaiting(),
        "last_failover": status["last_failover"],
        "last_plan_id": last_plan,
        "last_failover_svg": waterfall(entries, last_plan) if last_plan else None,
        "last_report_url": f"/api/report/{last_plan}" if last_plan else None,
        "readiness": list(readiness()),
        "events": last_events(entries),
        "metrics_url": "/metrics",
    }
