"""The app's database layer behind one small interface, with a PostgreSQL and a MySQL engine.

The app speaks to its databases through an `Engine`: pools, transactions, the few statements
whose SQL differs between the two (an idempotent insert, the role and lag of a server, the
migrations) and a classification of the driver's errors into what the app does about them.
Everything else the app sends is the SQL both share (DB-API `%s` parameters in both drivers).

PostgreSQL runs in both worlds. MySQL (RDS MySQL, seed 000) runs in the AWS world, where the
write lease decides who writes; the local world's sandbox is PostgreSQL only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, Protocol

EngineName = Literal["postgres", "mysql"]
ENGINES: tuple[EngineName, ...] = ("postgres", "mysql")
Row = tuple[Any, ...]


class Fault(Enum):
    """What a driver error means to the app."""

    READ_ONLY = "read-only"  # a standby (in recovery, read_only): retry on the primary
    NO_SCHEMA = "no-schema"  # a new database, before the first migration pass
    UNAVAILABLE = "unavailable"  # no connection, or it broke: retry later
    BAD_VALUE = "bad-value"  # a value the database cannot store: the client's input
    TIMED_OUT = "timed-out"  # a statement or lock wait ran past its bound (the lease's time)
    FENCED = "fenced"  # the database's own fence: its region holds no write lease


@dataclass(frozen=True, slots=True)
class ServerState:
    """A server's role and replication lag, as /health/deep reports them."""

    in_recovery: bool
    epoch: int | None
    lag_bytes: int | None
    lag_s: float | None


@dataclass(frozen=True, slots=True)
class WalPosition:
    timeline: int
    lsn: str  # PostgreSQL's text form, e.g. 0/3000148


class Pool(Protocol):
    def open(self, wait: bool = False) -> None: ...
    def close(self, timeout: float = 1) -> None: ...
    def connection(self, timeout: float | None = None) -> AbstractContextManager[Any]: ...


class Engine(Protocol):
    name: EngineName
    fences: bool  # the database keeps a fence of its own (`extend_fence`)

    def pool(self, region: str, dsn: str, *, size: int, timeout_s: float) -> Pool:
        """A pool that opens without waiting (no connection to a dead database at start)."""
        ...

    def transaction(self, conn: Any) -> AbstractContextManager[None]: ...

    def bound_transaction(self, conn: Any, timeout_s: float) -> None:
        """Inside a transaction: no statement of it, lock waits included, may run longer
        than `timeout_s` (what is left of the write lease); past it the driver raises an
        error classified TIMED_OUT and the transaction rolls back."""
        ...

    def classify(self, exc: BaseException) -> Fault | None:
        """The app's reading of a driver error; None for errors that are not the driver's."""
        ...

    def error_line(self, exc: BaseException) -> str: ...

    # -- shared SQL --------------------------------------------------------------------------
    def fetchone(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Row | None: ...
    def fetchall(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    def execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    # -- the statements whose SQL differs ----------------------------------------------------
    def insert_if_absent(self, conn: Any, table: str, values: dict[str, Any],
                         key: str) -> bool:
        """Insert a row unless one with the same unique `key` exists; True when inserted."""
        ...

    def upsert(self, conn: Any, table: str, values: dict[str, Any], key: str) -> None:
        """Insert a row, or replace every other column of the one with the same `key`: one
        statement, so two concurrent writers of one key never collide on it."""
        ...

    def server_state(self, conn: Any, *, with_lag: bool) -> ServerState: ...

    def fence_connection(self, dsn: str) -> Any:
        """A connection of the fence keeper's own (app/fence.py), with a TCP timeout: a hung
        database never holds the keeper's thread longer than a few seconds."""
        ...

    def extend_fence(self, conn: Any, seconds: float, region: str, epoch: int,
                     finish_by: float) -> bool:
        """Keep this database writable for `seconds` more, on its own clock (the lease this
        region's app just confirmed has that long left); past it, a commit that changes user
        data is refused by the database itself. Rolled back (False) unless the statement came
        back by `finish_by` (monotonic): a late one might outlast the lease."""
        ...

    def epoch_for_write(self, conn: Any) -> int:
        """The fencing token's row, share-locked for the transaction (the local world)."""
        ...

    def wal_position(self, conn: Any) -> WalPosition | None:
        """Where the server's log is now (timeline and LSN), asked on the write's own
        connection outside its transaction, just before it begins and just after it commits,
        so its commit record lies between the two: the history checker places each
        acknowledged write on the database's own history, with no clock. Bounded in time. None
        where the engine has no such position (MySQL here)."""
        ...

    def migrate(self, conn: Any) -> list[str]:
        """Apply pending migrations on a primary; the versions applied (none on a standby)."""
        ...


def engine(name: str) -> Engine:
    """The engine for `RG_DB_ENGINE`; its driver is imported only when chosen."""
    if name == "postgres":
        from regionguard.app.engines.postgres import PostgresEngine

        return PostgresEngine()
    if name == "mysql":
        from regionguard.app.engines.mysql import MySqlEngine

        return MySqlEngine()
    raise ValueError(f"unknown database engine {name!r}: use one of {', '.join(ENGINES)}")


def migration_files(engine_name: EngineName) -> list[tuple[str, str]]:
    """(version, SQL) in order, from `app/migrations/<engine>/`."""
    from importlib import resources

    folder = resources.files("regionguard.app") / "migrations" / engine_name
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")),
                   key=lambda p: p.name)
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


def statements(body: str) -> Iterator[str]:
    """A migration file's statements, one by one (drivers that run one at a time)."""
    lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
    for statement in "\n".join(lines).split(";"):
        if statement.strip():
            yield statement.strip()
