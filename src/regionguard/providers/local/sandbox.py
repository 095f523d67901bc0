"""The local world as a whole: `up` (idempotent, repairs) and `down`; its `status --json`
is `status.sandbox_status(sandbox)`, which reads the sandbox (never the reverse).

`up` reads live roles from state.json, never from the file's home roles, and never starts a
demoted primary as a primary: a region whose database is no longer a standby of the live primary
is left stopped until `failback` rebuilds it. Everything `up` starts is recorded with its
(pid, start time) so `down` stops exactly those processes and proves none is left.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regionguard.app import admin
from regionguard.app.migrate import migrate
from regionguard.config import Replication, Role, Strategy, Topology
from regionguard.errors import ConfigError, ProviderError
from regionguard.orchestrator.lsn import format_lsn
from regionguard.orchestrator.plans import steady_weights
from regionguard.orchestrator.ports import RouteTable
from regionguard.providers.local import pgbin
from regionguard.providers.local.haproxy import HAProxyFrontDoor, haproxy_binary
from regionguard.providers.local.netutil import free_port, require_free
from regionguard.providers.local.postgres import PostgresCluster
from regionguard.providers.local.private import runtime_dir
from regionguard.providers.local.processes import AppProcesses
from regionguard.providers.local.proctrack import ProcessRef, terminate
from regionguard.providers.local.state import LocalStateStore
from regionguard.providers.local.state_model import ports_of

Report = Callable[[str], None]
PLAN_WAIT_S = 60.0  # how long `up`/`down` wait for a running plan before refusing
SYNC_CONFIRM_S = 2.0  # a streaming standby confirms sync in milliseconds


def _quiet(_: str) -> None:
    return None


@dataclass
class DownResult:
    stopped: list[int] = field(default_factory=list)
    survivors: list[int] = field(default_factory=list)
    was_up: bool = True


class Sandbox:
    """One sandbox: a topology and the state dir that records what runs for it."""

    def __init__(self, topology: Topology, state_dir: Path | None = None) -> None:
        if topology.strategy is Strategy.BACKUP_RESTORE:
            raise ConfigError(
                'strategy: "backup-restore" runs in the aws world only; use pilot-light, '
                "warm-standby or active-active locally"
            )
        self.topology = topology
        self.state_dir = (state_dir or topology.state_dir).absolute()
        self.store = LocalStateStore(self.state_dir)
        self.frontdoor = HAProxyFrontDoor(topology, self.state_dir)

    # -- pieces built from state ------------------------------------------------------------

    def cluster(self, state: Mapping[str, Any], region: str) -> PostgresCluster:
        return PostgresCluster(
            name=region,
            root=pgbin.data_root(self.state_dir) / region,
            address=self.topology.regions[region].local.address,
            port=ports_of(state).regions[region].db,
            dbname=self.topology.app,
        )

    def clusters(self, state: Mapping[str, Any]) -> dict[str, PostgresCluster]:
        return {r: self.cluster(state, r) for r in self.topology.regions}

    def apps(self, state: Mapping[str, Any]) -> AppProcesses:
        return AppProcesses(
            self.state_dir,
            dsns={r: c.dsn() for r, c in self.clusters(state).items()},
            addresses={r: s.local.address for r, s in self.topology.regions.items()},
        )

    def roles(self, state: Mapping[str, Any]) -> dict[str, Role]:
        return {r: Role(v) for r, v in state["roles"].items()}

    def primary(self, state: Mapping[str, Any]) -> str:
        return next(r for r, role in self.roles(state).items() if role is Role.PRIMARY)

    def _initial_state(self) -> dict[str, Any]:
        taken: set[int] = set()

        def port(address: str) -> int:
            p = free_port(address, taken)
            taken.add(p)
            return p

        regions = {}
        for name, spec in self.topology.regions.items():
            addr = spec.local.address
            regions[name] = {
                "db": port(addr),
                "slots": [port(addr) for _ in range(self.topology.slots(name))],
            }
        front = self.topology.regions[self.topology.home_primary].local.address
        return {
            "app": self.topology.app,
            "epoch": 1,
            "roles": {n: s.home_role.value for n, s in self.topology.regions.items()},
            "ports": {"frontdoor": port(front), "regions": regions},
            "processes": {"apps": {}},
        }

    # -- up ---------------------------------------------------------------------------------

    def up(self, report: Report = _quiet, wait_s: float = 60.0,
           plan_wait_s: float = PLAN_WAIT_S) -> str:
        """Bring every piece up, or repair what is missing. Idempotent; returns the URL.

        Under the plan lock (a plan running now is waited for, up to PLAN_WAIT_S): repairing
        while a failover runs could restart the fenced primary as a primary. The state lock
        is held only while state changes, not while app processes start."""
        pgbin.bin_dir()
        haproxy_binary()
        with self.store.plan_lock_waiting(plan_wait_s, "bring the sandbox up"):
            admin.ensure_token(self.state_dir / "secrets")  # for DELETE and the canary
            with self.store.update() as state:
                if not state.get("ports"):
                    state.update(self._initial_state())
                    report(f"new sandbox in {self.state_dir}")
                self._up_databases(state, report)
                self._up_frontdoor(state, report)
                self._start_apps(state, report)
            self._await_apps(self.store.read(), report, wait_s)
            with self.store.update() as state:
                primary = self.primary(state)  # the engine's rule for who serves
                self.frontdoor.route(state, RouteTable(steady_weights(self.topology, primary),
                                                       primary, int(state["epoch"])))
                report(f"front door routes to {self.primary(state)} at epoch {state['epoch']}")
                return self.frontdoor.url(state)

    def _up_databases(self, state: dict[str, Any], report: Report) -> None:
        primary_name = self.primary(state)
        clusters = self.clusters(state)
        primary = clusters[primary_name]
        started = time.monotonic()
        for cluster in clusters.values():
            if not cluster.is_running():
                require_free(cluster.address, cluster.port, f"{cluster.name} database")
        if primary.exists():
            if primary.is_running():
                report(f"{primary_name}: PostgreSQL primary already running")
            primary.start()
        else:
            primary.create_primary()
        migrate(primary.dsn())
        report(f"{primary_name}: PostgreSQL primary on port {primary.port} "
               f"({time.monotonic() - started:.1f} s)")
        for name, cluster in clusters.items():
            if name == primary_name:
                continue
            started = time.monotonic()
            if cluster.exists() and not (cluster.data_dir / "standby.signal").exists():
                report(f"{name}: database is a demoted primary; left stopped until "
                       "`regionguard failback` rebuilds it as a standby")
                continue
            cluster.create_standby(primary)
            report(f"{name}: PostgreSQL hot standby on port {cluster.port} "
                   f"({time.monotonic() - started:.1f} s)")
        self._apply_sync(state, report)

    def _apply_sync(self, state: dict[str, Any], report: Report) -> None:
        if self.topology.replication is not Replication.SYNC:
            return
        clusters = self.clusters(state)
        primary_name = self.primary(state)
        standby_name = self.topology.other_region(primary_name)
        standby = clusters[standby_name].status()
        if standby.up or self.topology.failover.sync_standby_lost == "block":
            clusters[primary_name].set_sync_standby(standby_name)
            since = (state.get("sync_degraded") or {}).get("since_lsn")
            if since is None:
                report(f"{primary_name}: synchronous replication to {standby_name}")
                return
            try:  # the record goes only once the standby confirms it has every write
                confirmed = clusters[primary_name].confirm_sync(standby_name, SYNC_CONFIRM_S)
            except ProviderError:  # acknowledged alone: only on the primary until it streams
                report(f"{primary_name}: synchronous replication to {standby_name}; it has "
                       f"replayed {format_lsn(standby.lsn)} of {format_lsn(since)} written "
                       "without it, the controller records sync once it confirms")
                return
            state.pop("sync_degraded", None)
            report(f"{primary_name}: synchronous replication to {standby_name} (confirmed at "
                   f"{format_lsn(confirmed)})")
        else:
            lsn = clusters[primary_name].status().lsn
            clusters[primary_name].set_sync_standby(None)
            if lsn is not None:  # recorded, as the controller records a degrade
                state.setdefault("sync_degraded", {"since_lsn": lsn})
            report(f"{primary_name}: standby down, writing without a sync standby (degrade)")

    def _up_frontdoor(self, state: dict[str, Any], report: Report) -> None:
        current = state.get("processes", {}).get("haproxy")
        if current and ProcessRef.from_dict(current).alive():
            report("front door (HAProxy) already running")
            return
        state.setdefault("route", {})
        front = self.topology.regions[self.topology.home_primary].local.address
        require_free(front, state["ports"]["frontdoor"], "front door")
        self.frontdoor.start(state)
        report(f"front door (HAProxy) on {self.frontdoor.url(state)}")

    def _start_apps(self, state: dict[str, Any], report: Report) -> None:
        apps = self.apps(state)
        for region, role in self.roles(state).items():
            desired = self.topology.desired_processes(region, role)
            started = apps.scale(state, region, desired, self._port_mover(state))
            self.frontdoor.sync_probe_slots(state, region)
            if started:
                report(f"{region}: started app processes in slots {started}")

    def _await_apps(self, state: Mapping[str, Any], report: Report, wait_s: float) -> None:
        apps = self.apps(state)
        roles = self.roles(state)
        for region, role in roles.items():
            desired = self.topology.desired_processes(region, role)
            if desired:
                t0 = time.monotonic()
                apps.wait_ready(lambda: state, region, desired, wait_s)
                report(f"{region}: {desired} app processes ready "
                       f"({time.monotonic() - t0:.1f} s)")

    def _port_mover(self, state: dict[str, Any]) -> Callable[[str, int, int], None]:
        def moved(region: str, slot: int, port: int) -> None:
            addr = self.topology.regions[region].local.address
            for backend in ("app", f"probe_{region}"):
                self.frontdoor.runtime(
                    state, f"set server {backend}/{region}-{slot} addr {addr} port {port}"
                )
        return moved

    def scale(self, region: str, count: int) -> list[int]:
        """Run exactly `count` app processes in `region`; returns the slots started."""
        with self.store.update() as state:
            started = self.apps(state).scale(state, region, count, self._port_mover(state))
            self.frontdoor.sync_probe_slots(state, region)
            return started

    def route(self, table: RouteTable) -> None:
        with self.store.update() as state:
            self.frontdoor.route(state, table)

    # -- down -------------------------------------------------------------------------------

    def down(self, purge: bool = False, report: Report = _quiet,
             plan_wait_s: float = PLAN_WAIT_S) -> DownResult:
        """Stop every process this sandbox started and prove none is left; not in the middle
        of a plan (waited for, up to PLAN_WAIT_S)."""
        result = DownResult()
        if not self.store.exists():
            result.was_up = False
            if purge:
                self._purge()
            return result
        with self.store.plan_lock_waiting(plan_wait_s, "stop the sandbox"):
            self._down(result, report)
        if purge:
            self._purge()
        return result

    def _down(self, result: DownResult, report: Report) -> None:
        with self.store.update() as state:
            supervisor = state.get("processes", {}).get("supervisor")
            if supervisor:  # first, so it cannot restart the controller behind our back
                proc = ProcessRef.from_dict(supervisor).process()
                if proc:
                    result.stopped.append(proc.pid)
                    result.survivors += terminate([proc], grace_s=5)
            refs = self._recorded_refs(state)
            clusters = self.clusters(state)
            db_procs = [p for c in clusters.values() for p in c.processes()]
            procs = [p for p in (r.process() for r in refs) if p is not None]
            if not procs and not db_procs and not result.stopped:
                result.was_up = False
            result.stopped = [p.pid for p in procs] + [p.pid for p in db_procs]
            result.survivors += terminate(procs, grace_s=3)
            for name, cluster in clusters.items():
                if cluster.processes():
                    cluster.stop("fast", 10)
                    report(f"{name}: PostgreSQL stopped")
            result.survivors += [p.pid for c in clusters.values() for p in c.processes()]
            result.survivors += [r.pid for r in refs if r.alive()]
            state["processes"] = {"apps": {}}
            self.controller_file.unlink(missing_ok=True)

    def running(self) -> bool:
        """Any process this sandbox started still runs (its controller's supervisor, the
        controller, the front door, the apps, the databases)."""
        if not self.store.exists():
            return False
        state = self.store.read()
        return any(r.alive() for r in self._recorded_refs(state)) or any(
            c.processes() for c in self.clusters(state).values())

    def _recorded_refs(self, state: Mapping[str, Any]) -> list[ProcessRef]:
        procs = state.get("processes", {})
        refs = [ProcessRef.from_dict(procs[k]) for k in ("supervisor", "haproxy") if procs.get(k)]
        controller = self.controller_ref()
        if controller:
            refs.append(controller)
        for slots in procs.get("apps", {}).values():
            refs += [ProcessRef.from_dict(ref) for ref in slots.values()]
        return refs

    @property
    def controller_file(self) -> Path:
        return self.state_dir / "controller" / "controller.json"

    def controller_ref(self) -> ProcessRef | None:
        try:
            return ProcessRef.from_dict(json.loads(self.controller_file.read_text()))
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return None

    def start_supervisor(self, config: Path, report: Report = _quiet) -> ProcessRef:
        """Start the controller's supervisor unless it runs; it restarts the controller."""
        with self.store.update() as state:
            current = state.get("processes", {}).get("supervisor")
            if current and ProcessRef.from_dict(current).alive():
                report("controller supervisor already running")
                return ProcessRef.from_dict(current)
            logdir = self.state_dir / "controller"
            logdir.mkdir(parents=True, exist_ok=True)
            with open(logdir / "supervisor.log", "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "regionguard", "-c", str(config.absolute()),
                     "_supervise"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, cwd=Path.cwd(),
                )
            ref = ProcessRef.of(proc.pid)
            state.setdefault("processes", {})["supervisor"] = ref.as_dict()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # `up` returns once the controller really runs
            ctl = self.controller_ref()
            live = ctl.process() if ctl else None
            if live is not None and live.ppid() == ref.pid:
                report(f"controller started, pid {live.pid} "
                       f"({self.topology.failover.mode} failover)")
                return ref
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        raise ProviderError(
            f"the controller did not start; see {self.state_dir / 'controller'}/*.log"
        )

    def _purge(self) -> None:
        shutil.rmtree(runtime_dir(self.state_dir), ignore_errors=True)
        root = pgbin.data_root(self.state_dir)
        if root != self.state_dir and root.exists():
            shutil.rmtree(root)
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
