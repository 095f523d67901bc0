"""The lab's network: one namespace per site, joined by veth to a bridge in a switch namespace
of its own, so nothing of the lab exists in the root namespace; partitions as nftables rules
inside a site's namespace; a way for this process to talk from inside a namespace.

Network namespaces are per thread: `in_netns` runs a function in a thread of its own that
first joins the namespace (`setns(2)` through libc, as Python 3.11 has no `os.setns`), so the
rest of the process stays where it was. Every address the lab uses exists only inside the
namespaces it creates: no route out, no NAT.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from regionguard.errors import NotAvailable, ProviderError

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"


def run(*args: str, check: bool = True, input_text: str | None = None) -> str:
    """One `ip`/`nft` command; a failure is one line naming the command and what it said."""
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=20,
                              input=input_text)
    except FileNotFoundError:
        raise NotAvailable(f"{args[0]} not found; install it with `apt-get install iproute2 "
                           "nftables util-linux` (or run `make setup`)") from None
    if check and done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise ProviderError(f"`{' '.join(args)}` failed: {said[0] if said else done.returncode}")
    return done.stdout


def namespaces() -> list[str]:
    return [line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()]


def add_namespace(name: str) -> None:
    run("ip", "netns", "add", name)
    # IPv4 only, before any link exists (no router solicitations, no surprise addresses)
    run("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1")
    run("ip", "-n", name, "link", "set", "lo", "up")


def delete_namespace(name: str) -> None:
    run("ip", "netns", "delete", name, check=False)


def add_bridge(switch: str, bridge: str) -> None:
    run("ip", "-n", switch, "link", "add", bridge, "type", "bridge")
    run("ip", "-n", switch, "link", "set", bridge, "up")


def plug(site_ns: str, switch: str, bridge: str, port: str, address: str, prefix: int) -> None:
    """A veth made inside the site (its end `eth0`), the peer `port` in the switch on the
    bridge; the site's address on `eth0`."""
    run("ip", "-n", site_ns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
        "netns", switch)
    run("ip", "-n", switch, "link", "set", "dev", port, "master", bridge)
    run("ip", "-n", switch, "link", "set", "dev", port, "up")
    run("ip", "-n", site_ns, "addr", "add", f"{address}/{prefix}", "dev", "eth0")
    run("ip", "-n", site_ns, "link", "set", "dev", "eth0", "up")


def set_port(switch: str, port: str, up: bool) -> None:
    """A host lost takes its link with it: the peers' packets then go nowhere."""
    run("ip", "-n", switch, "link", "set", "dev", port, "up" if up else "down")


# -- partitions ------------------------------------------------------------------------------

PARTITION_TABLE = "rglab_partition"


def partition(site_ns: str, peers: Iterable[str], inbound: bool, outbound: bool,
              ports: Iterable[int] = ()) -> None:
    """Drop what `site_ns` receives from (`inbound`) and/or sends to (`outbound`) `peers`, on
    its interface's netdev hooks: packets vanish as on a cut cable (an inet OUTPUT drop would
    give local senders an immediate error, which no partition does). With `ports`, only the
    TCP traffic to or from those ports (e.g. etcd's: the site keeps its database's and its
    apps' paths). Replaces any earlier partition of this site."""
    addresses = ", ".join(sorted(peers))
    wanted = ", ".join(str(p) for p in sorted(set(ports)))

    def drops(side: str) -> str:
        if not wanted:
            return f"ip {side} {{ {addresses} }} drop;"
        return (f"ip {side} {{ {addresses} }} tcp dport {{ {wanted} }} drop; "
                f"ip {side} {{ {addresses} }} tcp sport {{ {wanted} }} drop;")

    chains = []
    if inbound:
        chains.append("  chain inbound { type filter hook ingress device eth0 priority 0; "
                      f"{drops('saddr')} }}")
    if outbound:
        chains.append("  chain outbound { type filter hook egress device eth0 priority 0; "
                      f"{drops('daddr')} }}")
    heal(site_ns)
    script = f"table netdev {PARTITION_TABLE} {{\n" + "\n".join(chains) + "\n}\n"
    run("ip", "netns", "exec", site_ns, "nft", "-f", "-", input_text=script)


def heal(site_ns: str) -> None:
    run("ip", "netns", "exec", site_ns, "nft", "delete", "table", "netdev", PARTITION_TABLE,
        check=False)


# -- talking from inside a namespace -----------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def enter_netns(name: str) -> None:
    """Move the calling thread into network namespace `name` (for good: call it first in a
    thread of its own)."""
    fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise ProviderError(f"cannot enter network namespace {name}: "
                                f"{os.strerror(errno)}")
    finally:
        os.close(fd)


def in_netns(name: str, fn: Callable[[], T], timeout_s: float = 60.0) -> T:
    """`fn()`, run from inside network namespace `name`; its result or its exception."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            enter_netns(name)
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise ProviderError(f"no answer from inside {name} within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
