"""Three self-managed sites on loopback, one 127.0.0.x address each (the embedded shape of the
lab): a real etcd member per site, and `regionguard agent --site NAME` per site as a process
of its own, which creates and runs its site's PostgreSQL, apps and front door. The harness
only starts agents and, as the fault, kills or freezes one site's processes; it never acts on
a site's database on the agents' behalf."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import psycopg

from regionguard.agent.dataplane import SiteDataPlane
from regionguard.agent.site import Site
from regionguard.config import Topology, load_topology, parse_topology
from regionguard.lab.layout import sample_topology, toml_text
from regionguard.providers.etcd.state import EtcdStateStore
from regionguard.providers.local.netutil import free_port
from regionguard.providers.local.proctrack import ProcessRef, terminate

from .etcd_helpers import SITES, EtcdCluster, etcd_cluster
from .sandbox_helpers import wait_for

TTL_S = 4


def loopback_topology(cluster: EtcdCluster, state_dir: Path,
                      replication: str = "sync") -> Topology:
    """The lab's sample topology on loopback: a 127.0.0.x host per site, free ports, the
    test's etcd members."""
    data = tomllib.loads(sample_topology(replication))
    data["state_dir"] = str(state_dir)
    for region in ("east", "west"):
        host = SITES[region]
        taken: set[int] = set()
        for _ in range(3):
            taken.add(free_port(host, taken))
        db, front_door, apps = sorted(taken)
        data["regions"][region].update(host=host, ports={"db": db, "front_door": front_door,
                                                         "apps": apps})
    data["witness"] = {"name": "witness", "host": SITES["witness"]}
    data["arbiter"].update(kind="etcd", members=cluster.client_urls)
    assert data["arbiter"]["lease_ttl_s"] == TTL_S
    return parse_topology(data, "the loopback sites")


@dataclass
class Sites:
    topology: Topology
    config: Path
    etcd: EtcdCluster
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def site(self, name: str) -> Site:
        return Site(self.topology, name)

    def store(self, nearest: str = "witness") -> EtcdStateStore:
        return Site(self.topology, nearest).store()

    def start_agent(self, name: str) -> None:
        log = self.site(name).root / "agent.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            self.agents[name] = subprocess.Popen(
                [sys.executable, "-m", "regionguard", "-c", str(self.config), "agent",
                 "--site", name], stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
                env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()})

    def watchdog(self, name: str) -> ProcessRef | None:
        try:
            return ProcessRef.from_dict(json.loads(
                (self.site(name).root / "agent" / "watchdog.pid").read_text()))
        except (OSError, ValueError):
            return None

    def processes(self, name: str) -> list[psutil.Process]:
        """Every process of site `name`: its agent, watchdog, PostgreSQL, apps, front door
        (its etcd member is the etcd cluster's)."""
        procs: list[psutil.Process] = []
        agent = self.agents.get(name)
        if agent is not None and agent.poll() is None:
            procs.append(psutil.Process(agent.pid))
        ref = self.watchdog(name)
        if ref is not None and (p := ref.process()) is not None:
            procs.append(p)
        site = self.site(name)
        if site.is_region:
            procs += site.database(name).processes()
            pids = SiteDataPlane(site).pids()
            procs += [psutil.Process(pid) for pid in pids["apps"] + pids["front_door"]
                      if psutil.pid_exists(pid)]
        return procs

    def signal_site(self, name: str, sig: signal.Signals) -> None:
        """The fault: every process of the site at once (a host lost, or frozen)."""
        for proc in self.processes(name):
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        if sig == signal.SIGKILL and name in self.agents:
            self.agents[name].wait(5)

    def holds_route(self, region: str) -> dict[str, object] | None:
        try:
            r = httpx.get(f"{self.site(region).front_door_url(region)}/health/route",
                          timeout=0.5, trust_env=False)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    def stop(self) -> list[int]:
        """Every process of every site, agents first (so none restarts anything)."""
        left: list[int] = []
        for proc in self.agents.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        for name in self.topology.sites:
            for proc in self.processes(name):
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signal.SIGCONT)
            site = self.site(name)
            ref = self.watchdog(name)
            if ref is not None and (p := ref.process()) is not None:
                left += terminate([p], grace_s=3)
            if site.is_region:
                left += SiteDataPlane(site).stop()
                site.database(name).remove()
                left += [p.pid for p in site.database(name).processes()]
                shutil.rmtree(site.data_root, ignore_errors=True)
        return left


@contextlib.contextmanager
def three_sites(tmp_path: Path, replication: str = "sync") -> Iterator[Sites]:
    """etcd on three addresses, the shared database secret on every site; the
    agents are started by the test (east first)."""
    with etcd_cluster(tmp_path / "etcd") as cluster:
        config = tmp_path / "regionguard.toml"
        config.write_text(toml_text(loopback_topology(cluster, tmp_path / "state", replication)))
        sites = Sites(load_topology(config), config, cluster)
        secret = f"*:*:*:postgres:{uuid.uuid4().hex}\n"
        for name in sites.topology.sites:  # the witness probes the primary's database too
            sites.site(name).install_db_secret(secret)
        try:
            yield sites
        finally:
            left = sites.stop()
            assert not left, f"processes left behind: {left}"


class EdgeClient:
    """A client load through an edge that follows each region's /health/route (what an edge
    HAProxy or DNS failover records do): every write goes to the one region that says it holds
    the write lease. Records what was acknowledged, and by whom, on the client's clock."""

    def __init__(self, sites: Sites) -> None:
        self.sites = sites
        self.acked: list[tuple[float, str, str]] = []  # (time, request id, region)
        self.failed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.http = httpx.Client(timeout=1.0, trust_env=False)

    def _writer(self) -> str | None:
        for region in self.sites.topology.regions:
            if self.sites.holds_route(region) is not None:
                return region
        return None

    def _loop(self) -> None:
        n = 0
        writer = None
        while not self.stop.wait(0.02):
            writer = writer or self._writer()
            if writer is None:
                self.failed += 1
                continue
            n += 1
            rid = f"edge-{n}"
            try:
                r = self.http.post(f"{self.sites.site(writer).front_door_url(writer)}/orders",
                                   json={"request_id": rid, "customer": "c", "item": "i",
                                         "quantity": 1})
                if r.status_code == 201:
                    self.acked.append((time.monotonic(), rid, str(r.json()["region"])))
                    continue
            except httpx.HTTPError:
                pass
            self.failed += 1
            writer = None  # ask the edge again

    def __enter__(self) -> EdgeClient:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.http.close()


def wait_started(sites: Sites) -> None:
    wait_for("east to hold the write lease behind its front door",
             lambda: sites.holds_route("east") is not None, timeout_s=60, every_s=0.1)
    east = sites.site("east").database("east")

    def west_is_sync() -> bool:
        try:
            with east.connect(statement_timeout_ms=1000) as conn:
                row = conn.execute("SELECT count(*) FROM pg_stat_replication WHERE "
                                   "application_name = 'west' AND sync_state = 'sync'"
                                   ).fetchone()
                return bool(row and row[0])
        except psycopg.Error:
            return False

    if sites.topology.replication.value == "sync":
        wait_for("west to be east's sync standby", west_is_sync, timeout_s=60)
