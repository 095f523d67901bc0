"""Plans, executor and the guards' decisions against an in-memory world (fast, no processes)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from regionguard.config import Role
from regionguard.errors import PlanConflict, UnsafeOperation, UsageError
from regionguard.orchestrator import plans
from regionguard.orchestrator.executor import Executor, PlanFailed
from regionguard.orchestrator.guard import CycleKind
from regionguard.orchestrator.journal import rto_breakdown
from regionguard.orchestrator.records import PlanRecord

from .fakes import SimulatedCrash, Sites, World, make_ports, topology

pytestmark = pytest.mark.unit


def observation(ports, world: World) -> plans.Observation:  # type: ignore[no-untyped-def]
    live = ports.state.load()
    return plans.Observation(live, {r: ports.database.status(r) for r in world.dbs})


def test_failover_runs_every_step_in_order_and_ends_with_one_writable_primary(
    tmp_path: Path,
) -> None:
    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False  # the primary region died
    plan = plans.failover(ports.topology, observation(ports, world))
    summary = Executor(ports, sleep=lambda _: None).run(plan)
    assert [s.name for s in plan.steps] == ["scale", "fence", "promote", "await_ready",
                                            "route", "verify", "retire"]
    assert world.writable() == ["west"] and world.promote_planned == [False]
    assert world.route is not None and world.route.writer == "west" and world.route.epoch == 2
    live = ports.state.load()
    assert live.epoch == 2 and live.roles["west"] is Role.PRIMARY and live.plan is None
    assert summary["to"] == "west" and set(summary["steps"]) >= {"fence", "promote", "route"}
    assert ("failover_done", summary) in world.notes


def test_running_a_plan_twice_ends_in_the_same_state(tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False
    plan = plans.failover(ports.topology, observation(ports, world))
    ex = Executor(ports, sleep=lambda _: None)
    ex.run(plan)
    first = (dict(world.apps), world.route, world.writable(), dict(world.dbs["west"]))
    # the same plan again (a duplicate delivery): its epoch claim is refused as stale, a
    # resume of the finished plan is refused by the store (it is never revived), and
    # re-running its steps from scratch changes nothing either
    with pytest.raises(UnsafeOperation, match="epoch moved"):
        ex.run(plan)
    with pytest.raises(PlanConflict, match="is done, not running"):
        ex.run(plan, resume=PlanRecord(plan, 2))
    assert (dict(world.apps), world.route, world.writable(), dict(world.dbs["west"])) == first
    assert ports.state.load().epoch == 2


def test_crash_between_promote_and_route_resumes_without_repeating_done_steps(
    tmp_path: Path,
) -> None:
    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False
    world.crash_in = "route"
    plan = plans.failover(ports.topology, observation(ports, world))
    with pytest.raises(SimulatedCrash):
        Executor(ports, sleep=lambda _: None).run(plan)
    saved = ports.state.load().plan
    assert saved is not None and saved.running
    assert saved.done == (0, 1, 2, 3)  # scale, fence, promote, await_ready
    promotes_before = world.calls.count("promote")
    # a new process: the plan comes back from the StateStore, not from memory
    assert saved.plan == plan
    Executor(ports, sleep=lambda _: None).run(saved.plan, resume=saved)
    assert world.calls.count("promote") == promotes_before  # not repeated
    assert world.route is not None and world.route.writer == "west"
    assert ports.state.load().epoch == 2 and ports.state.load().plan is None
    outcomes = [(e["event"], e.get("outcome")) for e in ports.journal.entries()]
    assert ("plan", "resumed") in outcomes and outcomes[-1] == ("plan", "done")


def test_a_step_is_retried_within_its_deadline(tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False
    world.fail["route"] = 2
    plan = plans.failover(ports.topology, observation(ports, world))
    Executor(ports, sleep=lambda _: None).run(plan)
    assert world.calls.count("route") == 3


def test_a_step_that_keeps_failing_fails_the_plan_and_is_kept_in_the_journal(
    tmp_path: Path,
) -> None:
    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False
    world.fail["promote"] = 10**6
    plan = plans.failover(ports.topology, observation(ports, world))
    plan = plans.Plan(plan.id, plan.kind, plan.source, plan.target, plan.base_epoch,
                      tuple(plans.Step(s.name, 0.05 if s.name == "promote" else s.deadline_s,
                                       s.args, s.in_rto) for s in plan.steps))
    with pytest.raises(PlanFailed, match="promote"):
        Executor(ports).run(plan)
    failed = [e for e in ports.journal.entries() if e.get("outcome") == "failed"]
    assert {e["event"] for e in failed} == {"step", "plan"}
    assert world.route is None  # traffic never went to a standby that was not promoted


def test_switchover_waits_for_replay_before_promoting_and_rejoins_the_old_primary(
    tmp_path: Path,
) -> None:
    ports, world = make_ports(tmp_path)
    plan = plans.switchover(ports.topology, observation(ports, world), "west")
    Executor(ports, sleep=lambda _: None).run(plan)
    calls = [c for c in world.calls if c in ("cut", "stop_writes", "wait_replayed", "promote",
                                             "route", "rebuild")]
    assert calls[:4] == ["cut", "stop_writes", "wait_replayed", "promote"]
    assert "rebuild" in calls and world.dbs["east"]["recovery"] is True
    assert world.writable() == ["west"] and world.promote_planned == [True]


def test_failed_switchover_before_promote_rolls_back_to_the_old_primary(
    tmp_path: Path,
) -> None:
    ports, world = make_ports(tmp_path)
    world.fail["wait_replayed"] = 10**6
    plan = plans.switchover(ports.topology, observation(ports, world), "west")
    plan = plans.Plan(plan.id, plan.kind, plan.source, plan.target, plan.base_epoch,
                      tuple(plans.Step(s.name, 0.05 if s.name == "wait_replayed" else
                                       s.deadline_s, s.args, s.in_rto) for s in plan.steps))
    with pytest.raises(PlanFailed, match="wait_replayed"):
        Executor(ports).run(plan)
    assert world.writable() == ["east"]  # writes go back to the source, not nowhere
    assert world.route is not None and world.route.writer == "east" and world.route.epoch == 2
    assert ports.state.load().roles["east"] is Role.PRIMARY
    assert any(e["event"] == "rollback" and e.get("outcome") == "done"
               for e in ports.journal.entries())


def test_switchover_refused_while_the_target_is_not_streaming(tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    world.dbs["west"]["streaming"] = False
    with pytest.raises(UnsafeOperation, match="not streaming"):
        plans.switchover(ports.topology, observation(ports, world), "west")


def test_refusals_say_what_was_observed_and_what_to_do(tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    topo = ports.topology
    obs = observation(ports, world)
    with pytest.raises(UnsafeOperation, match=r"primary east is healthy.*switchover --to west"):
        plans.failover(topo, obs)
    assert plans.failover(topo, obs, force=True).target == "west"
    with pytest.raises(UsageError, match="already the primary"):
        plans.switchover(topo, obs, "east")
    with pytest.raises(UsageError, match="unknown region 'north'"):
        plans.switchover(topo, obs, "north")
    world.dbs["west"]["lag_s"] = 4.2
    with pytest.raises(UnsafeOperation, match=r"replica lag 4\.20 s exceeds"):
        plans.switchover(topo, observation(ports, world), "west")
    world.dbs["west"]["up"] = False
    with pytest.raises(UnsafeOperation, match="database is down"):
        plans.failover(topo, observation(ports, world), force=True)
    world.dbs["west"].update(up=True, recovery=False)
    with pytest.raises(UnsafeOperation, match="second primary"):
        plans.failover(topo, observation(ports, world), force=True)


def test_async_failover_refuses_a_standby_beyond_the_rpo_target(tmp_path: Path) -> None:
    topo = topology(replication="async", failover={"rpo_target_s": 1.0})
    ports, world = make_ports(tmp_path, topo=topo)
    world.dbs["east"]["up"] = False
    world.dbs["west"]["lag_s"] = 3.0
    with pytest.raises(UnsafeOperation, match=r"exceeds rpo_target_s = 1"):
        plans.failover(topo, observation(ports, world))


def test_a_failover_counts_the_replicas_lag_before_the_loss_not_its_growth_since(
        tmp_path: Path) -> None:
    """An AWS replica's lag (one-minute maxima from CloudWatch) grows by a second every
    second once its source died: checked "now", every failover of a Region outage would be
    refused. With a DOWN verdict, the lag in the last minute before the loss counts."""
    topo = topology(replication="async", failover={"rpo_target_s": 5.0})
    ports, world = make_ports(tmp_path, topo=topo)
    world.dbs["east"]["up"] = False
    lost = 1_000.0
    points = ((lost - 60, 0.4), (lost, 0.8), (lost + 60, 60.0), (lost + 120, 120.0))
    obs = observation(ports, world)
    west = dataclasses.replace(obs.databases["west"], lag_s=120.0, lag_points=points)
    obs = dataclasses.replace(obs, databases={**obs.databases, "west": west})
    assert plans.failover(topo, dataclasses.replace(obs, source_lost_at=lost + 5)).target \
        == "west"
    # a person's failover (no verdict): the lag before its one-for-one growth began
    assert plans.failover(topo, obs).target == "west"
    spike = dataclasses.replace(west, lag_points=((lost - 60, 0.4), (lost, 70.0)), lag_s=70.0)
    with pytest.raises(UnsafeOperation, match=r"last replica lag 70\.00 s exceeds"):
        plans.failover(topo, dataclasses.replace(  # one period is a spike, not a loss
            obs, databases={**obs.databases, "west": spike}))
    behind = dataclasses.replace(west, lag_points=((lost - 60, 9.0), (lost + 60, 69.0)))
    with pytest.raises(UnsafeOperation, match=r"just before the primary was lost 9\.00 s"):
        plans.failover(topo, dataclasses.replace(
            obs, databases={**obs.databases, "west": behind}, source_lost_at=lost + 5))


def test_a_second_plan_is_refused_while_one_runs(tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False
    world.crash_in = "route"
    plan = plans.failover(ports.topology, observation(ports, world))
    with pytest.raises(SimulatedCrash):
        Executor(ports).run(plan)
    other = plans.Plan("failover-other", plans.PlanKind.FAILOVER, "east", "west", 1,
                       plan.steps)
    with pytest.raises(UnsafeOperation, match="already running"):
        Executor(ports).run(other)


def test_dry_run_description_lists_steps_with_deadlines(tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    plan = plans.switchover(ports.topology, observation(ports, world), "west")
    text = "\n".join(plan.describe())
    assert "switchover east -> west (epoch 1 -> 2)" in text
    assert "stop_writes(region=east)  deadline 30 s" in text
    assert "[after recovery]" in text


def test_the_sites_guards_fail_over_after_the_threshold_and_measure_detection(
        tmp_path: Path) -> None:
    """The failover target's guard and the witness's (a site's agents) on these fakes: DOWN
    only after `failure_threshold` failed probes from both, then one plan whose report has
    the detection time in its RTO."""
    ports, world = make_ports(tmp_path)
    sites = Sites(ports)
    world.dbs["east"]["up"] = False
    kinds = []
    for _ in range(4):
        sites.witness.cycle()
        kinds.append(sites.west.cycle().kind)
    assert kinds[:2] == [CycleKind.WATCHING] * 2 and CycleKind.FAILOVER in kinds
    assert ports.state.load().roles["west"] is Role.PRIMARY
    verdict = next(e for e in ports.journal.entries() if e["event"] == "verdict")
    assert verdict["first_failure_ns"] is not None
    plan_id = next(e["plan"] for e in ports.journal.entries() if e["event"] == "plan")
    summary = rto_breakdown(ports.journal.entries(), plan_id)
    assert summary is not None and summary["steps"]["detect"] > 0


def test_the_journal_alone_explains_a_plan_and_its_resumption(tmp_path: Path) -> None:
    from regionguard.orchestrator import engine

    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False
    world.dbs["west"]["lsn"] = 4242
    world.crash_in = "route"
    with pytest.raises(SimulatedCrash):
        engine.drive(ports, engine.Request(plans.PlanKind.FAILOVER, "west", reason="test"))
    engine.drive(ports, engine.Request.resume_only())
    entries = ports.journal.entries()
    started = next(e for e in entries if e["event"] == "plan" and e["outcome"] == "started")
    assert [s["name"] for s in started["steps"]][:3] == ["scale", "fence", "promote"]
    seen = [e for e in entries if e["event"] == "observation"]
    assert len(seen) == 2  # what the plan was built from, and what it resumed from
    assert seen[0]["databases"]["east"] == {"up": False}
    assert seen[0]["databases"]["west"]["lsn"] == 4242
    assert seen[0]["roles"] == {"east": "primary", "west": "standby"}
    assert seen[1]["roles"]["west"] == "primary" and seen[1]["epoch"] == 2
    resumed = next(e for e in entries if e["event"] == "plan" and e["outcome"] == "resumed")
    assert resumed["remaining"] == ["route", "verify", "retire"]
