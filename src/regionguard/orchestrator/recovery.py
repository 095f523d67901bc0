"""What the executor does when a plan does not simply run from its first step to its last:
re-asserting what a resumed plan stands on, rolling a planned swap back before its point of no
return, and doing later what a best-effort step could not do in a region that was dead.

Each function takes `attempt`, the executor's way of running one step with its retries inside
its deadline, so the recovery paths retry exactly as the plan itself does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from regionguard.config import Role
from regionguard.errors import PlanConflict, RegionGuardError
from regionguard.orchestrator.events import Event, Outcome
from regionguard.orchestrator.plans import Step
from regionguard.orchestrator.ports import Ports, RouteTable
from regionguard.orchestrator.records import PlanRecord, PlanStatus
from regionguard.orchestrator.steps import RunContext

Attempt = Callable[[Step, RunContext, float | None], str]

# what a resumed plan re-asserts: the new primary's database, then its processes
REASSERTED = ("promote", "scale")


def reassert(ports: Ports, ctx: RunContext, record: PlanRecord, attempt: Attempt) -> None:
    """A resumed plan re-asserts what its remaining steps stand on, as a second fault may have
    undone it since: the new primary's database (`promote` again when it is no longer a
    running primary: idempotent, a crashed primary is restarted and crash recovery keeps every
    committed write, the epoch is re-stamped) and the target's processes (`scale` again:
    idempotent, dead processes are started). Without it the later steps would fail at every
    resume, for ever, holding the plan lock that `up` needs to repair anything."""
    plan = record.plan
    if not record.remaining():
        return
    done = [(i, plan.steps[i]) for i in record.done]
    for _, step in sorted(done, key=lambda item: REASSERTED.index(item[1].name)
                          if item[1].name in REASSERTED else len(REASSERTED)):
        if step.name not in REASSERTED or step.args.get("region") != plan.target:
            continue
        if step.name == "promote":
            st = ports.database.status(plan.target)
            if st.up and not st.in_recovery:
                continue
            why = "down" if not st.up else "in recovery"
        else:
            why = "processes may have died since"
        _reassert_step(ports, ctx, step, why, attempt)


def _reassert_step(ports: Ports, ctx: RunContext, step: Step, why: str,
                   attempt: Attempt) -> None:
    plan, j = ctx.plan, ports.journal
    j.record(Event.REASSERT, plan=plan.id, epoch=ctx.epoch, step=step.name,
             region=plan.target, outcome=Outcome.STARTED, detail=why)
    try:
        detail = attempt(step, ctx, step.deadline_s)
    except RegionGuardError as exc:  # the next steps fail; the plan is resumed again
        j.record(Event.REASSERT, plan=plan.id, epoch=ctx.epoch, step=step.name,
                 region=plan.target, outcome=Outcome.FAILED, detail=str(exc))
        return
    j.record(Event.REASSERT, plan=plan.id, epoch=ctx.epoch, step=step.name,
             region=plan.target, outcome=Outcome.DONE, detail=detail)


def roll_back(ports: Ports, ctx: RunContext, record: PlanRecord) -> None:
    """A planned swap that failed before the target was promoted gives writes back to the
    source (cleanly stopped, nothing lost) at the claimed epoch, instead of leaving the
    application without a primary. After `promote`, there is no going back: the failed step
    is retried by a resume, and the journal says so."""
    names = record.done_names()
    plan, j = ctx.plan, ports.journal
    if ("stop_writes" not in names and "cut" not in names) or "promote" in names:
        return
    target = ports.database.status(plan.target)
    if not (target.up and target.in_recovery):
        # a target that died mid-promote may have been promoted before it died: a second
        # primary would be worse than no writes; the next automatic look decides from here
        j.record(Event.ROLLBACK, plan=plan.id, outcome=Outcome.REFUSED, region=plan.source,
                 detail=f"{plan.target} is not a running standby (up={target.up}), it "
                        f"may have been promoted; {plan.source} stays stopped")
        return
    j.record(Event.ROLLBACK, plan=plan.id, outcome=Outcome.STARTED, region=plan.source)
    try:
        ports.database.promote(plan.source, ctx.epoch, 30.0, planned=True)
        ports.state.set_roles({plan.source: Role.PRIMARY, plan.target: Role.STANDBY},
                              plan_id=plan.id)
        weights = {r: int(r == plan.source) for r in ports.topology.regions}
        ports.traffic.route(RouteTable(weights, plan.source, ctx.epoch))
        j.record(Event.ROLLBACK, plan=plan.id, outcome=Outcome.DONE, region=plan.source)
    except RegionGuardError as exc:
        j.record(Event.ROLLBACK, plan=plan.id, outcome=Outcome.FAILED, detail=str(exc))


def complete_unfinished(ports: Ports, region: str, attempt: Attempt,
                        sleep: Callable[[float], None]) -> list[str]:
    """Do now what the last plan's best-effort steps could not do in `region` (it was
    unreachable then, and is back): each step runs once more, idempotently, within its
    deadline; what succeeds is journaled and dropped from the record, the rest stays."""
    record = ports.state.read_plan()
    if (record is None or record.status is not PlanStatus.DONE
            or not any(u.args.get("region") == region for u in record.unfinished)):
        return []
    with ports.state.plan_lock() as held:  # no plan may start meanwhile
        if not held:
            return []
        try:
            return _complete_unfinished(ports, region, attempt, sleep)
        except PlanConflict:  # a new plan was claimed: its record is not ours to edit
            return []


def _complete_unfinished(ports: Ports, region: str, attempt: Attempt,
                         sleep: Callable[[float], None]) -> list[str]:
    record = ports.state.read_plan()  # again, under the lock
    if record is None or record.status is not PlanStatus.DONE:
        return []
    plan = record.plan
    ctx = RunContext(plan, record.epoch, record.scratch, sleep)
    pending = list(record.unfinished)
    completed = []
    for item in [u for u in pending if u.args.get("region") == region]:
        step = next((s for s in plan.steps if s.name == item.step), None)
        if step is None:
            continue
        try:
            detail = attempt(step, ctx, None)
        except RegionGuardError as exc:
            ports.journal.record(Event.UNFINISHED_RETRY, plan=plan.id, step=step.name,
                                 region=region, outcome=Outcome.FAILED, detail=str(exc))
            continue
        ports.journal.record(Event.UNFINISHED_RETRY, plan=plan.id, step=step.name,
                             region=region, outcome=Outcome.DONE, detail=detail)
        pending.remove(item)
        completed.append(step.name)
    if completed:
        ports.state.save_plan(replace(record, unfinished=tuple(pending)))
    return completed
