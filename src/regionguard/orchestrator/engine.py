"""The one way a plan is driven, whoever asks: observe -> plan -> lock -> run, or resume.

The CLI (a person), the guard in a site's agent or in the AWS guard Lambda (a verdict of
remote vantage points, or a look that re-drives an interrupted plan) and a drill's heal all call
`drive`. Policy therefore lives once: a plan found running is resumed by automatic callers and
refused to people (who are told who resumes it); a new plan is built from one observation by
the pure planners, with the world's deadlines; it runs only under the plan lock, and the epoch
compare-and-set inside the executor settles any race the lock cannot see.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from regionguard.errors import RegionGuardError, UnsafeOperation, UsageError
from regionguard.orchestrator import plans
from regionguard.orchestrator.executor import Executor
from regionguard.orchestrator.plans import Observation, Plan, PlanKind
from regionguard.orchestrator.ports import Ports, SnapshotCopy


@dataclass(frozen=True, slots=True)
class Request:
    """What the caller wants. `kind=None` only resumes a plan found running."""

    kind: PlanKind | None = None
    target: str | None = None
    force: bool = False
    reason: str = "manual"
    automatic: bool = False  # from a DOWN verdict: resume a running plan, never refuse it
    verdict: Mapping[str, Any] | None = None  # the verdict behind an automatic failover
    plan_id: str | None = None  # the id a person approved (the plan keeps it)

    @classmethod
    def resume_only(cls) -> Request:
        return cls(automatic=True, reason="resume")

    @classmethod
    def automatic_failover(cls, target: str, reason: str,
                           verdict: Mapping[str, Any] | None = None,
                           plan_id: str | None = None) -> Request:
        return cls(PlanKind.FAILOVER, target, reason=reason, automatic=True, verdict=verdict,
                   plan_id=plan_id)


class Result(StrEnum):
    DONE = "done"  # the requested plan ran to completion
    RESUMED = "resumed"  # an interrupted plan was found and driven to completion
    PLANNED = "planned"  # dry run: the plan was built and nothing changed
    BUSY = "busy"  # another process holds the plan lock (it is running or resuming a plan)
    NOTHING = "nothing"  # nothing was running and nothing was asked


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    plan: Plan | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"result": self.result.value, "plan": self.plan.id if self.plan else None,
                "kind": self.plan.kind.value if self.plan else None,
                "to": self.plan.target if self.plan else None,
                "summary": dict(self.summary), "detail": self.detail}


def observe(ports: Ports) -> Observation:
    """Live state and every region's database, the databases concurrently (each is bounded
    by its provider: a dead one costs one timeout, not one per region)."""
    live = ports.state.load()
    regions = list(ports.topology.regions)
    with ThreadPoolExecutor(max_workers=len(regions)) as pool:
        statuses = list(pool.map(ports.database.status, regions))
        # backup & restore: the copies in the Regions a restore could use, never asking the
        # primary's Region (it may be the one that failed)
        others = [r for r in regions if r != live.primary]
        copies = (dict(zip(others, pool.map(_copy_or_none(ports), others), strict=True))
                  if ports.restorer is not None else {})
    return Observation(live, {s.region: s for s in statuses},
                       ports.database.zero_loss_switchover, copies, ports.clock.time())


def _copy_or_none(ports: Ports) -> Callable[[str], SnapshotCopy | None]:
    restorer = ports.restorer
    assert restorer is not None

    def newest(region: str) -> SnapshotCopy | None:
        try:
            return restorer.newest_copy(region)
        except RegionGuardError:  # unreachable: no copy to restore from there
            return None
    return newest


def build_plan(ports: Ports, request: Request, obs: Observation) -> Plan:
    """The pure planners, with the world's deadlines; refusals raise (exit 2 or 3)."""
    topo, d = ports.topology, ports.deadlines
    match request.kind:
        case PlanKind.FAILOVER:
            return plans.failover(topo, obs, request.target, force=request.force,
                                  reason=request.reason,
                                  primary_confirmed_down=request.automatic, deadlines=d)
        case PlanKind.SWITCHOVER:
            if request.target is None:
                raise UsageError("a switchover needs a target region (--to, or \"to\")")
            return plans.switchover(topo, obs, request.target, reason=request.reason,
                                    deadlines=d)
        case PlanKind.FAILBACK:
            return plans.failback(topo, obs, reason=request.reason, deadlines=d)
    raise ValueError(f"no planner for {request.kind!r}")


def drive(
    ports: Ports,
    request: Request,
    *,
    observation: Observation | None = None,
    dry_run: bool = False,
    on_plan: Callable[[Plan], None] | None = None,
    confirm: Callable[[Plan], None] | None = None,
    on_step: Callable[[str, str, float], None] | None = None,
) -> Outcome:
    """Run what `request` asks, or resume the plan found running.

    `observation` lets a caller that has just observed (a guard, from its cycle) skip
    a second look; `on_plan` sees the plan before anything runs (the CLI prints it), `confirm`
    may raise to stop there. Raises `UnsafeOperation` (exit 3) when a person asks for a plan
    while another one runs or is interrupted, `PlanFailed` when a step fails."""
    live = observation.live if observation is not None else ports.state.load()
    if live.plan is not None:
        running = live.plan.plan
        # backup & restore on AWS deploys no guard: the person who started the restore is
        # the one to resume it, by asking again
        if not request.automatic and ports.restorer is None:
            raise UnsafeOperation(
                f"plan {running.kind.value} ({running.id}) is running or was interrupted; "
                "the failover target's agent (or AWS guard) resumes it at its next look")
        return _resume(ports, running)
    if request.kind is None:
        return Outcome(Result.NOTHING)
    obs = observation if observation is not None else observe(ports)
    plan = build_plan(ports, request, obs)
    if request.plan_id is not None:
        plan = replace(plan, id=request.plan_id)
    if request.automatic:
        plan = replace(plan, automatic=True)
    if on_plan is not None:
        on_plan(plan)
    if dry_run:
        return Outcome(Result.PLANNED, plan)
    if confirm is not None:
        confirm(plan)
    with ports.state.plan_lock() as held:
        if not held:
            if request.automatic:
                return Outcome(Result.BUSY, plan, detail="another process holds the plan lock")
            raise UnsafeOperation("another plan is running (plan lock held); wait for it")
        summary = Executor(ports).run(plan, on_step=on_step, verdict=request.verdict,
                                      observation=obs.to_record())
    return Outcome(Result.DONE, plan, summary)


def _resume(ports: Ports, plan: Plan) -> Outcome:
    with ports.state.plan_lock() as held:
        if not held:  # its runner is alive (or its lease has not run out yet)
            return Outcome(Result.BUSY, plan, detail=f"plan {plan.id} is being run elsewhere")
        live = ports.state.load()  # re-read under the lock: it may have finished
        progress = live.plan
        if progress is None or progress.id != plan.id:
            return Outcome(Result.NOTHING, plan, detail=f"plan {plan.id} finished meanwhile")
        # the live state it resumes from; the databases are not looked at again here (one
        # may be in the dead region: the steps find out, each within its deadline)
        seen = {"roles": {r: str(role) for r, role in live.roles.items()},
                "epoch": live.epoch, "sync_degraded_lsn": live.sync_degraded_lsn}
        summary = Executor(ports).run(plan, resume=progress, observation=seen)
    return Outcome(Result.RESUMED, plan, summary)
