"""The PostgreSQL engine (psycopg 3 and psycopg_pool): both worlds' default.

Migrations run in one transaction under an advisory lock, so two app processes starting at once
serialize and the second finds nothing left to apply; a standby (in recovery) gets the schema by
replication and is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from regionguard.app.engines import (
    EngineName,
    Fault,
    Row,
    ServerState,
    WalPosition,
    migration_files,
)

MIGRATION_LOCK = 7_316_402_001  # pg_advisory_xact_lock key reserved for regionguard migrations

Conn = psycopg.Connection[tuple[object, ...]]


FENCE_SQLSTATE = "RGF01"  # what the fence's trigger raises (migrations/postgres/003_fence.sql)

class PostgresEngine:
    name: EngineName = "postgres"
    fences = True

    def pool(self, region: str, dsn: str, *, size: int, timeout_s: float
             ) -> ConnectionPool[Conn]:
        return ConnectionPool(
            dsn, min_size=1, max_size=size, open=False, timeout=timeout_s,
            check=ConnectionPool.check_connection,
            kwargs={"autocommit": True, "connect_timeout": 2},
            name=f"rg-{region}", reconnect_timeout=3600,
        )

    def transaction(self, conn: Conn) -> AbstractContextManager[Any]:
        return conn.transaction()

    def bound_transaction(self, conn: Conn, timeout_s: float) -> None:
        ms = str(max(1, int(timeout_s * 1000)))  # transaction-local: gone at commit/rollback
        conn.execute("SELECT set_config('statement_timeout', %s, true),"
                     " set_config('lock_timeout', %s, true)", (ms, ms))

    def fence_connection(self, dsn: str) -> Conn:
        return psycopg.connect(make_conninfo(dsn, connect_timeout=2, tcp_user_timeout=2000))

    def extend_fence(self, conn: Conn, seconds: float, region: str, epoch: int,
                     finish_by: float) -> bool:
        late = False
        with conn.transaction():  # psycopg ends the block on its own Rollback, rolled back
            # the fence row means something on this database only: no wait for a sync
            # standby (a lost one would hold the renewal up), and a bound on the statement
            conn.execute("SELECT set_config('synchronous_commit', 'local', true),"
                         " set_config('statement_timeout', '1000', true)")
            conn.execute(
                "INSERT INTO regionguard_fence (id, writable_until, region, epoch)"
                " VALUES (1, clock_timestamp() + make_interval(secs => %s), %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET writable_until = EXCLUDED.writable_until,"
                " region = EXCLUDED.region, epoch = EXCLUDED.epoch",
                (seconds, region, epoch))
            late = time.monotonic() > finish_by
            if late:  # it may have run late: the old fence stands rather than outlast the lease
                raise psycopg.Rollback()
        return not late

    def classify(self, exc: BaseException) -> Fault | None:
        if isinstance(exc, PoolTimeout):
            return Fault.UNAVAILABLE
        if getattr(exc, "sqlstate", None) == FENCE_SQLSTATE:
            return Fault.FENCED
        if isinstance(exc, pg_errors.QueryCanceled | pg_errors.LockNotAvailable):
            return Fault.TIMED_OUT
        if isinstance(exc, pg_errors.ReadOnlySqlTransaction) or (
                isinstance(exc, pg_errors.ObjectNotInPrerequisiteState)
                and "recovery is in progress" in str(exc)):  # a WAL function on a standby
            # (SQLSTATE 55000 is broad, so its English text decides: the server's
            # lc_messages is C/English on RDS, Aurora and the sites alike)
            return Fault.READ_ONLY
        if isinstance(exc, pg_errors.UndefinedTable):
            return Fault.NO_SCHEMA
        if isinstance(exc, psycopg.DataError):
            return Fault.BAD_VALUE
        if isinstance(exc, psycopg.OperationalError):
            return Fault.UNAVAILABLE
        return None

    def error_line(self, exc: BaseException) -> str:
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__

    def fetchone(self, conn: Conn, sql_text: str, params: Sequence[Any] = ()) -> Row | None:
        return conn.execute(sql_text, params).fetchone()

    def fetchall(self, conn: Conn, sql_text: str, params: Sequence[Any] = ()) -> list[Row]:
        return conn.execute(sql_text, params).fetchall()

    def execute(self, conn: Conn, sql_text: str, params: Sequence[Any] = ()) -> int:
        return conn.execute(sql_text, params).rowcount

    def insert_if_absent(self, conn: Conn, table: str, values: dict[str, Any],
                         key: str) -> bool:
        statement = sql.SQL(
            "INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({key}) DO NOTHING"
        ).format(table=sql.Identifier(table),
                 columns=sql.SQL(", ").join(map(sql.Identifier, values)),
                 values=sql.SQL(", ").join(sql.Placeholder() * len(values)),
                 key=sql.Identifier(key))
        return conn.execute(statement, list(values.values())).rowcount == 1

    def upsert(self, conn: Conn, table: str, values: dict[str, Any], key: str) -> None:
        statement = sql.SQL(
            "INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({key}) DO UPDATE"
            " SET {updates}"
        ).format(table=sql.Identifier(table),
                 columns=sql.SQL(", ").join(map(sql.Identifier, values)),
                 values=sql.SQL(", ").join(sql.Placeholder() * len(values)),
                 key=sql.Identifier(key),
                 updates=sql.SQL(", ").join(
                     sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
                     for c in values if c != key))
        conn.execute(statement, list(values.values()))

    def server_state(self, conn: Conn, *, with_lag: bool) -> ServerState:
        if not with_lag:
            row = conn.execute("SELECT pg_is_in_recovery(),"
                               " (SELECT epoch FROM regionguard_epoch WHERE id = 1)").fetchone()
            assert row is not None
            return ServerState(bool(row[0]), _int(row[1]), None, None)
        row = conn.execute(
            "SELECT pg_is_in_recovery(),"
            " (SELECT epoch FROM regionguard_epoch WHERE id = 1),"
            " CASE WHEN pg_is_in_recovery() THEN"
            "   COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(),"
            "            pg_last_wal_replay_lsn()), 0)::bigint ELSE 0 END,"
            " CASE WHEN pg_is_in_recovery()"
            "   AND pg_last_wal_receive_lsn() IS DISTINCT FROM pg_last_wal_replay_lsn() THEN"
            "   COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)"
            "   ELSE 0 END::float8"
        ).fetchone()
        assert row is not None
        return ServerState(bool(row[0]), _int(row[1]), _int(row[2]),
                           float(row[3]) if row[3] is not None else None)  # type: ignore[arg-type]

    def wal_position(self, conn: Conn) -> WalPosition | None:
        """The insert position of the log and the timeline it is on (the first 8 hex digits of
        its segment file's name: exact right after a promotion, unlike the last checkpoint's),
        in a transaction of its own bounded to half a second: a stalled server must not hold
        the answer to a write that already committed."""
        with conn.transaction():
            conn.execute("SET LOCAL statement_timeout = 500")
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text,"
                               " pg_walfile_name(pg_current_wal_insert_lsn())").fetchone()
        if row is None:
            return None
        return WalPosition(int(str(row[1])[:8], 16), str(row[0]))

    def epoch_for_write(self, conn: Conn) -> int:
        row = conn.execute("SELECT epoch FROM regionguard_epoch WHERE id = 1 FOR SHARE"
                           ).fetchone()
        return _int(row[0]) or 0 if row else 0

    def migrate(self, conn: Conn) -> list[str]:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        if row and row[0]:
            return []
        applied: list[str] = []
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, body in migration_files("postgres"):
                if version in done:
                    continue
                conn.execute(body)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
        return applied


def _int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]
