"""Readiness: would a failover work now? (as AWS ARC Region switch evaluates its plans)

Pure: each check reads facts a world gathered (providers/local/readiness_facts.py, and the AWS
world's) and says pass, warn or fail, with what was observed and what to do. The AWS guard
evaluates every `readiness.interval_s`, journals a change, alerts a failure and exports each
check as a metric; `regionguard readiness` evaluates on demand (on the sites, from what they
publish).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from regionguard.config import Replication, Topology
from regionguard.orchestrator.ports import DbStatus

Status = Literal["pass", "warn", "fail"]
RANK: dict[Status, int] = {"pass": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    observed: str
    action: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Facts:
    """What a world observed for readiness. A list of problems is empty when all is well."""

    primary: str
    standby: str
    standby_db: DbStatus | None
    sync_degraded: bool = False
    capacity_problems: Sequence[str] = ()  # the standby's capacity cannot start: why
    capacity_warnings: Sequence[str] = ()
    drift: Sequence[str] = ()  # live configuration that differs from the topology
    last_drill_age_s: float | None = None  # None: no successful drill on record
    extra: Sequence[Check] = field(default_factory=tuple)  # a world's own checks (AWS: IAM)


def evaluate(topology: Topology, facts: Facts) -> list[Check]:
    checks = [
        replication(topology, facts),
        capacity(facts),
        drift(facts),
        drill_age(topology, facts),
    ]
    return [*checks, *facts.extra]


def overall(checks: Sequence[Check]) -> Status:
    worst = max((RANK[c.status] for c in checks), default=0)
    return next(s for s, r in RANK.items() if r == worst)


def replication(topology: Topology, facts: Facts) -> Check:
    """The standby streams from the primary, within the RPO target."""
    name, db, s = "standby_replication", facts.standby_db, facts.standby
    fix = f"start it (`regionguard up` repairs a sandbox); until then a failover to {s} is " \
          "refused or loses writes"
    if db is None or not db.up:
        return Check(name, "fail", f"{s}'s database is down", fix)
    if not db.in_recovery:
        return Check(name, "fail", f"{s}'s database is not a standby (not in recovery)",
                     "rebuild it as a standby: `regionguard failback` or `up`")
    if not db.streaming:
        return Check(name, "fail", f"{s} does not stream from {facts.primary}", fix)
    lag = f"lag {db.lag_bytes if db.lag_bytes is not None else '?'} B, " \
          f"{db.lag_s if db.lag_s is not None else '?'} s"
    target = topology.failover.rpo_target_s
    if topology.replication is Replication.ASYNC and db.lag_s is not None and db.lag_s > target:
        return Check(name, "fail", f"{s} streams, {lag}: beyond the RPO target of {target:g} s",
                     "find what slows replay (network, I/O, long transactions) before a "
                     "failover would lose more than the target")
    if topology.replication is Replication.SYNC and facts.sync_degraded:
        return Check(name, "warn", f"{s} streams, {lag}, but the primary writes without "
                     "waiting for it (sync degraded)", "the primary's agent restores sync once "
                     "the standby has caught up; until then RPO 0 does not hold")
    limit = topology.readiness.max_lag_bytes
    if db.lag_bytes is not None and db.lag_bytes > limit:
        return Check(name, "warn", f"{s} streams, {lag} (over {limit} B)",
                     "replay is behind: a switchover would wait for it")
    return Check(name, "pass", f"{s} streams from {facts.primary}, {lag}")


def capacity(facts: Facts) -> Check:
    name = "standby_capacity"
    if facts.capacity_problems:
        return Check(name, "fail", "; ".join(facts.capacity_problems),
                     "fix these before the standby has to take the load")
    if facts.capacity_warnings:
        return Check(name, "warn", "; ".join(facts.capacity_warnings), "")
    return Check(name, "pass", f"{facts.standby} can start its capacity")


def drift(facts: Facts) -> Check:
    name = "configuration_drift"
    if facts.drift:
        return Check(name, "fail", "; ".join(facts.drift),
                     "bring the live configuration back to the topology (`regionguard up`)")
    return Check(name, "pass", "the live configuration matches the topology")


def drill_age(topology: Topology, facts: Facts) -> Check:
    name, limit = "last_drill", topology.readiness.max_drill_age
    run = f"run one: `regionguard drill --fault kill-region` (limit {_age(limit)})"
    if facts.last_drill_age_s is None:
        return Check(name, "fail", "no successful drill on record", run)
    if facts.last_drill_age_s > limit:
        return Check(name, "fail", f"the last successful drill was {_age(facts.last_drill_age_s)}"
                     " ago", run)
    return Check(name, "pass", f"the last successful drill was {_age(facts.last_drill_age_s)} ago")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def last_drill_age_s(entries: Sequence[Mapping[str, Any]], now: datetime) -> float | None:
    """Seconds since the last drill that ended without a split brain (None: never)."""
    for e in reversed(entries):
        if e.get("event") == "drill" and e.get("outcome") == "measured" \
                and not e.get("split_brain"):
            try:
                return max(0.0, (now - datetime.fromisoformat(e["ts"])).total_seconds())
            except (KeyError, ValueError):
                continue
    return None
