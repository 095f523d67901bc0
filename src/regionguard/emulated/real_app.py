"""An app region's entry point running the real app (`create_app`) over a real PostgreSQL.

The stub (`apps.RegionalApp`) models the database; this one runs the workload app itself, as
an ALB's instances or API Gateway's function would, on a real PostgreSQL cluster standing in
for the Region's RDS (`databases.py`): its write lease (the same `LeaseGuard`, through the
fault proxy), its `/health/route`, its commit-time lease check, and the database's own fence
row that the lease keeps ahead. What stays modelled: capacity (an ASGI gate answers 503 while
the target group has no healthy target, as the ALB does) and when the database becomes
writable (moto's promotion model; the cluster is promoted then).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import uvicorn

from regionguard.app import admin
from regionguard.app.main import create_app
from regionguard.app.sessions.dynamodb import dynamodb_sessions
from regionguard.app.settings import AppSettings
from regionguard.clock import Clock
from regionguard.emulated.apps import DB_RECHECK_S, RegionalApp, WriteLog
from regionguard.emulated.databases import EmulatedDatabases
from regionguard.infra.view import AwsRegion, AwsView
from regionguard.providers.aws.clients import AwsClients
from regionguard.providers.local.netutil import free_port

log = logging.getLogger("regionguard.emulated.real_app")

ADMIN_TOKEN = "emulated-admin-token-0123456789abcdef"  # the guards' canary credential

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


def capacity_gate(app: Asgi, capacity: Callable[[], int], region: str) -> Asgi:
    """The load balancer in front: 503 while no target is healthy."""

    async def gated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and capacity() <= 0:
            body = json.dumps({"detail": f"{region}: no healthy target"}).encode()
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"retry-after", b"1")]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return gated


class RealRegionalApp(RegionalApp):
    def __init__(self, view: AwsView, region: AwsRegion, moto_url: str,
                 arbiter_endpoints: dict[str, str], clock: Clock, writes: WriteLog,
                 databases: EmulatedDatabases, lease_s: float | None = None) -> None:
        super().__init__(view, region, moto_url, arbiter_endpoints, clock, writes, lease_s)
        self.server.server_close()  # the stub's own server: uvicorn serves here instead
        self.databases = databases
        self.port = free_port()
        settings = AppSettings(region=region.name, dsns={region.name: databases.dsn(region.name)},
                               lease_s=self.lease.lease_s, admin_token=ADMIN_TOKEN,
                               pool_max=4)
        # sessions in this Region's replica of the global table, through the fault proxy
        sessions = dynamodb_sessions(view.names.sessions_table(), region.aws_region,
                                     AwsClients(self.moto, arbiter_endpoints, clock))
        self.asgi = create_app(settings, lease=self.lease, sessions=sessions,
                               clock=clock)  # the router starts the lease
        config = uvicorn.Config(capacity_gate(self.asgi, lambda: self.capacity, region.name),
                                host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", access_log=False)
        self._uvicorn = uvicorn.Server(config)
        self._http = httpx.Client(timeout=5.0, headers=admin.bearer(ADMIN_TOKEN))
        self._serving: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self) -> None:
        self.refresh()
        self._serving = threading.Thread(target=self._uvicorn.run, daemon=True,
                                         name=f"app-{self.region.name}")
        self._serving.start()
        threading.Thread(target=self._poll, daemon=True,
                         name=f"app-state-{self.region.name}").start()
        threading.Thread(target=self._watch_promotion, daemon=True,
                         name=f"app-db-{self.region.name}").start()

    def _watch_promotion(self) -> None:
        """While this Region's database is not writable, look every DB_RECHECK_S world seconds
        whether moto's model says it is now, and promote the cluster then (the stub learns it
        from a refused write; the real app's writes do not pass through here)."""
        while not self._stop.wait(DB_RECHECK_S * self.clock.factor):
            if self.db_writable:
                continue
            try:
                self._refresh_database()
            except Exception as exc:  # moto unreachable: the next look
                log.debug("database look of %s failed: %s", self.region.name, exc)

    def started(self) -> bool:
        return bool(self._uvicorn.started)

    def stop(self) -> None:
        """Stop serving and wait for the app's shutdown (its pools, lease and fence threads),
        so that its database is removed only after the app let go of it."""
        self._stop.set()
        self._uvicorn.should_exit = True
        if self._serving is not None:
            self._serving.join(timeout=10)
        self._http.close()

    def _refresh_database(self) -> None:
        super()._refresh_database()
        self.databases.promote_if_writable(self.region.name, self.db_writable)

    def write(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A write through this entry point, as the drill's own checks make one."""
        payload = ({"token": body.get("token") or body.get("request_id")}
                   if path == "/_regionguard/canary" else body)
        try:
            r = self._http.post(f"http://127.0.0.1:{self.port}{path}", json=payload)
        except httpx.HTTPError as exc:
            return 599, {"detail": type(exc).__name__}
        try:
            answer = r.json()
        except ValueError:
            answer = {"detail": r.text[:200]}
        return r.status_code, answer if isinstance(answer, dict) else {"detail": answer}
