"""The Notifier port: an SNS message with a JSON summary. (The RTO and step durations reach
CloudWatch as embedded-metric log lines of the guard Lambda: providers/aws/metrics.py.)"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from regionguard.providers.aws.boundary import best_effort
from regionguard.providers.aws.context import AwsContext

log = logging.getLogger("regionguard.notify")


class SnsNotifier:
    def __init__(self, ctx: AwsContext, region: str) -> None:
        self.ctx = ctx
        self.region = region  # where this engine runs (the backup region for the Lambda)

    def notify(self, event: str, detail: Mapping[str, Any]) -> None:
        n = self.ctx.names
        topic = n.arn("sns", self.region, n.notify_topic())
        with best_effort() as failed:  # never fail a plan on it
            self.ctx.clients.get("sns", self.region).publish(
                TopicArn=topic, Subject=f"regionguard {n.app}: {event}"[:100],
                Message=json.dumps({"event": event, "app": n.app, **detail}, default=str))
        if failed:
            log.warning("SNS publish failed: %s", failed.detail)
