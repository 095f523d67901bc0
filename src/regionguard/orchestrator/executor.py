"""Runs a plan: claims the epoch, runs each step idempotently with retries inside its deadline,
journals every transition, and saves progress after each step so a crash resumes, never repeats.

A step is recorded `started` then `done` or `failed` with the plan id and epoch. On resume the
executor skips steps already `done` (each step is idempotent anyway, so a step that was running
when its runner died is simply run again). Failed plans stay in the journal: the history of
failovers is an audit trail.

Once `promote` is done there is no going back: a later step that fails leaves the plan running
(`PlanInterrupted`), so the next drive resumes it rather than leaving the new primary unrouted.
A best-effort step (one that touches the region being left, which may be dead) never fails the
plan: what it could not do is journaled and kept in the plan record as `unfinished`.
Deadlines and waits use the world's clock (`Ports.clock`), so an emulated world can scale them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from tenacity import (
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from regionguard.config import Role
from regionguard.errors import PlanConflict, ProviderError, RegionGuardError, StepAbandoned
from regionguard.orchestrator import recovery
from regionguard.orchestrator.events import Event, Outcome
from regionguard.orchestrator.journal import rto_breakdown
from regionguard.orchestrator.plans import Plan, Step
from regionguard.orchestrator.ports import Ports
from regionguard.orchestrator.records import PlanRecord, PlanStatus, UnfinishedStep
from regionguard.orchestrator.steps import BESIDE_JOIN_S, STEP_ACTIONS, RunContext

# a plan past one of these steps has a new primary: it is resumed, never rolled back
POINT_OF_NO_RETURN = ("promote", "restore")


class PlanFailed(ProviderError):
    """A step did not succeed within its deadline; the plan is recorded as failed."""


class PlanInterrupted(PlanFailed):
    """A step after `promote` did not succeed within its deadline. The plan stays running in
    the StateStore, so the next drive resumes it: the new primary is never left unrouted."""


class Executor:
    def __init__(self, ports: Ports, sleep: Callable[[float], None] | None = None) -> None:
        self.ports = ports
        self.sleep = sleep or ports.clock.sleep

    def run(self, plan: Plan, resume: PlanRecord | None = None,
            on_step: Callable[[str, str, float], None] | None = None,
            verdict: Mapping[str, Any] | None = None,
            observation: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run (or resume) `plan`; returns its RTO breakdown. Raises PlanFailed on a failed step.

        `resume` is the plan's saved record when a runner takes over an interrupted plan."""
        record = self._begin(plan, resume, verdict, observation)
        ctx = RunContext(plan, record.epoch, record.scratch, self.sleep)
        if resume is not None:
            recovery.reassert(self.ports, ctx, record, self._attempt)
        record = self._next_started(record, 0)
        self.ports.state.save_plan(record)
        try:
            for index, step in enumerate(plan.steps):
                if record.is_done(index):
                    continue
                record = self._run_step(record, ctx, index, step, on_step)
        finally:  # best-effort work a step left running (the AWS fence's database part)
            for beside in ctx.beside:
                beside.join(timeout=BESIDE_JOIN_S)
            self.ports.journal.flush()
        return self._finish(record)

    def _begin(self, plan: Plan, resume: PlanRecord | None,
               verdict: Mapping[str, Any] | None,
               observation: Mapping[str, Any] | None) -> PlanRecord:
        """Claim the epoch (or take over the saved record) and journal why the plan runs."""
        j = self.ports.journal
        if resume is not None:
            j.record(Event.PLAN, plan=plan.id, outcome=Outcome.RESUMED, epoch=resume.epoch,
                     done=sorted(resume.done_names()), remaining=resume.remaining())
            if observation:
                j.record(Event.OBSERVATION, plan=plan.id, **observation)
            return resume
        epoch = self._claim(plan)
        j.record(Event.PLAN, plan=plan.id, outcome=Outcome.STARTED, name=plan.kind.value,
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
        return PlanRecord(plan, epoch)

    def _run_step(self, record: PlanRecord, ctx: RunContext, index: int, step: Step,
                  on_step: Callable[[str, str, float], None] | None) -> PlanRecord:
        """One step: journaled, retried inside what is left of its deadline, saved when done.
        A failure ends the plan (failed, or interrupted past its point of no return)."""
        j, plan = self.ports.journal, record.plan
        if on_step:
            on_step(step.name, "started", 0.0)
        started = self.ports.clock.monotonic()
        record, budget = self._budget(record, index, step)  # saves the step's first start
        j.record(Event.STEP, plan=plan.id, epoch=record.epoch, step=step.name,
                 outcome=Outcome.STARTED, in_rto=step.in_rto)
        try:
            detail = self._attempt(step, ctx, budget)
        except PlanConflict:
            j.record(Event.PLAN, plan=plan.id, outcome=Outcome.SUPERSEDED, step=step.name)
            self._report(plan.id)
            raise  # another runner or plan owns the record now: write nothing more
        except RegionGuardError as exc:
            if step.best_effort:
                return self._unfinished(record, index, step, exc)
            self._fail(record, ctx, index, step, exc)
        elapsed = self.ports.clock.monotonic() - started
        j.record(Event.STEP, plan=plan.id, epoch=record.epoch, step=step.name,
                 outcome=Outcome.DONE, in_rto=step.in_rto, detail=detail,
                 duration_s=round(elapsed, 4))
        if on_step:
            on_step(step.name, "done", elapsed)
        j.flush()  # the journal is stored off the steps' path; at their ends, all of it
        record = self._next_started(record.with_done(index), index + 1)
        self.ports.state.save_plan(record)  # once per step: done, and the next one's start
        return record

    def _next_started(self, record: PlanRecord, index: int) -> PlanRecord:
        """Stamp the start of the first step from `index` not done yet (its deadline counts
        from it, across resumes) into the record about to be saved, so that progress is saved
        once per step rather than again when the next step starts."""
        steps = record.plan.steps
        while index < len(steps) and record.is_done(index):
            index += 1
        if index >= len(steps) or index in record.step_started_at:
            return record
        return record.with_started(index, self.ports.clock.time())

    def _unfinished(self, record: PlanRecord, index: int, step: Step,
                    exc: RegionGuardError) -> PlanRecord:
        """A best-effort step that could not be done never fails the plan: it is kept in the
        record, and done when its region is back (`complete_unfinished`)."""
        plan = record.plan
        self.ports.journal.record(Event.STEP, plan=plan.id, epoch=record.epoch,
                                  step=step.name, outcome=Outcome.UNFINISHED,
                                  in_rto=step.in_rto, detail=str(exc))
        self.ports.notifier.notify("step_unfinished", {"plan": plan.id, "step": step.name,
                                                       "error": str(exc)})
        record = record.with_unfinished(UnfinishedStep(step.name, dict(step.args), str(exc)))
        record = record.with_done(index)
        self.ports.state.save_plan(record)
        return record

    def _fail(self, record: PlanRecord, ctx: RunContext, index: int, step: Step,
              exc: RegionGuardError) -> NoReturn:
        """Past the point of no return the plan stays running (interrupted) for the next
        drive to resume; before it, a planned swap is rolled back and the plan fails."""
        j, plan = self.ports.journal, record.plan
        j.record(Event.STEP, plan=plan.id, epoch=record.epoch, step=step.name,
                 outcome=Outcome.FAILED, in_rto=step.in_rto, detail=str(exc))
        # past the point of no return: a promote that may have done its work, or one whose
        # target was already handed the write lease (its traffic moved; it must be promoted)
        promoted = bool(record.done_names() & set(POINT_OF_NO_RETURN)) or (
            step.name == "promote" and (ctx.scratch.handed_over
                                        or self._became_primary(plan.target)))
        if promoted:  # no going back: leave it running for the next drive to resume
            self.ports.state.save_plan(record)
            j.record(Event.PLAN, plan=plan.id, outcome=Outcome.INTERRUPTED, step=step.name)
            self._report(plan.id)
            self.ports.notifier.notify("plan_interrupted", {
                "plan": plan.id, "step": step.name, "error": str(exc)})
            raise PlanInterrupted(f"{plan.kind.value} interrupted at step {step.name} "
                                  f"(resumed by the next run): {exc}") from exc
        recovery.roll_back(self.ports, ctx, record)
        self.ports.state.save_plan(record.finished(PlanStatus.FAILED, self.ports.clock.time()))
        j.record(Event.PLAN, plan=plan.id, outcome=Outcome.FAILED, step=step.name)
        self._report(plan.id)
        self.ports.notifier.notify("plan_failed", {"plan": plan.id, "step": step.name,
                                                   "error": str(exc)})
        raise PlanFailed(f"{plan.kind.value} failed at step {step.name}: {exc}") from exc

    def _finish(self, record: PlanRecord) -> dict[str, Any]:
        plan, j = record.plan, self.ports.journal
        roles = {plan.target: Role.PRIMARY, plan.source: Role.STANDBY}
        self.ports.state.finish_plan(plan.id, roles, self.ports.clock.time())
        summary = rto_breakdown(j.entries(), plan.id) or {}
        j.record(Event.PLAN, plan=plan.id, outcome=Outcome.DONE, epoch=record.epoch,
                 rto_s=summary.get("rto_s"),
                 unfinished=[u.step for u in record.unfinished] or None)
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
            self.ports.journal.record(Event.REPORT, plan=plan_id, outcome=Outcome.FAILED,
                                      detail=f"{type(exc).__name__}: {exc}")

    def _claim(self, plan: Plan) -> int:
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
                return self.ports.state.claim_epoch(plan.base_epoch, plan)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _became_primary(self, region: str) -> bool:
        """A `promote` that failed (its runner or its database died mid-call) may have done
        its work: a running primary there means the plan is past the point of no return."""
        st = self.ports.database.status(region)
        return bool(st.up and st.in_recovery is False)

    def _budget(self, record: PlanRecord, index: int, step: Step) -> tuple[PlanRecord, float]:
        """What is left of the step's deadline, counted from its first start (saved with the
        plan): a resumed step does not get a fresh deadline each time its runner is replaced.
        Past the deadline it still gets one short try, and the overrun is said out loud."""
        if index not in record.step_started_at:
            record = record.with_started(index, self.ports.clock.time())
            self.ports.state.save_plan(record)  # a runner killed mid-step leaves it behind
        left = step.deadline_s - (self.ports.clock.time() - record.step_started_at[index])
        if left > 0:
            return record, left
        self.ports.journal.record(Event.DEADLINE_EXCEEDED, plan=record.id, step=step.name,
                                  deadline_s=step.deadline_s)
        self.ports.notifier.notify("deadline_exceeded", {"plan": record.id, "step": step.name})
        return record, min(60.0, step.deadline_s)

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
        """Do now what the last plan's best-effort steps could not do in `region`."""
        return recovery.complete_unfinished(self.ports, region, self._attempt, self.sleep)
