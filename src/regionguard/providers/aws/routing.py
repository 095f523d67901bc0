"""The Traffic port for AWS, on data planes only: the writer is named in the arbiter, and DNS
follows it through Route 53 health checks, without one Route 53 API call.

The failover records of `<domain>` (PRIMARY in the home primary's region, SECONDARY in the
other) are owned by the IaC and never edited. Each carries a Route 53 HTTPS health check of its
own region's `/health/route`, which the app answers 200 only while its region holds the write
lease it confirmed from the arbiter (and it has capacity to serve). So `route` is one
conditional write to the arbiter: within `lease_s` the new writer's apps answer 200 and the old
one's 503, Route 53's health checkers (a data plane spread worldwide) see it within
`dns_check_interval_s x dns_failure_threshold`, and resolvers follow within the record's TTL.
Route 53's control plane lives in us-east-1 and is not needed for any of it; neither is the
region that died, since its health check fails along with it.

`verify` asks the new primary's own endpoint what Route 53's checkers will see, then writes a
canary through it: the epoch in the answer comes from the app's confirmed lease, so a resumed
plan is verified against the world, not against memory.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

import httpx

from regionguard.app import admin
from regionguard.orchestrator.ports import RouteTable, VerifyResult
from regionguard.providers.aws.boundary import aws_boundary, best_effort
from regionguard.providers.aws.context import AwsContext
from regionguard.providers.aws.state import DynamoDBStateStore

log = logging.getLogger("regionguard.routing")

@aws_boundary
class ArbiterRouting:
    def __init__(self, ctx: AwsContext, store: DynamoDBStateStore) -> None:
        self.ctx = ctx
        self.store = store

    def cut(self, region: str) -> None:
        """Nothing more to do: the engine revokes the region's write lease in the arbiter
        (`StateStore.revoke_writer`) before it cuts, and that is the cut: its `/health/route`
        turns 503 within `lease_s`, and Route 53 moves DNS off it. Records are not touched."""

    def route(self, table: RouteTable) -> None:
        self.store.set_writer(table.writer, table.epoch)

    def shares(self) -> dict[str, float]:
        writer = self.store.read_state()["writer"]
        if self.ctx.view.routing == "latency":  # reads are served in every healthy region
            return {r.name: 1.0 / len(self.ctx.view.regions) for r in self.ctx.view.regions}
        return {r.name: 1.0 if r.name == writer else 0.0 for r in self.ctx.view.regions}

    def _credential(self) -> str | None:
        """RG_ADMIN_TOKEN, or the secret RG_ADMIN_TOKEN_SECRET read in this site's Region (its
        replica: no other Region is asked). None: the canary will answer 403, and say so."""
        if token := os.environ.get("RG_ADMIN_TOKEN"):
            return token
        name = os.environ.get("RG_ADMIN_TOKEN_SECRET")
        region = self.ctx.runs_in or self.ctx.view.standby.aws_region
        if not name:
            return None
        with best_effort() as failed:
            value = self.ctx.clients.get("secretsmanager", region).get_secret_value(
                SecretId=name)["SecretString"]
        if failed:
            log.warning("cannot read the canary credential %s in %s: %s", name, region,
                        failed.detail)
            return None
        return str(value).strip() or None

    def verify(self, timeout_s: float) -> VerifyResult:
        started = time.monotonic()
        writer = self.store.read_state()["writer"]
        if not writer:
            return VerifyResult(False, None, None, 0.0, "no region holds the write lease")
        base = self.ctx.app_url(writer)
        budget = max(1.0, timeout_s * self.ctx.clock.factor)
        credential = self._credential()  # the canary needs the admin credential
        try:
            with httpx.Client(timeout=budget,
                              headers=admin.bearer(credential) if credential else None) as http:
                health = http.get(f"{base}/health/route")
                if health.status_code != 200:
                    return VerifyResult(False, writer, None, time.monotonic() - started,
                                        f"/health/route: HTTP {health.status_code}")
                r = http.post(f"{base}/_regionguard/canary",
                              json={"token": f"verify-{uuid.uuid4().hex}"})
        except httpx.HTTPError as exc:
            return VerifyResult(False, writer, None, time.monotonic() - started,
                                f"{base}: {type(exc).__name__}")
        body: dict[str, Any] = r.json() if r.status_code == 200 else {}
        return VerifyResult(r.status_code == 200, body.get("region"), body.get("epoch"),
                            time.monotonic() - started, f"canary HTTP {r.status_code}")
