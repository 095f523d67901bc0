"""Idempotent schema migrations: the engine's SQL files (`migrations/<engine>/`) in order,
under a lock, skipped on a standby (it gets the schema by replication). Two app processes
starting at once serialize on the lock, and the second finds nothing left to apply.

The app runs them itself on its first pass over a reachable primary (`DatabaseRouter`); the
local sandbox runs them once at `up` through `migrate`.
"""

from __future__ import annotations

import psycopg

from regionguard.app.engines.postgres import PostgresEngine


def migrate(dsn: str) -> list[str]:
    """Migrate the PostgreSQL database at `dsn`; the versions applied."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        return PostgresEngine().migrate(conn)
