"""A lab drill's HTML report: the drill report of drill/report.py (requests
per 100 ms, the plan's steps as a waterfall, the measures, the timeline), drawn from what the
lab's driller measured on its own clock and from the plan's journal on the target's site.

Two clocks meet here, for a person's reading only: the driller's monotonic clock (the load,
the fault, what it saw of the old primary and of etcd) and the target site's journal, stamped
with that site's wall time. The journal is moved onto the driller's clock by the wall-minus-
monotonic offset read once in the driller. In the lab every site shares the machine's clock, so
the offset is exact; across real hosts it would be off by their clocks' skew. The history
checker never does this: it orders nothing by the clocks of two sites.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from regionguard.drill.history import SPLIT_BRAIN, Verdict
from regionguard.drill.load import LoadResult, outage
from regionguard.drill.measures import DrillMeasures
from regionguard.drill.report import markers_from, write_html
from regionguard.reporting.waterfall import spans_from_journal


def on_driller_clock(entries: Sequence[Mapping[str, Any]],
                     wall_minus_mono_ns: int) -> list[dict[str, Any]]:
    """A site's journal entries (their times, `mono_ns` and a verdict's `first_failure_ns`, are
    that site's wall time) on the driller's clock."""
    moved = []
    for e in entries:
        if not isinstance(e.get("mono_ns"), int):
            continue
        entry = {**e, "mono_ns": e["mono_ns"] - wall_minus_mono_ns}
        if isinstance(e.get("first_failure_ns"), int) and e["first_failure_ns"]:
            entry["first_failure_ns"] = e["first_failure_ns"] - wall_minus_mono_ns
        moved.append(entry)
    return moved


def wall_minus_mono_ns() -> int:
    return time.time_ns() - time.monotonic_ns()


def lab_measures(*, fault: str, site: str, strategy: str, replication: str, load: LoadResult,
                 verdict: Verdict, rto_s: float | None, engine: Mapping[str, Any] | None,
                 new_primary: str, failover: bool, detail: str) -> DrillMeasures:
    ok = sum(1 for r in load.requests if r.ok)
    total = len(load.requests)
    return DrillMeasures(
        fault=fault, region=site, strategy=strategy, replication=replication,
        duration_s=(load.stopped_ns - load.started_ns) / 1e9, requests=total, ok=ok,
        failed=total - ok, availability=ok / total if total else 0.0, rto_s=rto_s,
        engine=engine, acked_writes=verdict.acked_writes, rpo_lost=list(verdict.lost_acked),
        split_brain=[f"{a.kind.value}: {a.detail}" for a in verdict.anomalies
                     if a.kind in SPLIT_BRAIN],
        failover=failover, new_primary=new_primary, fault_detail=detail)


def write_lab_report(path: Path, measures: DrillMeasures, load: LoadResult, fault_ns: int,
                     plan_entries: Sequence[Mapping[str, Any]], plan_id: str | None,
                     safety: Mapping[str, Any]) -> Path:
    """`plan_entries`: the target site's journal on the driller's clock (`on_driller_clock`);
    `safety`: the driller's seconds-after-the-fault measures (the old primary stopped, etcd's
    end of its lease)."""
    window = outage(load, fault_ns)
    markers = markers_from(plan_entries, fault_ns, None if window is None else window[1])
    for key, label, colour in (("lease_ended_s", "old lease ended (etcd)", "#6a1b9a"),
                               ("old_stopped_s", "old primary stopped", "#795548")):
        seconds = safety.get(key)
        if isinstance(seconds, (int, float)):
            markers.append((fault_ns + int(seconds * 1e9), label, colour))
    markers.sort(key=lambda m: m[0])
    spans = spans_from_journal(plan_entries, plan_id) if plan_id else []
    started, healed = safety.get("heal_started_s"), safety.get("healed_s")
    heal = ((fault_ns + int(started * 1e9), fault_ns + int(healed * 1e9))
            if isinstance(started, (int, float)) and isinstance(healed, (int, float)) else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_html(path, measures, load, markers, spans, heal)
    return path
