"""The engine's safety rules with fake ports: a plan past `promote` is driven to completion, a
second primary is never made while the old one answers unfenced, and fencing reaches the
database even when the front door cannot be reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from regionguard.orchestrator import plans
from regionguard.orchestrator.controller import Controller
from regionguard.orchestrator.executor import Executor, PlanFailed, PlanInterrupted
from regionguard.orchestrator.ports import FenceResult

from .fakes import FakeDatabase, World, make_ports


def failover(ports, world: World, **short: float) -> plans.Plan:  # type: ignore[no-untyped-def]
    obs = plans.Observation(ports.state.load(),
                            {r: ports.database.status(r) for r in world.dbs})
    plan = plans.failover(ports.topology, obs, force=True)
    return plans.Plan(plan.id, plan.kind, plan.source, plan.target, plan.base_epoch,
                      tuple(plans.Step(s.name, short.get(s.name, s.deadline_s), s.args,
                                       s.in_rto, s.best_effort) for s in plan.steps))


def test_a_plan_that_fails_after_promote_is_resumed_not_abandoned(tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False
    world.fail["route"] = 10**6  # the front door refuses every route for a while
    with pytest.raises(PlanInterrupted, match="route"):
        Executor(ports).run(failover(ports, world, route=0.05))
    live = ports.state.load()
    assert live.plan is not None and live.plan["status"] == "running"  # not "failed"
    assert world.writable() == ["west"] and world.route is None  # promoted, not routed yet
    world.fail["route"] = 0  # the front door is back: the next tick drives the plan on
    Controller(ports).tick()
    assert world.route is not None and world.route.writer == "west"
    assert ports.state.load().plan is None
    outcomes = [e.get("outcome") for e in ports.journal.entries() if e["event"] == "plan"]
    assert outcomes == ["started", "interrupted", "resumed", "done"]


class UnfenceableDatabase(FakeDatabase):
    def fence(self, region: str) -> FenceResult:
        self.w._call("fence")  # it cannot be stopped: it keeps answering as a primary
        return FenceResult(region, False, (), ("pg_ctl stop failed; processes survived",))


def test_promote_is_refused_while_the_old_primary_answers_unfenced(tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    ports.database = UnfenceableDatabase(world)
    with pytest.raises(PlanFailed, match="still answers as a primary and could not be fenced"):
        Executor(ports).run(failover(ports, world, promote=0.05))
    assert world.writable() == ["east"]  # never two writable primaries
    assert "promote" not in world.calls
    unfenced = [e for e in ports.journal.entries() if e["event"] == "unfenced"]
    assert unfenced and "survived" in unfenced[0]["detail"][0]


def test_fencing_reaches_the_database_when_the_front_door_is_unreachable(
        tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    world.fail["cut"] = 10**6  # HAProxy's admin socket does not answer
    Executor(ports, sleep=lambda _: None).run(failover(ports, world))
    assert world.dbs["east"]["up"] is False  # the old primary was fenced anyway
    parts = [e for e in ports.journal.entries() if e["event"] == "fence_part_failed"]
    assert parts and parts[0]["part"] == "cut"
    assert world.writable() == ["west"]
    epochs = {e.get("epoch") for e in ports.journal.entries() if e["event"] == "plan"}
    assert epochs == {2}  # one plan, one epoch: retries of a step never burn epochs
