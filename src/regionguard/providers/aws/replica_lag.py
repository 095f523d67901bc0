"""A cross-Region replica's lag over the last minutes, from CloudWatch in its own Region.

RDS's `ReplicaLag` and Aurora's `AuroraGlobalDBReplicationLag` say how far behind the replica
is *now*: once the source dies they grow by a second every second, so a check of the latest
value refuses every failover of a Region outage, or says nothing about what was lost. What
stays meaningful after the source dies is the lag *just before* it was lost: so the provider
hands the planner the recent datapoints (each period's end and its maximum lag), and the
planner reads the last one that ended before the source's first failure (`plans.failover`).
The datapoints are one-minute maxima (RDS publishes these metrics once a minute): the
figure is the worst lag of the last whole minute before the loss.

Read in the replica's Region only (static stability: never the source's). No datapoint, or
CloudWatch out of reach: nothing, and the lag is unknown rather than a failed status.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from regionguard.providers.aws.boundary import best_effort
from regionguard.providers.aws.context import AwsContext

PERIOD_S = 60  # RDS publishes these metrics once a minute
WINDOW = timedelta(minutes=15)


def lag_points(ctx: AwsContext, aws_region: str, metric: str, dimension: tuple[str, str],
               seconds_per_unit: float = 1.0) -> tuple[tuple[float, float], ...]:
    """(period end in epoch seconds on the world's clock, maximum lag in seconds), oldest
    first; a negative value (replication not running) is left out."""
    now = datetime.fromtimestamp(ctx.clock.time(), UTC)
    with best_effort() as unknown:
        out = ctx.clients.get("cloudwatch", aws_region).get_metric_statistics(
            Namespace="AWS/RDS", MetricName=metric, Statistics=["Maximum"],
            Dimensions=[{"Name": dimension[0], "Value": dimension[1]}],
            StartTime=now - WINDOW, EndTime=now, Period=PERIOD_S)
    if unknown:
        return ()
    points = sorted((p["Timestamp"].timestamp() + PERIOD_S, float(p["Maximum"]) * seconds_per_unit)
                    for p in out.get("Datapoints", []) if float(p["Maximum"]) >= 0)
    return tuple(points)
