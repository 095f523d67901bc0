"""Database routing for the workload: read local, write primary, and refuse unsafe writes.

The app holds one connection pool per region, opened without waiting (no connection to a dead
database on the start path). The writer is learned from the front door's route (the
`X-Regionguard-Writer` header) and, without one, from a background discovery that looks for the
database not in recovery with the highest epoch; never by timing out on the old primary.
Every write checks, in its own transaction, that the database is not in recovery and that its
epoch equals the one the request was routed with (the fencing token).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from regionguard.app.engines import Engine, Fault, WalPosition, engine
from regionguard.app.errors import BadValue, Unavailable
from regionguard.app.fence import FenceKeeper
from regionguard.app.lease import LeaseGuard, LeaseView
from regionguard.app.settings import AppSettings

log = logging.getLogger("regionguard.app")

Conn = Any  # the engine's DB-API connection


@dataclass(slots=True)
class WriteTarget:
    region: str
    epoch: int
    # the server's log before the write's transaction began and once it committed
    # (`Engine.wal_position`): the commit record lies between them
    before_commit: WalPosition | None = None
    after_commit: WalPosition | None = None


POSITION_GIVE_UP = 3  # consecutive failures of the commit position before it is not asked again


class DatabaseRouter:
    def __init__(self, settings: AppSettings, discovery_interval_s: float = 0.5,
                 lease: LeaseGuard | None = None) -> None:
        self.settings = settings
        self.lease = lease  # AWS: writes need this region's confirmed write lease
        self.engine: Engine = engine(settings.engine)
        self.pools = {
            region: self.engine.pool(region, dsn, size=settings.pool_max,
                                     timeout_s=settings.db_timeout_s)
            for region, dsn in settings.dsns.items()
        }
        self._discovered: str | None = None
        self._interval_s = discovery_interval_s
        # the database's own fence, kept ahead while this region holds the lease (fence.py)
        self.fence: FenceKeeper | None = None
        if lease is not None and self.engine.fences:
            self.fence = FenceKeeper(self.engine, settings.dsns[settings.region],
                                     settings.region, lease, self.commit_margin_s()).start()
            lease.on_confirmed = self.fence.confirmed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.migrated: list[str] | None = None
        self._last_error: str | None = None
        self._position_failures = 0  # consecutive: the engine cannot give commit positions

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        if self.lease is not None:
            self.lease.start()
        for pool in self.pools.values():
            pool.open(wait=False)
        self._thread = threading.Thread(target=self._discover_loop, daemon=True,
                                        name="rg-writer-discovery")
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self.lease is not None:
            self.lease.stop()
        if self.fence is not None:
            self.fence.stop()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for pool in self.pools.values():
            pool.close(timeout=1)

    def _discover_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._discovered = self.discover_writer()
                if self.migrated is None:
                    self._migrate_local()
            except Exception:  # the loop must survive anything a dead database throws
                log.exception("writer discovery failed")
            self._stop.wait(self._interval_s)

    def _migrate_local(self) -> None:
        """Apply migrations on the local database once it is a reachable primary."""
        try:
            with self.pools[self.settings.region].connection(timeout=0.5) as conn:
                self.migrated = self.engine.migrate(conn)
                if self.migrated:
                    log.info("applied migrations %s", self.migrated)
        except Exception as exc:  # retried on the next pass; told once, not every 0.5 s
            if self.engine.classify(exc) is None:
                self._log_once("migrations", exc)

    def _log_once(self, what: str, exc: Exception) -> None:
        message = f"{what} failed: {type(exc).__name__}: {self.engine.error_line(exc)}"
        if message != self._last_error:
            self._last_error = message
            log.error("%s", message)

    # -- routing -----------------------------------------------------------------------------

    def discover_writer(self) -> str | None:
        """The region whose database is not in recovery and has the highest epoch."""
        best: tuple[int, str] | None = None
        for region, pool in self.pools.items():
            try:
                with pool.connection(timeout=0.3) as conn:
                    state = self.engine.server_state(conn, with_lag=False)
            except Exception as exc:  # any region that cannot answer is not the writer
                if self.engine.classify(exc) is None:
                    self._log_once(f"writer discovery in {region}", exc)
                continue
            if not state.in_recovery:
                epoch = state.epoch or 0
                if best is None or epoch > best[0]:
                    best = (epoch, region)
        return best[1] if best else None

    def writer(self, hint: str | None) -> str:
        if hint:
            if hint not in self.pools:
                raise Unavailable(f"front door routes writes to unknown region {hint!r}")
            return hint
        if self._discovered is None:
            raise Unavailable("no primary database found yet")
        return self._discovered

    @contextmanager
    def read(self) -> Iterator[Conn]:
        """A connection to this region's own database (read local)."""
        with self._connection(self.settings.region) as conn:
            yield conn

    @contextmanager
    def write(
        self, writer_hint: str | None, epoch_hint: int | None
    ) -> Iterator[tuple[Conn, WriteTarget]]:
        """A transaction on the primary that holds the epoch row, or `Unavailable`.

        Refuses when the database is in recovery (a standby) or its epoch differs from the
        epoch the front door routed this request with (a fenced or stale primary). With a
        write lease (AWS), the lease decides: this region writes to its own database only
        while it holds the lease, and the lease's epoch is the token (`_write_under_lease`)."""
        if self.lease is not None:
            yield from self._write_under_lease(self.lease.require_write())
            return
        writer_hint, token = self._token(writer_hint, epoch_hint)
        region = self.writer(writer_hint)
        with self._connection(region) as conn:
            before = self._position(conn)
            with self.engine.transaction(conn):
                epoch = self.engine.epoch_for_write(conn)
                if epoch != token:
                    self._discovered = None if self._discovered == region else self._discovered
                    raise Unavailable(f"epoch mismatch: the write carries epoch {token}, "
                                      f"database {region} holds {epoch}")
                target = WriteTarget(region, epoch, before_commit=before)
                yield conn, target
            target.after_commit = self._position(conn)

    def _token(self, writer_hint: str | None, epoch_hint: int | None) -> tuple[str | None, int]:
        """An app run without a write lease (no arbiter configured: a test, a one-off) takes
        the fencing token from the request (`X-Regionguard-Epoch`), and the database must hold
        that epoch. Never none: a write with no token is refused. Every deployment (the sites,
        AWS) runs its apps under the write lease instead, which a header cannot forge."""
        if epoch_hint is None:
            raise Unavailable("no fencing token: the write carries no X-Regionguard-Epoch and "
                              "this app holds no write lease (no arbiter configured)")
        return writer_hint, epoch_hint

    def _write_under_lease(self, granted: LeaseView) -> Iterator[tuple[Conn, WriteTarget]]:
        """A write commits only under its lease. Across a network nobody can stop the old
        primary's apps, so each write fences itself:

        - every statement, lock waits included, is bounded by the time left on the lease
          (less the commit's margin): a write stalled on a lock cannot outlast it;
        - the epoch row is share-locked and must not be newer than the lease's epoch (a
          later plan promoted this database: the lease this app holds is stale);
        - just before the commit the lease is checked again, without asking the arbiter: the
          region must still hold it, at the same epoch, with the margin left. Otherwise the
          transaction rolls back and the client gets 503; nothing becomes visible.

        The engine waits out the old lease (with slack for clock rates) before it promotes or
        routes elsewhere. The commit that follows the last check is bounded by the margin, and
        its final flush (which PostgreSQL cannot cancel) is what the margin is for.

        Where nothing stamps the epoch row (AWS today: RDS and Aurora promote without it),
        the share-locked check can only pass; it fences once the world stamps it."""
        assert self.lease is not None
        region = self.settings.region
        margin = self.commit_margin_s()
        with self._connection(region) as conn:
            before = self._position(conn)
            with self.engine.transaction(conn):
                left = self.lease.remaining_s(granted) - margin
                if left <= 0:
                    raise Unavailable(self.lease.running_out(granted, margin))
                self.engine.bound_transaction(conn, left * self.lease.clock.factor)
                epoch = self.engine.epoch_for_write(conn)
                if epoch > granted.epoch:
                    raise Unavailable(f"database {region} holds epoch {epoch}, newer than this "
                                      f"region's write lease at epoch {granted.epoch}")
                target = WriteTarget(region, granted.epoch, before_commit=before)
                yield conn, target
                self.lease.require_commit(granted, margin)
                # the COMMIT itself (deferred constraints, triggers) gets the margin, no more;
                # its last instant (the WAL flush) cannot be cancelled: the margin covers it
                self.engine.bound_transaction(conn, margin * self.lease.clock.factor)
            target.after_commit = self._position(conn)

    def _position(self, conn: Conn) -> WalPosition | None:
        """The log's position, read outside the write's transaction (before it begins: a lower
        bound for its commit; after it committed: an upper bound), bounded in time by the
        engine. Never a reason to fail a write: None instead, and the checker cannot place it.
        An engine that keeps failing it (a managed database without the functions) is not
        asked again."""
        if self._position_failures >= POSITION_GIVE_UP:
            return None
        try:
            found = self.engine.wal_position(conn)
        except Exception as exc:  # the driver's, or a function the server lacks: the write
            # stands either way
            if self.engine.classify(exc) is Fault.READ_ONLY:
                return None  # a standby (one that promotes under a handed-over lease): the
                # functions are there, and will answer once it is promoted
            self._position_failures += 1
            if self._position_failures == POSITION_GIVE_UP:
                self._log_once("commit positions", exc)
            return None
        self._position_failures = 0
        return found

    def commit_margin_s(self) -> float:
        """World seconds a commit may still take after the last lease check: a tenth of the
        lease, at most a second."""
        assert self.lease is not None
        return min(1.0, self.lease.lease_s / 10)

    @contextmanager
    def _connection(self, region: str) -> Iterator[Conn]:
        """A pooled connection; the driver's errors, wherever in the block they arise, become
        the app's: 503 (Unavailable) for what a retry may fix, 400 (BadValue) for input."""
        try:
            with self.pools[region].connection() as conn:
                yield conn
        except Exception as exc:
            fault = self.engine.classify(exc)
            if fault is None:
                raise
            raise self._translate(region, fault, exc) from None

    def _translate(self, region: str, fault: Fault, exc: Exception) -> Exception:
        match fault:
            case Fault.READ_ONLY:
                return Unavailable(f"database {region} is a standby (read-only)")
            case Fault.NO_SCHEMA:
                return Unavailable(f"database {region} has no schema yet (migrations pending)")
            case Fault.BAD_VALUE:
                return BadValue(f"invalid value: {self.engine.error_line(exc)}")
            case Fault.FENCED:
                if self.fence is not None:  # held lease, shut fence: just promoted
                    self.fence.retry()
                return Unavailable(f"database {region} is fenced: its region holds no write "
                                   "lease (the database's own fence); not committed")
            case Fault.TIMED_OUT:
                return Unavailable(f"database {region}: the write did not finish in the time "
                                   f"left on its write lease ({self.engine.error_line(exc)}); "
                                   "not committed")
            case _:
                return Unavailable(f"database {region} unavailable: "
                                   f"{self.engine.error_line(exc)}")

    def local_health(self) -> dict[str, object]:
        """The local database's role, epoch and replication lag, for /health/deep."""
        with self._connection(self.settings.region) as conn:
            state = self.engine.server_state(conn, with_lag=True)
        return {
            "region": self.settings.region,
            "role": "standby" if state.in_recovery else "primary",
            "in_recovery": state.in_recovery,
            "epoch": state.epoch,
            "lag_bytes": state.lag_bytes,
            "lag_s": state.lag_s,
            "writer": self._discovered,
            "engine": self.engine.name,
        }
