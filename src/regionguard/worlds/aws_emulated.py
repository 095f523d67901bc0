"""The emulated AWS: moto behind a per-region fault proxy, offline, brought up for each drill
(emulated/). Only drills run here; the plans run inside it, in the guard functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regionguard.config import Topology
from regionguard.errors import UsageError
from regionguard.orchestrator.approval import Approvals
from regionguard.orchestrator.ports import Ports
from regionguard.worlds.world import EmulatedDrills

COMMANDS = frozenset({"validate", "synth", "drill"})

FAULTS: Mapping[str, str] = {
    "region-outage": "the Region is gone: every request to it fails (Route 53's API and its "
                     "health-check metrics too, for us-east-1), its functions die",
    "partition": "the Region runs and answers the internet, but nothing crosses between it "
                 "and the other Regions",
    "control-plane-outage": "mutating control-plane calls to the Region fail; reads and data "
                            "planes (DynamoDB items, app traffic) work",
}

DRILLS_ONLY = ("--world aws-emulated runs drills only: `regionguard --world aws-emulated drill "
               "--fault region-outage --region us-east-1`")


class EmulatedAwsWorld:
    name = "aws-emulated"
    summary = "the AWS world on moto behind a per-region fault proxy, offline"
    commands = COMMANDS
    examples: Mapping[str, str] = {"drill": "drill --fault region-outage --region us-east-1"}
    drills = EmulatedDrills(FAULTS)

    # the emulated estate exists only during a drill: nothing outside one to wire or read
    def build_ports(self, topology: Topology) -> Ports:
        raise UsageError(DRILLS_ONLY)

    def engine_ports(self, topology: Topology) -> Ports:
        raise UsageError(DRILLS_ONLY)

    def status(self, topology: Topology) -> dict[str, Any]:
        raise UsageError(DRILLS_ONLY)

    def approvals(self, topology: Topology) -> Approvals:
        raise UsageError(DRILLS_ONLY)
