"""The first process of a lab site's PID namespace (`regionguard _lab-init --site NAME`); on
a loopback lab, the first process of a site, made a child subreaper.

It is the site's init: it reaps every orphan, runs the site's long-lived processes as its
children (the etcd member and the agent; in the client site, the edge) and restarts the agent
when it dies, as systemd does on a real host. A member the lab stopped on purpose (the
"lose an etcd member" fault) stays stopped while its hold file exists. On SIGTERM it stops the
agent first (so nothing restarts), then the site's data plane and database, then etcd, and
exits; the kernel kills whatever is left in the namespace with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from regionguard.agent.dataplane import SiteDataPlane
from regionguard.agent.site import Site
from regionguard.config import Topology
from regionguard.lab.layout import CLIENT, EDGE_PORT, LabLayout
from regionguard.providers.etcd.member import MemberSpec, MemberTls, member_command
from regionguard.providers.local.haproxy import haproxy_binary
from regionguard.providers.local.proctrack import ProcessRef, terminate

log = logging.getLogger("regionguard.lab.init")
RESTART_AFTER_S = 0.5
PR_SET_CHILD_SUBREAPER = 36  # prctl(2)


def become_subreaper() -> None:
    """Orphans of this process's descendants are re-parented to it, not to the host's init:
    PostgreSQL's daemonized postmaster stays in the site's process tree (found, reaped, and
    stopped with the site)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_CHILD_SUBREAPER): %s", os.strerror(ctypes.get_errno()))


def edge_config(layout: LabLayout, topology: Topology) -> str:
    """The client site's edge: it sends each request to the region whose front door says it
    holds the write lease (`/health/route`), as Route 53 failover records do."""
    client = layout.site(CLIENT)
    lines = ["# the lab's edge: follows each region's /health/route", "global", "    maxconn 4096",
             "", "defaults", "    mode http", "    timeout connect 300ms",
             "    timeout client 30s", "    timeout server 10s", "    retries 1", "",
             "frontend edge", f"    bind {client.address}:{EDGE_PORT}",
             "    default_backend writer", "", "backend writer",
             "    option httpchk GET /health/route", "    http-check expect status 200",
             "    default-server inter 250ms fall 1 rise 1"]
    for region, spec in topology.regions.items():
        lines.append(f"    server {region} {spec.site_host}:{spec.ports.front_door} check")
    return "\n".join(lines) + "\n"


class SiteInit:
    def __init__(self, layout: LabLayout, topology: Topology, name: str) -> None:
        self.layout = layout
        self.topology = topology
        self.name = name
        self.dir = layout.site_dir(name)
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()

    def hold_file(self, child: str) -> Path:
        return self.dir / f"hold-{child}"

    def commands(self) -> dict[str, list[str]]:
        me = [sys.executable, "-m", "regionguard", "-c", str(self.layout.config)]
        if self.name == CLIENT:
            config = self.dir / "edge.cfg"
            config.write_text(edge_config(self.layout, self.topology))
            return {"edge": [haproxy_binary(), "-db", "-f", str(config)]}
        members = [MemberSpec(s.name, self.layout.etcd_url(s),
                              self.layout.etcd_url(s, port=2380), self._member_tls(s.name))
                   for s in self.layout.arbiter_sites]
        mine = next(m for m in members if m.name == self.name)
        return {"etcd": member_command(mine, self.dir / "etcd", members, "rglab"),
                "agent": [*me, "agent", "--site", self.name]}

    def _member_tls(self, site: str) -> MemberTls | None:
        spec = self.topology.tls
        if spec is None:
            return None
        ca, cert, key = spec.files(site)
        return MemberTls(str(cert), str(key), str(ca), peers=True)

    def start(self, child: str, command: list[str]) -> None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("ETCD") and "proxy" not in k.lower()}
        with open(self.dir / f"{child}.log", "ab") as out:
            self.children[child] = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                                    stdout=out, stderr=subprocess.STDOUT,
                                                    env=env)

    def run(self) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.getpid() == 1:  # a site's own PID (and mount) namespace: the namespaced lab
            # a private /dev/shm: a killed postmaster's segments die with the site
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=256m", "tmpfs",
                            "/dev/shm"], check=False)
        else:  # a loopback site: every orphan of the site (the postmaster) stays ours
            become_subreaper()
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        commands = self.commands()
        for child, command in commands.items():
            if not self.hold_file(child).exists():
                self.start(child, command)
        while not self.stopping.is_set():
            self.reap()
            for child, command in commands.items():
                proc = self.children.get(child)
                if (proc is None or proc.poll() is not None) and not self.hold_file(
                        child).exists():
                    self.start(child, command)
            self.stopping.wait(RESTART_AFTER_S)
        self.shutdown()
        return 0

    def reap(self) -> None:
        """Collect every exited process of the namespace (orphans are reparented here)."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for proc in self.children.values():
                if proc.pid == pid:
                    proc.returncode = proc.returncode if proc.returncode is not None else -1

    def shutdown(self) -> None:
        agent = self.children.pop("agent", None)
        if agent is not None and agent.poll() is None:
            agent.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                agent.wait(10)
        if self.name in self.topology.regions:
            site = Site(self.topology, self.name)
            with contextlib.suppress(Exception):
                SiteDataPlane(site).stop()
            with contextlib.suppress(Exception):
                site.database(self.name).stop("fast", 10)
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                watchdog = ProcessRef.from_dict(json.loads(site.watchdog_record.read_text()))
                if (guard := watchdog.process()) is not None:
                    terminate([guard], grace_s=5)  # the database is down: nothing to guard
        for proc in self.children.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


def main(layout: LabLayout, topology: Topology, name: str) -> int:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return SiteInit(layout, topology, name).run()
