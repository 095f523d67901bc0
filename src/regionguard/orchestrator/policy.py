"""What the local loop decides from one snapshot: pure functions, tested in milliseconds.

`decide` takes the live roles, each region's health (the detector's verdicts and streaks) and
the standby's database status, and returns what to do in order of urgency: fail over, alert,
repair the apps in place, degrade or restore synchronous replication. It calls no port; the
controller acts on what it returns (STYLE.md: decide from a snapshot, act through ports).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from regionguard.config import Replication, Role, Topology
from regionguard.orchestrator.detector import RegionHealth
from regionguard.orchestrator.ports import DbStatus, LiveState, ProbeKind, Verdict

CAUGHT_UP_BYTES = 1 << 20  # a standby this close streams the rest before sync matters


class Action(StrEnum):
    NONE = "none"
    FAILOVER = "failover"
    ALERT = "alert"
    REPAIR_APPS = "repair_apps"
    DEGRADE_SYNC = "degrade_sync"
    RESTORE_SYNC = "restore_sync"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    region: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    live: LiveState  # includes the persisted degrade point: it survives a restart
    health: Mapping[str, RegionHealth]
    standby_db: DbStatus | None
    probers: Mapping[str, ProbeKind] = field(default_factory=dict)  # name -> kind

    def named(self, kind: ProbeKind) -> list[str]:
        return [name for name, k in self.probers.items() if k is kind]


def counted_probers(topology: Topology, region: str, role: Role,
                    probers: Mapping[str, ProbeKind]) -> frozenset[str]:
    """Application probes count only where app processes should run; replication probes
    (the primary's view of a standby) only for a standby."""
    apps_expected = topology.desired_processes(region, role) > 0

    def counts(kind: ProbeKind) -> bool:
        if kind is ProbeKind.APPLICATION:
            return apps_expected
        if kind is ProbeKind.REPLICATION:
            return role is Role.STANDBY
        return True
    return frozenset(name for name, kind in probers.items() if counts(kind))


def decide(topology: Topology, snap: Snapshot) -> list[Decision]:
    """What to do now, in order of urgency. Pure: the same snapshot gives the same decisions."""
    primary = snap.live.primary
    standby = topology.other_region(primary)
    policy = topology.health
    ph = snap.health.get(primary, RegionHealth())
    sh = snap.health.get(standby, RegionHealth())
    out: list[Decision] = []
    if ph.verdict is Verdict.DOWN:
        if topology.failover.mode == "manual":
            return [Decision(Action.ALERT, primary,
                             f"primary {primary} is DOWN; failover mode is manual")]
        return [Decision(Action.FAILOVER, standby, f"primary {primary} is DOWN")]
    threshold = policy.failure_threshold
    db_probers, app_probers = snap.named(ProbeKind.DATABASE), snap.named(ProbeKind.APPLICATION)
    if (db_probers and any(ph.failing(a, threshold) for a in app_probers)
            and not any(ph.failing(d, threshold) for d in db_probers)):
        out.append(Decision(Action.REPAIR_APPS, primary,
                            f"{primary}: app probes fail while its database answers"))
    if topology.replication is Replication.SYNC:
        # the standby is lost only by the same rule as any region: a quorum of its probers
        # (its database directly, the primary's replication view of it, its apps where they
        # run) each failing failure_threshold times; one slow prober never degrades sync
        standby_lost = sh.verdict is Verdict.DOWN
        db = snap.standby_db
        degraded_at = snap.live.sync_degraded_lsn
        caught_up = (
            db is not None and db.up and bool(db.in_recovery) and bool(db.streaming)
            and sh.verdict is Verdict.UP
            and db.lsn is not None and degraded_at is not None and db.lsn >= degraded_at
            and (db.lag_bytes is None or db.lag_bytes < CAUGHT_UP_BYTES)
        )
        # decided on every tick while the standby is lost, record or not: turning the wait
        # off is idempotent, and the primary may be waiting again whatever anyone remembers
        # (a rejoin, `up`, a restore that did not get to clear the record)
        if standby_lost and topology.failover.sync_standby_lost == "degrade":
            out.append(Decision(Action.DEGRADE_SYNC, primary,
                                f"sync standby {standby} lost; writing without it"))
        elif caught_up and degraded_at is not None:
            out.append(Decision(Action.RESTORE_SYNC, primary,
                                f"sync standby {standby} is back and caught up"))
    return out or [Decision(Action.NONE)]
