"""Losing the sync standby: `degrade` records where the primary went on alone (its LSN, in the
state store, so a restarted controller knows), failover refuses a standby that has not
replayed past that point unless forced (and then says so in the journal), sync comes back only
once the standby has caught up, and `block` never degrades."""

from __future__ import annotations

from pathlib import Path

import pytest

from regionguard.errors import UnsafeOperation
from regionguard.orchestrator import plans
from regionguard.orchestrator.controller import Action, Controller
from regionguard.orchestrator.executor import Executor

from .fakes import ScriptedProber, make_ports, topology


def probers(west_db: list[bool]) -> list[ScriptedProber]:
    return [ScriptedProber("postgres", {"west": west_db}), ScriptedProber("http", {})]


def actions(controller: Controller, ticks: int) -> list[Action]:
    return [d.action for _ in range(ticks) for d in controller.tick()]


def test_degrade_is_recorded_with_its_lsn_and_restored_only_once_caught_up_after_a_restart(
        tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path, probers=probers([False] * 4 + [True] * 40))
    world.dbs["east"]["lsn"] = 500
    world.dbs["west"]["up"] = False  # the sync standby is lost
    seen = actions(Controller(ports), 4)
    assert Action.DEGRADE_SYNC in seen and "set_sync" in world.calls
    assert ports.state.load().sync_degraded_lsn == 500  # on record, not in memory
    degrade = next(e for e in ports.journal.entries() if e["event"] == "degrade_sync")
    assert degrade["lsn"] == 500
    # the controller restarts; the standby is back but has replayed only up to 400
    world.dbs["west"].update(up=True, recovery=True, lsn=400, streaming=True)
    restarted = Controller(ports)
    assert Action.RESTORE_SYNC not in actions(restarted, 8)
    assert ports.state.load().sync_degraded_lsn == 500
    world.dbs["west"]["lsn"] = 520  # caught up past the degrade point
    assert Action.RESTORE_SYNC in actions(restarted, 3)
    assert ports.state.load().sync_degraded_lsn is None


def test_failover_refuses_a_standby_behind_the_degrade_point_unless_forced(
        tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    ports.state.set_sync_degraded(500)
    world.dbs["east"]["up"] = False
    world.dbs["west"]["lsn"] = 450
    obs = plans.Observation(ports.state.load(),
                            {r: ports.database.status(r) for r in world.dbs})
    with pytest.raises(UnsafeOperation, match=r"degraded at LSN 0/1F4 .* replayed only 0/1C2"):
        plans.failover(ports.topology, obs, primary_confirmed_down=True)  # automatic: refused
    forced = plans.failover(ports.topology, obs, force=True)
    assert forced.warnings and "may be lost" in forced.warnings[0]
    Executor(ports, sleep=lambda _: None).run(forced)
    warned = [e for e in ports.journal.entries() if e["event"] == "rpo_warning"]
    assert len(warned) == 1 and "forced" in warned[0]["detail"]
    assert world.route is not None and world.route.writer == "west"


def test_a_standby_past_the_degrade_point_may_take_over_and_the_risk_is_on_record(
        tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    ports.state.set_sync_degraded(500)
    world.dbs["east"]["up"] = False
    world.dbs["west"]["lsn"] = 600
    obs = plans.Observation(ports.state.load(),
                            {r: ports.database.status(r) for r in world.dbs})
    plan = plans.failover(ports.topology, obs, primary_confirmed_down=True)
    assert plan.warnings and "forced" not in plan.warnings[0]


def test_block_never_degrades(tmp_path: Path) -> None:
    topo = topology(failover={"sync_standby_lost": "block"})
    ports, world = make_ports(tmp_path, topo=topo, probers=probers([False] * 10))
    world.dbs["west"]["up"] = False
    assert Action.DEGRADE_SYNC not in actions(Controller(ports), 8)
    assert "set_sync" not in world.calls and ports.state.load().sync_degraded_lsn is None


def test_a_rebuilt_standby_clears_the_degrade_record_only_once_it_replayed_past_it(
        tmp_path: Path) -> None:
    """Rejoining makes the pair sync again for new commits, but the writes acknowledged alone
    since the degrade live only on the primary until the rebuilt standby replays them: the
    record (and with it the refusal to fail over to that standby) stays until then."""
    ports, world = make_ports(tmp_path)
    ports.state.set_sync_degraded(500)
    world.dbs["east"]["lsn"] = 520
    world.dbs["west"].update(up=False)  # the standby is gone; the writer is home
    plan = plans.failback(ports.topology, plans.Observation(
        ports.state.load(), {r: ports.database.status(r) for r in world.dbs}))
    assert [s.name for s in plan.steps][:2] == ["rejoin", "catch_up"]
    world.dbs["west"]["lsn"] = 400  # rebuilt, still replaying
    seen: list[int | None] = []

    def replay(_: float) -> None:  # each catch_up poll: the record is still there
        seen.append(ports.state.load().sync_degraded_lsn)
        world.dbs["west"]["lsn"] += 40

    Executor(ports, sleep=replay).run(plan)
    assert seen == [500, 500, 500]  # 400, 440, 480 were not enough; 520 was
    assert ports.state.load().sync_degraded_lsn is None


def test_block_clears_a_stale_degrade_record_once_the_standby_replayed_past_it(
        tmp_path: Path) -> None:
    """A record from before `block` was chosen (or from a failover's promote) must not refuse
    failover forever: block never degrades, but it restores like degrade does."""
    topo = topology(failover={"sync_standby_lost": "block"})
    ports, world = make_ports(tmp_path, topo=topo, probers=probers([True] * 10))
    ports.state.set_sync_degraded(500)
    world.dbs["west"].update(lsn=520, streaming=True)
    assert Action.RESTORE_SYNC in actions(Controller(ports), 8)
    assert ports.state.load().sync_degraded_lsn is None


def test_a_standby_lost_while_a_degrade_record_stands_still_turns_the_sync_wait_off(
        tmp_path: Path) -> None:
    """The campaign (sync, seed 20): a switchover recorded its degrade point, the rejoined
    standby was killed before sync was restored, and the controller, seeing a record, did
    nothing while the primary waited for that standby: every commit blocked for good."""
    ports, world = make_ports(tmp_path, probers=probers([False] * 8))
    ports.state.set_sync_degraded(400)  # from the switchover's promote
    world.dbs["east"]["lsn"] = 520
    world.dbs["west"]["up"] = False
    seen = actions(Controller(ports), 6)
    assert seen.count(Action.DEGRADE_SYNC) == 1 and "set_sync" in world.calls
    assert ports.state.load().sync_degraded_lsn == 400  # the older point stays on record
