"""A plan with no steps, for tests of the state stores (they store plans, not run them)."""

from __future__ import annotations

from regionguard.orchestrator.plans import Plan, PlanKind


def bare_plan(plan_id: str, kind: str = "failover", base_epoch: int = 1) -> Plan:
    return Plan(plan_id, PlanKind(kind), "east", "west", base_epoch, ())
