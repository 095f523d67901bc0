"""`regionguard lab up|status|down|fault`: real hosts on one machine.

Each site is a network namespace with its own PID namespace (`unshare --pid --fork
--mount-proc --kill-child`, whose first process is the site's init, site_init.py), so no signal
can cross from one site to another: a site's agent can only ever fence its own database. The
lab itself, run from the root namespaces, is the one exception, and only for its faults (kill
or freeze a site, as a power cut or a hung host would) and for tearing down.

The lab's own record (`lab.json`) keeps each site's `unshare` pid; a site's processes are
found through `/proc/*/ns/pid` (pids inside a site are namespace-local: never signalled from
here by those numbers).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from regionguard.agent.site import Site
from regionguard.config import Topology, load_topology
from regionguard.errors import NotAvailable, ProviderError, UsageError
from regionguard.lab import netns, pki
from regionguard.lab.layout import (
    BRIDGE,
    CLIENT,
    NETMASK,
    PREFIX,
    SWITCH,
    LabLayout,
    LabSite,
    lab_topology,
    toml_text,
)
from regionguard.providers.etcd.member import etcd_binary
from regionguard.providers.local import pgbin
from regionguard.providers.local.haproxy import haproxy_binary
from regionguard.providers.local.proctrack import ProcessRef, terminate

Report = Callable[[str], None]
UP_TIMEOUT_S = 120.0


def _quiet(_: str) -> None:
    return None


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise NotAvailable(f"`regionguard lab {what}` needs root (network and PID namespaces, "
                           "nftables); run it with sudo, or use the loopback sandbox "
                           "(`regionguard up`) as any user")


def leftovers() -> list[str]:
    return [ns for ns in netns.namespaces() if ns.startswith(f"{PREFIX}-")]


@dataclass
class Lab:
    layout: LabLayout
    topology: Topology  # the lab's (lab_topology), as the agents read it

    @classmethod
    def create(cls, root: Path, user: Topology) -> Lab:
        layout = LabLayout.of(root, user)
        return cls(layout, lab_topology(user, layout))

    @classmethod
    def existing(cls, root: Path) -> Lab:
        layout_config = root.absolute() / "regionguard.toml"
        if not layout_config.exists():
            raise NotAvailable(f"no lab in {root.absolute()}; start one with `regionguard lab "
                               "up`")
        topology = load_topology(layout_config)
        return cls(LabLayout.of(root, topology), topology)

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
        require_root("up")
        etcd_binary(), haproxy_binary(), pgbin.bin_dir()  # one line each when missing
        found = leftovers()
        if found:
            raise UsageError(f"a lab is up already, or left over from one that crashed "
                             f"({', '.join(found)}); run `regionguard lab down` first")
        layout = self.layout
        if layout.root.exists() and any(layout.root.iterdir()):
            if not (layout.record.exists() or layout.config.exists()):
                raise UsageError(f"--lab {layout.root}: the directory holds files that are not "
                                 "a lab's; choose an empty or new directory")
            shutil.rmtree(layout.root)  # an old lab's: a lab starts clean
        layout.root.mkdir(parents=True)
        layout.config.write_text(toml_text(self.topology))
        started = time.monotonic()
        netns.add_namespace(SWITCH)
        netns.add_bridge(SWITCH, BRIDGE)
        for site in layout.sites:
            netns.add_namespace(site.namespace)
            netns.plug(site.namespace, SWITCH, BRIDGE, site.switch_port, site.address, NETMASK)
        report(f"network: {len(layout.sites)} sites on {BRIDGE} in {SWITCH} "
               f"({time.monotonic() - started:.1f} s)")
        pki.make_site_pki(layout.tls_dir, {s.name: s.address for s in layout.arbiter_sites})
        report(f"TLS: a CA and a certificate per site in {layout.tls_dir}")
        secret = f"*:*:*:postgres:{os.urandom(18).hex()}\n"
        for site in layout.arbiter_sites:  # every vantage point probes the primary's database
            Site(self.topology, site.name).install_db_secret(secret)
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
        directory = self.layout.site_dir(site.name)
        directory.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        with open(directory / "init.log", "ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", site.namespace, "unshare", "--pid", "--fork",
                 "--mount-proc", "--kill-child", sys.executable, "-m", "regionguard", "-c",
                 str(self.layout.config), "_lab-init", "--site", site.name,
                 "--lab", str(self.layout.root)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
        return {"unshare": ProcessRef.of(proc.pid).as_dict()}

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
                if _unshare(info) is None:
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

    def client(self, fn: Callable[[], Any], timeout_s: float = 30.0) -> Any:
        """`fn()` from inside the client site's network namespace."""
        return netns.in_netns(self.layout.site(CLIENT).namespace, fn, timeout_s)

    # -- its processes -------------------------------------------------------------------------

    def init_of(self, name: str) -> psutil.Process | None:
        """The site's init: the child of the `unshare` the lab started (known by pid and
        start time: a reused pid is never taken for it)."""
        info = self._record()["sites"].get(name)
        unshare = _unshare(info) if info else None
        if unshare is None:
            return None
        with contextlib.suppress(psutil.Error):
            children = unshare.children()
            return children[0] if children else None
        return None

    def processes(self, name: str) -> list[psutil.Process]:
        """Every process in site `name`'s PID namespace (root-namespace handles)."""
        init = self.init_of(name)
        if init is None:
            return []
        try:
            ns = os.readlink(f"/proc/{init.pid}/ns/pid")
            if ns == os.readlink("/proc/self/ns/pid"):
                return []  # not a site's own namespace: never this host's processes
        except OSError:
            return []
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(OSError, psutil.Error):
                if os.readlink(f"/proc/{proc.pid}/ns/pid") == ns:
                    found.append(proc)
        return found

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
        """The stable contract of `lab status --json` (README, "The lab")."""
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
                "namespace": site.namespace, "address": site.address,
                "running": bool(pids["init"]),
                "pids": {k: v for k, v in pids.items() if k != "init"},
                "front_door_url": front,
            })
        return {"lab": str(self.layout.root), "config": str(self.layout.config),
                "edge_url": self.layout.edge_url,
                "client_namespace": self.layout.site(CLIENT).namespace,
                "sites": sites, "error": error}

    # -- faults --------------------------------------------------------------------------------

    def kill(self, name: str) -> list[int]:
        """The host is lost: every process of the site at once, and its link."""
        procs = self.processes(name)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        netns.set_port(SWITCH, self.layout.site(name).switch_port, up=False)
        return [p.pid for p in procs]

    def signal_site(self, name: str, sig: signal.Signals,
                    only: str | None = None) -> list[int]:
        """Freeze or thaw the site (or only its processes of kind `only`: agent, etcd)."""
        targets = self.pids(name)[only] if only else [p.pid for p in self.processes(name)]
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return targets

    def partition(self, name: str, peers: list[str], inbound: bool = True,
                  outbound: bool = True) -> None:
        addresses = [self.layout.site(p).address for p in peers]
        netns.partition(self.layout.site(name).namespace, addresses, inbound, outbound)

    def heal(self, name: str) -> None:
        """Undo every fault of the site that can be undone: the partition, the link, a stopped
        etcd member or frozen process (a killed site is restarted by `lab up` only)."""
        site = self.layout.site(name)
        netns.heal(site.namespace)
        netns.set_port(SWITCH, site.switch_port, up=True)
        for hold in self.layout.site_dir(name).glob("hold-*"):
            hold.unlink()
        self.signal_site(name, signal.SIGCONT)

    def start(self, name: str) -> None:
        """Start a killed site again (its link up, its init, etcd and agent): what a host
        that comes back does. Its old primary stays fenced (the agent's upkeep)."""
        if self.processes(name):
            raise UsageError(f"site {name} is running; `lab fault kill {name}` first")
        site = self.layout.site(name)
        netns.set_port(SWITCH, site.switch_port, up=True)
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
        require_root("down")
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
        for info in record["sites"].values():
            unshare = _unshare(info)
            if unshare is not None:
                terminate([unshare], grace_s=2)
        stopped_pids = _kill_namespaces()  # whatever still runs in a lab namespace
        for site in self.layout.arbiter_sites:
            shutil.rmtree(Site(self.topology, site.name).data_root, ignore_errors=True)
        survivors = [pid for pid in stopped_pids if psutil.pid_exists(pid)
                     and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        if self.layout.root.exists():
            shutil.rmtree(self.layout.root)
        report(f"lab down: {len(stopped)} sites stopped, namespaces removed")
        return {"stopped": stopped, "survivors": survivors, "namespaces_left": leftovers()}


def down_anything(root: Path, report: Report = _quiet) -> dict[str, Any]:
    """`lab down`, also for a lab whose files are gone (a crash): whatever namespaces and
    processes of a lab are left are removed."""
    require_root("down")
    try:
        return Lab.existing(root).down(report)
    except NotAvailable:
        pass
    killed = _kill_namespaces()
    return {"stopped": [], "survivors": [], "killed": killed, "namespaces_left": leftovers()}


def _unshare(info: dict[str, Any]) -> psutil.Process | None:
    """The site's `unshare` process, if the recorded one still runs (pid and start time)."""
    try:
        return ProcessRef.from_dict(info["unshare"]).process()
    except (KeyError, TypeError, ValueError):
        return None


def _kill_namespaces() -> list[int]:
    """SIGKILL every process left in a lab namespace, wait for them, remove the namespaces
    (their veths and nftables tables go with them); the pids that were killed."""
    killed: list[int] = []
    for ns in leftovers():
        for text in netns.run("ip", "netns", "pids", ns, check=False).split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(text), signal.SIGKILL)
                killed.append(int(text))
    procs = []
    for number in killed:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(number))
    psutil.wait_procs(procs, timeout=5)
    for ns in leftovers():
        netns.delete_namespace(ns)
    return killed
