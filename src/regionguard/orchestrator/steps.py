"""The steps a plan is made of, as actions on the ports: each idempotent ("already true?"
first, then the smallest change), bounded by the time left on its deadline, and raising
`ProviderError` for what a retry may fix. The executor runs them; `RunContext.scratch` is how
one step tells a later one what it found (the old writer's lease, the fence's result).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from regionguard.clock import SYSTEM_CLOCK
from regionguard.config import Replication, Role
from regionguard.errors import NotFenced, ProviderError, RegionGuardError, StepAbandoned
from regionguard.orchestrator.events import Event
from regionguard.orchestrator.handover import handover_during_promote
from regionguard.orchestrator.lsn import format_lsn
from regionguard.orchestrator.plans import Plan, PlanKind, Step
from regionguard.orchestrator.ports import Ports, RouteTable
from regionguard.orchestrator.records import Scratch


@dataclass
class RunContext:
    """One run of a plan: the plan, the epoch it claimed, what its steps tell each other."""

    plan: Plan
    epoch: int
    scratch: Scratch = field(default_factory=Scratch)
    sleep: Callable[[float], None] = SYSTEM_CLOCK.sleep
    # best-effort work a step left running beside the next ones (the AWS fence's database
    # part): joined when the plan's run ends (done, failed or interrupted)
    beside: list[threading.Thread] = field(default_factory=list)


StepAction = Callable[[Ports, RunContext, Step, float], str]


def _scale(p: Ports, ctx: RunContext, step: Step, _: float) -> str:
    st = p.compute.scale(step.args["region"], int(step.args["count"]))
    return f"{step.args['region']}: {st.desired} processes wanted"


def _take_writes_from(p: Ports, ctx: RunContext, region: str) -> tuple[list[str], list[str]]:
    """Revoke `region`'s write lease (where the world has one) and cut its traffic; remember
    until when its apps may still act on a lease they confirmed, for `route` to wait out.
    Every plan that moves the writer goes through here (failover's fence, a swap's cut).

    The revoke must succeed (it is the fence where there is a lease: ProviderError retries);
    the cut is attempted and, if the front door cannot be reached, reported rather than
    raised, so the database can still be fenced. Returns (done, failed)."""
    lease_until = p.state.revoke_writer(region)
    done: list[str] = []
    if lease_until is not None:
        ctx.scratch.lease_until = max(lease_until, ctx.scratch.lease_until or 0.0)
        ctx.scratch.lease_holder = region
        done.append(f"write lease revoked (held at most until {lease_until:.1f})")
    try:
        p.traffic.cut(region)
        done.append("traffic cut")
    except RegionGuardError as exc:
        p.journal.record(Event.FENCE_PART_FAILED, plan=ctx.plan.id, region=region, part="cut",
                         detail=str(exc))
        return done, [f"traffic cut failed: {exc}"]
    return done, []


def _fence(p: Ports, ctx: RunContext, step: Step, _: float) -> str:
    """Each part is attempted whatever the others did: the front door, then the database.
    Done when writes to `region` are impossible (its database fenced) or only possible under
    a revoked lease; else ProviderError, retried within the deadline.

    Where the revoked lease is the fence and the promotion need not wait for the database's
    part (`promotes_under_old_lease`: AWS, whose RDS or Aurora fence can only drop sessions of
    a reachable primary), that part runs beside the promotion: in an outage its calls to the
    dead Region would only hold the promotion up by their timeouts."""
    region = step.args["region"]
    done, failed = _take_writes_from(p, ctx, region)
    if p.database.promotes_under_old_lease and ctx.scratch.lease_until is not None:
        beside = threading.Thread(target=_fence_database, args=(p, ctx, region),
                                  daemon=True, name="rg-fence-database")
        beside.start()
        ctx.beside.append(beside)
        return "; ".join([*done, "the database's part runs beside the promotion", *failed])
    result = p.database.fence(region)  # never raises: whatever it could not do is listed
    ctx.scratch.fence_complete = result.complete
    if not result.complete:
        p.journal.record(Event.UNFENCED, plan=ctx.plan.id, region=region,
                         detail=list(result.unfenced))
    if failed and not result.complete and ctx.scratch.lease_until is None:
        raise ProviderError(f"{region} not fenced: {'; '.join([*failed, *result.unfenced])}")
    return "; ".join([*done, *result.actions, *failed])


def _fence_database(p: Ports, ctx: RunContext, region: str) -> None:
    """The database's part of a fence, best effort, journaled as the step's would be."""
    try:
        result = p.database.fence(region)
    except Exception as exc:  # never raises by contract; said so if it does
        p.journal.record(Event.UNFENCED, plan=ctx.plan.id, region=region,
                         detail=[f"{type(exc).__name__}: {exc}"])
        return
    if not result.complete:
        p.journal.record(Event.UNFENCED, plan=ctx.plan.id, region=region,
                         detail=list(result.unfenced))


BESIDE_JOIN_S = 30.0  # real seconds the plan's end waits for the work beside its steps


LEASE_ASK_FOR_S = 1.0  # how long one try of promote/route keeps asking the arbiter
LEASE_ASK_EVERY_S = 0.05


def _wait_out_old_lease(p: Ports, ctx: RunContext, step: str) -> float:
    """Sleep until the revoked lease's estimated end, then ask the arbiter: its answer, not
    the estimate, says the lease has ended (etcd: the holder's own lease expired, counted
    from its last renewal). While the arbiter still holds it: ProviderError, retried within
    the step's deadline. Returns the seconds slept."""
    until = ctx.scratch.lease_until
    if until is None:
        return 0.0
    waited = max(0.0, until - p.clock.time())
    if waited > 0:
        p.journal.record(Event.LEASE_WAIT, plan=ctx.plan.id, step=step, seconds=round(waited, 3))
        ctx.sleep(waited)
    holder = ctx.scratch.lease_holder
    if holder is None:
        return waited
    # etcd expires leases on its own schedule (its leader looks every 500 ms): ask a few times
    # before handing the wait back to the step's retries
    asked_until = p.clock.monotonic() + LEASE_ASK_FOR_S
    while not p.state.writer_lease_ended(holder):
        if p.clock.monotonic() >= asked_until:
            raise ProviderError(f"{holder}'s write lease has not ended in the arbiter yet; "
                                "waiting for it, never for a guess")
        ctx.sleep(LEASE_ASK_EVERY_S)
    return waited


LEASE_RUNS_OUT = ("old write lease revoked and its database unreachable; writes move only "
                  "once the lease has ended")


@dataclass(frozen=True, slots=True)
class Safe:
    """Why a failover may promote now; `lease_runs_out`: the old lease still runs (the
    asynchronous case), so it is handed over beside the promotion once it ends."""

    reason: str
    lease_runs_out: bool = False


def _promotes_while_lease_runs(p: Ports, ctx: RunContext, source: str) -> bool:
    """(b) of `_old_writer_stopped`, the asynchronous case: a revoked lease, replication that
    may be cut, and the old writer's database out of reach."""
    return (ctx.scratch.lease_until is not None and p.database.promotes_under_old_lease
            and not p.database.status(source).up)


def _old_writer_stopped(p: Ports, ctx: RunContext, region: str, source: str) -> Safe:
    """A failover promotes only over an old primary that cannot write any more, or whose
    writes can reach no one (b). Across a network "unreachable" is not "dead", so one of
    these must hold:

    (a) the fence completed: the old cluster's processes are confirmed gone (fenced again
        here if the `fence` step could not: a retry of promote retries the fence);
    (b) the old writer's lease has run out in the arbiter: wait for it, then promote; or,
        where replication between the regions is asynchronous (`promotes_under_old_lease`:
        AWS) and the old writer's database cannot be reached from here (its Region is out or
        cut off, and its replication with it), the lease is revoked: promote now, while the
        lease runs out; `route` waits for its end, so writes never go to two regions. The
        old primary may still commit under its lease meanwhile; what it does is lost, as it
        would be unreplicated either way. Where its database is reachable, the wait comes
        first, so that whatever it commits under its lease can still replicate;
    (c) a person forced the plan: promoted anyway, and the journal says so.

    Returns what made it safe; raises ProviderError (retried within the deadline) otherwise."""
    if ctx.scratch.fence_complete:
        return Safe("fenced")
    if _promotes_while_lease_runs(p, ctx, source):
        return Safe(LEASE_RUNS_OUT, lease_runs_out=True)
    if ctx.scratch.lease_until is not None:
        _wait_out_old_lease(p, ctx, "promote")
        return Safe("old write lease expired")
    result = p.database.fence(source)
    if result.complete:
        ctx.scratch.fence_complete = True
        return Safe("fenced")
    if ctx.plan.forced:
        if not ctx.scratch.forced_promote_recorded:
            detail = (f"promoting {region} over {source}, which is neither fenced nor under an "
                      f"expired lease: {'; '.join(result.unfenced)}")
            p.journal.record(Event.FORCED_PROMOTE, plan=ctx.plan.id, region=source, detail=detail)
            p.notifier.notify("forced_promote", {"plan": ctx.plan.id, "detail": detail})
            ctx.scratch.forced_promote_recorded = True
        return Safe("forced")
    raise NotFenced(
        f"refusing to promote {region}: {source} is neither fenced ("
        f"{'; '.join(result.unfenced) or 'fence incomplete'}) nor under a write lease that "
        "has run out; unreachable is not dead. Fence it by hand and retry, or use "
        "`failover --force` to accept two writers")


def _promote(p: Ports, ctx: RunContext, step: Step, remaining: float) -> str:
    """Never writes to two primaries: an unplanned promote waits for the old writer to be
    fenced or its lease to run out, or (asynchronous replication, the old one unreachable)
    leaves that wait to `route` (`_old_writer_stopped`), and hands the lease to the target
    as soon as it has ended, while the database promotes (`handover`); a planned one stopped
    the old writer cleanly."""
    region = step.args["region"]
    planned = ctx.plan.kind is not PlanKind.FAILOVER
    source = step.args["source"]
    safe = Safe("stopped cleanly") if planned else _old_writer_stopped(p, ctx, region, source)
    grace = step.args.get("down_grace_s")
    if grace is not None and step.deadline_s - remaining >= grace and not (
            p.database.status(region).up):
        raise StepAbandoned(f"{region}'s database has been down for {grace:g} s of promote; "
                            "not waiting out the deadline (nothing restarts it while the plan "
                            "holds the lock)")
    # the lease's end comes long before the promotion's: hand it over meanwhile, so that
    # DNS moves while the database promotes (`handover`)
    handover = handover_during_promote(
        p, ctx.plan.id, ctx.epoch, ctx.scratch,
        next((dict(s.args) for s in ctx.plan.steps if s.name == "route"), None),
    ) if safe.lease_runs_out else None
    try:
        p.database.promote(region, ctx.epoch, remaining, planned=planned)
    finally:
        if handover is not None:
            handover.stop()
    p.state.set_roles({region: Role.PRIMARY, source: Role.STANDBY}, plan_id=ctx.plan.id)
    if p.topology.replication is Replication.SYNC:
        # the new primary commits alone until a standby rejoins: record where that began
        lsn = p.database.status(region).lsn
        if not ctx.scratch.degrade_recorded:  # once: a re-asserted promote keeps it
            p.state.set_sync_degraded(lsn)  # replaces a record about the old primary
            ctx.scratch.degrade_recorded = lsn is not None
    return f"{region} promoted, epoch {ctx.epoch} (old primary {source}: {safe.reason})"


AWAIT_SLICE_MIN_S = 1.5  # an app is ready in about a second; `scale` again is idempotent


def _scaled_count(plan: Plan, region: str) -> int | None:
    """How many processes this plan's `scale` step wants in `region` (None: no such step)."""
    return next((int(s.args["count"]) for s in plan.steps
                 if s.name == "scale" and s.args.get("region") == region), None)


def _await_ready(p: Ports, ctx: RunContext, step: Step, remaining: float) -> str:
    """Wait in slices; between slices, `scale` again (idempotent): processes that died after
    the plan's `scale` (a second fault) are started again instead of being waited for until
    the deadline, with nothing else allowed to restart them while the plan runs."""
    region, at_least = step.args["region"], int(step.args["at_least"])
    deadline = p.clock.monotonic() + remaining
    slice_s = max(AWAIT_SLICE_MIN_S, remaining / 6)
    while True:
        left = deadline - p.clock.monotonic()
        try:
            st = p.compute.wait_ready(region, at_least, max(0.1, min(slice_s, left)))
            return f"{st.ready} ready"
        except ProviderError:
            if p.clock.monotonic() >= deadline - 0.05:
                raise
            _restart_if_down(p, ctx, region)  # the apps wait for their database
            count = _scaled_count(ctx.plan, region)
            if count:
                p.compute.scale(region, count)


def _restart_if_down(p: Ports, ctx: RunContext, region: str) -> None:
    """The new primary's database died after `promote` (a second fault; the campaign's seed 53
    waited out await_ready's 30 s for apps that cannot start without it): promote again, which
    is idempotent and restarts a crashed primary (crash recovery keeps every commit)."""
    if not any(s.name == "promote" for s in ctx.plan.steps):
        return
    st = p.database.status(region)
    if st.up and st.in_recovery is False:
        return
    j = p.journal
    j.record(Event.REASSERT, plan=ctx.plan.id, epoch=ctx.epoch, step="promote", region=region,
             outcome="started", detail="down" if not st.up else "in recovery")
    try:
        p.database.promote(region, ctx.epoch, 20.0)
    except ProviderError as exc:
        j.record(Event.REASSERT, plan=ctx.plan.id, epoch=ctx.epoch, step="promote", region=region,
                 outcome="failed", detail=str(exc))
        return
    j.record(Event.REASSERT, plan=ctx.plan.id, epoch=ctx.epoch, step="promote", region=region,
             outcome="done", detail=f"{region} promoted again, epoch {ctx.epoch}")


def _route(p: Ports, ctx: RunContext, step: Step, _: float) -> str:
    """Writes go to the new primary only once no app of the old one can still act on a write
    lease it confirmed before the fence: across a real network nobody can SIGKILL the other
    region, so its lease running out is what fences it."""
    waited = _wait_out_old_lease(p, ctx, "route")
    table = RouteTable(weights=dict(step.args["weights"]), writer=step.args["writer"],
                       epoch=ctx.epoch)
    p.traffic.route(table)
    lease = f" after waiting {waited:.1f} s for the old write lease" if waited else ""
    return f"writer {table.writer}, weights {dict(table.weights)}{lease}"


def _verify(p: Ports, ctx: RunContext, step: Step, remaining: float) -> str:
    """A canary write through the front door. A retry first scales the target again
    (idempotent): the apps may have died since they were found ready (a second fault)."""
    region = step.args["region"]
    if ctx.scratch.verify_failed:
        ctx.scratch.verify_failed = False
        _restart_if_down(p, ctx, region)
        if count := _scaled_count(ctx.plan, region):
            p.compute.scale(region, count)
    result = p.traffic.verify(min(remaining, 3.0))
    if not result.ok or result.region != step.args["region"] or result.epoch != ctx.epoch:
        ctx.scratch.verify_failed = True
        raise ProviderError(
            f"canary write not confirmed: ok={result.ok} region={result.region} "
            f"epoch={result.epoch} (want {step.args['region']}/{ctx.epoch}) {result.detail}"
        )
    return f"canary written in {result.region} at epoch {result.epoch} ({result.latency_s:.3f} s)"


def _stamp(p: Ports, ctx: RunContext, step: Step, _: float) -> str:
    """The writer stays; the token moves to the epoch this plan claimed (a `route` follows),
    so the state store, the database and the front door agree on it again."""
    p.database.stamp_epoch(step.args["region"], ctx.epoch)
    return f"{step.args['region']} holds epoch {ctx.epoch}"


def _cut(p: Ports, ctx: RunContext, step: Step, _: float) -> str:
    done, failed = _take_writes_from(p, ctx, step.args["region"])  # stop_writes follows
    return "; ".join([*done, *failed])


def _stop_writes(p: Ports, ctx: RunContext, step: Step, remaining: float) -> str:
    lsn = p.database.stop_writes(step.args["region"], remaining)
    ctx.scratch.final_lsn = lsn
    if p.database.stopped_writes_are_final:
        # its database stopped cleanly: no app of the old primary can commit any more, so
        # nothing is left to wait out of the write lease `cut` revoked (route would sleep
        # its TTL)
        ctx.scratch.lease_until = None
    return f"stopped cleanly at LSN {lsn}"


def _wait_replayed(p: Ports, ctx: RunContext, step: Step, remaining: float) -> str:
    lsn = ctx.scratch.final_lsn
    if lsn is None:
        raise StepAbandoned("no final LSN: `stop_writes` has not run in this plan")
    replayed = p.database.wait_replayed(step.args["region"], lsn, remaining)
    return f"replayed {replayed} >= {lsn}"


def _rejoin(p: Ports, ctx: RunContext, step: Step, remaining: float) -> str:
    region, of = step.args["region"], step.args["of"]
    method = p.database.rebuild_as_standby(region, of, remaining)
    # sync is not turned on here: a primary that waited for a standby still rebuilding (or
    # killed meanwhile) would block every commit. catch_up, or the primary's agent once the
    # standby streams, turns it on together with clearing the degrade record.
    count = int(step.args.get("count", 0))
    p.compute.scale(region, count)
    if count:
        p.compute.wait_ready(region, count, max(1.0, remaining / 2))
    # the writer keeps the fencing token its database holds: before a failback's promote
    # that is the previous epoch, not the one this plan claimed (a route with the claimed
    # epoch would turn every write away until the promote)
    epoch = p.database.status(of).epoch
    if epoch is None:
        raise ProviderError(f"{of}: its fencing token cannot be read; not routing with a guess")
    p.traffic.route(RouteTable(weights=dict(step.args["weights"]), writer=of, epoch=epoch))
    return f"{region} follows {of} ({method})"


def _catch_up(p: Ports, ctx: RunContext, step: Step, remaining: float) -> str:
    """The rebuilt standby streams from the primary, on the primary's timeline, nearly caught up.

    All three matter: a standby that did not follow the timeline switch keeps reconnecting
    (briefly 'streaming') with a small byte lag while it will never replay the new WAL."""
    deadline = p.clock.monotonic() + remaining
    region, of = step.args["region"], step.args["of"]
    sync = p.topology.replication is Replication.SYNC
    degraded_at = p.state.load().sync_degraded_lsn if sync else None
    while True:
        st = p.database.status(region)
        primary = p.database.status(of)
        past_degrade = degraded_at is None or (st.lsn is not None and st.lsn >= degraded_at)
        if (st.up and st.in_recovery and st.streaming and st.timeline is not None
                and st.timeline == primary.timeline
                and st.lag_bytes is not None and st.lag_bytes < 1 << 20 and past_degrade):
            if sync:  # a sync pair again: wait for it first, then clear the record (a crash
                p.database.set_sync_standby(of, region)  # between leaves both: restored later)
                if degraded_at is not None:  # once it confirms: every write acknowledged
                    confirmed = p.database.confirm_sync(  # alone is on it now
                        of, region, max(0.5, min(5.0, deadline - p.clock.monotonic())))
                    p.state.clear_sync_degraded(degraded_at)  # unless a newer one was made
                    p.journal.record(Event.SYNC_CONFIRMED, plan=ctx.plan.id, region=region,
                                     lsn=format_lsn(confirmed))
            return f"streaming on timeline {st.timeline}, lag {st.lag_bytes} bytes"
        if p.clock.monotonic() >= deadline:
            raise ProviderError(
                f"{region} not caught up with {of}: streaming={st.streaming}, timeline "
                f"{st.timeline} vs {primary.timeline}, lag {st.lag_bytes} bytes"
                + (f", replayed {format_lsn(st.lsn)} of {format_lsn(degraded_at)} written "
                   "without it" if degraded_at is not None and st.lsn is not None else ""))
        ctx.sleep(0.1)


def _restore(p: Ports, ctx: RunContext, step: Step, remaining: float) -> str:
    """Backup & restore: the target's database from the snapshot the plan chose (its age is
    the RPO, on record in the plan's warning); waited for until it is available."""
    if p.restorer is None:
        raise StepAbandoned("this world cannot restore a database from a snapshot")
    return p.restorer.restore(step.args["region"], step.args["snapshot"], remaining)


def _retire(p: Ports, ctx: RunContext, step: Step, _: float) -> str:
    p.compute.scale(step.args["region"], int(step.args["count"]))
    return f"{step.args['region']} scaled to {step.args['count']}"


STEP_ACTIONS: Mapping[str, StepAction] = {
    "scale": _scale, "fence": _fence, "promote": _promote, "await_ready": _await_ready,
    "route": _route, "verify": _verify, "cut": _cut, "stop_writes": _stop_writes,
    "wait_replayed": _wait_replayed, "rejoin": _rejoin, "catch_up": _catch_up,
    "stamp": _stamp, "restore": _restore,
    "retire": _retire,
}
