"""A person in the loop of an automatic failover (`failover.approval = "manual"`).

The failover target's guard, on a DOWN verdict, builds the plan it would run and opens a
request instead of running it: the plan, the observation and readiness, and when the
request expires. A person answers with `regionguard approve PLAN_ID` or `regionguard
reject PLAN_ID`; with no answer by `approval_timeout_s`, `approval_default` decides. Every
request and answer is journaled with who gave it, so the plan's execution report says who
approved it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from regionguard.errors import UsageError
from regionguard.orchestrator.events import Event

if TYPE_CHECKING:
    from regionguard.orchestrator import engine
    from regionguard.orchestrator.plans import Observation
    from regionguard.orchestrator.ports import Ports

Outcome = Literal["approved", "rejected"]


class Approvals(Protocol):
    def pending(self) -> dict[str, Any] | None:
        """The open request (with its `decision`, once answered), or None."""
        ...

    def open(self, request: Mapping[str, Any]) -> bool:
        """Open a request unless one is open; False when one was."""
        ...

    def decide(self, plan_id: str, outcome: Outcome, by: str, at: float) -> dict[str, Any]:
        """Record a person's answer to the open request for `plan_id`; raises UsageError when
        there is no such request, it was answered, or it expired."""
        ...

    def resolve(self, now: float, default: Literal["approve", "reject"]
                ) -> dict[str, Any] | None:
        """The request, with the default's decision recorded if it expired unanswered: read,
        decided and written under one lock, so a person's late answer and the default can
        never both win."""
        ...

    def mark_handled(self) -> None:
        """The guard acted on the decision (a rejection stays on file until the outage
        ends, so a restarted agent does not ask again)."""
        ...

    def close(self) -> None: ...


def answered(request: dict[str, Any] | None, plan_id: str, outcome: Outcome, by: str,
             at: float, where: str) -> dict[str, Any]:
    """`request` with a person's answer recorded, for a store to write back; UsageError (one
    line) when it is not the request waiting for `plan_id`, was answered, or expired.
    `where` is the command that shows what waits, for the refusal."""
    if request is None or request.get("plan_id") != plan_id:
        waiting = f" (waiting: {request['plan_id']})" if request else ""
        raise UsageError(f"no failover waits for approval as plan {plan_id!r}{waiting}; "
                         f"`{where}` shows what waits")
    if request.get("decision"):
        raise UsageError(f"plan {plan_id} was already {request['decision']['outcome']} "
                         f"by {request['decision']['by']}")
    if at >= float(request["expires_at"]):
        raise UsageError(f"plan {plan_id} waited {request['timeout_s']:g} s for an answer "
                         f"and expired; approval_default ({request['default']}) decides")
    return {**request, "decision": {"outcome": outcome, "by": by, "at": at}}


def defaulted(request: dict[str, Any], now: float, default: Literal["approve", "reject"]
              ) -> dict[str, Any] | None:
    """`request` with the default's decision recorded when it expired unanswered, for the
    store to write back (under its lock or condition); None when nothing is to change."""
    if request.get("decision"):
        return None
    decided = resolution(request, now, default)
    if decided is None:
        return None
    return {**request, "decision": {"outcome": decided[0], "by": decided[1], "at": now,
                                    "expired": True}}


class VersionedApprovals(ABC):
    """The Approvals port over a store that keeps the one request with a version and replaces
    it only at the version it was read at (the AWS arbiter's item, etcd's key): the rules live
    here once, each store gives the three primitives. A person's late answer and the default
    can never both win, and two runners open one request."""

    where = "regionguard status"  # the command that shows what waits, for the refusals

    @abstractmethod
    def read(self) -> tuple[dict[str, Any], int] | None:
        """The request and its version, or None."""

    @abstractmethod
    def create(self, request: Mapping[str, Any]) -> bool:
        """Store `request` unless one is stored; False when one was."""

    @abstractmethod
    def replace(self, request: Mapping[str, Any], version: int) -> bool:
        """Store `request` if the stored one is still at `version`; False otherwise."""

    @abstractmethod
    def close(self) -> None: ...

    def pending(self) -> dict[str, Any] | None:
        found = self.read()
        return found[0] if found else None

    def open(self, request: Mapping[str, Any]) -> bool:
        """A create whose answer was lost (a timeout, then the client's retry on another
        replica or member finds the request there) is still this runner's: it is recognised by
        its plan id, so the request is journaled and notified once, not never."""
        if self.create(request):
            return True
        stored = self.pending()
        return stored is not None and stored.get("plan_id") == request.get("plan_id")

    def decide(self, plan_id: str, outcome: Outcome, by: str, at: float) -> dict[str, Any]:
        found = self.read()
        request = answered(found[0] if found else None, plan_id, outcome, by, at, self.where)
        assert found is not None  # answered() refuses a missing request
        if not self.replace(request, found[1]):
            stored = self.pending()  # a lost answer to an applied write: the answer stands
            if stored is not None and stored.get("decision") == request["decision"]:
                return request
            raise UsageError(f"plan {plan_id}'s request changed meanwhile (its runner acted "
                             f"on it); look again with `{self.where}`")
        return request

    def resolve(self, now: float, default: Literal["approve", "reject"]
                ) -> dict[str, Any] | None:
        found = self.read()
        if found is None:
            return None
        request, version = found
        decided = defaulted(request, now, default)
        if decided is None:
            return request
        if not self.replace(decided, version):  # a person answered first: theirs stands
            return self.pending()
        return decided

    def mark_handled(self) -> None:
        found = self.read()
        if found is None or not found[0].get("decision"):
            return
        found[0]["decision"]["handled"] = True
        self.replace(*found)  # changed meanwhile: the next run looks again


def resolution(request: Mapping[str, Any], now: float, default: Literal["approve", "reject"]
               ) -> tuple[Outcome, str] | None:
    """The request's outcome and who decided it, or None while it waits."""
    decision = request.get("decision")
    if decision:
        return decision["outcome"], str(decision.get("by", "?"))
    if now >= float(request["expires_at"]):
        return ("approved" if default == "approve" else "rejected",
                f"approval_default after {request.get('timeout_s')} s without an answer")
    return None


@dataclass
class ApprovalGate:
    """The approval step, for whoever would run an automatic failover: the guard in the
    failover target's site or AWS Region. The request and its answer live in the store (etcd,
    or the arbiter), so a restarted agent or the next Lambda run
    neither forgets a rejection nor drops an approval."""

    ports: Ports
    store: Approvals
    awaiting: dict[str, Any] | None = None  # the open request, for status pages

    def gate(self, request: engine.Request, observation: Observation,
             readiness: list[Mapping[str, Any]] | None = None) -> engine.Request | None:
        """The request to run once a person approved it (or the default did); None while it
        waits, and after a rejection or expiry for the rest of this outage. Raises the
        planners' refusal when the failover could not run (the caller alerts it)."""
        p, box = self.ports, self.store
        live = observation.live
        pending = box.pending()
        if pending is not None and (pending.get("source") != live.primary
                                    or pending.get("target") != request.target
                                    or pending.get("epoch") != live.epoch):
            self._withdraw(pending, f"the live state changed since it was asked (primary "
                                    f"{live.primary}, epoch {live.epoch})")
            pending = None
        if pending is None:
            self._open(request, observation, readiness or [])
            return None
        policy = p.topology.failover
        pending = box.resolve(p.clock.time(), policy.approval_default) or pending
        decision = pending.get("decision")
        if not decision:
            self.awaiting = pending
            return None
        if decision.get("handled"):
            return None  # rejected or expired earlier: nothing runs for this outage
        outcome, by = decision["outcome"], str(decision.get("by", "?"))
        expired = bool(decision.get("expired"))
        p.journal.record(Event.APPROVAL, plan=pending["plan_id"], by=by,
                         outcome="expired" if expired and outcome == "rejected" else outcome,
                         name="failover", detail="no answer in time" if expired else None)
        self.awaiting = None
        if outcome == "rejected":
            box.mark_handled()  # kept until the primary is back, so no second request
            p.notifier.notify("approval_rejected", {"plan": pending["plan_id"], "by": by})
            return None
        box.close()
        return replace(request, plan_id=pending["plan_id"])

    def _open(self, request: engine.Request, observation: Observation,
              readiness: list[Mapping[str, Any]]) -> None:
        from regionguard.orchestrator import engine

        p = self.ports
        plan = engine.drive(p, request, observation=observation, dry_run=True).plan
        if plan is None:
            return
        now = p.clock.time()
        policy = p.topology.failover
        pending = {
            "plan_id": plan.id, "kind": plan.kind.value, "source": plan.source,
            "target": plan.target, "epoch": observation.live.epoch, "reason": request.reason,
            "verdict": dict(request.verdict or {}), "steps": [s.name for s in plan.steps],
            "warnings": list(plan.warnings), "created_at": now,
            "expires_at": now + policy.approval_timeout_s,
            "timeout_s": policy.approval_timeout_s, "default": policy.approval_default,
            "readiness": list(readiness), "observation": observation.to_record(),
        }
        if not self.store.open(pending):
            return  # another runner opened one first: answered there
        self.awaiting = pending
        p.journal.record(Event.APPROVAL, plan=plan.id, outcome="requested", name="failover",
                         target=plan.target, detail=request.reason,
                         expires_in_s=policy.approval_timeout_s,
                         warnings=list(plan.warnings) or None)
        p.notifier.notify("approval_requested", {
            "plan": plan.id, "target": plan.target, "reason": request.reason,
            "warnings": list(plan.warnings),
            "approve": f"regionguard approve {plan.id}", "reject": f"regionguard reject {plan.id}",
            "expires_in_s": policy.approval_timeout_s})

    def recovered(self, primary: str, primary_up: bool) -> None:
        """No DOWN verdict now. Only a primary judged UP again (or a primary other than the
        request's) withdraws a request: a verdict that is merely not DOWN yet (a restarted
        agent starts from UNKNOWN) leaves it, and its answer, in place."""
        pending = self.store.pending()
        if pending is None:
            return
        if pending.get("source") == primary and not primary_up:
            return
        self._withdraw(pending, f"{primary} is UP" if pending.get("source") == primary
                       else f"the primary is now {primary}")

    def _withdraw(self, pending: Mapping[str, Any], why: str) -> None:
        self.store.close()
        self.awaiting = None
        if not (pending.get("decision") or {}).get("handled"):
            self.ports.journal.record(Event.APPROVAL, plan=pending.get("plan_id"),
                                      outcome="withdrawn", name="failover", detail=why)
