"""The Notifier port: an SNS message with a JSON summary, and the RTO and step durations as
CloudWatch metrics (namespace RegionGuard), so the dashboard shows every failover."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from regionguard.providers.aws.context import AwsContext

log = logging.getLogger("regionguard.notify")


class SnsNotifier:
    def __init__(self, ctx: AwsContext, region: str) -> None:
        self.ctx = ctx
        self.region = region  # where this engine runs (the backup region for the Lambda)

    def notify(self, event: str, detail: Mapping[str, Any]) -> None:
        n = self.ctx.names
        topic = n.arn("sns", self.region, n.notify_topic())
        try:
            self.ctx.clients.get("sns", self.region).publish(
                TopicArn=topic, Subject=f"regionguard {n.app}: {event}"[:100],
                Message=json.dumps({"event": event, "app": n.app, **detail}, default=str))
        except (ClientError, BotoCoreError) as exc:  # best effort: never fail a plan on it
            log.warning("SNS publish failed: %s", exc)
        if "rto_s" in detail:
            self._metrics(detail)

    def _metrics(self, detail: Mapping[str, Any]) -> None:
        dims = [{"Name": "App", "Value": self.ctx.names.app}]
        data = [{"MetricName": "RTO", "Dimensions": dims, "Value": float(detail["rto_s"]),
                 "Unit": "Seconds"}]
        for step, seconds in (detail.get("steps") or {}).items():
            data.append({"MetricName": "StepDuration", "Unit": "Seconds",
                         "Dimensions": [*dims, {"Name": "Step", "Value": step}],
                         "Value": float(seconds)})
        try:
            self.ctx.clients.get("cloudwatch", self.region).put_metric_data(
                Namespace="RegionGuard", MetricData=data)
        except (ClientError, BotoCoreError) as exc:
            log.warning("put_metric_data failed: %s", exc)
