"""The app's session and preference state: small JSON documents with a time to live.

On AWS they live in a DynamoDB global table (`dynamodb.py`): every Region writes and reads its
own replica (multi-Region eventual consistency), conflicting writes resolve by last writer wins
and DynamoDB's TTL deletes expired items. Nothing here ever calls another Region, so sessions
keep being served in a Region that survives while the relational database fails over, and no
session write waits for the write lease. Locally (the sandbox and the self-managed sites) they
live in PostgreSQL on the primary (`sql.py`), written under the write lease like an order: the
local world has no multi-writer store, and regionguard does not build one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    data: dict[str, Any]
    expires_at: float  # Unix seconds: DynamoDB's TTL attribute (`expires_at`, a Number)
    updated_at: float  # Unix seconds of the write, in the writing app's clock
    region: str  # the app region whose replica took the write

    def expired(self, now: float) -> bool:
        """Expired items are filtered on read: DynamoDB's TTL deletes them in the background,
        typically within a few days of expiry, not at once."""
        return self.expires_at <= now


@dataclass(frozen=True, slots=True)
class Route:
    """The front door's route for a request (its writer and epoch headers): the local store
    writes under it, as an order is; the AWS store needs none (it takes no lease)."""

    writer: str | None = None
    epoch: int | None = None


class SessionStore(Protocol):
    """Where sessions live; every call is bounded and raises `Unavailable` (503 + Retry-After)
    when it cannot be served now, never an unhandled error."""

    uses_route: bool  # writes under the front door's route (its writer and epoch headers)

    def put(self, session: Session, route: Route) -> None: ...

    def get(self, session_id: str) -> Session | None: ...

    def delete(self, session_id: str, route: Route) -> None: ...
