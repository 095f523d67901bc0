"""A person in the loop of an automatic failover (`failover.approval = "manual"`).

The controller, on a DOWN verdict, builds the plan it would run and opens a request instead of
running it: the plan, the observation and readiness, and when the request expires. A person
answers with `regionguard approve PLAN_ID` or `regionguard reject PLAN_ID`; with no answer by
`approval_timeout_s`, `approval_default` decides. Every request and answer is journaled with
who gave it, so the plan's execution report says who approved it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

Outcome = Literal["approved", "rejected"]


class Approvals(Protocol):
    def pending(self) -> dict[str, Any] | None:
        """The open request (with its `decision`, once answered), or None."""
        ...

    def open(self, request: Mapping[str, Any]) -> None: ...

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
        """The controller acted on the decision (a rejection stays on file until the outage
        ends, so a restarted controller does not ask again)."""
        ...

    def close(self) -> None: ...


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
