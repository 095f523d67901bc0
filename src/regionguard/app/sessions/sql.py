"""Sessions in the local world: a table in the primary's database, written under the write
lease and the database's fence like an order (the sandbox and the self-managed sites have one
writer at a time), read from this region's own database (a standby serves what replication has
brought it). Replacing a session is one upsert, whole. No TTL sweep runs here: each write
also deletes the sessions that expired (the `expires_at` index finds them), so the table holds
about what is live."""

from __future__ import annotations

import json

from regionguard.app.db import DatabaseRouter
from regionguard.app.sessions import Route, Session

COLUMNS = "id, data, expires_at, updated_at, region"  # what a read selects


class SqlSessions:
    uses_route = True  # written under the write lease, with the front door's route

    def __init__(self, router: DatabaseRouter) -> None:
        self.router = router
        self.db = router.engine

    def put(self, session: Session, route: Route) -> None:
        with self.router.write(route.writer, route.epoch) as (conn, _):
            self.db.execute(conn, "DELETE FROM sessions WHERE expires_at < %s",
                            (session.updated_at,))
            self.db.upsert(conn, "sessions", {
                "id": session.id, "data": json.dumps(session.data, separators=(",", ":")),
                "expires_at": session.expires_at, "updated_at": session.updated_at,
                "region": session.region}, key="id")

    def get(self, session_id: str) -> Session | None:
        with self.router.read() as conn:
            row = self.db.fetchone(conn, f"SELECT {COLUMNS} FROM sessions WHERE id = %s",
                                   (session_id,))
        if row is None:
            return None
        return Session(id=row[0], data=json.loads(row[1]), expires_at=float(row[2]),
                       updated_at=float(row[3]), region=row[4])

    def delete(self, session_id: str, route: Route) -> None:
        with self.router.write(route.writer, route.epoch) as (conn, _):
            self.db.execute(conn, "DELETE FROM sessions WHERE id = %s", (session_id,))
