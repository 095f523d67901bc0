"""The engine's safety rules with fake ports: a plan past `promote` is driven to completion, a
failover promotes only over an old primary that is fenced, under an expired lease, or when a
person forced it (unreachable is not dead), and fencing reaches the database even when the front
door cannot be reached."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from regionguard.errors import ProviderError, UnsafeOperation
from regionguard.orchestrator import engine, plans
from regionguard.orchestrator.deadlines import AWS_DEADLINES
from regionguard.orchestrator.executor import Executor, PlanFailed, PlanInterrupted
from regionguard.orchestrator.ports import FenceResult

from .fakes import FakeDatabase, Sites, World, make_ports, topology

pytestmark = pytest.mark.unit


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
    assert live.plan is not None and live.plan.running  # not "failed"
    assert world.writable() == ["west"] and world.route is None  # promoted, not routed yet
    world.fail["route"] = 0  # the front door is back: the runner's next look drives it on
    engine.drive(ports, engine.Request.resume_only())
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
    with pytest.raises(PlanFailed, match=r"east is neither fenced .* nor under a write lease"):
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


def test_a_new_primary_that_dies_after_promote_is_restarted_when_the_plan_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second fault: the region promoted a moment ago loses its database before the apps
    are ready. The old region is dead and fenced, so nothing can fail over; resuming must
    restart the new primary (promote again, idempotent), not retry `await_ready` for ever."""
    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False
    plan = failover(ports, world, await_ready=0.01)
    real_promote = FakeDatabase.promote
    crashed: list[str] = []

    def promote_then_crash(self, region, epoch, timeout_s, planned=False):  # type: ignore[no-untyped-def]
        real_promote(self, region, epoch, timeout_s, planned)
        if not crashed or crashed[-1] != "stop":  # and each time await_ready restarts it
            crashed.append(region)
            world.dbs[region]["up"] = False  # SIGKILL right after the promote

    monkeypatch.setattr(FakeDatabase, "promote", promote_then_crash)
    with pytest.raises(PlanInterrupted):
        Executor(ports, sleep=lambda _: None).run(plan)
    saved = ports.state.load().plan
    assert saved is not None and saved.is_done(2) and not world.dbs["west"]["up"]  # promote
    crashed.append("stop")  # the crashes stop
    Executor(ports, sleep=lambda _: None).run(saved.plan, resume=saved)
    assert world.writable() == ["west"] and ports.state.load().plan is None
    reasserts = [(e["step"], e["outcome"]) for e in ports.journal.entries()
                 if e["event"] == "reassert"]
    assert reasserts[-4:] == [("promote", "started"), ("promote", "done"),
                              ("scale", "started"), ("scale", "done")]


def test_processes_that_die_while_the_plan_waits_for_them_are_started_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second fault kills the new primary's apps after `scale`: `await_ready` scales again
    between its slices instead of waiting out its deadline for processes nothing restarts."""
    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False
    plan = failover(ports, world)
    real_promote = FakeDatabase.promote

    def promote_then_kill_apps(self, region, epoch, timeout_s, planned=False):  # type: ignore[no-untyped-def]
        real_promote(self, region, epoch, timeout_s, planned)
        world.apps[region] = 0  # SIGKILL of the apps the plan's `scale` started

    monkeypatch.setattr(FakeDatabase, "promote", promote_then_kill_apps)
    monkeypatch.setattr("regionguard.orchestrator.steps.AWAIT_SLICE_MIN_S", 0.01)
    Executor(ports, sleep=lambda _: None).run(plan)
    assert world.apps["west"] == 2 and ports.state.load().plan is None
    assert world.calls.count("scale") >= 3  # scale, the re-scale in await_ready, retire


def test_a_new_primary_whose_database_dies_while_the_plan_waits_is_restarted_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The campaign's seed 53: the new primary's database was killed after `promote`, and
    `await_ready` waited out its 30 s for apps that cannot start without it."""
    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False
    plan = failover(ports, world)
    real_promote = FakeDatabase.promote
    promoted: list[str] = []

    def promote_then_die(self, region, epoch, timeout_s, planned=False):  # type: ignore[no-untyped-def]
        real_promote(self, region, epoch, timeout_s, planned)
        promoted.append(region)
        if len(promoted) == 1:
            world.dbs[region]["up"] = False  # SIGKILL of the new primary's postmaster

    monkeypatch.setattr(FakeDatabase, "promote", promote_then_die)
    monkeypatch.setattr("regionguard.orchestrator.steps.AWAIT_SLICE_MIN_S", 0.01)
    Executor(ports, sleep=lambda _: None).run(plan)
    assert promoted == ["west", "west"] and world.writable() == ["west"]
    assert ports.state.load().plan is None
    reasserted = [e for e in ports.journal.entries() if e["event"] == "reassert"]
    assert [e["outcome"] for e in reasserted] == ["started", "done"]


class PromotesThenDies(FakeDatabase):
    """The target is promoted, then the call fails (its runner or its database died right
    after pg_promote): the work is done though the step is not recorded as done."""

    dying = True  # every call fails until the test says otherwise

    def promote(self, region: str, epoch: int, timeout_s: float, planned: bool = False) -> None:
        if self.dying:
            self.w.dbs[region]["recovery"] = False
            raise ProviderError(f"{region}: connection lost during promote")
        super().promote(region, epoch, timeout_s, planned)


def switchover(ports, world: World, **short: float) -> plans.Plan:  # type: ignore[no-untyped-def]
    obs = plans.Observation(ports.state.load(),
                            {r: ports.database.status(r) for r in world.dbs})
    plan = plans.switchover(ports.topology, obs, "west")
    return plans.Plan(plan.id, plan.kind, plan.source, plan.target, plan.base_epoch,
                      tuple(plans.Step(s.name, short.get(s.name, s.deadline_s), s.args,
                                       s.in_rto, s.best_effort) for s in plan.steps))


def test_a_switchover_whose_promote_did_its_work_goes_forward_never_back(
        tmp_path: Path) -> None:
    """Rolling back here would start the source as a second primary (found by the campaign,
    seed 27: the target's database killed during promote)."""
    ports, world = make_ports(tmp_path)
    ports.database = db = PromotesThenDies(world)
    with pytest.raises(PlanInterrupted, match="promote"):
        Executor(ports, sleep=lambda _: None).run(switchover(ports, world, promote=0.05))
    assert world.writable() == ["west"]  # the source stayed stopped
    assert not any(e["event"] == "rollback" for e in ports.journal.entries())
    assert ports.state.load().plan is not None  # left running: its runner resumes it
    db.dying = False
    engine.drive(ports, engine.Request.resume_only())
    assert world.route is not None and world.route.writer == "west"
    assert world.writable() == ["west"] and ports.state.load().plan is None


def test_a_switchover_whose_target_died_is_not_rolled_back_onto_a_possible_second_primary(
        tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    world.fail["promote"] = 10**6

    def target_dies(_: float) -> None:
        world.dbs["west"]["up"] = False  # it may have been promoted before it died

    with pytest.raises(PlanFailed, match="promote"):
        Executor(ports, sleep=target_dies).run(switchover(ports, world, promote=0.05))
    assert world.writable() == []  # east stays stopped: the next automatic look decides from here
    refused = [e for e in ports.journal.entries() if e["event"] == "rollback"]
    assert [e["outcome"] for e in refused] == ["refused"]
    assert "may have been promoted" in refused[0]["detail"]


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0 + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_promote_target_that_stays_down_is_given_up_on_not_waited_out(
        tmp_path: Path) -> None:
    """The campaign's seed 27 took 33 s: nothing restarts a dead standby while the plan holds
    the lock, so waiting out the 30 s deadline only delays the runner's own remedy."""
    ports, world = make_ports(tmp_path)
    ports.clock = clock = ManualClock()
    obs = plans.Observation(ports.state.load(), {r: ports.database.status(r) for r in world.dbs})
    # RDS reports an instance that is being promoted as not available: AWS waits it out
    aws = plans.switchover(ports.topology, obs, "west", deadlines=AWS_DEADLINES)
    assert "down_grace_s" not in next(s for s in aws.steps if s.name == "promote").args
    plan = switchover(ports, world)
    promote = next(s for s in plan.steps if s.name == "promote")
    assert promote.args["down_grace_s"] == 2.0 and promote.deadline_s == 30.0
    world.dbs["west"]["up"] = False  # the target dies once the plan has started
    with pytest.raises(PlanFailed, match="down for 2 s of promote"):
        Executor(ports, sleep=clock.advance).run(plan)
    assert clock.now < 5.0  # not 30


def test_where_no_guard_runs_asking_again_resumes_an_interrupted_plan(tmp_path: Path) -> None:
    """Backup & restore on AWS deploys no guard: the person who started the restore resumes
    it by asking again. Elsewhere the failover target's agent or guard resumes."""
    from regionguard.orchestrator import engine

    from .fakes import SimulatedCrash

    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False
    world.crash_in = "route"
    with pytest.raises(SimulatedCrash):
        Executor(ports, sleep=lambda _: None).run(failover(ports, world))
    ask = engine.Request(plans.PlanKind.FAILOVER)
    with pytest.raises(UnsafeOperation,
                       match=r"the failover target's agent \(or AWS guard\) resumes it"):
        engine.drive(ports, ask)
    ports.restorer = object()  # type: ignore[assignment]  # a world with a restorer: AWS B&R
    outcome = engine.drive(ports, ask)
    assert outcome.result is engine.Result.RESUMED
    assert world.route is not None and world.route.writer == "west"
    assert ports.state.load().plan is None


def test_an_unreachable_primary_that_could_not_be_fenced_is_not_promoted_over(
        tmp_path: Path) -> None:
    """Across a network "unreachable" is not "dead": a primary that does not answer and could
    not be fenced may still take writes from its own clients. Without a lease to wait out,
    the failover stops before promote (and retries the fence meanwhile)."""
    ports, world = make_ports(tmp_path)
    world.unfenceable.add("east")
    world.dbs["east"]["up"] = False  # no answer from here; nobody knows it is dead
    with pytest.raises(PlanFailed, match=r"neither fenced .* unreachable is not dead"):
        Executor(ports).run(failover(ports, world, promote=0.2))
    assert "promote" not in world.calls and world.writable() == []
    assert world.calls.count("fence") > 1  # promote's retries tried the fence again
    assert ports.state.load().primary == "east"


def test_a_forced_failover_promotes_over_an_unfenced_primary_and_says_so(
        tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    world.unfenceable.add("east")
    world.dbs["east"]["up"] = False
    plan = plans.failover(ports.topology, plans.Observation(
        ports.state.load(), {r: ports.database.status(r) for r in world.dbs}), force=True)
    assert plan.forced and "[forced]" in plan.describe()[0]
    Executor(ports, sleep=lambda _: None).run(plan)
    assert world.writable() == ["west"]
    [forced] = [e for e in ports.journal.entries() if e["event"] == "forced_promote"]
    assert "neither fenced nor under an expired lease" in forced["detail"]
    assert any(event == "forced_promote" for event, _ in world.notes)


def test_promote_waits_for_the_old_writers_lease_to_run_out(tmp_path: Path) -> None:
    """Where the old region fences itself by lease (AWS), an unfenced primary is promoted
    over only once every lease it could still act on has run out in the arbiter."""
    ports, world = make_ports(tmp_path)
    world.unfenceable.add("east")
    clock = ports.clock
    lease_until = clock.time() + 40.0

    class LeasedStore(type(ports.state)):  # type: ignore[misc]
        def revoke_writer(self, region: str) -> float | None:
            return lease_until

    ports.state = LeasedStore(ports.state.dir)
    slept: list[tuple[float, int]] = []  # (seconds, promotes so far)

    def sleep(seconds: float) -> None:
        slept.append((seconds, world.calls.count("promote")))

    Executor(ports, sleep=sleep).run(failover(ports, world))
    assert world.dbs["west"]["recovery"] is False  # promoted (east is fenced by its lease)
    waits = [e for e in ports.journal.entries() if e["event"] == "lease_wait"]
    assert waits and waits[0]["step"] == "promote" and waits[0]["seconds"] > 39
    # the long sleep came before the first promote
    assert any(seconds > 39 and promotes == 0 for seconds, promotes in slept)


def test_promote_trusts_the_arbiter_not_the_estimate_of_when_the_lease_ends(
        tmp_path: Path) -> None:
    """etcd expires a lease counted from its holder's last renewal, which the revoke's
    estimate cannot know: while the arbiter still holds the old writer's lease, no promote."""
    ports, world = make_ports(tmp_path)
    world.unfenceable.add("east")
    asked: list[int] = []  # promotes done each time the arbiter was asked

    class ArbiterHeldStore(type(ports.state)):  # type: ignore[misc]
        def revoke_writer(self, region: str) -> float | None:
            return ports.clock.time()  # the estimate: already over

        def writer_lease_ended(self, region: str) -> bool:
            asked.append(world.calls.count("promote"))
            return len(asked) >= 3  # etcd expires it on the third look

    ports.state = ArbiterHeldStore(ports.state.dir)
    Executor(ports, sleep=lambda _: None).run(failover(ports, world))
    assert world.dbs["west"]["recovery"] is False
    assert asked[:3] == [0, 0, 0]  # asked until it said so, and no promote before


def test_a_topology_without_force_keeps_plans_unforced(tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path, topo=topology())
    world.dbs["east"]["up"] = False
    plan = plans.failover(ports.topology, plans.Observation(
        ports.state.load(), {r: ports.database.status(r) for r in world.dbs}))
    assert not plan.forced and plans.Plan.from_dict(plan.to_dict()) == plan


def test_a_primary_that_cannot_be_fenced_is_alerted_once_and_not_retried_every_tick(
        tmp_path: Path) -> None:
    """The automatic path's answer to NotFenced (a primary that neither fences nor has a
    lease to wait out): an alert (once) and a back-off, so a verdict that stays DOWN does not
    claim a new epoch at every look of the failover target's guard."""
    ports, world = make_ports(tmp_path)
    ports.deadlines = replace(ports.deadlines, promote=0.2, fence=0.2)
    world.unfenceable.add("east")
    world.dbs["east"]["up"] = False
    Sites(ports).tick(12)
    plans_started = [e for e in ports.journal.entries()
                     if e["event"] == "plan" and e.get("outcome") == "started"]
    assert len(plans_started) == 1 and ports.state.load().epoch == 2  # one claim, backing off
    unfenced = [e for e in ports.journal.entries() if e["event"] == "alert"
                and "neither fenced" in e.get("detail", "")]
    assert len(unfenced) == 1
    assert world.dbs["west"]["recovery"] is True
