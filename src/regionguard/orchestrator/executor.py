"""Runs a plan: claims the epoch, runs each step idempotently with retries inside its deadline,
journals every transition, and saves progress after each step so a crash resumes, never repeats.

A step is recorded `started` then `done` or `failed` with the plan id and epoch. On resume the
executor skips steps already `done` (each step is idempotent anyway, so a step that was running
when the controller died is simply run again). Failed plans stay in the journal: the history of
failovers is an audit trail.

Once `promote` is done there is no going back: a later step that fails leaves the plan running
(`PlanInterrupted`), so the next drive resumes it rather than leaving the new primary unrouted.
A best-effort step (one that touches the region being left, which may be dead) never fails the
plan: what it could not do is journaled and kept in the plan record as `unfinished`.
Deadlines and waits use the world's clock (`Ports.clock`), so an emulated world can scale them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tenacity import (
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from regionguard.clock import SYSTEM_CLOCK
from regionguard.config import Replication, Role
from regionguard.errors import PlanConflict, ProviderError, RegionGuardError, StepAbandoned
from regionguard.orchestrator.events import Event
from regionguard.orchestrator.journal import rto_breakdown
from regionguard.orchestrator.lsn import format_lsn
from regionguard.orchestrator.plans import Plan, PlanKind, Step
from regionguard.orchestrator.ports import Ports, RouteTable


@dataclass
class RunContext:
    plan: Plan
    epoch: int
    scratch: dict[str, Any] = field(default_factory=dict)
    sleep: Callable[[float], None] = SYSTEM_CLOCK.sleep


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
        ctx.scratch["lease_until"] = max(lease_until, float(ctx.scratch.get("lease_until", 0)))
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
    a revoked lease; else ProviderError, retried within the deadline."""
    region = step.args["region"]
    done, failed = _take_writes_from(p, ctx, region)
    result = p.database.fence(region)  # never raises: whatever it could not do is listed
    ctx.scratch["fence_complete"] = result.complete
    if not result.complete:
        p.journal.record(Event.UNFENCED, plan=ctx.plan.id, region=region,
                         detail=list(result.unfenced))
    if failed and not result.complete and "lease_until" not in ctx.scratch:
        raise ProviderError(f"{region} not fenced: {'; '.join([*failed, *result.unfenced])}")
    return "; ".join([*done, *result.actions, *failed])


def _old_writer_stopped(p: Ports, ctx: RunContext, region: str, source: str) -> str:
    """A failover promotes only over an old primary that cannot write any more. Across a
    network "unreachable" is not "dead", so one of these must hold:

    (a) the fence completed: the old cluster's processes are confirmed gone (fenced again
        here if the `fence` step could not: a retry of promote retries the fence);
    (b) the old writer's lease has run out in the arbiter: wait for it, then promote;
    (c) a person forced the plan: promoted anyway, and the journal says so.

    Returns what made it safe; raises ProviderError (retried within the deadline) otherwise."""
    if ctx.scratch.get("fence_complete", True):
        return "fenced"
    until = ctx.scratch.get("lease_until")
    if until is not None:
        wait = max(0.0, float(until) - p.clock.time())
        if wait > 0:
            p.journal.record(Event.LEASE_WAIT, plan=ctx.plan.id, step="promote",
                             seconds=round(wait, 3))
            ctx.sleep(wait)
        return "old write lease expired"
    result = p.database.fence(source)
    if result.complete:
        ctx.scratch["fence_complete"] = True
        return "fenced"
    if ctx.plan.forced:
        if not ctx.scratch.get("forced_promote_recorded"):
            detail = (f"promoting {region} over {source}, which is neither fenced nor under an "
                      f"expired lease: {'; '.join(result.unfenced)}")
            p.journal.record(Event.FORCED_PROMOTE, plan=ctx.plan.id, region=source, detail=detail)
            p.notifier.notify("forced_promote", {"plan": ctx.plan.id, "detail": detail})
            ctx.scratch["forced_promote_recorded"] = True
        return "forced"
    raise ProviderError(
        f"refusing to promote {region}: {source} is neither fenced ("
        f"{'; '.join(result.unfenced) or 'fence incomplete'}) nor under a write lease that "
        "has run out; unreachable is not dead. Fence it by hand and retry, or use "
        "`failover --force` to accept two writers")


def _promote(p: Ports, ctx: RunContext, step: Step, remaining: float) -> str:
    """Never a second writable primary: an unplanned promote waits for the old writer to be
    fenced or its lease to run out (`_old_writer_stopped`); a planned one stopped it cleanly."""
    region = step.args["region"]
    planned = ctx.plan.kind is not PlanKind.FAILOVER
    source = step.args["source"]
    if not planned:
        _old_writer_stopped(p, ctx, region, source)
    grace = step.args.get("down_grace_s")
    if grace is not None and step.deadline_s - remaining >= grace and not (
            p.database.status(region).up):
        raise StepAbandoned(f"{region}'s database has been down for {grace:g} s of promote; "
                            "not waiting out the deadline (nothing restarts it while the plan "
                            "holds the lock)")
    p.database.promote(region, ctx.epoch, remaining, planned=planned)
    p.state.set_roles({region: Role.PRIMARY, source: Role.STANDBY}, plan_id=ctx.plan.id)
    if p.topology.replication is Replication.SYNC:
        # the new primary commits alone until a standby rejoins: record where that began
        lsn = p.database.status(region).lsn
        if not ctx.scratch.get("degrade_recorded"):  # once: a re-asserted promote keeps it
            p.state.set_sync_degraded(None)
            if lsn is not None:
                p.state.set_sync_degraded(lsn)
                ctx.scratch["degrade_recorded"] = True
    return f"{region} promoted, epoch {ctx.epoch}"


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
    waited = 0.0
    until = ctx.scratch.get("lease_until")
    if until is not None:
        waited = max(0.0, float(until) - p.clock.time())
        if waited > 0:
            p.journal.record(Event.LEASE_WAIT, plan=ctx.plan.id, seconds=round(waited, 3))
            ctx.sleep(waited)
    table = RouteTable(weights=dict(step.args["weights"]), writer=step.args["writer"],
                       epoch=ctx.epoch)
    p.traffic.route(table)
    lease = f" after waiting {waited:.1f} s for the old write lease" if waited else ""
    return f"writer {table.writer}, weights {dict(table.weights)}{lease}"


def _verify(p: Ports, ctx: RunContext, step: Step, remaining: float) -> str:
    """A canary write through the front door. A retry first scales the target again
    (idempotent): the apps may have died since they were found ready (a second fault)."""
    region = step.args["region"]
    if ctx.scratch.pop("verify_failed", False):
        _restart_if_down(p, ctx, region)
        if count := _scaled_count(ctx.plan, region):
            p.compute.scale(region, count)
    result = p.traffic.verify(min(remaining, 3.0))
    if not result.ok or result.region != step.args["region"] or result.epoch != ctx.epoch:
        ctx.scratch["verify_failed"] = True
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
    ctx.scratch["final_lsn"] = lsn
    return f"stopped cleanly at LSN {lsn}"


def _wait_replayed(p: Ports, ctx: RunContext, step: Step, remaining: float) -> str:
    lsn = int(ctx.scratch["final_lsn"])
    replayed = p.database.wait_replayed(step.args["region"], lsn, remaining)
    return f"replayed {replayed} >= {lsn}"


def _rejoin(p: Ports, ctx: RunContext, step: Step, remaining: float) -> str:
    region, of = step.args["region"], step.args["of"]
    method = p.database.rebuild_as_standby(region, of, remaining)
    # sync is not turned on here: a primary that waited for a standby still rebuilding (or
    # killed meanwhile) would block every commit. catch_up, or the controller once the
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
                    p.state.set_sync_degraded(None)
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


class PlanFailed(ProviderError):
    """A step did not succeed within its deadline; the plan is recorded as failed."""


class PlanInterrupted(PlanFailed):
    """A step after `promote` did not succeed within its deadline. The plan stays running in
    the StateStore, so the next drive resumes it: the new primary is never left unrouted."""


class Executor:
    def __init__(self, ports: Ports, sleep: Callable[[float], None] | None = None) -> None:
        self.ports = ports
        self.sleep = sleep or ports.clock.sleep

    def run(self, plan: Plan, resume: Mapping[str, Any] | None = None,
            on_step: Callable[[str, str, float], None] | None = None,
            verdict: Mapping[str, Any] | None = None,
            observation: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run (or resume) `plan`; returns its RTO breakdown. Raises PlanFailed on a failed step.

        `resume` is the saved progress of this plan (plan.json) when a controller restarts."""
        j = self.ports.journal
        record = plan.to_dict()
        if resume is None:
            epoch = self._claim(plan, record)
            j.record(Event.PLAN, plan=plan.id, outcome="started", name=plan.kind.value,
                     source=plan.source, target=plan.target, epoch=epoch, reason=plan.reason,
                     steps=[{"name": s.name, "deadline_s": s.deadline_s, **dict(s.args)}
                            for s in plan.steps])
            if observation:  # what the plan was built from: the journal alone explains it
                j.record(Event.OBSERVATION, plan=plan.id, **observation)
            if verdict:
                j.record(Event.VERDICT, plan=plan.id, **verdict)
            for warning in plan.warnings:  # what the plan accepts knowingly, on the record
                j.record(Event.RPO_WARNING, plan=plan.id, detail=warning, **plan.risk)
                self.ports.notifier.notify("rpo_warning", {"plan": plan.id, "detail": warning,
                                                           **plan.risk})
            done: list[str] = []
            scratch: dict[str, Any] = {}
        else:
            epoch = int(resume["epoch"])
            done = list(resume.get("done", []))
            scratch = dict(resume.get("scratch", {}))
            j.record(Event.PLAN, plan=plan.id, outcome="resumed", epoch=epoch, done=done,
                     remaining=[s.name for i, s in enumerate(plan.steps)
                                if f"{i}:{s.name}" not in done])
            if observation:
                j.record(Event.OBSERVATION, plan=plan.id, **observation)
        ctx = RunContext(plan, epoch, scratch, self.sleep)
        if resume is not None:
            self._reassert(plan, ctx, done)
        unfinished: list[dict[str, Any]] = list((resume or {}).get("unfinished", []))
        progress = {**record, "epoch": epoch, "status": "running", "done": done,
                    "scratch": ctx.scratch, "unfinished": unfinished,
                    "step_started_at": dict((resume or {}).get("step_started_at", {}))}
        self.ports.state.save_plan(progress)
        for index, step in enumerate(plan.steps):
            key = f"{index}:{step.name}"
            if key in done:
                continue
            if on_step:
                on_step(step.name, "started", 0.0)
            started = self.ports.clock.monotonic()
            budget = self._budget(step, key, progress)  # saves the step's first start
            j.record(Event.STEP, plan=plan.id, epoch=epoch, step=step.name, outcome="started",
                     in_rto=step.in_rto)
            try:
                detail = self._attempt(step, ctx, budget)
            except PlanConflict:
                j.record(Event.PLAN, plan=plan.id, outcome="superseded", step=step.name)
                self._report(plan.id)
                raise  # another runner or plan owns the record now: write nothing more
            except RegionGuardError as exc:
                if step.best_effort:
                    j.record(Event.STEP, plan=plan.id, epoch=epoch, step=step.name,
                             outcome="unfinished", in_rto=step.in_rto, detail=str(exc))
                    unfinished.append({"step": step.name, "args": dict(step.args),
                                       "error": str(exc)})
                    self.ports.notifier.notify("step_unfinished", {
                        "plan": plan.id, "step": step.name, "error": str(exc)})
                    done.append(key)
                    self.ports.state.save_plan(progress)
                    continue
                j.record(Event.STEP, plan=plan.id, epoch=epoch, step=step.name, outcome="failed",
                         in_rto=step.in_rto, detail=str(exc))
                promoted = any(k.split(":", 1)[1] in ("promote", "restore") for k in done) or (
                    step.name == "promote" and self._became_primary(plan.target))
                if promoted:  # no going back: leave it running for the next drive to resume
                    self.ports.state.save_plan(progress)
                    j.record(Event.PLAN, plan=plan.id, outcome="interrupted", step=step.name)
                    self._report(plan.id)
                    self.ports.notifier.notify("plan_interrupted", {
                        "plan": plan.id, "step": step.name, "error": str(exc)})
                    raise PlanInterrupted(f"{plan.kind.value} interrupted at step {step.name} "
                                          f"(resumed by the next run): {exc}") from exc
                self._roll_back(ctx, done)
                progress["status"] = "failed"
                self.ports.state.save_plan(progress)
                j.record(Event.PLAN, plan=plan.id, outcome="failed", step=step.name)
                self._report(plan.id)
                self.ports.notifier.notify("plan_failed", {"plan": plan.id, "step": step.name,
                                                           "error": str(exc)})
                raise PlanFailed(f"{plan.kind.value} failed at step {step.name}: {exc}") from exc
            elapsed = self.ports.clock.monotonic() - started
            j.record(Event.STEP, plan=plan.id, epoch=epoch, step=step.name, outcome="done",
                     in_rto=step.in_rto, detail=detail, duration_s=round(elapsed, 4))
            if on_step:
                on_step(step.name, "done", elapsed)
            done.append(key)
            self.ports.state.save_plan(progress)
            self._maybe_pause(step.name)
        roles = {plan.target: Role.PRIMARY, plan.source: Role.STANDBY}
        self.ports.state.finish_plan(plan.id, roles)
        summary = rto_breakdown(j.entries(), plan.id) or {}
        j.record(Event.PLAN, plan=plan.id, outcome="done", epoch=epoch, rto_s=summary.get("rto_s"),
                 unfinished=[u["step"] for u in unfinished] or None)
        self.ports.notifier.notify(f"{plan.kind.value}_done", summary)
        self._report(plan.id)
        return summary

    def _report(self, plan_id: str) -> None:
        """The plan's execution report; never a reason for a plan to fail."""
        if self.ports.reports is None:
            return
        try:
            self.ports.reports(plan_id)
        except Exception as exc:  # a full disk, an unreadable journal: on the record only
            self.ports.journal.record(Event.REPORT, plan=plan_id, outcome="failed",
                                      detail=f"{type(exc).__name__}: {exc}")

    def _reassert(self, plan: Plan, ctx: RunContext, done: list[str]) -> None:
        """A resumed plan re-asserts what its remaining steps stand on, as a second fault may
        have undone it since: the new primary's database (`promote` again when it is no
        longer a running primary: idempotent, a crashed primary is restarted and crash
        recovery keeps every committed write, the epoch is re-stamped) and the target's
        processes (`scale` again: idempotent, dead processes are started). Without it the
        later steps would fail at every resume, for ever, holding the plan lock that `up`
        needs to repair anything."""
        steps = list(enumerate(plan.steps))
        if all(f"{i}:{s.name}" in done for i, s in steps):
            return
        # the database first: the processes need it to become ready
        for index, step in sorted(steps, key=lambda item: item[1].name != "promote"):
            if f"{index}:{step.name}" not in done or step.name not in ("promote", "scale"):
                continue
            if step.args.get("region") != plan.target:
                continue
            if step.name == "promote":
                st = self.ports.database.status(plan.target)
                if st.up and not st.in_recovery:
                    continue
                why = "down" if not st.up else "in recovery"
            else:
                why = "processes may have died since"
            self._reassert_step(plan, ctx, step, why)

    def _reassert_step(self, plan: Plan, ctx: RunContext, step: Step, why: str) -> None:
        j = self.ports.journal
        j.record(Event.REASSERT, plan=plan.id, epoch=ctx.epoch, step=step.name,
                 region=plan.target, outcome="started", detail=why)
        try:
            detail = self._attempt(step, ctx, step.deadline_s)
        except RegionGuardError as exc:  # the next steps fail; the plan is resumed again
            j.record(Event.REASSERT, plan=plan.id, epoch=ctx.epoch, step=step.name,
                     region=plan.target, outcome="failed", detail=str(exc))
            return
        j.record(Event.REASSERT, plan=plan.id, epoch=ctx.epoch, step=step.name,
                 region=plan.target, outcome="done", detail=detail)

    def _claim(self, plan: Plan, record: Mapping[str, Any]) -> int:
        """Claim the epoch, retrying a claim whose answer was lost: the write may have
        committed, and a replay of the same plan id returns the epoch it took."""
        clock = self.ports.clock
        deadline = clock.monotonic() + self.ports.deadlines.fence
        for attempt in Retrying(
            stop=lambda state: clock.monotonic() >= deadline,
            wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
            retry=retry_if_exception_type(ProviderError), sleep=self.sleep, reraise=True,
        ):
            with attempt:
                return self.ports.state.claim_epoch(plan.base_epoch, record)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _roll_back(self, ctx: RunContext, done: list[str]) -> None:
        """A planned swap that failed before the target was promoted gives writes back to the
        source (cleanly stopped, nothing lost) at the claimed epoch, instead of leaving the
        application without a primary. After `promote`, there is no going back: the failed
        step is retried by a resume, and the journal says so."""
        names = {key.split(":", 1)[1] for key in done}
        plan = ctx.plan
        if "stop_writes" not in names and "cut" not in names:
            return
        if "promote" in names:
            return
        j = self.ports.journal
        target = self.ports.database.status(plan.target)
        if not (target.up and target.in_recovery):
            # a target that died mid-promote may have been promoted before it died: a second
            # primary would be worse than no writes; the controller decides from here
            j.record(Event.ROLLBACK, plan=plan.id, outcome="refused", region=plan.source,
                     detail=f"{plan.target} is not a running standby (up={target.up}), it "
                            f"may have been promoted; {plan.source} stays stopped")
            return
        j.record(Event.ROLLBACK, plan=plan.id, outcome="started", region=plan.source)
        try:
            self.ports.database.promote(plan.source, ctx.epoch, 30.0, planned=True)
            self.ports.state.set_roles({plan.source: Role.PRIMARY, plan.target: Role.STANDBY},
                                       plan_id=plan.id)
            weights = {r: int(r == plan.source) for r in self.ports.topology.regions}
            self.ports.traffic.route(RouteTable(weights, plan.source, ctx.epoch))
            j.record(Event.ROLLBACK, plan=plan.id, outcome="done", region=plan.source)
        except RegionGuardError as exc:
            j.record(Event.ROLLBACK, plan=plan.id, outcome="failed", detail=str(exc))

    def _became_primary(self, region: str) -> bool:
        """A `promote` that failed (its runner or its database died mid-call) may have done
        its work: a running primary there means the plan is past the point of no return."""
        st = self.ports.database.status(region)
        return bool(st.up and st.in_recovery is False)

    def _budget(self, step: Step, key: str, progress: dict[str, Any]) -> float:
        """What is left of the step's deadline, counted from its first start (saved with the
        plan): a resumed step does not get a fresh deadline each time its runner is replaced.
        Past the deadline it still gets one short try, and the overrun is said out loud."""
        starts = progress.setdefault("step_started_at", {})
        if key not in starts:
            starts[key] = self.ports.clock.time()
            self.ports.state.save_plan(progress)  # a runner killed mid-step leaves it behind
        left = step.deadline_s - (self.ports.clock.time() - float(starts[key]))
        if left > 0:
            return left
        self.ports.journal.record(Event.DEADLINE_EXCEEDED, plan=progress["id"], step=step.name,
                                  deadline_s=step.deadline_s)
        self.ports.notifier.notify("deadline_exceeded", {"plan": progress["id"],
                                                         "step": step.name})
        return min(60.0, step.deadline_s)

    def _attempt(self, step: Step, ctx: RunContext, budget: float | None = None) -> str:
        action = STEP_ACTIONS[step.name]
        clock = self.ports.clock
        deadline = clock.monotonic() + (step.deadline_s if budget is None else budget)
        retrying = Retrying(
            stop=lambda state: clock.monotonic() >= deadline,
            # back off up to 1/30 of the deadline: 1 s in the sandbox, a minute for RDS
            wait=wait_exponential_jitter(multiplier=0.05, max=max(1.0, step.deadline_s / 30),
                                         jitter=0.05),
            retry=retry_if_exception(
                lambda e: isinstance(e, ProviderError) and not isinstance(e, StepAbandoned)),
            sleep=self.sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                remaining = max(0.5, deadline - clock.monotonic())
                return action(self.ports, ctx, step, remaining)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def complete_unfinished(self, region: str) -> list[str]:
        """Do now what the last plan's best-effort steps could not do in `region` (it was
        unreachable then, and is back): each step runs once more, idempotently, within its
        deadline; what succeeds is journaled and dropped from the record, the rest stays."""
        record = self.ports.state.read_plan()
        if not record or record.get("status") != "done" or not any(
                u.get("args", {}).get("region") == region for u in record.get("unfinished", [])):
            return []
        with self.ports.state.plan_lock() as held:  # no plan may start meanwhile
            if not held:
                return []
            try:
                return self._complete_unfinished(region)
            except PlanConflict:  # a new plan was claimed: its record is not ours to edit
                return []

    def _complete_unfinished(self, region: str) -> list[str]:
        record = self.ports.state.read_plan()  # again, under the lock
        if not record or record.get("status") != "done":
            return []
        pending = list(record.get("unfinished", []))
        mine = [u for u in pending if u.get("args", {}).get("region") == region]
        plan = Plan.from_dict(record)
        ctx = RunContext(plan, int(record["epoch"]), dict(record.get("scratch", {})),
                         self.sleep)
        completed = []
        for item in mine:
            step = next((s for s in plan.steps if s.name == item["step"]), None)
            if step is None:
                continue
            try:
                detail = self._attempt(step, ctx)
            except RegionGuardError as exc:
                self.ports.journal.record(Event.UNFINISHED_RETRY, plan=plan.id, step=step.name,
                                          region=region, outcome="failed", detail=str(exc))
                continue
            self.ports.journal.record(Event.UNFINISHED_RETRY, plan=plan.id, step=step.name,
                                      region=region, outcome="done", detail=detail)
            pending.remove(item)
            completed.append(step.name)
        if completed:
            self.ports.state.save_plan({**record, "unfinished": pending})
        return completed

    def _maybe_pause(self, step_name: str) -> None:
        """A drill's fault point: hold (bounded, once) right after `step_name` if armed."""
        point = self.ports.fault_point
        hold = point.hold_after(step_name) if point is not None else None
        if hold:
            self.ports.journal.record(Event.PAUSED, step=step_name, seconds=hold)
            self.sleep(hold)
