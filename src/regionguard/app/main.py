"""The workload's HTTP API: orders, sessions (app/sessions), health endpoints and the engine's
canary.

`POST /orders` takes a client `request_id`; a replay returns the same row (so a client that lost
the answer to a failover can retry safely). A write the app cannot place safely gets 503 with
`Retry-After`, never a 500 or a silent loss.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from regionguard.app import admin
from regionguard.app.db import DatabaseRouter
from regionguard.app.errors import BadValue, Unavailable, json_safe
from regionguard.app.forward import WriteForwarder
from regionguard.app.lease import LeaseGuard, dynamodb_reader, etcd_reader
from regionguard.app.limits import BodyCap
from regionguard.app.origin import OriginCheck
from regionguard.app.sessions import SessionStore
from regionguard.app.sessions.api import sessions_routes
from regionguard.app.settings import AppSettings
from regionguard.clock import Clock, clock_from_env

EPOCH_HEADER = "X-Regionguard-Epoch"
WRITER_HEADER = "X-Regionguard-Writer"

ORDER_COLUMNS = "id, request_id, customer, item, quantity, region, served_by, epoch, created_at"


MAX_BODY_BYTES = 16 * 1024  # an order or a canary is a few hundred bytes
MAX_EPOCH = 2**63 - 1  # the database's bigint
TOKEN_PATTERN = r"^[A-Za-z0-9._:-]+$"
# PostgreSQL text cannot hold NUL, and no field of ours needs control characters
NO_CONTROLS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$"
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_CONTROLS)]


class OrderIn(BaseModel):
    request_id: str = Field(min_length=1, max_length=128, pattern=TOKEN_PATTERN)
    customer: Text
    item: Text
    quantity: int = Field(1, ge=1, le=1_000_000)


class Order(BaseModel):
    id: int
    request_id: str
    customer: str
    item: str
    quantity: int
    region: str = Field(description="database region that accepted the write")
    served_by: str = Field(description="region of the app process that took the request")
    epoch: int
    created_at: datetime
    commit: CommitPosition | None = Field(
        None, description="this write's commit in the database's log (a new write on "
                          "PostgreSQL; null for a replay, a read, and MySQL)")


class CommitPosition(BaseModel):
    """Where a write's commit lies in its database's own history (PostgreSQL's log), read on
    the server around the commit: its commit record is after `after_lsn` and at or before
    `by_lsn`, on `timeline`. The history checker places each acknowledged write on the
    surviving primary's history with it (drill/history.py), with no clock."""

    timeline: int
    after_lsn: str
    by_lsn: str


class OrderPage(BaseModel):
    items: list[Order]
    next_after: int | None


class CanaryIn(BaseModel):
    token: str = Field(min_length=1, max_length=128, pattern=TOKEN_PATTERN)


def _order(row: tuple[Any, ...]) -> Order:
    keys = [c.strip() for c in ORDER_COLUMNS.split(",")]
    return Order(**dict(zip(keys, row, strict=True)))


def _epoch(value: str | None) -> int | None:
    """The fencing token of a request: None when absent (the app then takes the live route's
    from the state store). The front door sends 0 while it has no route: never a pass."""
    if value is None:
        return None
    try:
        epoch = int(value)
    except ValueError:
        raise HTTPException(400, f"{EPOCH_HEADER} must be a positive integer") from None
    if epoch < 0 or epoch > MAX_EPOCH:
        raise HTTPException(400, f"{EPOCH_HEADER} must be a positive integer")
    if epoch == 0:
        raise Unavailable("the front door has no route yet (epoch 0); retry shortly")
    return epoch


def lease_from_settings(settings: AppSettings) -> LeaseGuard | None:
    """The write lease, when the app runs with an arbiter: the AWS world's table, or the
    self-managed sites' etcd."""
    if settings.arbiter_etcd:
        return LeaseGuard(settings.region, etcd_reader(settings.arbiter_etcd,
                                                       settings.arbiter_app,
                                                       tls=settings.arbiter_etcd_tls),
                          settings.lease_s, refresh_s=settings.lease_refresh_s)
    if not settings.arbiter_table:
        return None
    clock = clock_from_env()
    return LeaseGuard(settings.region, dynamodb_reader(settings.arbiter_table,
                                                       settings.arbiter_regions,
                                                       settings.region, settings.lease_s, clock),
                      settings.lease_s, clock=clock)


def sessions_from_settings(settings: AppSettings, router: DatabaseRouter) -> SessionStore:
    """The AWS world's global table (this Region's replica) when the app has one; the primary's
    database otherwise."""
    if settings.sessions_table and settings.sessions_region:
        from regionguard.app.sessions.dynamodb import dynamodb_sessions

        return dynamodb_sessions(settings.sessions_table, settings.sessions_region)
    from regionguard.app.sessions.sql import SqlSessions

    return SqlSessions(router)


def create_app(settings: AppSettings | None = None, lease: LeaseGuard | None = None,
               forward_transport: httpx.BaseTransport | None = None,
               sessions: SessionStore | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the app; settings come from the environment unless given (tests, Lambda).
    `forward_transport`: how forwarded writes travel (tests; default HTTPS); `sessions`: where
    sessions live (the emulator's; default from the settings); `clock`: the sessions' time."""
    settings = settings or AppSettings.from_env()
    lease = lease or lease_from_settings(settings)
    router = DatabaseRouter(settings, lease=lease)
    sessions = sessions or sessions_from_settings(settings, router)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        router.open()
        try:
            yield
        finally:
            await run_in_threadpool(router.close)

    app = FastAPI(title="regionguard workload (orders)", version="1", lifespan=lifespan)
    app.state.router = router
    app.state.settings = settings
    db = router.engine

    app.add_middleware(BodyCap, limit=MAX_BODY_BYTES)
    if settings.origin_secret:
        app.add_middleware(OriginCheck, secret=settings.origin_secret)

    def admin_token() -> str | None:  # read each time: the sandbox may create it after start
        return settings.admin_token or admin.read_token(
            Path(settings.admin_token_file) if settings.admin_token_file else None)

    @app.exception_handler(BadValue)
    async def _bad_data(_: Request, exc: BadValue) -> JSONResponse:
        """A value the database cannot store is bad input (400), never a server error."""
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's own 422, with the input it echoes made JSON-safe (NaN parses)."""
        return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))},
                            status_code=422)

    @app.exception_handler(Unavailable)
    async def _unavailable(_: Request, exc: Unavailable) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.reason, "region": settings.region},
            status_code=503,
            headers={"Retry-After": str(exc.retry_after_s)},
        )

    @app.get("/health")
    def health() -> dict[str, str]:
        """Shallow: the process is up and serving."""
        return {"status": "ok", "region": settings.region}

    @app.get("/health/deep")
    def health_deep() -> dict[str, object]:
        """The local database is reachable; reports its role, lag and epoch (503 otherwise)."""
        return {"status": "ok", **router.local_health()}

    @app.get("/health/route")
    def health_route(response: Response) -> dict[str, object]:
        """What a Route 53 health check of this region's failover record asks, and the guards'
        probes: should this region's entry point take the application's traffic? On AWS, yes
        (200) while it holds the write lease and its database answers, even while that
        database still promotes: DNS moves meanwhile (the lease is handed over beside the
        promotion), and writes are answered 503 + Retry-After until they can commit (`writable`
        says which). Locally, while its database is the primary (the local world has no
        lease)."""
        if lease is not None:  # never renews inline: Route 53 allows a check 2 s
            body = lease.describe(refresh=False)
            body["writable"] = False
            if body["holds_lease"]:
                local = router.local_health()  # 503 (Unavailable) when the database is gone
                if local["in_recovery"]:
                    body["database"] = "a replica, promoting: writes are refused until it ends"
                elif router.fence is not None and not router.fence.opened(body["epoch"]):
                    router.fence.retry()  # (a new primary: its fence is being opened)
                    body["database"] = "promoted; its own fence opens for this lease"
                else:
                    body["writable"] = True
            if not body["holds_lease"]:
                response.status_code = 503
            return body
        local = router.local_health()
        if local["in_recovery"]:
            response.status_code = 503
        return {"region": settings.region, "holds_lease": not local["in_recovery"],
                "epoch": local["epoch"]}

    app.include_router(sessions_routes(sessions, settings.region, clock or clock_from_env(),
                                       _epoch))

    forwarder = (WriteForwarder(settings.region, lease, settings.region_hosts,
                                transport=forward_transport)
                 if lease is not None and settings.region_hosts else None)

    @app.post("/orders", status_code=201, response_model=Order)
    def create_order(
        body: OrderIn,
        request: Request,
        response: Response,
        x_regionguard_epoch: Annotated[str | None, Header()] = None,
        x_regionguard_writer: Annotated[str | None, Header()] = None,
        x_regionguard_forwarded_from: Annotated[str | None, Header()] = None,
    ) -> Order | JSONResponse:
        if forwarder is not None and (
                writer := forwarder.target(x_regionguard_forwarded_from)) is not None:
            sent = forwarder.send(writer, "POST", "/orders", body.model_dump_json().encode(),
                                  {**request.headers, "content-type": "application/json"})
            return JSONResponse(sent.body, status_code=sent.status_code,
                                headers={"X-Regionguard-Written-In": sent.writer})
        with router.write(x_regionguard_writer, _epoch(x_regionguard_epoch)) as (conn, target):
            created = db.insert_if_absent(conn, "orders", {
                "request_id": body.request_id, "customer": body.customer, "item": body.item,
                "quantity": body.quantity, "region": target.region,
                "served_by": settings.region, "epoch": target.epoch}, key="request_id")
            if not created:  # a replay of an acknowledged (or in-doubt) write
                response.status_code = 200
            row = db.fetchone(conn, f"SELECT {ORDER_COLUMNS} FROM orders WHERE request_id = %s",
                              (body.request_id,))
        assert row is not None
        order = _order(row)
        before, after = target.before_commit, target.after_commit
        if created and before is not None and after is not None \
                and before.timeline == after.timeline:
            order.commit = CommitPosition(timeline=after.timeline, after_lsn=before.lsn,
                                          by_lsn=after.lsn)
        return order

    @app.get("/orders/{order_id}", response_model=Order)
    def get_order(order_id: int) -> Order:
        with router.read() as conn:
            row = db.fetchone(conn, f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = %s",
                              (order_id,))
        if row is None:
            raise HTTPException(404, f"order {order_id} not found in region {settings.region}")
        return _order(row)

    @app.get("/orders", response_model=OrderPage)
    def list_orders(
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        after: Annotated[int, Query(ge=0)] = 0,
        request_id: Annotated[str | None, Query(max_length=128)] = None,
    ) -> OrderPage:
        with router.read() as conn:
            if request_id is not None:
                rows = db.fetchall(
                    conn, f"SELECT {ORDER_COLUMNS} FROM orders WHERE request_id = %s",
                    (request_id,))
            else:
                rows = db.fetchall(
                    conn, f"SELECT {ORDER_COLUMNS} FROM orders WHERE id > %s ORDER BY id LIMIT %s",
                    (after, limit))
        items = [_order(r) for r in rows]
        more = request_id is None and len(items) == limit
        return OrderPage(items=items, next_after=items[-1].id if more else None)

    @app.delete("/orders/{order_id}", status_code=204)
    def delete_order(
        order_id: int,
        request: Request,
        x_regionguard_epoch: Annotated[str | None, Header()] = None,
        x_regionguard_writer: Annotated[str | None, Header()] = None,
        x_regionguard_forwarded_from: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        """Needs the admin credential: deleting is for the operator. Where this Region does not
        write, it goes to the writer Region, like an order (the credential travels with it)."""
        if forwarder is not None and (
                writer := forwarder.target(x_regionguard_forwarded_from)) is not None:
            sent = forwarder.send(writer, "DELETE", f"/orders/{order_id}", b"",
                                  dict(request.headers))
            headers = {"X-Regionguard-Written-In": sent.writer}
            if sent.status_code == 204:
                return Response(status_code=204, headers=headers)
            return JSONResponse(sent.body, status_code=sent.status_code, headers=headers)
        admin.require(authorization, admin_token(), "deleting an order")
        with router.write(x_regionguard_writer, _epoch(x_regionguard_epoch)) as (conn, _):
            deleted = db.execute(conn, "DELETE FROM orders WHERE id = %s", (order_id,))
        if deleted == 0:
            raise HTTPException(404, f"order {order_id} not found")
        return Response(status_code=204)

    @app.post("/_regionguard/canary")
    def canary(
        body: CanaryIn,
        x_regionguard_epoch: Annotated[str | None, Header()] = None,
        x_regionguard_writer: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, object]:
        """The engine's `verify`: a real write and read-back, in a table of its own. Needs
        the admin credential."""
        admin.require(authorization, admin_token(), "the canary")
        with router.write(x_regionguard_writer, _epoch(x_regionguard_epoch)) as (conn, target):
            db.insert_if_absent(conn, "regionguard_canary", {
                "token": body.token, "region": target.region, "epoch": target.epoch},
                key="token")
            row = db.fetchone(conn, "SELECT region, epoch FROM regionguard_canary"
                                    " WHERE token = %s", (body.token,))
        assert row is not None
        return {"token": body.token, "region": row[0], "epoch": row[1],
                "served_by": settings.region}

    return app

