"""Where a lab's sites run: in network and PID namespaces of their own (`NamespaceHosts`, root:
real partitions, no signal crosses a site), or side by side on loopback (`LoopbackHosts`, any
user: one 127.77.0.x address per site, the same site init, etcd members, agents and edge).

The two differ only in what the host gives: how a site's first process is started, how its
processes are found, how a command talks from the client site, and which faults exist. A
partition needs a network stack per site; on loopback every site shares one, so partitions
are refused there in one line that points to the namespaced lab.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

import psutil

from regionguard.errors import NotAvailable, UsageError
from regionguard.lab import netns
from regionguard.lab.layout import BRIDGE, NETMASK, PREFIX, SWITCH, LabLayout, LabSite
from regionguard.providers.local.proctrack import ProcessRef, is_dead, terminate

T = TypeVar("T")
Report = Callable[[str], None]
SITE_MARK = "REGIONGUARD_LAB_SITE"  # in every loopback site process's environment: lab#site


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise NotAvailable(f"`regionguard lab {what}` needs root (network and PID namespaces, "
                           "nftables); run it with sudo, or use `regionguard lab up "
                           "--loopback` (any user, no partitions)")


def namespace_leftovers() -> list[str]:
    return [ns for ns in netns.namespaces() if ns.startswith(f"{PREFIX}-")]


class SiteHosts(Protocol):
    """What a lab needs from the machine its sites run on."""

    name: str
    partitions: bool  # whether a site can be cut from some peers (a network stack per site)

    def prepare(self, layout: LabLayout, report: Report) -> None:
        """Before any site starts: the network, or a check that the sites' ports are free."""

    def start_site(self, layout: LabLayout, site: LabSite, command: list[str]) -> dict[str, Any]:
        """Start the site's init (`command`); what to record to find it again."""

    def init_of(self, info: dict[str, Any]) -> psutil.Process | None:
        """The site's init process, from its record (pid and start time)."""

    def processes(self, layout: LabLayout, site: LabSite,
                  info: dict[str, Any] | None) -> list[psutil.Process]:
        """Every process of the site (pids as this process sees them)."""

    def client(self, layout: LabLayout, fn: Callable[[], T], timeout_s: float) -> T:
        """`fn()`, as the client site would run it."""

    def enter_client(self, layout: LabLayout) -> None:
        """Make the calling thread (for good) a thread of the client site."""

    def link(self, layout: LabLayout, site: LabSite, up: bool) -> None:
        """A host lost takes its link with it; `up` restores it."""

    def partition(self, layout: LabLayout, site: LabSite, peers: list[LabSite], inbound: bool,
                  outbound: bool, ports: tuple[int, ...] = ()) -> None:
        """Cut the site from `peers` (only `ports`' TCP traffic when given)."""

    def heal(self, layout: LabLayout, site: LabSite) -> None:
        """Lift the site's partition, if any."""

    def teardown(self, layout: LabLayout, records: Iterable[dict[str, Any]]) -> list[int]:
        """After the sites were asked to stop: kill what is left; the pids killed."""

    def leftovers(self, layout: LabLayout) -> list[str]:
        """What of a lab still exists on this machine (namespaces, processes)."""


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def _launch(layout: LabLayout, site: LabSite, argv: list[str],
            env: dict[str, str]) -> subprocess.Popen[bytes]:
    directory = layout.site_dir(site.name)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "init.log", "ab") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _recorded(info: dict[str, Any] | None, key: str) -> psutil.Process | None:
    try:
        return ProcessRef.from_dict((info or {})[key]).process()
    except (KeyError, TypeError, ValueError):
        return None


class NamespaceHosts:
    """Each site a network namespace plus its own PID namespace, joined by veth to a bridge in
    a switch namespace (root). The site's record holds its `unshare` process; its init is that
    process's one child (pid 1 inside)."""

    name = "namespaces"
    partitions = True

    def prepare(self, layout: LabLayout, report: Report) -> None:
        require_root("up")
        found = namespace_leftovers()
        if found:
            raise UsageError(f"a lab is up already, or left over from one that crashed "
                             f"({', '.join(found)}); run `regionguard lab down` first")
        netns.add_namespace(SWITCH)
        netns.add_bridge(SWITCH, BRIDGE)
        for site in layout.sites:
            netns.add_namespace(site.namespace)
            netns.plug(site.namespace, SWITCH, BRIDGE, site.switch_port, site.address, NETMASK)
        report(f"network: {len(layout.sites)} sites on {BRIDGE} in {SWITCH}")

    def start_site(self, layout: LabLayout, site: LabSite, command: list[str]) -> dict[str, Any]:
        proc = _launch(layout, site, ["ip", "netns", "exec", site.namespace, "unshare", "--pid",
                                      "--fork", "--mount-proc", "--kill-child", *command],
                       _clean_env())
        return {"unshare": ProcessRef.of(proc.pid).as_dict()}

    def init_of(self, info: dict[str, Any]) -> psutil.Process | None:
        unshare = _recorded(info, "unshare")
        if unshare is None:
            return None
        with contextlib.suppress(psutil.Error):
            children = unshare.children()
            return children[0] if children else None
        return None

    def processes(self, layout: LabLayout, site: LabSite,
                  info: dict[str, Any] | None) -> list[psutil.Process]:
        """Every process in the site's PID namespace (root-namespace handles)."""
        init = self.init_of(info or {})
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

    def client(self, layout: LabLayout, fn: Callable[[], T], timeout_s: float) -> T:
        return netns.in_netns(layout.site("client").namespace, fn, timeout_s)

    def enter_client(self, layout: LabLayout) -> None:
        netns.enter_netns(layout.site("client").namespace)

    def link(self, layout: LabLayout, site: LabSite, up: bool) -> None:
        netns.set_port(SWITCH, site.switch_port, up=up)

    def partition(self, layout: LabLayout, site: LabSite, peers: list[LabSite], inbound: bool,
                  outbound: bool, ports: tuple[int, ...] = ()) -> None:
        netns.partition(site.namespace, [p.address for p in peers], inbound, outbound, ports)

    def heal(self, layout: LabLayout, site: LabSite) -> None:
        netns.heal(site.namespace)

    def teardown(self, layout: LabLayout, records: Iterable[dict[str, Any]]) -> list[int]:
        for info in records:
            unshare = _recorded(info, "unshare")
            if unshare is not None:
                terminate([unshare], grace_s=2)
        killed: list[int] = []
        for ns in namespace_leftovers():
            for text in netns.run("ip", "netns", "pids", ns, check=False).split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(text), signal.SIGKILL)
                    killed.append(int(text))
        procs = []
        for number in killed:
            with contextlib.suppress(psutil.Error):
                procs.append(psutil.Process(number))
        psutil.wait_procs(procs, timeout=5)
        for ns in namespace_leftovers():  # their veths and nftables tables go with them
            netns.delete_namespace(ns)
        return killed

    def leftovers(self, layout: LabLayout) -> list[str]:
        return namespace_leftovers()


class LoopbackHosts:
    """Every site on this machine's loopback, one 127.77.0.x address each (any user). A site's
    init is a child subreaper (site_init.py), so every process it starts, PostgreSQL's
    daemonized postmaster included, stays in its tree; each also carries the site's mark in
    its environment, so a process orphaned by a killed site is still found and stopped."""

    name = "loopback"
    partitions = False

    def prepare(self, layout: LabLayout, report: Report) -> None:
        left = self.leftovers(layout)
        if left:
            raise UsageError(f"a loopback lab in {layout.root} is up already, or left over "
                             f"from one that crashed ({', '.join(left[:3])}); run `regionguard "
                             f"lab down --lab {layout.root}` first")
        taken = []
        for address, port in layout.listen_addresses():
            with socket.socket() as sock:
                # as servers bind: a closed connection's TIME-WAIT does not hold the port
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((address, port))
                except OSError as exc:
                    taken.append(f"{address}:{port} ({exc.strerror})")
        if taken:
            raise UsageError(f"the loopback lab needs {', '.join(taken)}: stop what listens "
                             "there (on every address, or on that one), or run `regionguard "
                             "lab down` if a lab is still up")
        report(f"loopback: {len(layout.sites)} sites on 127.77.0.x")

    def start_site(self, layout: LabLayout, site: LabSite, command: list[str]) -> dict[str, Any]:
        env = {**_clean_env(), SITE_MARK: self._mark(layout, site.name)}
        proc = _launch(layout, site, command, env)
        return {"init": ProcessRef.of(proc.pid).as_dict()}

    @staticmethod
    def _mark(layout: LabLayout, site: str) -> str:
        return f"{layout.root}#{site}"

    def init_of(self, info: dict[str, Any]) -> psutil.Process | None:
        return _recorded(info, "init")

    def processes(self, layout: LabLayout, site: LabSite,
                  info: dict[str, Any] | None) -> list[psutil.Process]:
        found: dict[int, psutil.Process] = {}
        init = self.init_of(info or {})
        if init is not None:
            found[init.pid] = init
            with contextlib.suppress(psutil.Error):
                found.update((p.pid, p) for p in init.children(recursive=True))
        for proc in self._marked(layout, site.name):
            found.setdefault(proc.pid, proc)
        return [p for p in found.values() if not is_dead(p)]

    def _marked(self, layout: LabLayout, site: str | None) -> list[psutil.Process]:
        """Processes that carry this lab's mark (of `site`, or of any site)."""
        prefix = f"{layout.root}#"
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                mark = proc.environ().get(SITE_MARK, "")
                if mark.startswith(prefix) and (site is None or mark == prefix + site):
                    found.append(proc)
        return found

    def client(self, layout: LabLayout, fn: Callable[[], T], timeout_s: float) -> T:
        return fn()  # one network stack: the client site's is this process's own

    def enter_client(self, layout: LabLayout) -> None:
        return None

    def link(self, layout: LabLayout, site: LabSite, up: bool) -> None:
        return None  # a killed site's addresses answer nothing: its ports are closed

    def partition(self, layout: LabLayout, site: LabSite, peers: list[LabSite], inbound: bool,
                  outbound: bool, ports: tuple[int, ...] = ()) -> None:
        raise NotAvailable("a partition needs a network stack per site: the loopback lab's "
                           "sites share one; run the lab as root (`regionguard lab up` without "
                           "--loopback) for partitions")

    def heal(self, layout: LabLayout, site: LabSite) -> None:
        return None

    def teardown(self, layout: LabLayout, records: Iterable[dict[str, Any]]) -> list[int]:
        left = [p for p in self._marked(layout, None) if not is_dead(p)]
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGCONT)
        terminate(left, grace_s=3)
        return [p.pid for p in left]

    def leftovers(self, layout: LabLayout) -> list[str]:
        return [f"pid {p.pid} ({_name(p)})" for p in self._marked(layout, None)
                if not is_dead(p)]


def _name(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return proc.name()
    return "?"


def hosts_for(loopback: bool) -> SiteHosts:
    return LoopbackHosts() if loopback else NamespaceHosts()


def site_command(layout: LabLayout, site: str) -> list[str]:
    """The site's init: `regionguard _lab-init` with the lab's topology."""
    return [sys.executable, "-m", "regionguard", "-c", str(layout.config), "_lab-init",
            "--site", site, "--lab", str(layout.root)]

