"""The MySQL engine (PyMySQL, pooled by SQLAlchemy): RDS MySQL in the AWS world (seed 000).

A standby is a read replica with `read_only` on (RDS sets it on every replica; its master user
has no SUPER, so it cannot write there). Migrations take a named lock (`GET_LOCK`); MySQL
commits each DDL statement on its own, so every migration is written to be re-runnable
(`IF NOT EXISTS`, inserts that ignore an existing row). Timestamps are UTC: every session sets
`time_zone = '+00:00'` and the engine hands them to the app as aware datetimes.

The DSN is a URL, `mysql://user:password@host:3306/orders?sslmode=require`, with libpq's
names for TLS: `sslmode` (`disable`, `require`: encrypted, or `verify-full`: encrypted to a
server whose certificate chains to `sslrootcert`, e.g. the RDS CA bundle, and names the host).
`require` refuses a server that does not offer TLS: PyMySQL 1.2+ refuses before it
authenticates (older releases fell back to plain text), and the engine checks the session's TLS
once more after connecting.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql
import sqlalchemy
from pymysql.constants import ER
from sqlalchemy import exc as sa_exc

from regionguard.app.engines import (
    EngineName,
    Fault,
    Row,
    ServerState,
    WalPosition,
    migration_files,
    statements,
)

MIGRATION_LOCK = "regionguard_migrations"
MIGRATION_LOCK_WAIT_S = 30
SSL_MODES = ("disable", "require", "verify-full")
# error codes (PyMySQL maps several of them to OperationalError or InternalError)
READ_ONLY_CODES = {ER.OPTION_PREVENTS_STATEMENT, 1836}  # --read-only; ER_READ_ONLY_MODE
NO_SCHEMA_CODES = {ER.NO_SUCH_TABLE}
# a lock wait past innodb_lock_wait_timeout; a statement past MySQL's / MariaDB's time limit
TIMED_OUT_CODES = {ER.LOCK_WAIT_TIMEOUT, 3024, 1969}
BOUNDED = "regionguard_bounded"  # the connection's lock wait is bounded for one transaction
BAD_VALUE_CODES = {ER.DATA_TOO_LONG, ER.WARN_DATA_OUT_OF_RANGE, ER.TRUNCATED_WRONG_VALUE_FOR_FIELD,
                   3819, 4025}  # CHECK constraint violated: MySQL, MariaDB


class DsnError(ValueError):
    pass


class MySqlEngine:
    name: EngineName = "mysql"
    fences = False  # not yet: the app's lease alone fences a MySQL primary

    def pool(self, region: str, dsn: str, *, size: int, timeout_s: float) -> MySqlPool:
        return MySqlPool(region, dsn, size=size, timeout_s=timeout_s)

    @contextmanager
    def transaction(self, conn: Any) -> Iterator[None]:
        conn.begin()
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        finally:
            if conn.info.pop(BOUNDED, False):  # MySQL has no SET LOCAL: the pooled
                self.execute(conn, "SET SESSION innodb_lock_wait_timeout = DEFAULT")
        conn.commit()

    def classify(self, exc: BaseException) -> Fault | None:
        if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
            exc = exc.orig  # a connect error, as the pool wraps it
        elif isinstance(exc, sa_exc.TimeoutError):
            return Fault.UNAVAILABLE  # the pool had no connection to give
        if not isinstance(exc, pymysql.err.MySQLError):
            return None
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in READ_ONLY_CODES:
            return Fault.READ_ONLY
        if code in NO_SCHEMA_CODES:
            return Fault.NO_SCHEMA
        if code in BAD_VALUE_CODES or isinstance(exc, pymysql.err.DataError):
            return Fault.BAD_VALUE
        if code in TIMED_OUT_CODES:
            return Fault.TIMED_OUT
        if isinstance(exc, pymysql.err.OperationalError | pymysql.err.InterfaceError):
            return Fault.UNAVAILABLE
        return None

    def error_line(self, exc: BaseException) -> str:
        if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
            exc = exc.orig
        if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
            return f"({exc.args[0]}) {str(exc.args[1]).splitlines()[0]}"
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

    def fetchone(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Row | None:
        with conn.cursor() as cur:
            cur.execute(sql, tuple(params) or None)
            row = cur.fetchone()
        return _aware(row) if row is not None else None

    def fetchall(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with conn.cursor() as cur:
            cur.execute(sql, tuple(params) or None)
            return [_aware(row) for row in cur.fetchall()]

    def execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> int:
        with conn.cursor() as cur:
            return int(cur.execute(sql, tuple(params) or None))

    def insert_if_absent(self, conn: Any, table: str, values: dict[str, Any],
                         key: str) -> bool:
        """`ON DUPLICATE KEY UPDATE k = k` changes nothing (0 rows) on a replay; not `INSERT
        IGNORE`, which would also turn a too-long value into a silent truncation. The 0 relies
        on connections without CLIENT_FOUND_ROWS (SQLAlchemy's dialect would set it; the pool's
        `creator` makes our own connections)."""
        columns = ", ".join(f"`{c}`" for c in values)
        marks = ", ".join(["%s"] * len(values))
        sql = (f"INSERT INTO `{table}` ({columns}) VALUES ({marks})"
               f" ON DUPLICATE KEY UPDATE `{key}` = `{key}`")
        return self.execute(conn, sql, list(values.values())) == 1

    def upsert(self, conn: Any, table: str, values: dict[str, Any], key: str) -> None:
        columns = ", ".join(f"`{c}`" for c in values)
        marks = ", ".join(["%s"] * len(values))
        updates = ", ".join(f"`{c}` = VALUES(`{c}`)" for c in values if c != key)
        self.execute(conn, f"INSERT INTO `{table}` ({columns}) VALUES ({marks})"
                           f" ON DUPLICATE KEY UPDATE {updates}", list(values.values()))

    def server_state(self, conn: Any, *, with_lag: bool) -> ServerState:
        row = self.fetchone(conn, "SELECT @@global.read_only,"
                                  " (SELECT epoch FROM regionguard_epoch WHERE id = 1)")
        assert row is not None
        read_only, epoch = bool(row[0]), None if row[1] is None else int(row[1])
        if not with_lag:
            return ServerState(read_only, epoch, None, None)
        return ServerState(read_only, epoch, None, _replica_lag_s(conn) if read_only else 0.0)

    def fence_connection(self, dsn: str) -> Any:
        raise NotImplementedError("no fence of its own yet (fences = False)")

    def extend_fence(self, conn: Any, seconds: float, region: str, epoch: int,
                     finish_by: float) -> bool:
        return False  # not yet: the app's lease alone fences a MySQL primary

    def bound_transaction(self, conn: Any, timeout_s: float) -> None:
        # InnoDB bounds lock waits in whole seconds (at least 1); MySQL's max_execution_time
        # covers SELECTs only and MariaDB names it otherwise, so lock waits are what is bound
        # here, and the lease is checked again before the commit
        self.execute(conn, "SET SESSION innodb_lock_wait_timeout = %s",
                     (max(1, math.ceil(timeout_s)),))
        conn.info[BOUNDED] = True  # reset when the transaction ends (the session is pooled)

    def wal_position(self, conn: Any) -> WalPosition | None:
        return None  # a GTID set is no single position; the checker then skips the property

    def epoch_for_write(self, conn: Any) -> int:
        row = self.fetchone(conn, "SELECT epoch FROM regionguard_epoch WHERE id = 1"
                                  " LOCK IN SHARE MODE")
        return int(row[0]) if row else 0

    def migrate(self, conn: Any) -> list[str]:
        row = self.fetchone(conn, "SELECT @@global.read_only")
        if row and row[0]:
            return []
        got = self.fetchone(conn, "SELECT GET_LOCK(%s, %s)",
                            (MIGRATION_LOCK, MIGRATION_LOCK_WAIT_S))
        if not got or got[0] != 1:
            raise pymysql.err.OperationalError(
                ER.LOCK_WAIT_TIMEOUT, "another process holds the migration lock")
        try:
            self.execute(conn, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                               " version VARCHAR(64) PRIMARY KEY,"
                               " applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))")
            done = {r[0] for r in self.fetchall(conn, "SELECT version FROM schema_migrations")}
            applied: list[str] = []
            for version, body in migration_files("mysql"):
                if version in done:
                    continue
                for statement in statements(body):
                    self.execute(conn, statement)
                self.execute(conn, "INSERT INTO schema_migrations (version) VALUES (%s)",
                             (version,))
                applied.append(version)
            return applied
        finally:
            self.fetchone(conn, "SELECT RELEASE_LOCK(%s)", (MIGRATION_LOCK,))


class MySqlPool:
    """SQLAlchemy's queue pool over PyMySQL, used for its pooling alone: connections are the
    driver's own (raw DB-API, made by `connect` with exactly our arguments), checked with a
    ping when taken, and nothing connects until the first request (a dead database does not
    hold up the app's start)."""

    def __init__(self, region: str, dsn: str, *, size: int, timeout_s: float) -> None:
        arguments, sslmode = parse_dsn(dsn)
        self.region = region

        def connect() -> pymysql.Connection:
            conn = pymysql.connect(**arguments)
            if sslmode != "disable":
                _require_tls(conn)
            return conn

        self._engine = sqlalchemy.create_engine(
            "mysql+pymysql://", creator=connect, pool_size=size, max_overflow=0,
            pool_timeout=timeout_s, pool_pre_ping=True, pool_recycle=1800)

    def open(self, wait: bool = False) -> None:
        """Nothing to do: the pool connects on first use."""

    def close(self, timeout: float = 1) -> None:
        self._engine.dispose()

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Any]:
        conn = self._engine.raw_connection()
        try:
            yield conn
        finally:
            conn.close()  # back to the pool (rolled back if a transaction was left open)


def parse_dsn(dsn: str) -> tuple[dict[str, Any], str]:
    """`mysql://user:password@host:port/database?sslmode=...&sslrootcert=...` as
    `pymysql.connect` arguments, and the sslmode."""
    parts = urlsplit(dsn)
    if parts.scheme != "mysql" or not parts.hostname or not parts.path.strip("/"):
        raise DsnError("a MySQL DSN is mysql://user:password@host:3306/database"
                       "?sslmode=require")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    sslmode = query.get("sslmode", "require")
    if sslmode not in SSL_MODES:
        raise DsnError(f"sslmode={sslmode} is not one of {', '.join(SSL_MODES)}")
    arguments: dict[str, Any] = {
        "host": parts.hostname, "port": parts.port or 3306,
        "user": unquote(parts.username or ""), "password": unquote(parts.password or ""),
        "database": unquote(parts.path.strip("/")),
        "autocommit": True, "connect_timeout": 2, "read_timeout": 10, "write_timeout": 10,
        "charset": "utf8mb4",
        # UTC timestamps; strict mode whatever the server's default, so a value too long is
        # an error (400), never silently truncated
        "init_command": "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,"
                        "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"}
    if sslmode == "disable":
        arguments["ssl_disabled"] = True  # PyMySQL would otherwise try TLS ("preferred")
    elif sslmode == "require":
        arguments["ssl"] = {"check_hostname": False}  # no CA given: encrypted, unverified
    elif sslmode == "verify-full":
        if not query.get("sslrootcert"):
            raise DsnError("sslmode=verify-full needs sslrootcert=<CA bundle file> (for RDS, "
                           "the Region's certificate bundle)")
        arguments["ssl"] = {"ca": query["sslrootcert"], "check_hostname": True}
    return arguments, sslmode


def mysql_dsn(*, host: str, port: int, database: str, user: str, password: str,
              sslmode: str = "require", sslrootcert: str | None = None) -> str:
    from urllib.parse import quote, urlencode

    query = {"sslmode": sslmode, **({"sslrootcert": sslrootcert} if sslrootcert else {})}
    return (f"mysql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/"
            f"{quote(database, safe='')}?{urlencode(query)}")


def _require_tls(conn: Any) -> None:
    """PyMySQL falls back to plain text when a server offers no TLS: refuse that here."""
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        row = cur.fetchone()
    if not row or not row[1]:
        conn.close()
        raise pymysql.err.OperationalError(
            2026, "the server offers no TLS and sslmode requires it")  # CR_SSL_CONNECTION_ERROR


def _replica_lag_s(conn: Any) -> float | None:
    """Seconds behind the source, from the replica's status (None: unknown, e.g. the user
    lacks REPLICATION CLIENT or replication is stopped)."""
    for statement, column in (("SHOW REPLICA STATUS", "Seconds_Behind_Source"),
                              ("SHOW SLAVE STATUS", "Seconds_Behind_Master")):
        try:
            with conn.cursor(pymysql.cursors.DictCursor) as cur:
                cur.execute(statement)
                row = cur.fetchone()
        except pymysql.err.MySQLError:
            continue
        if row is None:
            return None
        value = row.get(column)
        return None if value is None else float(value)
    return None


def _aware(row: Row) -> Row:
    return tuple(v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo is None
                 else v for v in row)
