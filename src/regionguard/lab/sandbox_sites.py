"""The sandbox on the agents: `regionguard up` runs the topology's regions as self-managed
sites on loopback (the loopback lab: a site init, an etcd member and an agent per site on
127.77.0.x, TLS between them, the edge), in `<state_dir>/sites`.

While they run, the commands given the user's topology (`status`, `readiness`, `events`,
`drill`, `switchover`, `failback`, `report`, `down`) act on the sites' topology, the one the
agents read. Light on purpose: every command asks it, before any provider is imported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from regionguard.config import Topology

SITES = "sites"


def sites_dir(user: Topology) -> Path:
    return user.state_dir.absolute() / SITES


def running_sites(user: Topology) -> Path | None:
    """The sandbox's sites directory when `up` made one (the sites' topology is there) for a
    topology of the "file" kind (the sandbox's input); None otherwise (an etcd topology names
    its own sites)."""
    if user.arbiter.kind != "file":
        return None
    found = sites_dir(user)
    return found if (found / "regionguard.toml").exists() else None


def sites_up(user: Topology, report: Callable[[str], None], timeout_s: float) -> dict[str, Any]:
    """Start the sandbox's sites, or start again whichever of them is down (a killed site, a
    reboot: its files are kept, so its database comes back as it was), and wait until the edge
    reaches the primary under the write lease. Returns the lab's status."""
    from regionguard.lab.lab import Lab

    root = sites_dir(user)
    if running_sites(user) is None:
        return Lab.create(root, user, loopback=True).up(report, timeout_s)
    lab = Lab.existing(root)
    if Lab.create(root, user, loopback=True).topology != lab.topology:
        report("the sites run the topology as it was at their first `up`; to apply the "
               "changed file: `regionguard down`, then `regionguard up`")
    stopped = [s.name for s in lab.layout.sites if not lab.processes(s.name)]
    for name in stopped:
        lab.start(name)
    report(f"started again: {', '.join(stopped)}" if stopped else "the sites already run")
    lab.wait_ready(timeout_s, report)
    return lab.status()
