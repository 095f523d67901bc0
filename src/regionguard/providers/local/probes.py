"""Two independent probers for the local world.

`PostgresProber` opens its own libpq connection straight to a region's database; `HttpProber`
asks the app's `/health/deep` through the front door's per-region probe backend (selected by the
`X-Regionguard-Region` header, never routed), with its own httpx client. Different client
libraries and different paths: one failing alone means a part of the region, not the region.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import psycopg

from regionguard.orchestrator.ports import ProbeKind, ProbeResult


class PostgresProber:
    name = "postgres"
    kind = ProbeKind.DATABASE

    def __init__(self, dsn_of: Callable[[str], str]) -> None:
        self.dsn_of = dsn_of

    def probe(self, region: str, timeout_s: float) -> ProbeResult:
        started = time.monotonic()
        try:
            # psycopg enforces a 2 s minimum connect timeout; the controller stops waiting
            # after timeout_s and counts a late answer as a failure.
            with psycopg.connect(self.dsn_of(region), connect_timeout=2, autocommit=True,
                                 options=f"-c statement_timeout={int(timeout_s * 1000)}") as c:
                row = c.execute("SELECT pg_is_in_recovery()").fetchone()
        except psycopg.Error as exc:
            return ProbeResult(self.name, region, False, time.monotonic() - started,
                               str(exc).strip().splitlines()[0] if str(exc).strip() else "error")
        role = "standby" if row and row[0] else "primary"
        return ProbeResult(self.name, region, True, time.monotonic() - started, role)


class HttpProber:
    name = "http"
    kind = ProbeKind.APPLICATION

    def __init__(self, front_door_url: Callable[[], str]) -> None:
        self.front_door_url = front_door_url
        self._local = threading.local()

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=4))
            self._local.client = client
        return client

    def probe(self, region: str, timeout_s: float) -> ProbeResult:
        started = time.monotonic()
        try:
            r = self._client().get(f"{self.front_door_url()}/health/deep", timeout=timeout_s,
                                   headers={"X-Regionguard-Region": region})
        except httpx.HTTPError as exc:
            return ProbeResult(self.name, region, False, time.monotonic() - started,
                               type(exc).__name__)
        body: Mapping[str, Any] = r.json() if r.headers.get("content-type", "").startswith(
            "application/json") else {}
        return ProbeResult(self.name, region, r.status_code == 200, time.monotonic() - started,
                           f"HTTP {r.status_code} {body.get('role', '')}".strip())
