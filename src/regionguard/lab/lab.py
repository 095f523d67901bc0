"""`regionguard lab up|status|down|fault`: real hosts on one machine.

Each site is a network namespace with its own PID namespace (`unshare --pid --fork
--mount-proc --kill-child`, whose first process is the site's init, site_init.py), so no signal
can cross from one site to another: a site's agent can only ever fence its own database. The
lab itself, run from the root namespaces, is the one exception, and only for its faults (kill
or freeze a site, as a power cut or a hung host would) and for tearing down. A loopback lab
(`--loopback`, any user) runs the same sites side by side on 127.77.0.x, without partitions
(hosts.py says what differs).

The lab's own record (`lab.json`) keeps how to find each site's init again (pid and start
time); a site's processes are found from it (hosts.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import psycopg

from regionguard.agent.site import Site
from regionguard.config import Topology, load_topology
from regionguard.errors import ConfigError, NotAvailable, ProviderError, UsageError
from regionguard.lab import pki
from regionguard.lab.hosts import (
    LoopbackHosts,
    NamespaceHosts,
    SiteHosts,
    hosts_for,
    namespace_leftovers,
    require_root,
    site_command,
)
from regionguard.lab.layout import CLIENT, LabLayout, LabSite, lab_topology, toml_text
from regionguard.providers.etcd.member import etcd_binary
from regionguard.providers.local import pgbin
from regionguard.providers.local.haproxy import haproxy_binary
from regionguard.providers.local.postgres.monitor import MONITOR_USER
from regionguard.providers.local.proctrack import is_dead, terminate

T = TypeVar("T")
Report = Callable[[str], None]
UP_TIMEOUT_S = 120.0


def _quiet(_: str) -> None:
    return None


def _gone(pid: int) -> bool:
    try:
        return is_dead(psutil.Process(pid))
    except psutil.NoSuchProcess:  # gone between the listing and the look
        return True


@dataclass
class Lab:
    layout: LabLayout
    topology: Topology  # the lab's (lab_topology), as the agents read it

    @classmethod
    def create(cls, root: Path, user: Topology, loopback: bool = False) -> Lab:
        layout = LabLayout.of(root, user, loopback)
        return cls(layout, lab_topology(user, layout))

    @classmethod
    def existing(cls, root: Path) -> Lab:
        layout_config = root.absolute() / "regionguard.toml"
        if not layout_config.exists():
            raise NotAvailable(f"no lab in {root.absolute()}; start one with `regionguard lab "
                               "up`")
        topology = load_topology(layout_config)
        return cls(LabLayout.of_lab(root, topology), topology)

    @property
    def hosts(self) -> SiteHosts:
        return hosts_for(self.layout.loopback)

    def require_root(self, what: str) -> None:
        """The namespaced lab needs root; the loopback lab runs as any user."""
        if not self.layout.loopback:
            require_root(what)

    # -- the record ----------------------------------------------------------------------------

    def _record(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.layout.record.read_text())
            return data
        except (FileNotFoundError, ValueError):
            return {"sites": {}}

    def _save(self, record: dict[str, Any]) -> None:
        self.layout.record.write_text(json.dumps(record, indent=1))

    # -- up ------------------------------------------------------------------------------------

    def up(self, report: Report = _quiet, timeout_s: float = UP_TIMEOUT_S) -> dict[str, Any]:
        self.require_root("up")
        etcd_binary(), haproxy_binary(), pgbin.bin_dir()  # one line each when missing
        layout = self.layout
        old = layout.root.exists() and any(layout.root.iterdir())
        if old and not (layout.record.exists() or layout.config.exists()):
            raise UsageError(f"--lab {layout.root}: the directory holds files that are not "
                             "a lab's; choose an empty or new directory")
        started = time.monotonic()
        self.hosts.prepare(layout, report)  # refuses a lab that is up (or left over)
        if old:
            shutil.rmtree(layout.root)  # an old lab's: a lab starts clean
        layout.root.mkdir(parents=True)
        layout.config.write_text(toml_text(self.topology))
        pki.make_site_pki(layout.tls_dir, {s.name: s.address for s in layout.arbiter_sites},
                          also=("127.0.0.1",) if layout.loopback else ())
        report(f"TLS: a CA and a certificate per site in {layout.tls_dir}")
        superuser = f"*:*:*:postgres:{os.urandom(18).hex()}\n"
        monitor = f"*:*:*:{MONITOR_USER}:{os.urandom(18).hex()}\n"
        for site in layout.arbiter_sites:  # every vantage point probes the primary's database
            Site(self.topology, site.name).install_db_secret(
                (superuser if site.kind == "region" else "") + monitor)
        record: dict[str, Any] = {"sites": {}}
        order = sorted(layout.sites, key=lambda s: (s.kind != "region",
                                                    s.name != self.topology.home_primary))
        for site in order:
            record["sites"][site.name] = self._start_site(site)
            self._save(record)
        report("sites started: " + ", ".join(s.name for s in order))
        self.wait_ready(timeout_s, report)
        report(f"lab up in {time.monotonic() - started:.1f} s; edge {layout.edge_url}")
        return self.status()

    def _start_site(self, site: LabSite) -> dict[str, Any]:
        return self.hosts.start_site(self.layout, site, site_command(self.layout, site.name))

    def wait_ready(self, timeout_s: float, report: Report = _quiet) -> None:
        """Until the edge reaches the primary's apps under the write lease."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            try:
                body = self.client(lambda: httpx.get(
                    f"{self.layout.edge_url}/health/route", timeout=1.0,
                    trust_env=False).json())
                if isinstance(body, dict) and body.get("holds_lease") and self.in_sync():
                    report(f"{body.get('region')} holds the write lease at epoch "
                           f"{body.get('epoch')}, reached through the edge; its standby "
                           "replicates" + (" in sync" if self.topology.replication.value
                                           == "sync" else ""))
                    return
                last = str(body)[:200]
            except (httpx.HTTPError, ValueError, ProviderError, psycopg.Error) as exc:
                last = str(exc)[:200]
            for name, info in self._record()["sites"].items():
                if self.hosts.init_of(info) is None:
                    raise ProviderError(f"lab site {name} exited during start; see "
                                        f"{self.layout.site_dir(name)}/*.log")
            time.sleep(0.5)
        raise ProviderError(f"the lab did not come up in {timeout_s:g} s ({last}); see "
                            f"{self.layout.root}/sites/*/*.log, then `regionguard lab down`")

    def in_sync(self) -> bool:
        """The standby replicates (in sync, with no degrade on record, for a sync topology):
        a lab is up when a failover could lose nothing."""
        store = Site(self.topology, "witness").store()
        live = self.client(store.load, timeout_s=10)
        if live.sync_degraded_lsn is not None:
            return False
        primary = live.primary
        db = Site(self.topology, primary).database(primary)
        standby = self.topology.other_region(primary)
        want = "sync" if self.topology.replication.value == "sync" else None

        def ask() -> bool:
            with psycopg.connect(db.dsn(), connect_timeout=2, autocommit=True) as conn:
                row = conn.execute("SELECT state, sync_state FROM pg_stat_replication WHERE "
                                   "application_name = %s", (standby,)).fetchone()
            return bool(row and row[0] == "streaming" and (want is None or row[1] == want))

        return bool(self.client(ask, timeout_s=10))

    # -- talking to it ---------------------------------------------------------------------------

    def client(self, fn: Callable[[], T], timeout_s: float = 30.0) -> T:
        """`fn()` from the client site (inside its network namespace, in the namespaced lab)."""
        return self.hosts.client(self.layout, fn, timeout_s)

    def enter_client(self) -> None:
        """Make the calling thread, for good, a thread of the client site."""
        self.hosts.enter_client(self.layout)

    # -- its processes -------------------------------------------------------------------------

    def init_of(self, name: str) -> psutil.Process | None:
        """The site's init (known by pid and start time: a reused pid is never taken for it)."""
        info = self._record()["sites"].get(name)
        return self.hosts.init_of(info) if info else None

    def processes(self, name: str) -> list[psutil.Process]:
        """Every process of site `name` (pids as this process sees them)."""
        return self.hosts.processes(self.layout, self.layout.site(name),
                                    self._record()["sites"].get(name))

    def pids(self, name: str) -> dict[str, list[int]]:
        """The site's processes by kind (root-namespace pids)."""
        kinds: dict[str, list[int]] = {"init": [], "etcd": [], "agent": [], "watchdog": [],
                                       "postgres": [], "apps": [], "front_door": [], "edge": []}
        init = self.init_of(name)
        for proc in self.processes(name):
            with contextlib.suppress(psutil.Error):
                cmd = proc.cmdline()
                text = " ".join(cmd)
                if init is not None and proc.pid == init.pid:
                    kinds["init"].append(proc.pid)
                elif cmd and cmd[0].endswith("etcd"):
                    kinds["etcd"].append(proc.pid)
                elif " agent --site" in text:
                    kinds["agent"].append(proc.pid)
                elif "_watchdog" in text:
                    kinds["watchdog"].append(proc.pid)
                elif proc.name() == "postgres" or "postgres:" in text:
                    kinds["postgres"].append(proc.pid)
                elif "uvicorn" in text:
                    kinds["apps"].append(proc.pid)
                elif "haproxy" in proc.name():
                    kinds["edge" if name == CLIENT else "front_door"].append(proc.pid)
        return kinds

    # -- status --------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The stable contract of `lab status --json` (docs/sites.md, "The lab")."""
        roles: dict[str, str] = {}
        error = None
        try:
            witness = Site(self.topology, "witness")
            live = self.client(lambda: witness.store().load(), timeout_s=10)
            roles = {r: role.value for r, role in live.roles.items()}
        except Exception as exc:
            error = f"etcd: {str(exc).splitlines()[0][:200]}"
        sites = []
        for site in self.layout.sites:
            pids = self.pids(site.name)
            front = (f"http://{site.address}:{self.topology.regions[site.name].ports.front_door}"
                     if site.kind == "region" else None)
            sites.append({
                "name": site.name, "kind": site.kind,
                "role": roles.get(site.name, site.kind if site.kind != "region" else None),
                "namespace": None if self.layout.loopback else site.namespace,
                "address": site.address,
                "running": bool(pids["init"]),
                "pids": {k: v for k, v in pids.items() if k != "init"},
                "front_door_url": front,
                "agent_url": None if site.kind == "client" else
                f"http://{site.address}:{self.topology.arbiter.agent_port}",
            })
        return {"lab": str(self.layout.root), "config": str(self.layout.config),
                "hosts": self.hosts.name, "edge_url": self.layout.edge_url,
                "client_namespace": None if self.layout.loopback
                else self.layout.site(CLIENT).namespace,
                "sites": sites, "error": error}

    # -- faults --------------------------------------------------------------------------------

    def kill(self, name: str) -> list[int]:
        """The host is lost: every process of the site at once, and its link. Every process
        is stopped (SIGSTOP) until a look finds none that is not, so none can start another
        between the look and the kill (in a PID namespace the kernel sees to that; on
        loopback this does), then all are killed."""
        stopped: dict[int, psutil.Process] = {}
        for _ in range(50):
            fresh = [p for p in self.processes(name) if p.pid not in stopped]
            if not fresh:
                break
            for proc in fresh:
                with contextlib.suppress(psutil.Error):
                    proc.suspend()
                stopped[proc.pid] = proc
        for proc in stopped.values():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        self.hosts.link(self.layout, self.layout.site(name), up=False)
        return list(stopped)

    def signal_site(self, name: str, sig: signal.Signals,
                    only: str | None = None) -> list[int]:
        """Freeze or thaw the site (or only its processes of kind `only`: agent, etcd)."""
        targets = self.pids(name)[only] if only else [p.pid for p in self.processes(name)]
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return targets

    def partition(self, name: str, peers: list[str], inbound: bool = True,
                  outbound: bool = True, ports: tuple[int, ...] = ()) -> None:
        """Cut site `name` from `peers` (only their `ports`' TCP traffic when given)."""
        self.hosts.partition(self.layout, self.layout.site(name),
                             [self.layout.site(p) for p in peers], inbound, outbound, ports)

    def heal(self, name: str) -> None:
        """Undo every fault of the site that can be undone: the partition, the link, a stopped
        etcd member or frozen process (a killed site is restarted by `lab up` only)."""
        site = self.layout.site(name)
        self.hosts.heal(self.layout, site)
        self.hosts.link(self.layout, site, up=True)
        for hold in self.layout.site_dir(name).glob("hold-*"):
            hold.unlink()
        self.signal_site(name, signal.SIGCONT)

    def start(self, name: str) -> None:
        """Start a killed site again (its link up, its init, etcd and agent): what a host
        that comes back does. Its old primary stays fenced (the agent's upkeep)."""
        if self.processes(name):
            raise UsageError(f"site {name} is running; `lab fault kill {name}` first")
        site = self.layout.site(name)
        self.hosts.link(self.layout, site, up=True)
        record = self._record()
        record["sites"][name] = self._start_site(site)
        self._save(record)

    def rejoin(self, region: str, by: str = "regionguard lab") -> None:
        """Ask `region`'s agent to rebuild its old primary as a standby (through etcd)."""
        store = Site(self.topology, "witness").store()
        self.client(lambda: store.request_rejoin(region, by, store.load().epoch))

    def stop_etcd(self, name: str) -> list[int]:
        """Lose the site's etcd member (its init keeps it stopped until `heal`)."""
        (self.layout.site_dir(name) / "hold-etcd").touch()
        return [p for p in self.signal_site(name, signal.SIGKILL, only="etcd")]

    # -- down ------------------------------------------------------------------------------------

    def down(self, report: Report = _quiet) -> dict[str, Any]:
        """Stop every process, remove every namespace (their veths and nftables tables go with
        them) and the lab's files; prove nothing is left."""
        self.require_root("down")
        record = self._record()
        stopped = []
        for name in [s.name for s in self.layout.sites]:
            init = self.init_of(name)
            self.signal_site(name, signal.SIGCONT)  # a frozen site cannot stop
            if init is not None:
                with contextlib.suppress(psutil.Error):
                    init.terminate()
        deadline = time.monotonic() + 30
        for name in [s.name for s in self.layout.sites]:
            while self.processes(name) and time.monotonic() < deadline:
                time.sleep(0.1)
            left = self.processes(name)
            stopped.append(name)
            if left:
                terminate(left, grace_s=2)
        stopped_pids = self.hosts.teardown(self.layout, record["sites"].values())
        for site in self.layout.arbiter_sites:
            shutil.rmtree(Site(self.topology, site.name).data_root, ignore_errors=True)
        survivors = [pid for pid in stopped_pids if not _gone(pid)]
        if self.layout.root.exists():
            shutil.rmtree(self.layout.root)
        report(f"lab down: {len(stopped)} sites stopped"
               + ("" if self.layout.loopback else ", namespaces removed"))
        return {"stopped": stopped, "survivors": survivors,
                "namespaces_left": self.hosts.leftovers(self.layout)}


def down_anything(root: Path, report: Report = _quiet) -> dict[str, Any]:
    """`lab down`, also for a namespaced lab whose files are gone (a crash): whatever
    namespaces and processes of a lab are left are removed."""
    try:
        lab = Lab.existing(root)
    except (NotAvailable, ConfigError):  # no lab's files, or a topology that cannot be read:
        pass  # whatever of a lab is left is found by its processes' mark and its namespaces
    else:
        return lab.down(report)
    loopback = LabLayout(root.absolute(), (), loopback=True)
    killed = LoopbackHosts().teardown(loopback, [])  # a loopback lab's, by their mark
    left = LoopbackHosts().leftovers(loopback)
    try:
        namespaced_left = namespace_leftovers()
    except NotAvailable:  # no iproute2 here: no namespaced lab either
        namespaced_left = []
    if namespaced_left:  # a namespaced lab's: only root can remove them
        require_root("down")
        killed += NamespaceHosts().teardown(LabLayout(root.absolute(), ()), [])
        left += namespace_leftovers()
    if not left and (root / "regionguard.toml").exists():  # a lab's files, unreadable: gone
        shutil.rmtree(root, ignore_errors=True)
    return {"stopped": [], "survivors": [], "killed": killed, "namespaces_left": left}
