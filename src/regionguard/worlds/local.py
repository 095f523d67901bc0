"""The local world: the two-region sandbox on this machine (providers/local). Its providers
are imported when a command runs, so every other command starts without them (PostgreSQL's
driver, HAProxy's control, the drill target in worlds/local_target.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from regionguard.config import Topology
from regionguard.errors import NotAvailable, UsageError
from regionguard.worlds.world import SiteDrills

if TYPE_CHECKING:
    from regionguard.orchestrator.approval import Approvals
    from regionguard.orchestrator.ports import Ports

COMMANDS = frozenset({
    "validate", "up", "down", "status", "failover", "switchover", "failback", "events",
    "readiness", "approve", "reject", "report", "drill", "synth", "agent", "rejoin",
    "_supervise", "_controller",  # the sandbox's own processes: supervisor and controller
    "_watchdog",  # beside a self-managed site's PostgreSQL (the agent starts it)
    "_lab-init",  # the first process of a lab site's PID namespace
})


SITES_HELP = ("start each site with `regionguard agent --site NAME` on its host (or all of "
              "them on this machine: `regionguard lab up --loopback`), see them with "
              "`regionguard status`, drill them with `regionguard drill --lab DIR`")


def refuse_sites(topology: Topology, command: str) -> None:
    """The embedded sandbox's commands on a topology of self-managed sites (arbiter etcd):
    refused in one line that says what runs the sites instead, before anything is started
    (an embedded controller over sites that run their own agents would be a second writer's
    maker)."""
    if topology.arbiter.kind == "etcd":
        raise UsageError(f"{command}: this topology's sites run their own agents (arbiter "
                         f"kind \"etcd\"): {SITES_HELP}")


class LocalWorld:
    name = "local"
    summary = "the sandbox"
    commands = COMMANDS
    examples: Mapping[str, str] = {}
    status_table = True

    @property
    def drills(self) -> SiteDrills:
        from regionguard.drill.faults import CATALOG
        from regionguard.worlds.local_target import SandboxTarget

        return SiteDrills(faults=CATALOG, target=SandboxTarget.of)

    def build_ports(self, topology: Topology) -> Ports:
        from regionguard.providers.local.wiring import build_ports

        refuse_sites(topology, "this command")
        return build_ports(topology)

    def engine_ports(self, topology: Topology) -> Ports:
        ports = self.build_ports(topology)
        if not ports.state.load().roles:
            raise NotAvailable(f"no sandbox in {topology.state_dir.absolute()}; start one with "
                               "`regionguard up`")
        return ports

    def status(self, topology: Topology) -> dict[str, Any]:
        from regionguard.providers.local.sandbox import Sandbox
        from regionguard.providers.local.status import sandbox_status

        return sandbox_status(Sandbox(topology))

    def approvals(self, topology: Topology) -> Approvals:
        if topology.arbiter.kind == "etcd":  # the sites: the request lives in etcd
            from regionguard.agent.site_status import person_site
            from regionguard.providers.etcd.approvals import EtcdApprovals

            return EtcdApprovals(person_site(topology).store())
        from regionguard.providers.local.approvals import FileApprovals

        return FileApprovals(topology.state_dir)
