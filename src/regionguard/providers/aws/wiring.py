"""`build_ports(topology)`: the AWS world's one wiring function (CLI `--world aws` and the
failover Lambda), choosing the Database and Compute providers from the topology."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from regionguard.config import Topology
from regionguard.infra.view import aws_view
from regionguard.orchestrator.executor import Ports
from regionguard.orchestrator.journal import Journal
from regionguard.orchestrator.ports import Prober
from regionguard.providers.aws.aurora import AuroraGlobalDatabase
from regionguard.providers.aws.autoscaling import AsgCompute, LambdaCompute
from regionguard.providers.aws.clients import AwsClients
from regionguard.providers.aws.context import AwsContext
from regionguard.providers.aws.notify import SnsNotifier
from regionguard.providers.aws.probes import HealthTableProber
from regionguard.providers.aws.rds import RdsReplicaDatabase
from regionguard.providers.aws.routing import Route53Traffic
from regionguard.providers.aws.state import DynamoDBStateStore

log = logging.getLogger("regionguard.journal")


class LogSink:
    """Journal lines go to the function's log (CloudWatch Logs) and stay readable in memory
    for this invocation's RTO breakdown: a Lambda's /tmp does not persist."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, line: str) -> None:
        self.lines.append(line)
        log.info(line)

    def read_lines(self) -> list[str]:
        return list(self.lines)


def build_ports(topology: Topology, *, runs_in: str | None = None, clients: AwsClients | None
                = None, probers: Sequence[Prober] = (), poll_s: float = 5.0,
                canary: bool = True) -> Ports:
    view = aws_view(topology)
    ctx = AwsContext(view, clients or AwsClients())
    region = runs_in or view.standby.aws_region
    database: Any = (AuroraGlobalDatabase(ctx, poll_s) if view.settings.database == "aurora-global"
                     else RdsReplicaDatabase(ctx, poll_s))
    compute: Any = LambdaCompute(ctx) if view.serverless else AsgCompute(ctx, poll_s)
    return Ports(
        topology=topology, database=database, compute=compute,
        traffic=Route53Traffic(ctx, poll_s=min(poll_s, 2.0), canary=canary),
        probers=[HealthTableProber(ctx, region), *probers],
        notifier=SnsNotifier(ctx, region), state=DynamoDBStateStore(ctx),
        journal=Journal(LogSink()),
    )


def topology_from_env(raw: str) -> Topology:
    from regionguard.config import parse_topology

    return parse_topology(json.loads(raw), "RG_TOPOLOGY")


def describe(ports: Ports) -> dict[str, Any]:
    """A status summary of the AWS world (the Lambda's `status` action and `status --world aws`)."""
    live = ports.state.load()
    dbs = {r: ports.database.status(r) for r in ports.topology.regions}
    return {"action": "status", "epoch": live.epoch,
            "roles": {k: v.value for k, v in live.roles.items()},
            "plan_running": live.plan.get("id") if live.plan else None,
            "traffic": ports.traffic.shares(),
            "databases": {r: {"up": d.up, "in_recovery": d.in_recovery, "lag_s": d.lag_s,
                              "error": d.error} for r, d in dbs.items()}}
