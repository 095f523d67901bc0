"""Detection from outside the primary: the pure vantage verdict, and the guard's decisions, with
fake ports. Who may judge whom, who acts, and what follows the live roles."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regionguard.clock import ScaledClock
from regionguard.config import Role
from regionguard.errors import ProviderError
from regionguard.orchestrator import plans
from regionguard.orchestrator.detector import vantage_verdict
from regionguard.orchestrator.executor import Executor
from regionguard.orchestrator.guard import CycleKind, Guard
from regionguard.orchestrator.ports import VantageReport, Verdict
from regionguard.orchestrator.records import PlanStatus

from .fakes import (
    SITES,
    Endpoints,
    MemoryObservations,
    SimulatedCrash,
    World,
    make_ports,
    topology,
)

pytestmark = pytest.mark.unit

POLICY = topology().health  # failure_threshold 3, quorum 2
NOW = 1_000_000.0


def rep(vantage: str, failures: int, age: float = 0.0, target: str = "east") -> VantageReport:
    at = NOW - age
    return VantageReport(vantage, target, failures, 0 if failures else 4, at,
                         at - 10 * failures if failures else None)


def test_down_needs_a_quorum_of_fresh_reports_from_outside_the_region() -> None:
    down = vantage_verdict([rep("us-west-2", 3), rep("us-east-2", 5)], "east", POLICY, NOW,
                           60, SITES["east"])
    assert down.verdict is Verdict.DOWN and down.first_failure_at == NOW - 50
    one = vantage_verdict([rep("us-west-2", 9), rep("us-east-2", 0)], "east", POLICY, NOW, 60,
                          SITES["east"])
    assert one.verdict is Verdict.UNKNOWN  # one failing and one healthy: no quorum either way
    stale = vantage_verdict([rep("us-west-2", 9), rep("us-east-2", 9, age=61)], "east", POLICY,
                            NOW, 60, SITES["east"])
    assert stale.verdict is not Verdict.DOWN  # a prober that stopped reporting does not vote
    inside = vantage_verdict([rep("us-west-2", 9), rep("us-east-1", 9)], "east", POLICY, NOW,
                             60, SITES["east"])
    assert inside.verdict is not Verdict.DOWN  # a region never votes on itself


def test_the_standbys_two_probers_decide_without_the_witness_but_not_against_it() -> None:
    """Each app region runs a second prober: outside the primary there are three vantage
    points, so losing the witness's guard no longer blocks every failover. But two probers of
    one Region may be seeing their own Region's link to the primary: a fresh healthy report
    from another Region outweighs them. With the second prober gone, the first case is only
    one vote, and no failover can happen."""
    outside = SITES["east"] | {"us-east-1/b"}
    alone = vantage_verdict([rep("us-west-2", 3), rep("us-west-2/b", 4),
                             rep("us-east-2", 9, age=120)], "east", POLICY, NOW, 60, outside)
    assert alone.verdict is Verdict.DOWN, alone.detail  # the witness's reports went stale
    assert {r.vantage for r in alone.voters} == {"us-west-2", "us-west-2/b"}
    outvoted = vantage_verdict([rep("us-west-2", 3), rep("us-west-2/b", 4),
                                rep("us-east-2", 0)], "east", POLICY, NOW, 60, outside)
    assert outvoted.verdict is Verdict.UNKNOWN and "us-east-2 sees it up" in outvoted.detail
    all_three = vantage_verdict([rep("us-west-2", 3), rep("us-west-2/b", 4),
                                 rep("us-east-2", 5)], "east", POLICY, NOW, 60, outside)
    assert all_three.verdict is Verdict.DOWN
    own = vantage_verdict([rep("us-east-1", 9), rep("us-east-1/b", 9)], "east", POLICY, NOW, 60,
                          outside)
    assert own.verdict is not Verdict.DOWN  # a region's probers never judge it


def test_a_report_from_the_future_does_not_vote() -> None:
    """A site whose clock runs fast stamps its reports ahead: such a report would stay
    "fresh" long after that site stopped probing. Past the skew bound it is rejected."""
    skew = POLICY.max_clock_skew_s
    ahead = vantage_verdict([rep("us-west-2", 3), rep("us-east-2", 5, age=-(skew + 58))],
                            "east", POLICY, NOW, 60, SITES["east"])
    assert ahead.verdict is not Verdict.DOWN
    assert [r.vantage for r in ahead.rejected] == ["us-east-2"]
    within = vantage_verdict([rep("us-west-2", 3), rep("us-east-2", 5, age=-skew / 2)],
                             "east", POLICY, NOW, 60, SITES["east"])
    assert within.verdict is Verdict.DOWN and not within.rejected


reports = st.lists(st.builds(
    rep, st.sampled_from(["us-east-1", "us-west-2", "us-east-2"]), st.integers(0, 6),
    st.floats(-120, 120), st.sampled_from(["east", "west"])), max_size=8)


@given(reports)
def test_a_down_verdict_always_has_a_quorum_of_fresh_outside_voters(
        rs: list[VantageReport]) -> None:
    v = vantage_verdict(rs, "east", POLICY, NOW, 60, SITES["east"])
    if v.verdict is Verdict.DOWN:
        assert len(v.voters) >= POLICY.quorum
        assert all(r.target == "east" and r.vantage != "us-east-1" and r.failures >= 3
                   and -POLICY.max_clock_skew_s <= NOW - r.observed_at <= 60
                   for r in v.voters)


def guards(tmp_path: Path, world: World | None = None) -> tuple[dict[str, Guard], World,
                                                                 Endpoints, MemoryObservations]:
    ports, world = make_ports(tmp_path, world)
    ports.clock = ScaledClock.starting_now(0.01)  # step deadlines and retries run 100x faster
    obs, endpoints = MemoryObservations(), Endpoints()
    made = {site: Guard(ports, obs, endpoints, site, home, SITES.__getitem__, 5.0, 2.0)
            for site, home in (("us-east-1", "east"), ("us-west-2", "west"),
                               ("us-east-2", None))}
    return made, world, endpoints, obs


def cycles(guard: Guard, n: int) -> list[CycleKind]:
    return [guard.cycle().kind for _ in range(n)]


def kinds(results: Iterable[CycleKind]) -> set[CycleKind]:
    return set(results)


def test_only_the_standby_acts_and_only_once_both_vantage_points_agree(tmp_path: Path) -> None:
    g, world, endpoints, _ = guards(tmp_path)
    world.dbs["east"]["up"] = False
    endpoints.down.add("east")
    assert cycles(g["us-east-1"], 3) == [CycleKind.OWN_REGION] * 3  # never judges itself
    assert cycles(g["us-west-2"], 3) == [CycleKind.WATCHING] * 3  # the witness has not seen it
    witness = cycles(g["us-east-2"], 3)
    assert witness[-1] is CycleKind.DOWN_SEEN  # DOWN now, but the witness never acts
    assert g["us-east-2"].ports.state.load().epoch == 1
    result = g["us-west-2"].cycle()
    assert result.kind is CycleKind.FAILOVER and result.outcome is not None
    assert world.route is not None and world.route.writer == "west" and world.route.epoch == 2
    verdict = next(e for e in g["us-west-2"].ports.journal.entries() if e["event"] == "verdict")
    assert verdict["first_failure_ns"] < verdict["mono_ns"]  # detection time is measured


def test_after_a_failover_the_guards_protect_the_new_primary(tmp_path: Path) -> None:
    g, world, endpoints, _ = guards(tmp_path)
    world.dbs["east"]["up"] = False
    endpoints.down.add("east")
    for _ in range(3):
        g["us-east-2"].cycle()
        g["us-west-2"].cycle()
    assert g["us-west-2"].ports.state.load().roles["west"] is Role.PRIMARY
    world.dbs["east"].update(up=True, recovery=True)  # east is back, as a standby
    endpoints.down = {"west"}
    endpoints.probed.clear()
    assert CycleKind.OWN_REGION in kinds(cycles(g["us-west-2"], 1))
    g["us-east-1"].cycle()
    assert endpoints.probed == ["west"]  # east's guard now judges west


def test_an_interrupted_plan_is_resumed_by_its_target_regions_guard_only(
        tmp_path: Path) -> None:
    g, world, _, _ = guards(tmp_path)
    ports = g["us-west-2"].ports
    world.dbs["east"]["up"] = False
    world.crash_in = "route"  # the function running the plan dies before `route`
    plan = plans.failover(ports.topology, plans.Observation(
        ports.state.load(), {r: ports.database.status(r) for r in world.dbs}))
    with contextlib.suppress(SimulatedCrash):
        Executor(ports, sleep=lambda _: None).run(plan)
    assert g["us-east-2"].cycle().kind is CycleKind.PLAN_ELSEWHERE  # the witness leaves it
    assert world.calls.count("route") == 1
    resumed = g["us-west-2"].cycle()
    assert resumed.kind is CycleKind.RESUMED
    assert world.route is not None and world.route.writer == "west"
    assert world.calls.count("promote") == 1  # resumed, not repeated


def test_an_unreachable_arbiter_decides_nothing_and_alerts_nobody(tmp_path: Path) -> None:
    g, _world, endpoints, obs = guards(tmp_path)
    endpoints.down.add("east")
    obs.fail = True
    for _ in range(3):
        results = g["us-west-2"].run(0)  # one cycle: the failure is logged, not raised
        assert results[0].kind is CycleKind.WATCHING and "cycle failed" in results[0].detail
    assert g["us-west-2"].ports.state.load().epoch == 1
    assert not [e for e in g["us-west-2"].ports.journal.entries() if e["event"] == "alert"]


def test_what_the_plan_could_not_do_in_the_dead_region_is_done_when_it_is_back(
        tmp_path: Path) -> None:
    g, world, endpoints, _ = guards(tmp_path)
    world.dbs["east"]["up"] = False
    endpoints.down.add("east")
    real_call = world._call

    def east_unreachable(name: str) -> None:
        real_call(name)
        if name == "scale" and world.apps.get("west") == 2 and "east" in endpoints.down:
            raise ProviderError("east unreachable")

    world._call = east_unreachable  # type: ignore[method-assign]
    for _ in range(3):
        g["us-east-2"].cycle()
        g["us-west-2"].cycle()
    record = g["us-west-2"].ports.state.read_plan()
    assert record is not None and record.status is PlanStatus.DONE
    assert [u.step for u in record.unfinished] == ["retire"]
    assert world.apps["east"] == 2  # the dead region kept its processes
    endpoints.down.clear()  # east is back: its guard runs again
    world.dbs["east"].update(up=True, recovery=True)
    g["us-east-1"].cycle()
    assert world.apps["east"] == 0  # retired now
    after = g["us-east-1"].ports.state.read_plan()
    assert after is not None and after.unfinished == ()
    retried = [e for e in g["us-east-1"].ports.journal.entries()
               if e["event"] == "unfinished_retry"]
    assert [(e["step"], e["outcome"]) for e in retried] == [("retire", "done")]


def test_the_guard_journals_a_report_from_the_future_once_and_does_not_fail_over(
        tmp_path: Path) -> None:
    g, world, endpoints, obs = guards(tmp_path)
    world.dbs["east"]["up"] = False
    endpoints.down.add("east")
    ports = g["us-west-2"].ports
    # the witness's clock runs a minute fast: its DOWN report would vote for over two minutes
    obs.publish(VantageReport("us-east-2", "east", 5, 0, ports.clock.time() + 60.0,
                              ports.clock.time(), "fast clock"))
    assert cycles(g["us-west-2"], 4) == [CycleKind.WATCHING] * 4
    assert ports.state.load().epoch == 1
    rejected = [e for e in ports.journal.entries() if e["event"] == "observation_rejected"]
    assert len(rejected) == 1 and rejected[0]["vantage"] == "us-east-2"
    assert rejected[0]["ahead_s"] > POLICY.max_clock_skew_s
