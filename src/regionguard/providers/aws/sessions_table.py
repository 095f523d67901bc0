"""Readiness of the app's sessions table (a DynamoDB global table, MREC): both app Regions'
replicas are ACTIVE, and replication keeps up.

Each replica is asked in its own Region (`DescribeTable`: the table's own status there, and
the replicas it lists). Replication is read from CloudWatch, where DynamoDB publishes
`ReplicationLatency` per source and receiving Region ("the elapsed time between when an item
is written to a replica table, and when that item appears in another replica", in
milliseconds: DynamoDB developer guide, monitoring global tables); its average over the last
minutes above `aws.sessions_replication_warn_s` warns. No datapoint means no recent writes,
not a problem. A quiet scheduled run asks this, never the failover path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from regionguard.orchestrator.readiness import Check
from regionguard.providers.aws.boundary import best_effort
from regionguard.providers.aws.context import AwsContext

NAME = "sessions_table"
WINDOW = timedelta(minutes=10)
PERIOD_S = 300


def check(ctx: AwsContext) -> Check:
    table = ctx.names.sessions_table()
    regions = ctx.view.replica_regions
    problems: list[str] = []
    unknown: list[str] = []
    for region in regions:
        with best_effort() as failed:
            described: dict[str, Any] = ctx.clients.get("dynamodb", region).describe_table(
                TableName=table)["Table"]
        if failed:
            (problems if "ResourceNotFound" in failed.detail else unknown).append(
                f"{region}: {failed.detail}")
            continue
        if described.get("TableStatus") != "ACTIVE":
            problems.append(f"{region}'s replica is {described.get('TableStatus')}")
        problems += [f"{r['RegionName']}'s replica is {r.get('ReplicaStatus')} (as {region} "
                     "lists it)" for r in described.get("Replicas", [])
                     if r.get("ReplicaStatus") not in (None, "ACTIVE")]
    if problems:
        return Check(NAME, "fail", f"{table}: {'; '.join(problems)}",
                     "deploy the sessions table in both app Regions (`regionguard synth`)")
    if unknown:
        return Check(NAME, "warn", f"{table}: could not look: {'; '.join(unknown)}",
                     "look again when the Region's DynamoDB answers")
    slow, unread = _slow_replication(ctx, table, regions)
    warn_s = ctx.view.settings.sessions_replication_warn_s
    if unread:
        return Check(NAME, "warn", f"{table}: replicas ACTIVE; replication latency unknown "
                     f"({'; '.join(unread)})", "look again when CloudWatch answers")
    if slow:
        return Check(NAME, "warn", f"{table}: replication behind: {'; '.join(slow)}",
                     f"above aws.sessions_replication_warn_s ({warn_s:g} s): a Region lost "
                     "now would lose this much of its sessions; see the Region's DynamoDB "
                     "health")
    return Check(NAME, "pass", f"{table}: replicas ACTIVE in {', '.join(regions)}; "
                 f"replication within {warn_s:g} s")


def _slow_replication(ctx: AwsContext, table: str, regions: tuple[str, ...]
                      ) -> tuple[list[str], list[str]]:
    """'<source> -> <receiver> N s' for each pair whose recent average is above the bound;
    and the Regions whose CloudWatch did not answer."""
    now = datetime.fromtimestamp(ctx.clock.time(), UTC)
    bound_ms = ctx.view.settings.sessions_replication_warn_s * 1000
    slow: list[str] = []
    unread: list[str] = []
    for source in regions:
        for receiver in regions:
            if receiver == source:
                continue
            with best_effort() as failed:
                out = ctx.clients.get("cloudwatch", source).get_metric_statistics(
                    Namespace="AWS/DynamoDB", MetricName="ReplicationLatency",
                    Dimensions=[{"Name": "TableName", "Value": table},
                                {"Name": "ReceivingRegion", "Value": receiver}],
                    StartTime=now - WINDOW, EndTime=now, Period=PERIOD_S,
                    Statistics=["Average"])
            if failed:  # the latency is unknown, not slow
                unread.append(f"{source}'s CloudWatch: {failed.detail}")
                continue
            points = sorted(out.get("Datapoints", []), key=lambda p: p["Timestamp"])
            if points and float(points[-1]["Average"]) > bound_ms:
                slow.append(f"{source} -> {receiver} {float(points[-1]['Average']) / 1000:.1f} s")
    return slow, unread
