"""`PUT/GET/DELETE /sessions/{id}`: a session or preferences document with a time to live.

A write is acknowledged once this Region's store took it: on AWS its own replica of the global
table (other Regions see it after replication, last writer wins), locally the primary's
database. An expired session reads as absent before the store's TTL sweep removes it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Response
from pydantic import BaseModel, Field, field_validator

from regionguard.app.sessions import Route, Session, SessionStore
from regionguard.clock import Clock

ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
MAX_DATA_BYTES = 4096  # a session or a set of preferences; DynamoDB items may reach 400 KB
MAX_TTL_S = 30 * 86400
SessionId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN,
                                description="the session's id (letters, digits, . _ : -)")]


class SessionIn(BaseModel):
    data: dict[str, Any] = Field(description=f"a JSON object of at most {MAX_DATA_BYTES} bytes")
    ttl_s: int = Field(3600, ge=1, le=MAX_TTL_S,
                       description="seconds until the session expires (at most 30 days)")

    @field_validator("data")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:  # NaN and Infinity parse, but are not JSON: nothing could read them back
            size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
        except ValueError:
            raise ValueError("holds NaN or Infinity, which JSON cannot carry") from None
        if size > MAX_DATA_BYTES:
            raise ValueError(f"is {size} bytes as JSON; at most {MAX_DATA_BYTES} are kept")
        return value


class SessionOut(BaseModel):
    id: str
    data: dict[str, Any]
    expires_at: datetime
    updated_at: datetime
    region: str = Field(description="the app region whose store took the last write")
    served_by: str = Field(description="the app region that answered this request")


def sessions_routes(store: SessionStore, region: str, clock: Clock,
                    epoch_of: Callable[[str | None], int | None]) -> APIRouter:
    """`epoch_of`: the app's reading of the front door's epoch header (a 400 when bad), for a
    store that writes under the front door's route (the local one)."""

    def route(writer: str | None, epoch: str | None) -> Route:
        return Route(writer, epoch_of(epoch)) if store.uses_route else Route()
    routes = APIRouter(tags=["sessions"])

    def shown(session: Session) -> SessionOut:
        return SessionOut(id=session.id, data=session.data,
                          expires_at=datetime.fromtimestamp(session.expires_at, UTC),
                          updated_at=datetime.fromtimestamp(session.updated_at, UTC),
                          region=session.region, served_by=region)

    @routes.put("/sessions/{session_id}", response_model=SessionOut)
    def put_session(
        session_id: SessionId, body: SessionIn,
        x_regionguard_epoch: Annotated[str | None, Header()] = None,
        x_regionguard_writer: Annotated[str | None, Header()] = None,
    ) -> SessionOut:
        """Create or replace a session (no condition: the last write wins)."""
        now = clock.time()
        # whole seconds: DynamoDB's TTL attribute is Unix seconds, and what the answer says is
        # what a read will say
        session = Session(id=session_id, data=body.data,
                          expires_at=float(math.floor(now + body.ttl_s)), updated_at=now,
                          region=region)
        store.put(session, route(x_regionguard_writer, x_regionguard_epoch))
        return shown(session)

    @routes.get("/sessions/{session_id}", response_model=SessionOut)
    def get_session(session_id: SessionId) -> SessionOut:
        session = store.get(session_id)
        if session is None or session.expired(clock.time()):
            raise HTTPException(404, f"session {session_id} not found in region {region} "
                                "(never written, deleted, expired, or not replicated here yet)")
        return shown(session)

    @routes.delete("/sessions/{session_id}", status_code=204)
    def delete_session(
        session_id: SessionId,
        x_regionguard_epoch: Annotated[str | None, Header()] = None,
        x_regionguard_writer: Annotated[str | None, Header()] = None,
    ) -> Response:
        """Idempotent: deleting a session that is not there is no error."""
        store.delete(session_id, route(x_regionguard_writer, x_regionguard_epoch))
        return Response(status_code=204)

    return routes
