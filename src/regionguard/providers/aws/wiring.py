"""`build_ports(topology)`: the AWS world's one wiring function (CLI `--world aws`, the guard
Lambda in AWS and in the emulated AWS), choosing the Database and Compute providers from the
topology; `build_guard(ports)`: the vantage point this process is."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from regionguard.clock import Clock, clock_from_env
from regionguard.config import Topology
from regionguard.infra.view import aws_view, second_prober
from regionguard.orchestrator.deadlines import AWS_DEADLINES
from regionguard.orchestrator.events import Event
from regionguard.orchestrator.guard import Guard
from regionguard.orchestrator.journal import Journal
from regionguard.orchestrator.ports import Ports
from regionguard.providers.aws.approvals import ArbiterApprovals
from regionguard.providers.aws.aurora import AuroraGlobalDatabase
from regionguard.providers.aws.autoscaling import AsgCompute, LambdaCompute
from regionguard.providers.aws.clients import AwsClients
from regionguard.providers.aws.context import AwsContext, app_endpoints_from_env
from regionguard.providers.aws.notify import SnsNotifier
from regionguard.providers.aws.probes import EndpointProber
from regionguard.providers.aws.rds import RdsReplicaDatabase
from regionguard.providers.aws.restore import SnapshotRestorer
from regionguard.providers.aws.routing import ArbiterRouting
from regionguard.providers.aws.state import DynamoDBStateStore

log = logging.getLogger("regionguard.journal")

POLL_S = 15.0  # world seconds between describe calls while RDS promotes or instances boot


def build_ports(topology: Topology, *, runs_in: str | None = None,
                clients: AwsClients | None = None, clock: Clock | None = None,
                poll_s: float = POLL_S) -> Ports:
    clock = clock or clock_from_env()
    view = aws_view(topology)
    region = runs_in or os.environ.get("AWS_REGION", "")
    ctx = AwsContext(view, clients or AwsClients(clock=clock), clock, region,
                     app_endpoints_from_env())
    store = DynamoDBStateStore(ctx)
    database: Any = (AuroraGlobalDatabase(ctx, poll_s) if view.settings.database == "aurora-global"
                     else RdsReplicaDatabase(ctx, poll_s))
    compute: Any = LambdaCompute(ctx) if view.serverless else AsgCompute(ctx, poll_s)
    # journal times are wall-clock based: a plan's steps may run in several invocations
    journal = Journal(store.journal_sink(log.info), clock_ns=lambda: int(clock.time() * 1e9))

    def report(plan_id: str) -> None:
        """The execution report as one journal line: in the arbiter (for `regionguard --world
        aws report`) and in the guard's log."""
        from regionguard.ops.report import plan_report

        journal.record(Event.REPORT, plan=plan_id, report=plan_report(journal.entries(), plan_id))

    return Ports(
        topology=view.topology, database=database, compute=compute,
        traffic=ArbiterRouting(ctx, store), probers=[EndpointProber(ctx)],
        notifier=SnsNotifier(ctx, region or view.standby.aws_region), state=store,
        journal=journal, reports=report, clock=clock, deadlines=AWS_DEADLINES,
        restorer=SnapshotRestorer(ctx, poll_s) if not view.replica else None,
    )


def build_guard(ports: Ports, second: bool = False) -> Guard:
    """This process as a vantage point: the Region it runs in, and whether that Region is an
    app region (whose guard acts) or the witness (whose guard only reports). `second`: the
    app region's second prober (its own schedule), which only reports."""
    store = ports.state
    assert isinstance(store, DynamoDBStateStore), "a guard needs the AWS arbiter"
    ctx = store.ctx
    mine = ctx.view.region_by_aws(ctx.runs_in)
    prober = ports.probers[0]
    second = second and mine is not None  # the witness has one prober
    return Guard(ports, store, prober,
                 vantage=second_prober(ctx.runs_in) if second else ctx.runs_in,
                 home=mine.name if mine and not second else None,
                 # a region is never judged from its own Region, by either of its probers
                 sites_of=lambda region: frozenset({ctx.aws_region(region),
                                                    second_prober(ctx.aws_region(region))}),
                 interval_s=ctx.view.settings.probe_interval_s,
                 timeout_s=ctx.view.settings.probe_timeout_s,
                 approvals=ArbiterApprovals(store))


def topology_from_env(raw: str) -> Topology:
    from regionguard.config import parse_topology

    return parse_topology(json.loads(raw), "RG_TOPOLOGY")


def approvals(ports: Ports) -> ArbiterApprovals:
    """The arbiter's approval requests (`regionguard --world aws approve|reject`)."""
    assert isinstance(ports.state, DynamoDBStateStore), "approvals live in the AWS arbiter"
    return ArbiterApprovals(ports.state)


def describe(ports: Ports) -> dict[str, Any]:
    """A status summary of the AWS world (the Lambda's `status` action and `status --world aws`)."""
    live = ports.state.load()
    dbs = {r: ports.database.status(r) for r in ports.topology.regions}
    return {"action": "status", "epoch": live.epoch,
            "roles": {k: v.value for k, v in live.roles.items()},
            "plan_running": live.plan.id if live.plan else None,
            "traffic": ports.traffic.shares(),
            "databases": {r: {"up": d.up, "in_recovery": d.in_recovery, "lag_s": d.lag_s,
                              "error": d.error} for r, d in dbs.items()},
            "awaiting_approval": approvals(ports).pending()
            if ports.topology.failover.approval == "manual" else None}
