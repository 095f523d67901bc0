"""An in-memory world implementing every port, for fast tests of the engine's policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regionguard.config import Topology, parse_topology
from regionguard.errors import ProviderError
from regionguard.orchestrator.approval import Approvals
from regionguard.orchestrator.guard import Guard
from regionguard.orchestrator.journal import Journal, MemorySink
from regionguard.orchestrator.ports import (
    ComputeStatus,
    DbStatus,
    FenceResult,
    Ports,
    ProbeKind,
    ProbeResult,
    RouteTable,
    VantageReport,
    VerifyResult,
)

from .file_state import LocalStateStore


class SimulatedCrash(BaseException):
    """Stands for SIGKILL of the process running the plan (not an error the engine handles)."""


def topology(**overrides: Any) -> Topology:
    data: dict[str, Any] = {
        "app": "orders",
        "regions": {"east": {"home_role": "primary"}, "west": {"home_role": "standby"}},
    }
    data.update(overrides)
    return parse_topology(data)


@dataclass
class World:
    dbs: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "east": {"up": True, "recovery": False, "epoch": 1, "lsn": 100},
        "west": {"up": True, "recovery": True, "epoch": 1, "lsn": 100},
    })
    apps: dict[str, int] = field(default_factory=lambda: {"east": 2, "west": 0})
    route: RouteTable | None = None
    # every route set, with the epoch its writer's database held then
    routes: list[tuple[RouteTable, int | None]] = field(default_factory=list)
    cut: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # step -> times to raise ProviderError
    crash_in: str | None = None  # raise SimulatedCrash the first time this call happens
    promote_planned: list[bool] = field(default_factory=list)
    notes: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    # regions whose database cannot be fenced (another host, unreachable): fence() reports
    # it incomplete and leaves the database as it is
    unfenceable: set[str] = field(default_factory=set)
    # whether the primary confirms its standby as synchronous (confirm_sync)
    sync_confirms: bool = True
    sync_standby: dict[str, str | None] = field(default_factory=lambda: {"east": "west"})

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.crash_in == name:
            self.crash_in = None
            raise SimulatedCrash(name)
        if self.fail.get(name, 0) > 0:
            self.fail[name] -= 1
            raise ProviderError(f"injected failure in {name}")

    def writable(self) -> list[str]:
        return [r for r, d in self.dbs.items() if d["up"] and not d["recovery"]]


class FakeDatabase:
    zero_loss_switchover = True
    stopped_writes_are_final = False  # as a managed switchover: the lease is waited out
    promotes_under_old_lease = False

    def __init__(self, w: World) -> None:
        self.w = w

    def status(self, region: str) -> DbStatus:
        d = self.w.dbs[region]
        if not d["up"]:
            return DbStatus(region, up=False)
        return DbStatus(region, up=True, in_recovery=d["recovery"], lsn=d["lsn"],
                        epoch=d["epoch"], lag_s=d.get("lag_s", 0.0), lag_bytes=0, timeline=1,
                        streaming=d.get("streaming", True) if d["recovery"] else None)

    def fence(self, region: str) -> FenceResult:
        self.w._call("fence")
        if region in self.w.unfenceable:
            return FenceResult(region, False, (), (f"{region}: host unreachable",))
        self.w.dbs[region]["up"] = False
        return FenceResult(region, True, ("stopped",))

    def promote(self, region: str, epoch: int, timeout_s: float, planned: bool = False) -> None:
        self.w._call("promote")
        self.w.promote_planned.append(planned)
        d = self.w.dbs[region]
        if not d["up"] and d["recovery"]:  # a dead standby: nothing answers pg_promote
            raise ProviderError(f"{region}: connection refused")
        d["up"] = True  # a stopped primary is started (rollback, a restart in place)
        d["recovery"] = False
        d["epoch"] = max(d["epoch"], epoch)

    def stop_writes(self, region: str, timeout_s: float) -> int:
        self.w._call("stop_writes")
        self.w.dbs[region]["up"] = False
        return int(self.w.dbs[region]["lsn"])

    def wait_replayed(self, region: str, lsn: int, timeout_s: float) -> int:
        self.w._call("wait_replayed")
        return int(self.w.dbs[region]["lsn"])

    def rebuild_as_standby(self, region: str, of: str, timeout_s: float) -> str:
        self.w._call("rebuild")
        self.w.dbs[region].update(up=True, recovery=True)
        return "pg_rewind"

    def set_sync_standby(self, primary: str, standby: str | None) -> bool:
        self.w._call("set_sync")
        changed = self.w.sync_standby.get(primary) != standby
        self.w.sync_standby[primary] = standby
        return changed

    def confirm_sync(self, primary: str, standby: str, timeout_s: float) -> int:
        """Confirmed only when the standby is the primary's sync standby, up, and has
        everything the primary has (as pg_stat_replication's `sync` and flush LSN say)."""
        self.w._call("confirm_sync")
        sb, pr = self.w.dbs[standby], self.w.dbs[primary]
        if (not self.w.sync_confirms or self.w.sync_standby.get(primary) != standby
                or not sb["up"] or sb["lsn"] < pr["lsn"]):
            raise ProviderError(f"{standby} not confirmed as synchronous standby")
        return int(pr["lsn"])

    def stamp_epoch(self, region: str, epoch: int) -> None:
        self.w._call("stamp")
        d = self.w.dbs[region]
        if not d["up"] or d["recovery"]:
            raise ProviderError(f"{region}: not a running primary")
        d["epoch"] = max(d["epoch"], epoch)


class FakeCompute:
    def __init__(self, w: World) -> None:
        self.w = w

    def scale(self, region: str, count: int) -> ComputeStatus:
        self.w._call("scale")
        self.w.apps[region] = count
        return ComputeStatus(region, count, 0)

    def status(self, region: str) -> ComputeStatus:
        return ComputeStatus(region, self.w.apps[region], self.w.apps[region])

    def wait_ready(self, region: str, at_least: int, timeout_s: float) -> ComputeStatus:
        self.w._call("await_ready")
        if not self.w.dbs[region]["up"]:
            raise ProviderError(f"{region}: apps not ready: their database is down")
        if self.w.apps[region] < at_least:
            raise ProviderError("not enough processes")
        return ComputeStatus(region, self.w.apps[region], self.w.apps[region])


class FakeTraffic:
    def __init__(self, w: World) -> None:
        self.w = w

    def cut(self, region: str) -> None:
        self.w._call("cut")
        self.w.cut.add(region)

    def route(self, table: RouteTable) -> None:
        self.w._call("route")
        self.w.route = table
        writer = self.w.dbs.get(table.writer or "")
        self.w.routes.append((table, writer["epoch"] if writer and writer["up"] else None))
        self.w.cut -= {r for r, wgt in table.weights.items() if wgt > 0}

    def shares(self) -> dict[str, float]:
        return {}

    def verify(self, timeout_s: float) -> VerifyResult:
        self.w._call("verify")
        route = self.w.route
        if route is None:
            return VerifyResult(False, None, None, 0.0, "no route")
        db = self.w.dbs[route.writer]
        ok = db["up"] and not db["recovery"] and db["epoch"] == route.epoch
        return VerifyResult(ok, route.writer, db["epoch"], 0.001)


class FakeNotifier:
    def __init__(self, w: World) -> None:
        self.w = w

    def notify(self, event: str, detail: Mapping[str, Any]) -> None:
        self.w.notes.append((event, detail))


def make_ports(tmp_path: Path, world: World | None = None, topo: Topology | None = None,
               probers: list[Any] | None = None) -> tuple[Ports, World]:
    world = world or World()
    topo = topo or topology()
    store = LocalStateStore(tmp_path / "state")
    with store.update() as data:
        data.update({"epoch": 1, "roles": {"east": "primary", "west": "standby"}})
    ports = Ports(
        topology=topo, database=FakeDatabase(world), compute=FakeCompute(world),
        traffic=FakeTraffic(world), probers=probers or [], notifier=FakeNotifier(world),
        state=store, journal=Journal(MemorySink()),
    )
    return ports, world


# the AWS world's sites by region, for guards on these fakes (the witness is us-east-2)
SITES = {"east": frozenset({"us-east-1"}), "west": frozenset({"us-west-2"})}


class MemoryObservations:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], VantageReport] = {}
        self.fail = False

    def publish(self, report: VantageReport) -> None:
        if self.fail:
            raise ProviderError("arbiter unreachable")
        self.items[(report.target, report.vantage)] = report

    def reports(self, target: str) -> list[VantageReport]:
        return [r for (t, _), r in self.items.items() if t == target]


class Endpoints:
    name = "endpoint"
    kind = ProbeKind.APPLICATION

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.probed: list[str] = []

    def probe(self, region: str, timeout_s: float) -> ProbeResult:
        self.probed.append(region)
        return ProbeResult(self.name, region, region not in self.down, 0.01)


class Sites:
    """The failover target's guard and the witness's, taking turns as the sites' agents do
    (orchestrator/guard.py: the one automatic path, shared with the AWS guards); east's
    database and endpoint are down from the start."""

    def __init__(self, ports: Ports, approvals: Approvals | None = None) -> None:
        self.ports = ports
        self.observations, endpoints = MemoryObservations(), Endpoints()
        endpoints.down.add("east")
        self.endpoints = endpoints
        self.approvals = approvals
        self.west = self._guard("us-west-2", "west")
        self.witness = self._guard("us-east-2", None)

    def _guard(self, site: str, home: str | None) -> Guard:
        return Guard(self.ports, self.observations, self.endpoints, site, home,
                     SITES.__getitem__, 5.0, 2.0, approvals=self.approvals)

    def restart_west(self) -> None:
        """West's agent restarts: a new guard, its verdicts rebuilt from the reports."""
        self.west = self._guard("us-west-2", "west")

    def tick(self, n: int) -> None:
        for _ in range(n):
            self.witness.cycle()
            self.west.cycle()

    def events(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.ports.journal.entries() if e["event"] == event]


def failed_over_journal(tmp_path: Path) -> tuple[list[dict[str, Any]], str]:
    """The journal of an automatic failover on fake ports (east's database lost), and the
    plan's id: what the reports are made from."""
    ports, world = make_ports(tmp_path)
    world.dbs["east"]["up"] = False
    Sites(ports).tick(10)
    entries = ports.journal.entries()
    return entries, next(e["plan"] for e in entries if e["event"] == "plan")
