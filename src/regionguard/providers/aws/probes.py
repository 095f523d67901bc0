"""AWS probers. `HealthTableProber` reads the region-health rows the scheduled health Lambda
writes into the global table (fresh and ok, or failed); `AlarmProber` reports the Route 53 HTTP
health check as the alarm saw it. Two observers on two paths: the alarm alone never decides."""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from regionguard.orchestrator.ports import ProbeResult
from regionguard.providers.aws.context import AwsContext

STALE_AFTER_S = 180.0  # the writer runs every minute


class HealthTableProber:
    name = "health-table"

    def __init__(self, ctx: AwsContext, region: str) -> None:
        self.ctx = ctx
        self.region = region  # read the replica in the region this code runs in

    def probe(self, region: str, timeout_s: float) -> ProbeResult:
        started = time.monotonic()
        try:
            item = self.ctx.clients.get("dynamodb", self.region).get_item(
                TableName=self.ctx.names.state_table(), Key={"pk": {"S": f"health#{region}"}},
                ConsistentRead=True).get("Item")
        except ClientError as exc:
            return ProbeResult(self.name, region, False, time.monotonic() - started, str(exc))
        latency = time.monotonic() - started
        if not item:
            return ProbeResult(self.name, region, False, latency, "no health row")
        age = time.time() - float(item["checked_at"]["N"])
        ok = item["status"]["S"] == "ok" and age < STALE_AFTER_S
        return ProbeResult(self.name, region, ok, latency,
                           f"{item['status']['S']}, {age:.0f} s old")


class AlarmProber:
    """The alarm event that woke the Lambda, as one probe result for the primary."""

    name = "route53-alarm"

    def __init__(self, failing_region: str | None) -> None:
        self.failing_region = failing_region

    def probe(self, region: str, timeout_s: float) -> ProbeResult:
        ok = region != self.failing_region
        return ProbeResult(self.name, region, ok, 0.0, "alarm" if not ok else "no alarm")
