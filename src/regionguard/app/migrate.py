"""Idempotent schema migrations: plain SQL files applied in order under an advisory lock.

Skipped on a standby (it gets the schema by replication). Two app processes starting at once
serialize on the lock, and the second finds nothing left to apply.
"""

from __future__ import annotations

from importlib import resources

import psycopg

LOCK_KEY = 7_316_402_001  # pg_advisory_xact_lock key reserved for regionguard migrations


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("regionguard.app") / "migrations"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


def apply_migrations(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """Apply pending migrations on a primary; return the versions applied (none on a standby)."""
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    if row and row[0]:
        return []
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for version, body in migration_files():
            if version in done:
                continue
            conn.execute(body)  # type: ignore[arg-type]
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied.append(version)
    return applied


def migrate(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        return apply_migrations(conn)
