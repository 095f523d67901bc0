"""Failback: the writer keeps a working fencing token while the home region is rebuilt, and a
writer that is already home still gets its standby rebuilt (the campaign found both)."""

from __future__ import annotations

from pathlib import Path

import pytest

from regionguard.errors import UsageError
from regionguard.orchestrator import plans
from regionguard.orchestrator.executor import Executor

from .fakes import World, make_ports

pytestmark = pytest.mark.unit


def observe(ports, world: World) -> plans.Observation:  # type: ignore[no-untyped-def]
    return plans.Observation(ports.state.load(), {r: ports.database.status(r) for r in world.dbs})


def test_every_route_a_failback_sets_carries_the_token_its_writer_holds(tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False
    ex = Executor(ports, sleep=lambda _: None)
    ex.run(plans.failover(ports.topology, observe(ports, world)))
    world.routes.clear()
    ex.run(plans.failback(ports.topology, observe(ports, world)))
    assert world.route is not None and world.route.writer == "east"
    # before the promote the writer is still west, holding epoch 2 (the plan claimed 3): a
    # route carrying 3 would have every write refused until the promote
    assert world.routes and all(held == table.epoch for table, held in world.routes
                                if held is not None), world.routes


def test_a_writer_back_home_gets_its_standby_rebuilt(tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    ex = Executor(ports, sleep=lambda _: None)
    world.dbs["east"]["up"] = False
    ex.run(plans.failover(ports.topology, observe(ports, world)))  # east -> west
    world.dbs["east"].update(up=True, recovery=True)  # east rebuilt by hand, say, and
    ports.state.set_sync_degraded(None)  # confirmed as west's sync standby by the controller
    world.dbs["west"]["up"] = False  # then west dies: back to east
    ex.run(plans.failover(ports.topology, observe(ports, world)))
    assert ports.state.load().primary == "east" and not world.dbs["west"]["up"]

    plan = plans.failback(ports.topology, observe(ports, world))
    assert [s.name for s in plan.steps] == ["rejoin", "catch_up", "stamp", "route"]
    assert "rebuild west" in plan.reason
    ex.run(plan)
    assert world.dbs["west"]["up"] and world.dbs["west"]["recovery"]
    assert world.writable() == ["east"] and ports.state.load().primary == "east"
    # the plan claimed an epoch: the state store, the database and the route all hold it,
    # or every write (checked against the database's token) would be turned away
    live = ports.state.load()
    assert world.route is not None and world.route.writer == "east"
    assert live.epoch == world.dbs["east"]["epoch"] == world.route.epoch

    with pytest.raises(UsageError, match="already the primary and west its standby"):
        plans.failback(ports.topology, observe(ports, world))
