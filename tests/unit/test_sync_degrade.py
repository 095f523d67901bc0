"""Losing the sync standby, with Patroni's `/sync` semantics.

`degrade` is decided by the same threshold and quorum as any verdict (the standby's database
probed directly and the primary's replication view of it, not one prober alone), records where
the primary went on alone (its LSN, in the state store, so a restarted controller knows), and
from then on the standby is no candidate for an automatic failover at all, however far it has
replayed: WAL that reached it after the degrade point says nothing about the last write the
primary acknowledged alone. Only `failover --force` goes ahead, with the loss on record. The
record goes only once sync is on again and the standby confirmed it; `block` never degrades."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from regionguard.errors import UnsafeOperation
from regionguard.orchestrator import plans
from regionguard.orchestrator.controller import Action, Controller
from regionguard.orchestrator.executor import Executor
from regionguard.orchestrator.ports import Ports

from .fakes import ScriptedProber, make_ports, topology

pytestmark = pytest.mark.unit


def probers(west_db: list[bool], west_replication: list[bool] | None = None,
            east_db: list[bool] | None = None) -> list[ScriptedProber]:
    """The local world's probers: west's database directly, the primary's replication view
    of west (the same outcomes unless told otherwise), and the apps."""
    replication = list(west_db) if west_replication is None else west_replication
    return [ScriptedProber("postgres", {"west": list(west_db), "east": east_db or []}),
            ScriptedProber("replication", {"west": replication}),
            ScriptedProber("http", {"east": list(east_db or [])})]


def actions(controller: Controller, ticks: int) -> list[Action]:
    return [d.action for _ in range(ticks) for d in controller.tick()]


def tick_until(controller: Controller, done: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Tick until `done` (a sync restore finishes off the tick's thread), with a deadline."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "condition not reached"
        controller.tick()
        time.sleep(0.005)


def told(ports: Ports, event: str) -> list[dict[str, Any]]:
    return [e for e in ports.journal.entries() if e["event"] == event]


def test_degrade_is_recorded_with_its_lsn_and_cleared_only_once_sync_is_confirmed(
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
    # caught up past the degrade point, but the primary does not confirm it as its sync
    # standby yet: sync is on, the record stays
    world.dbs["west"]["lsn"] = 520
    world.sync_confirms = False
    tick_until(restarted, lambda: bool(told(ports, "sync_change_failed")))
    assert ports.state.load().sync_degraded_lsn == 500
    world.sync_confirms = True  # confirmed: every write acknowledged alone is on it now
    tick_until(restarted, lambda: bool(told(ports, "restore_sync")))
    assert ports.state.load().sync_degraded_lsn is None
    assert told(ports, "restore_sync")[0]["lsn"] == 500  # the primary's LSN it confirmed
    assert world.calls.index("set_sync") < world.calls.index("confirm_sync")


def test_one_failing_prober_does_not_degrade_sync(tmp_path: Path) -> None:
    """A standby whose own database probe fails while the primary still sees it stream (a
    slow prober, a probe path cut) keeps the primary waiting: no quorum, no degrade."""
    ports, world = make_ports(tmp_path, probers=probers([False] * 10, [True] * 10))
    world.dbs["east"]["lsn"] = 500
    seen = actions(Controller(ports), 8)
    assert Action.DEGRADE_SYNC not in seen and "set_sync" not in world.calls
    assert ports.state.load().sync_degraded_lsn is None


@pytest.mark.parametrize("replayed", [450, 600], ids=["behind", "past-the-degrade-point"])
def test_a_degraded_standby_is_refused_however_far_it_replayed_unless_forced(
        tmp_path: Path, replayed: int) -> None:
    """The issue's reproduction: a frozen standby's socket buffer carried it past the degrade
    point, not to the last acknowledged commit; 28 and 34 acknowledged writes were lost."""
    ports, world = make_ports(tmp_path)
    ports.state.set_sync_degraded(500)
    world.dbs["east"]["up"] = False
    world.dbs["west"]["lsn"] = replayed
    obs = plans.Observation(ports.state.load(),
                            {r: ports.database.status(r) for r in world.dbs})
    with pytest.raises(UnsafeOperation, match=r"degraded at LSN 0/1F4 .* may lack acknowledged"):
        plans.failover(ports.topology, obs, primary_confirmed_down=True)  # automatic
    with pytest.raises(UnsafeOperation, match="use --force to accept losing them"):
        plans.failover(ports.topology, obs)  # a person without --force
    forced = plans.failover(ports.topology, obs, force=True)
    assert forced.warnings and forced.warnings[0].startswith("acknowledged writes may be lost")
    Executor(ports, sleep=lambda _: None).run(forced)
    [warned] = [e for e in ports.journal.entries() if e["event"] == "rpo_warning"]
    assert warned["degraded_lsn"] == "0/1F4" and warned["standby_lsn"] == f"0/{replayed:X}"
    assert world.route is not None and world.route.writer == "west"


def test_a_primary_lost_after_its_standby_is_restarted_in_place_not_failed_over(
        tmp_path: Path) -> None:
    """Sync degraded, then the primary's region dies: the controller alerts and restarts the
    primary's database and apps where they are, as it does when nothing is eligible."""
    ports, world = make_ports(tmp_path, probers=probers([True] * 20, east_db=[False] * 20))
    ports.state.set_sync_degraded(500)
    world.dbs["east"]["up"] = False
    world.apps["east"] = 0
    seen = actions(Controller(ports), 5)
    assert Action.FAILOVER in seen  # the verdict asked for one ...
    assert "promote" in world.calls and world.writable() == ["east"]  # ... east restarted
    assert ports.state.load().primary == "east" and ports.state.load().epoch == 1
    assert world.apps["east"] == 2  # its apps too
    events = [e["event"] for e in ports.journal.entries()]
    assert "alert" in events and "restart_in_place" in events and "plan" not in events


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
    assert "confirm_sync" in world.calls  # and only once the primary confirmed it


def test_block_clears_a_stale_degrade_record_once_the_standby_confirms_sync(
        tmp_path: Path) -> None:
    """A record from before `block` was chosen (or from a failover's promote) must not refuse
    failover forever: block never degrades, but it restores like degrade does."""
    topo = topology(failover={"sync_standby_lost": "block"})
    ports, world = make_ports(tmp_path, topo=topo, probers=probers([True] * 10))
    ports.state.set_sync_degraded(500)
    world.dbs["east"]["lsn"] = 520
    world.dbs["west"].update(lsn=520, streaming=True)
    world.sync_standby["east"] = None  # a record from a failover: the new primary waits for none
    controller = Controller(ports)
    tick_until(controller, lambda: bool(told(ports, "restore_sync")))
    assert ports.state.load().sync_degraded_lsn is None and world.sync_standby["east"] == "west"


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
    assert Action.DEGRADE_SYNC in seen and world.sync_standby["east"] is None
    assert len(told(ports, "degrade_sync")) == 1  # decided each tick, told once
    assert ports.state.load().sync_degraded_lsn == 400  # the older point stays on record


def test_a_restore_that_was_not_confirmed_does_not_keep_the_primary_waiting_on_a_lost_standby(
        tmp_path: Path) -> None:
    """The review's case: sync turned on for a restore, the standby's confirmation did not
    come (the record stands), then the standby is lost. Nothing remembered that sync is
    "off": the primary's own setting is what counts, so the wait is turned off again."""
    ports, world = make_ports(tmp_path, probers=probers([True] * 6 + [False] * 10))
    ports.state.set_sync_degraded(500)
    world.dbs["east"]["lsn"] = 520
    world.dbs["west"].update(lsn=520, streaming=True)
    world.sync_standby["east"] = None
    world.sync_confirms = False  # sync goes on, the standby never confirms
    controller = Controller(ports)
    tick_until(controller, lambda: bool(told(ports, "sync_change_failed")))
    assert world.sync_standby["east"] == "west" and ports.state.load().sync_degraded_lsn == 500
    world.dbs["west"]["up"] = False  # now the standby is lost
    tick_until(controller, lambda: world.sync_standby["east"] is None)
    assert ports.state.load().sync_degraded_lsn == 500  # the first degrade point stays


def test_a_degrade_written_while_a_restore_confirmed_is_not_erased(tmp_path: Path) -> None:
    """Compare-and-clear: the record goes only if it is still the one the restore saw."""
    ports, _ = make_ports(tmp_path)
    ports.state.set_sync_degraded(500)
    assert ports.state.note_sync_degraded(700) == 500  # the first point stands
    ports.state.set_sync_degraded(800)  # a new primary's own record, meanwhile
    assert ports.state.clear_sync_degraded(500) is False
    assert ports.state.load().sync_degraded_lsn == 800
    assert ports.state.clear_sync_degraded(800) is True
