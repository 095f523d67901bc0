"""The local world: self-managed sites on this machine. `regionguard up` runs the topology's
regions as sites on loopback (an etcd member and an agent each, lab/sandbox_sites.py); a
topology with `arbiter.kind = "etcd"` names sites that run their own agents (here, in the lab,
or on real hosts). Either way every person's command reads etcd and the sites' files: there is
no controller of the local world to ask (DESIGN.md's "Self-managed sites"; the single
controller and its state.json were retired: docs/sites.md, "Retired")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from regionguard.config import Topology
from regionguard.errors import NotAvailable, UsageError
from regionguard.worlds.world import LabDrills

if TYPE_CHECKING:
    from regionguard.orchestrator.approval import Approvals
    from regionguard.orchestrator.ports import Ports

COMMANDS = frozenset({
    "validate", "up", "down", "status", "failover", "switchover", "failback", "events",
    "readiness", "approve", "reject", "report", "drill", "synth", "agent", "rejoin",
    "_watchdog",  # beside a self-managed site's PostgreSQL (the agent starts it)
    "_lab-init",  # the first process of a lab site's PID namespace
})


SITES_HELP = ("start each site with `regionguard agent --site NAME` on its host (or all of "
              "them on this machine: `regionguard lab up --loopback`), see them with "
              "`regionguard status`, drill them with `regionguard drill --lab DIR`")


def refuse_sites(topology: Topology, command: str) -> None:
    """The sandbox's own commands (`up`, `down`) on a topology of self-managed sites (arbiter
    etcd): refused in one line that says what runs the sites instead, before anything is
    started (a second set of agents for sites that run their own would be a second writer's
    maker)."""
    if topology.arbiter.kind == "etcd":
        raise UsageError(f"{command}: this topology's sites run their own agents (arbiter "
                         f"kind \"etcd\"): {SITES_HELP}")


def nothing_up(topology: Topology) -> NotAvailable:
    """What a person's command says when the sandbox's sites are not running (exit 4)."""
    return NotAvailable(f"nothing is up in {topology.state_dir.absolute()}: start the sandbox "
                        "with `regionguard up`")


class LocalWorld:
    name = "local"
    summary = "self-managed sites: the sandbox on loopback, a lab, or your hosts"
    commands = COMMANDS
    examples: Mapping[str, str] = {}

    @property
    def drills(self) -> LabDrills:
        from regionguard.lab.drill import LAB_FAULTS, PARTITIONS

        return LabDrills(faults={
            name: ("fails over" if fails_over else "must not fail over")
            + (" (namespaced lab only)" if name in PARTITIONS else "")
            for name, fails_over in LAB_FAULTS.items()})

    def build_ports(self, topology: Topology) -> Ports:
        """None to build: every site's agent wires its own ports (agent/ports.py); a person's
        command reads etcd instead (agent/site_status.py)."""
        if topology.arbiter.kind != "etcd":
            raise nothing_up(topology)
        raise UsageError("this command: on self-managed sites the agents run the plans; "
                         f"{SITES_HELP}")

    def engine_ports(self, topology: Topology) -> Ports:
        return self.build_ports(topology)

    def status(self, topology: Topology) -> dict[str, Any]:
        from regionguard.agent.site_status import sites_status

        if topology.arbiter.kind != "etcd":
            raise nothing_up(topology)
        return sites_status(topology)

    def approvals(self, topology: Topology) -> Approvals:
        from regionguard.agent.site_status import person_site
        from regionguard.providers.etcd.approvals import EtcdApprovals

        if topology.arbiter.kind != "etcd":
            raise nothing_up(topology)
        return EtcdApprovals(person_site(topology).store())
