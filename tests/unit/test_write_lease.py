"""The engine's side of fencing by lease, with fake ports: every plan that moves the writer
revokes the old writer's lease and routes only once it has run out; a resumed step does not
get a fresh deadline."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from regionguard.clock import ScaledClock
from regionguard.errors import ProviderError
from regionguard.orchestrator import plans
from regionguard.orchestrator.executor import Executor, PlanInterrupted

from .fakes import SimulatedCrash, make_ports

pytestmark = pytest.mark.unit

LEASE_WORLD_S = 30.0


class LeasedStore:
    """The local store with a write lease, as the AWS arbiter has one."""

    def __init__(self, inner: Any, clock: ScaledClock, calls: list[tuple[str, float]]) -> None:
        self.inner, self.clock, self.calls = inner, clock, calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def revoke_writer(self, region: str) -> float:
        self.calls.append((f"revoke {region}", self.clock.time()))
        return self.clock.time() + LEASE_WORLD_S


def leased(tmp_path: Path) -> tuple[Any, Any, list[tuple[str, float]], ScaledClock]:
    ports, world = make_ports(tmp_path)
    clock = ScaledClock.starting_now(0.01)
    calls: list[tuple[str, float]] = []
    ports.clock = clock
    ports.state = LeasedStore(ports.state, clock, calls)
    original = ports.traffic.route

    def route(table: Any) -> None:
        calls.append((f"route {table.writer}", clock.time()))
        original(table)

    ports.traffic.route = route  # type: ignore[method-assign]
    return ports, world, calls, clock


def time_promotes(ports: Any, calls: list[tuple[str, float]], clock: ScaledClock) -> None:
    promote = ports.database.promote

    def timed_promote(region: str, *args: Any, **kwargs: Any) -> None:
        calls.append((f"promote {region}", clock.time()))
        promote(region, *args, **kwargs)

    ports.database.promote = timed_promote


def observation(ports: Any, world: Any) -> plans.Observation:
    return plans.Observation(ports.state.load(),
                             {r: ports.database.status(r) for r in world.dbs})


def test_failover_routes_writes_only_after_the_old_writers_lease_ran_out(
        tmp_path: Path) -> None:
    ports, world, calls, _ = leased(tmp_path)
    world.dbs["east"]["up"] = False
    Executor(ports).run(plans.failover(ports.topology, observation(ports, world)))
    revoked = next(t for what, t in calls if what == "revoke east")
    routed = next(t for what, t in calls if what == "route west")
    assert routed - revoked >= LEASE_WORLD_S  # waited out, on the world's clock
    waits = [e for e in ports.journal.entries() if e["event"] == "lease_wait"]
    assert waits and waits[0]["seconds"] > 0


def test_where_replication_is_asynchronous_promote_does_not_wait_but_route_does(
        tmp_path: Path) -> None:
    """AWS: the old region's writes under its lease cannot reach the new primary (its
    replication is cut with it), so the promotion starts at once (an Aurora or RDS promotion
    takes minutes, and the lease's wait ran before it); the writes still move only once the
    lease has ended. With the route's wait removed this fails: the route comes at once."""
    ports, world, calls, clock = leased(tmp_path)
    world.dbs["east"]["up"] = False
    world.unfenceable.add("east")  # only its lease fences it
    ports.database.promotes_under_old_lease = True
    time_promotes(ports, calls, clock)
    Executor(ports).run(plans.failover(ports.topology, observation(ports, world)))
    revoked = next(t for what, t in calls if what == "revoke east")
    promoted = next(t for what, t in calls if what == "promote west")
    routed = next(t for what, t in calls if what == "route west")
    assert promoted - revoked < LEASE_WORLD_S / 2  # not after the lease
    assert routed - revoked >= LEASE_WORLD_S  # the writes wait for it
    [wait] = [e for e in ports.journal.entries() if e["event"] == "lease_wait"]
    assert wait["step"] == "route"


def test_the_lease_is_handed_over_while_the_database_promotes(tmp_path: Path) -> None:
    """A promotion outlasts the lease (Aurora about a minute, RDS several): the target is
    named the writer as soon as the old lease has ended, before its promotion does, so DNS
    moves meanwhile; never before the lease's end. With the handover removed, the writer is
    named only by `route`, after the promotion, and this fails."""
    ports, world, calls, clock = leased(tmp_path)
    world.dbs["east"]["up"] = False
    world.unfenceable.add("east")
    ports.database.promotes_under_old_lease = True
    promote = ports.database.promote

    def slow_promote(region: str, *args: Any, **kwargs: Any) -> None:
        calls.append((f"promote {region}", clock.time()))
        clock.sleep(2 * LEASE_WORLD_S)
        promote(region, *args, **kwargs)
        calls.append((f"promoted {region}", clock.time()))

    ports.database.promote = slow_promote
    Executor(ports).run(plans.failover(ports.topology, observation(ports, world)))
    revoked = next(t for what, t in calls if what == "revoke east")
    routed = next(t for what, t in calls if what == "route west")  # the first naming
    promoted = next(t for what, t in calls if what == "promoted west")
    assert revoked + LEASE_WORLD_S <= routed < promoted
    [handover] = [e for e in ports.journal.entries() if e["event"] == "handover"]
    assert handover["outcome"] == "done" and handover["writer"] == "west"
    done = [e["step"] for e in ports.journal.entries() if e["event"] == "step"
            and e["outcome"] == "done"]
    assert done.index("promote") < done.index("route")  # route still runs, after it


def test_a_promotion_that_fails_after_the_handover_leaves_the_plan_to_be_finished(
        tmp_path: Path) -> None:
    """Once the target holds the write lease (its traffic moved), a promotion that fails is
    no reason to give the plan up: it is interrupted, for the next run to finish, never
    failed with the target named writer and not promoted. With the handover not counted as
    the point of no return, the plan fails (PlanFailed, not PlanInterrupted)."""
    ports, world, calls, clock = leased(tmp_path)
    world.dbs["east"]["up"] = False
    world.unfenceable.add("east")
    ports.database.promotes_under_old_lease = True

    def failing_promote(region: str, *args: Any, **kwargs: Any) -> None:
        clock.sleep(2 * LEASE_WORLD_S)
        raise ProviderError(f"{region}: the promotion did not finish")

    ports.database.promote = failing_promote
    with pytest.raises(PlanInterrupted):
        Executor(ports).run(plans.failover(ports.topology, observation(ports, world)))
    assert any(what == "route west" for what, _ in calls)  # handed over meanwhile
    events = [(e["event"], e.get("outcome")) for e in ports.journal.entries()]
    assert ("handover", "done") in events and ("plan", "interrupted") in events, events


def test_on_aws_the_fences_database_part_runs_beside_the_promotion(tmp_path: Path) -> None:
    """Where the revoked lease is the fence (AWS), the database's part of it (a reboot of a
    reachable RDS primary; in an outage, the dead Region's timeouts) runs beside the
    promotion, and is journaled when it ends. Waited for in `fence`, it would start the
    promotion only after those timeouts, and this fails."""
    ports, world, calls, clock = leased(tmp_path)
    world.dbs["east"]["up"] = False
    world.unfenceable.add("east")
    ports.database.promotes_under_old_lease = True
    time_promotes(ports, calls, clock)
    fence = ports.database.fence

    def slow_fence(region: str) -> Any:
        clock.sleep(LEASE_WORLD_S / 2)  # the dead Region's connect timeouts
        calls.append((f"fenced {region}", clock.time()))
        return fence(region)

    ports.database.fence = slow_fence
    Executor(ports).run(plans.failover(ports.topology, observation(ports, world)))
    promoted = next(t for what, t in calls if what == "promote west")
    fenced = next(t for what, t in calls if what == "fenced east")
    assert promoted < fenced
    assert any(e["event"] == "unfenced" for e in ports.journal.entries())  # still on record


def test_where_the_old_writers_database_answers_promote_waits_for_the_lease_first(
        tmp_path: Path) -> None:
    """Asynchronous replication, but the old primary's database still answers (its front
    door failed, not its Region): what it commits under its lease can still replicate, so
    the promote waits the lease out, as on the sites."""
    ports, world, calls, clock = leased(tmp_path)
    world.unfenceable.add("east")  # up, reachable, and not fenceable from here
    ports.database.promotes_under_old_lease = True
    time_promotes(ports, calls, clock)
    # an operator's failover (its primary answers): forced, but never over a live lease
    Executor(ports).run(plans.failover(ports.topology, observation(ports, world), force=True))
    revoked = next(t for what, t in calls if what == "revoke east")
    promoted = next(t for what, t in calls if what == "promote west")
    assert promoted - revoked >= LEASE_WORLD_S


def test_a_switchover_waits_out_the_lease_too(tmp_path: Path) -> None:
    ports, world, calls, _ = leased(tmp_path)
    Executor(ports).run(plans.switchover(ports.topology, observation(ports, world), "west"))
    revoked = next(t for what, t in calls if what == "revoke east")
    routed = next(t for what, t in calls if what == "route west")
    assert routed - revoked >= LEASE_WORLD_S


def test_a_switchover_whose_old_primary_stopped_cleanly_waits_out_no_lease(
        tmp_path: Path) -> None:
    """The sites' and the sandbox's `stop_writes` is a clean shutdown of the old primary:
    none of its apps can commit under the old lease any more, so the route does not sleep it
    out (writes would stop for a whole TTL on every switchover)."""
    ports, world, calls, _ = leased(tmp_path)
    ports.database.stopped_writes_are_final = True
    Executor(ports).run(plans.switchover(ports.topology, observation(ports, world), "west"))
    revoked = next(t for what, t in calls if what == "revoke east")
    routed = next(t for what, t in calls if what == "route west")
    assert routed - revoked < LEASE_WORLD_S / 2
    assert not [e for e in ports.journal.entries() if e["event"] == "lease_wait"]


def test_a_resumed_step_keeps_the_deadline_it_started_with(tmp_path: Path) -> None:
    ports, world, _, clock = leased(tmp_path)
    world.dbs["east"]["up"] = False
    world.crash_in = "promote"  # the runner dies inside promote
    plan = plans.failover(ports.topology, observation(ports, world))
    with contextlib.suppress(SimulatedCrash):
        Executor(ports).run(plan)
    saved = ports.state.load().plan
    assert saved is not None
    started = saved.step_started_at[2]  # promote's first start, saved before the step ran
    assert abs(started - clock.time()) < 5
    time.sleep((plan.steps[2].deadline_s + 1) * clock.factor)  # its deadline passes
    Executor(ports).run(saved.plan, resume=saved)
    overrun = [e for e in ports.journal.entries() if e["event"] == "deadline_exceeded"]
    assert [e["step"] for e in overrun] == ["promote"]  # said out loud, then one more try
    assert ("deadline_exceeded", {"plan": plan.id, "step": "promote"}) in world.notes
    assert world.route is not None and world.route.writer == "west"
