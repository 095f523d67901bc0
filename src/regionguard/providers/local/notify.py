"""The local Notifier: a log line, and a JSON POST to an optional loopback webhook."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

log = logging.getLogger("regionguard.notify")


class LocalNotifier:
    def __init__(self, webhook_url: str | None = None) -> None:
        self.webhook_url = webhook_url

    def notify(self, event: str, detail: Mapping[str, Any]) -> None:
        log.info("notify %s: %s", event, dict(detail))
        if not self.webhook_url:
            return
        try:
            httpx.post(self.webhook_url, json={"event": event, **detail}, timeout=1.0)
        except httpx.HTTPError as exc:
            log.warning("webhook %s failed: %s", self.webhook_url, exc)
