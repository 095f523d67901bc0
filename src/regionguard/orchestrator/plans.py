"""Plans as data: failover, switchover and failback as ordered, named steps with deadlines.

A plan is built from one snapshot (`Observation`) by pure functions, checked for safety before
anything runs, printed by `--dry-run`, and stored (as JSON) while it runs so a restarted
runner resumes it. The refusal messages follow one shape: what was refused, what was
observed, what to do.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from regionguard.config import Replication, Role, Strategy, Topology
from regionguard.errors import UnsafeOperation, UsageError
from regionguard.orchestrator.deadlines import LOCAL_DEADLINES, Deadlines
from regionguard.orchestrator.lsn import format_lsn
from regionguard.orchestrator.ports import DbStatus, LiveState, SnapshotCopy

SWITCHOVER_LAG_TOLERANCE_S = 1.0


class PlanKind(StrEnum):
    FAILOVER = "failover"
    SWITCHOVER = "switchover"
    FAILBACK = "failback"


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    deadline_s: float
    args: Mapping[str, Any] = field(default_factory=dict)
    in_rto: bool = True  # steps after traffic is restored (rejoin, retire) are not in the RTO
    # A step that touches the region being left (retire) may find it dead: it never fails
    # the plan; what it could not do is journaled and done when that region is back.
    best_effort: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    kind: PlanKind
    source: str
    target: str
    base_epoch: int
    steps: tuple[Step, ...]
    reason: str = ""
    warnings: tuple[str, ...] = ()  # what the plan accepts knowingly (an RPO risk): journaled
    # the facts the warnings rest on (LSNs), journaled with them
    risk: Mapping[str, Any] = field(default_factory=dict)
    # a person's --force: the plan may promote over a primary that is neither fenced nor
    # under an expired lease, and says so in the journal
    forced: bool = False
    automatic: bool = False  # run on a verdict, not by a person (anti-flap counts these)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["name"] = self.kind.value
        data["kind"] = self.kind.value
        data["steps"] = [asdict(s) for s in self.steps]
        data["risk"] = dict(self.risk)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            id=data["id"], kind=PlanKind(data["kind"]), source=data["source"],
            target=data["target"], base_epoch=int(data["base_epoch"]),
            steps=tuple(Step(s["name"], float(s["deadline_s"]), dict(s.get("args", {})),
                             bool(s.get("in_rto", True)), bool(s.get("best_effort", False)))
                        for s in data["steps"]),
            reason=data.get("reason", ""),
            warnings=tuple(data.get("warnings", ())),
            risk=dict(data.get("risk", {})),
            forced=bool(data.get("forced", False)),
            automatic=bool(data.get("automatic", False)),
        )

    def describe(self) -> list[str]:
        lines = [f"{self.kind.value} {self.source} -> {self.target} "
                 f"(epoch {self.base_epoch} -> {self.base_epoch + 1}): {self.reason}"
                 + (" [forced]" if self.forced else "")]
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.forced and self.kind is PlanKind.FAILOVER:
            lines.append(f"  forced: {self.target} is promoted even if {self.source} can "
                         "neither be fenced nor waited out by its lease (two writers are "
                         "possible; journaled as forced_promote)")
        for i, s in enumerate(self.steps, 1):
            args = ", ".join(f"{k}={v}" for k, v in s.args.items())
            lines.append(f"  {i}. {s.name}({args})  deadline {s.deadline_s:g} s"
                         + ("" if s.in_rto else "  [after recovery]")
                         + ("  [best effort]" if s.best_effort else ""))
        return lines


@dataclass(frozen=True, slots=True)
class Observation:
    """One snapshot the planner decides from."""

    live: LiveState
    databases: Mapping[str, DbStatus]
    zero_loss_switchover: bool = True  # the Database provider can drain and confirm replay
    # backup & restore: the newest snapshot copy per Region, and when it was looked at
    snapshots: Mapping[str, SnapshotCopy | None] = field(default_factory=dict)
    observed_at: float = 0.0
    # when the source was first seen failing (a DOWN verdict's earliest failure): what an
    # asynchronous replica had not received by then is what a failover loses
    source_lost_at: float | None = None

    def to_record(self) -> dict[str, Any]:
        """What the journal keeps of it: enough to explain the plan from the journal alone."""
        keep = ("up", "in_recovery", "lsn", "timeline", "epoch", "lag_bytes", "lag_s",
                "streaming", "error")
        return {
            "roles": {r: str(role) for r, role in self.live.roles.items()},
            "epoch": self.live.epoch,
            "sync_degraded_lsn": self.live.sync_degraded_lsn,
            "source_lost_at": self.source_lost_at,
            "databases": {r: {k: getattr(st, k) for k in keep if getattr(st, k) is not None}
                          for r, st in self.databases.items()},
        }


def _new_id(kind: PlanKind) -> str:
    return f"{kind.value}-{uuid.uuid4().hex[:10]}"


def steady_weights(topology: Topology, primary: str) -> dict[str, int]:
    """Routing once both regions are healthy: standbys serve only in active-active."""
    return {
        r: 1 if r == primary or topology.strategy is Strategy.ACTIVE_ACTIVE else 0
        for r in topology.regions
    }


def _serving_steps(topology: Topology, target: str, d: Deadlines) -> list[Step]:
    """Bring `target`'s app processes up to primary capacity and send it the traffic."""
    return [
        Step("await_ready", d.await_ready, {"region": target, "at_least": 1}),
        Step("route", d.route, {"weights": {r: int(r == target) for r in topology.regions},
                                "writer": target}),
        Step("verify", d.verify, {"region": target}),
    ]


def _rejoin(topology: Topology, region: str, of: str, d: Deadlines) -> Step:
    return Step(
        "rejoin", d.rejoin,
        {"region": region, "of": of,
         "sync": topology.replication is Replication.SYNC,
         "count": topology.desired_processes(region, Role.STANDBY),
         "weights": steady_weights(topology, of)},
        in_rto=False,
    )


def failover(topology: Topology, obs: Observation, target: str | None = None,
             force: bool = False, reason: str = "manual",
             primary_confirmed_down: bool = False,
             deadlines: Deadlines = LOCAL_DEADLINES) -> Plan:
    """Unplanned: the primary is lost. RPO may be > 0 with async replication.

    `primary_confirmed_down`: a quorum of probers declared the primary region DOWN, which
    outranks its database still answering (the region is down for its clients)."""
    source = obs.live.primary
    target = target or topology.other_region(source)
    if topology.strategy is Strategy.BACKUP_RESTORE:
        return _restore_plan(topology, obs, source, target, force, reason, deadlines)
    _check_target(topology, obs, target, "failover")
    src_db = obs.databases.get(source)
    healthy = src_db is not None and src_db.up and not src_db.in_recovery
    if healthy and not force and not primary_confirmed_down:
        raise UnsafeOperation(
            f"refusing failover to {target}: primary {source} is healthy (its database answers "
            f"as primary); use `switchover --to {target}` to lose nothing, or --force"
        )
    tgt = obs.databases[target]
    rpo = topology.failover.rpo_target_s
    lag, measured = _lag_at_loss(tgt, obs)
    if topology.replication is Replication.ASYNC and lag is not None and lag > rpo \
            and not force:
        raise UnsafeOperation(
            f"refusing failover to {target}: {measured} {lag:.2f} s exceeds "
            f"rpo_target_s = {rpo:g}; wait, or use --force to accept the loss"
        )
    warnings, risk = _degraded_sync_risk(topology, obs, source, target, force)
    d = deadlines
    steps = [
        Step("scale", d.scale, {"region": target,
                                "count": topology.desired_processes(target, Role.PRIMARY)}),
        Step("fence", d.fence, {"region": source}),
        Step("promote", d.promote, _promote_args(target, source, d)),
        *_serving_steps(topology, target, d),
        Step("retire", d.retire, {"region": source, "count": 0}, in_rto=False,
             best_effort=True),
    ]
    return Plan(_new_id(PlanKind.FAILOVER), PlanKind.FAILOVER, source, target,
                obs.live.epoch, tuple(steps), reason, warnings, risk, forced=force)


def _lag_at_loss(db: DbStatus, obs: Observation) -> tuple[float | None, str]:
    """What a failover to `db` loses, in seconds, and how that was measured. Where the
    replica's lag history is kept: with a DOWN verdict, the lag in the last period that ended
    by the source's first failure; without one (a person's failover), the lag before the
    history's last run of one-for-one growth, the mark of a source gone. The latest lag keeps
    growing once the source died and would refuse every failover of a Region outage.
    Otherwise (no history), the replica's last reported lag."""
    if db.lag_points and obs.source_lost_at is not None:
        before = [lag for end, lag in db.lag_points if end <= obs.source_lost_at]
        if before:
            return before[-1], "replica lag just before the primary was lost"
    if db.lag_points and (settled := lag_before_growth(db.lag_points)) is not None:
        return settled, "replica lag before it began to grow with its source gone"
    return db.lag_s, "last replica lag"


GROWTH_RUN = 2  # periods of one-for-one growth that say the source is gone, not a spike


def lag_before_growth(points: Sequence[tuple[float, float]]) -> float | None:
    """Once a replica's source is gone its lag grows by each period's length, period after
    period. The lag before the last such run (of at least GROWTH_RUN periods) ending at the
    latest point; None when there is no such run, or it fills the whole history (the loss is
    older than what is kept)."""
    i = len(points) - 1
    while i > 0 and points[i][1] - points[i - 1][1] >= 0.9 * (points[i][0] - points[i - 1][0]):
        i -= 1
    run = len(points) - 1 - i
    if run < GROWTH_RUN or i == 0:  # i == 0: every period grew, the loss is older
        return None
    return points[i][1]


def _restore_plan(topology: Topology, obs: Observation, source: str, target: str,
                  force: bool, reason: str, d: Deadlines) -> Plan:
    """Backup & restore: nothing stands in `target`; its database is restored from the newest
    snapshot copied there, then the app is scaled out and routed. The copy's age is the RPO."""
    if target not in topology.regions or target == source:
        raise UsageError(f"unknown or current region {target!r}; regions: "
                         f"{', '.join(topology.regions)}")
    copy = obs.snapshots.get(target)
    if copy is None:
        raise UnsafeOperation(
            f"refusing failover to {target}: no snapshot of {source}'s database has been "
            f"copied to {target}; nothing to restore (check the backup plan: "
            "`regionguard --world aws backup status`)")
    age = copy.age_s(obs.observed_at)
    rpo = topology.failover.rpo_target_s
    if age > rpo and not force:
        raise UnsafeOperation(
            f"refusing failover to {target}: its newest snapshot copy {copy.snapshot_id} is "
            f"{age / 3600:.1f} h old, past rpo_target_s = {rpo:g}; --force restores it and "
            "loses what was written since")
    warnings = (f"restoring {copy.snapshot_id}, {age / 3600:.1f} h old: writes after it are "
                f"lost{' (forced past rpo_target_s)' if age > rpo else ''}",)
    steps = [
        Step("fence", d.fence, {"region": source}),
        Step("restore", d.restore, {"region": target, "snapshot": copy.snapshot_id}),
        Step("scale", d.scale, {"region": target,
                                "count": topology.desired_processes(target, Role.PRIMARY)}),
        *_serving_steps(topology, target, d),
        Step("retire", d.retire, {"region": source, "count": 0}, in_rto=False,
             best_effort=True),
    ]
    return Plan(_new_id(PlanKind.FAILOVER), PlanKind.FAILOVER, source, target,
                obs.live.epoch, tuple(steps), reason, warnings)


def _degraded_sync_risk(topology: Topology, obs: Observation, source: str, target: str,
                        force: bool) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Patroni's `/sync` rule. While a degrade record stands (the primary stopped waiting for
    its lost sync standby at LSN D and went on acknowledging writes alone), the standby is no
    candidate for a failover at all, however far it has replayed: WAL that reached it after D
    says nothing about the last write acknowledged alone (a frozen standby's socket buffer
    carries it past D and no further). Only `--force` goes ahead, with the loss on record.
    The record is cleared once sync is on again and the standby confirmed it (`confirm_sync`).
    """
    degraded_at = obs.live.sync_degraded_lsn
    if topology.replication is not Replication.SYNC or degraded_at is None:
        return (), {}
    replayed = obs.databases[target].lsn
    seen = format_lsn(replayed) if replayed is not None else "an unknown LSN"
    if not force:
        raise UnsafeOperation(
            f"refusing failover to {target}: synchronous replication was degraded at LSN "
            f"{format_lsn(degraded_at)} and {source} has acknowledged writes alone since "
            f"({target} replayed {seen}), so {target} may lack acknowledged writes; bring "
            f"{source} back, or use --force to accept losing them")
    return ((f"acknowledged writes may be lost: synchronous replication was degraded at LSN "
             f"{format_lsn(degraded_at)}, {source} acknowledged writes alone since, and "
             f"{target} replayed {seen} (forced)",),
            {"degraded_lsn": format_lsn(degraded_at),
             "standby_lsn": format_lsn(replayed) if replayed is not None else None})


def _promote_args(target: str, source: str, d: Deadlines) -> dict[str, Any]:
    args: dict[str, Any] = {"region": target, "source": source}
    if d.promote_target_down is not None:
        args["down_grace_s"] = d.promote_target_down
    return args


def _switch_steps(topology: Topology, source: str, target: str, d: Deadlines) -> list[Step]:
    return [
        Step("scale", d.scale, {"region": target,
                                "count": topology.desired_processes(target, Role.PRIMARY)}),
        Step("cut", d.cut, {"region": source}),
        Step("stop_writes", d.stop_writes, {"region": source}),
        Step("wait_replayed", d.wait_replayed, {"region": target}),
        Step("promote", d.promote, _promote_args(target, source, d)),
        *_serving_steps(topology, target, d),
        _rejoin(topology, source, target, d),
    ]


def switchover(topology: Topology, obs: Observation, target: str,
               reason: str = "manual", deadlines: Deadlines = LOCAL_DEADLINES) -> Plan:
    """Planned: stop writes on the primary, wait until the target replayed everything, swap."""
    source = obs.live.primary
    _check_target(topology, obs, target, "switchover")
    if not obs.zero_loss_switchover:
        raise UnsafeOperation(
            f"refusing switchover to {target}: this database cannot stop writes and confirm "
            "the standby replayed them (asynchronous cross-region replica); use failover, or "
            'database = "aurora-global"')
    src_db = obs.databases.get(source)
    if src_db is None or not src_db.up:
        raise UnsafeOperation(
            f"refusing switchover to {target}: primary {source} is down, so nothing can be "
            f"drained; use `failover --to {target}`"
        )
    tgt = obs.databases[target]
    if tgt.streaming is False:
        raise UnsafeOperation(
            f"refusing switchover to {target}: it is not streaming from {source} now, so a "
            "clean stop of the primary would not reach it; wait for it to reconnect"
        )
    limit = max(topology.failover.rpo_target_s, SWITCHOVER_LAG_TOLERANCE_S)
    if tgt.lag_s is not None and tgt.lag_s > limit:
        raise UnsafeOperation(
            f"refusing switchover to {target}: replica lag {tgt.lag_s:.2f} s exceeds "
            f"{limit:g} s; wait for it to catch up"
        )
    return Plan(_new_id(PlanKind.SWITCHOVER), PlanKind.SWITCHOVER, source, target,
                obs.live.epoch, tuple(_switch_steps(topology, source, target, deadlines)), reason)


def failback(topology: Topology, obs: Observation, reason: str = "manual",
             deadlines: Deadlines = LOCAL_DEADLINES) -> Plan:
    """Rebuild the home primary as a standby of the current primary, then switch back.

    When the writer is already home (a second failover brought it back) but the other region
    is a demoted primary, nothing else would ever rebuild it: the plan is then only that
    rebuild (rejoin and catch up), so the pair is redundant again."""
    home = topology.home_primary
    current = obs.live.primary
    cur_db = obs.databases.get(current)
    if cur_db is None or not cur_db.up or cur_db.in_recovery:
        raise UnsafeOperation(
            f"refusing failback to {home}: the current primary {current} is not a healthy "
            "primary; fix it first"
        )
    d = deadlines
    if current == home:
        other = topology.other_region(home)
        other_db = obs.databases.get(other)
        if other_db is not None and other_db.up and other_db.in_recovery:
            raise UsageError(f"nothing to fail back: {home} is already the primary and "
                             f"{other} its standby")
        # source: the region being rebuilt (the roles at the end are home primary, it standby)
        return Plan(_new_id(PlanKind.FAILBACK), PlanKind.FAILBACK, other, home,
                    obs.live.epoch, (
                        _rejoin(topology, other, home, d),
                        Step("catch_up", d.catch_up, {"region": other, "of": home},
                             in_rto=False),
                        # the plan claimed an epoch: the writer's token moves to it
                        Step("stamp", d.route, {"region": home}, in_rto=False),
                        Step("route", d.route, {"weights": steady_weights(topology, home),
                                                "writer": home}, in_rto=False)),
                    reason + f" (writer already home: rebuild {other} as its standby)")
    steps = [
        Step("rejoin", d.rejoin, {"region": home, "of": current,
                                  "sync": topology.replication is Replication.SYNC,
                                  "count": 0, "weights": steady_weights(topology, current)},
             in_rto=False),
        Step("catch_up", d.catch_up, {"region": home, "of": current}, in_rto=False),
        *_switch_steps(topology, current, home, d),
    ]
    return Plan(_new_id(PlanKind.FAILBACK), PlanKind.FAILBACK, current, home,
                obs.live.epoch, tuple(steps), reason)


def _check_target(topology: Topology, obs: Observation, target: str, what: str) -> None:
    if target not in topology.regions:
        raise UsageError(
            f"unknown region {target!r}; regions are {', '.join(topology.regions)}"
        )
    if target == obs.live.primary:
        raise UsageError(f"{target} is already the primary; nothing to {what}")
    tgt = obs.databases.get(target)
    if tgt is None or not tgt.up:
        raise UnsafeOperation(
            f"refusing {what} to {target}: its database is down or unreachable; "
            "bring it back (`regionguard up`) or rebuild it (`regionguard failback`)"
        )
    if not tgt.in_recovery:
        raise UnsafeOperation(
            f"refusing {what} to {target}: its database is not a standby (not in recovery); "
            "promoting it would make a second primary"
        )
