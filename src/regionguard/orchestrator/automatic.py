"""The one automatic-failover path: what every loop does once it has judged the primary DOWN.

The guard (orchestrator/guard.py) in the failover target's site or AWS Region hands its
verdict (a quorum of vantage points outside the primary) here, in a self-managed site's agent
and in the AWS guard Lambda alike, so the policy around an automatic plan is written once:

- **anti-flap** (`failover.min_interval_s`, as ARC's minimum delay between executions): no
  automatic plan within that long of the end of the last plan, when that plan was automatic;
  journaled `held_back` and alerted once per outage. A person's plan since is a new baseline;
- **a person in the loop** (`failover.approval = "manual"`): the plan waits for an answer
  (`ApprovalGate`);
- **the plan itself**, through `engine.drive` (lock, claim, run, or resume);
- **what its errors mean**: a plan that failed is on the record already; a backend that did
  not answer before the claim means "look again next round"; another runner means "busy"; a
  refusal (the standby is not eligible) is alerted once per outage, and nothing runs: the
  primary's own site keeps its database (its agent restarts it where it is).

State kept here is only what must not be told twice; the rest is in the store and journal.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from regionguard.errors import NotFenced, PlanConflict, ProviderError, RegionGuardError
from regionguard.orchestrator import engine
from regionguard.orchestrator.approval import ApprovalGate, Approvals
from regionguard.orchestrator.events import Event
from regionguard.orchestrator.executor import PlanFailed
from regionguard.orchestrator.plans import Observation
from regionguard.orchestrator.ports import Ports

log = logging.getLogger("regionguard.automatic")

HELD_BACK = "held_back"  # the alert key of the anti-flap hold (once per outage)


class AutoResult(StrEnum):
    DONE = "done"  # the plan ran to its end (or an interrupted one was resumed)
    FAILED = "failed"  # the plan ran and failed; the journal and the report say why
    BUSY = "busy"  # another runner holds the plan
    HELD_BACK = "held_back"  # anti-flap: too soon after the last automatic plan
    WAITING = "waiting"  # for a person's answer (or rejected, or expired: nothing runs)
    NOT_STARTED = "not_started"  # a backend did not answer before the claim: look again
    REFUSED = "refused"  # the target is not eligible, or the old primary not fenced (alerted)
    BACKING_OFF = "backing_off"  # the last attempt claimed an epoch and failed: not yet again


# after a plan that claimed an epoch and failed, the next attempt waits 2, 4, 8 ... 60 s:
# every attempt claims an epoch, and a verdict that stays DOWN must not churn through them
RETRY_BACKOFF_S = (2.0, 60.0)


@dataclass(frozen=True, slots=True)
class AutoOutcome:
    result: AutoResult
    outcome: engine.Outcome | None = None
    detail: str = ""


class AutomaticFailover:
    def __init__(self, ports: Ports, approvals: Approvals | None = None) -> None:
        self.ports = ports
        self._gate = ApprovalGate(ports, approvals) if approvals is not None else None
        self._told: set[str] = set()  # alerts given this outage, by key
        self._failures = 0  # plans that claimed an epoch and failed, this outage
        self._not_before = 0.0  # world time before which no new attempt is made

    @property
    def awaiting(self) -> Mapping[str, Any] | None:
        """The request waiting for a person, for status pages (None without one)."""
        return self._gate.awaiting if self._gate is not None else None

    def attempt(self, target: str, reason: str, verdict: Mapping[str, Any],
                observation: Observation,
                readiness: list[Mapping[str, Any]] | None = None) -> AutoOutcome:
        """Fail over to `target` for `reason`, unless held back or waiting for a person.
        `observation` is what the loop saw (the primary is down: plan from the standby's
        status alone, never wait on the dead); `verdict` goes into the journal."""
        held = self._held_back(target, reason)
        if held:
            return AutoOutcome(AutoResult.HELD_BACK, detail=held)
        wait = self._not_before - self.ports.clock.time()
        if wait > 0:
            return AutoOutcome(AutoResult.BACKING_OFF,
                               detail=f"the last attempt failed; next one in {wait:.1f} s")
        request = engine.Request.automatic_failover(target, reason, verdict)
        try:
            if self._manual():
                assert self._gate is not None
                approved = self._gate.gate(request, observation, readiness)
                if approved is None:
                    return AutoOutcome(AutoResult.WAITING,
                                       detail="waiting for approval (or rejected)")
                request = approved
            outcome = engine.drive(self.ports, request, observation=observation)
        except PlanFailed as exc:  # it ran: the journal, the report and a notice say so
            self._back_off()
            if isinstance(exc.__cause__, NotFenced):  # unreachable is not dead: a refusal
                self.alert(f"unfenced:{target}", str(exc.__cause__), target)
                return AutoOutcome(AutoResult.REFUSED, detail=str(exc))
            log.error("failover failed: %s", exc)
            return AutoOutcome(AutoResult.FAILED, detail=str(exc))
        except PlanConflict as exc:  # another runner claimed first: let it run
            return AutoOutcome(AutoResult.BUSY, detail=str(exc))
        except ProviderError as exc:  # no answer (the store, the standby's database)
            log.warning("failover not started: %s", exc)
            return AutoOutcome(AutoResult.NOT_STARTED, detail=str(exc))
        except RegionGuardError as exc:  # refused: the standby is not eligible
            self.alert(f"ineligible:{target}", str(exc), target)
            return AutoOutcome(AutoResult.REFUSED, detail=str(exc))
        if outcome.result is engine.Result.BUSY:
            return AutoOutcome(AutoResult.BUSY, outcome, outcome.detail)
        return AutoOutcome(AutoResult.DONE, outcome, outcome.detail)

    def recovered(self, primary: str, primary_up: bool) -> None:
        """No DOWN verdict now. Once the primary is judged UP again the outage is over: the
        next one is told afresh, without a back-off, and a request waiting for a person is
        withdrawn (a verdict merely not DOWN yet, e.g. being judged afresh after a restart in
        place, changes none of that)."""
        if primary_up:
            self._told.clear()
            self._failures, self._not_before = 0, 0.0
        if self._gate is not None and self._manual():
            self._gate.recovered(primary, primary_up)

    def alert(self, key: str, reason: str, region: str | None = None) -> None:
        """Journal and notify once per outage for `key`."""
        if key in self._told:
            return
        self._told.add(key)
        self.ports.journal.record(Event.ALERT, region=region or key, detail=reason)
        self.ports.notifier.notify("alert", {"region": region, "reason": reason})

    def _back_off(self) -> None:
        first, most = RETRY_BACKOFF_S
        self._failures += 1
        self._not_before = self.ports.clock.time() + min(most,
                                                         first * 2 ** (self._failures - 1))

    def _manual(self) -> bool:
        if self.ports.topology.failover.approval != "manual":
            return False
        if self._gate is None:
            raise ProviderError("failover.approval = manual needs an approval store")
        return True

    def _held_back(self, target: str, reason: str) -> str:
        """Why the verdict is held back (anti-flap), or "" when it is not. The last plan's
        record says whether it was automatic and when it ended: one read, in any world."""
        interval = self.ports.topology.failover.min_interval_s
        if not interval:
            return ""
        last = self.ports.state.read_plan()
        if last is None or not last.plan.automatic or last.finished_at is None:
            return ""
        wait = last.finished_at + interval - self.ports.clock.time()
        if wait <= 0:
            return ""
        detail = (f"{reason}: held back {wait:.0f} s more, failover.min_interval_s = "
                  f"{interval:g} s after the last automatic plan ({last.id})")
        if HELD_BACK not in self._told:
            self._told.add(HELD_BACK)
            self.ports.journal.record(Event.HELD_BACK, region=target, detail=detail)
            self.ports.notifier.notify(HELD_BACK, {"region": target, "detail": detail})
        return detail
