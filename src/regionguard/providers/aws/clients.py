"""boto3 clients per (service, region), with bounded timeouts and standard retries."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=10,
                       retries={"max_attempts": 3, "mode": "standard"})


class AwsClients:
    def __init__(self, session: boto3.session.Session | None = None) -> None:
        self.session = session or boto3.session.Session()
        self._cache: dict[tuple[str, str], Any] = {}

    def get(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._cache:
            self._cache[key] = self.session.client(service, region_name=region,
                                                   config=CLIENT_CONFIG)
        return self._cache[key]
