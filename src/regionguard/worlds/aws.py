"""The AWS world: the same engine against AWS with the caller's credentials (providers/aws).

boto3 and the AWS providers are the `aws` extra: imported when a command runs, so the CLI starts
without them and says in one line what to install."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from regionguard.config import Topology
from regionguard.errors import NotAvailable
from regionguard.orchestrator.approval import Approvals
from regionguard.orchestrator.ports import Ports

if TYPE_CHECKING:
    from types import ModuleType

    from regionguard.worlds.world import Drills

COMMANDS = frozenset({"validate", "synth", "status", "failover", "switchover", "approve",
                      "reject", "report", "backup"})


def _wiring() -> ModuleType:
    try:
        from regionguard.providers.aws import wiring
    except ImportError:
        raise NotAvailable("the aws extra is missing: pip install 'regionguard[aws]'") from None
    return wiring


class AwsWorld:
    name = "aws"
    summary = "boto3 with your AWS credentials"
    commands = COMMANDS
    examples: Mapping[str, str] = {"backup": "backup status"}
    drills: Drills | None = None  # drills on AWS run on the emulated AWS (`aws-emulated`)

    def build_ports(self, topology: Topology) -> Ports:
        ports: Ports = _wiring().build_ports(topology)
        return ports

    def engine_ports(self, topology: Topology) -> Ports:
        return self.build_ports(topology)

    def status(self, topology: Topology) -> dict[str, Any]:
        summary: dict[str, Any] = _wiring().describe(self.build_ports(topology))
        return summary

    def approvals(self, topology: Topology) -> Approvals:
        """The request in the arbiter, answered against the nearest replica."""
        approvals: Approvals = _wiring().approvals(self.build_ports(topology))
        return approvals
