"""The database's own fence, kept ahead by the app that holds the write lease.

While this region's apps hold the lease, the primary's `regionguard_fence.writable_until` is
kept ahead, on the database's own clock, by what is left of the lease just confirmed; a
deferred constraint trigger refuses any commit to user data after it (migrations/postgres/
003_fence.sql). When the region loses the lease (revoked, or cut off from the arbiter) nobody
renews it, and the database refuses writes by itself, from the app or from anyone who bypasses
it, with nothing from another region having to reach it.

It must never outlast the lease. What is left is read just before the statement runs, less a
slack, and the extension is rolled back unless the statement came back within that slack: a
delay between the two (a slow network, a pause of the process, a Lambda environment frozen
in between) can only shorten the fence, never lengthen it. It runs on a thread and a
connection of its own (with a TCP timeout), so a database that hangs never holds the lease's
renewal or a request up; the lease is published whatever happens here.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from regionguard.app.engines import Engine, Fault
from regionguard.app.lease import LeaseGuard, LeaseView

log = logging.getLogger("regionguard.fence")

MIN_SLACK_S = 0.05  # real seconds: a round trip to the database within this is expected


class FenceKeeper:
    def __init__(self, engine: Engine, dsn: str, region: str, lease: LeaseGuard,
                 margin_s: float) -> None:
        self.engine = engine
        self.dsn = dsn
        self.region = region
        self.lease = lease
        # real seconds the fence ends before the lease: at least half the commit margin (the
        # app, which stops starting writes a whole margin before, is then rarely refused by
        # it) and at least a local round trip
        self.slack_s = max(margin_s / 2 * lease.clock.factor, MIN_SLACK_S)
        self._conn: Any = None
        self._wanted: LeaseView | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="rg-fence")
        self.extended = 0  # extensions committed (for the tests and the log)
        self._opened: tuple[int, float] | None = None  # (epoch, monotonic) of the last one
        self._last_error = ""  # told once until it changes (a down database: every refresh)

    def start(self) -> FenceKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=2)
        self._close()

    def confirmed(self, view: LeaseView, _left_real_s: float = 0.0) -> None:
        """The lease was just confirmed for this region (the lease's `on_confirmed`): extend
        the fence from it, soon, on the keeper's own thread."""
        with self._cond:
            self._wanted = view
            self._cond.notify()

    def opened(self, epoch: int | None) -> bool:
        """The fence was opened for the lease at `epoch` and has not run out: this region's
        `/health/route` says so only then, so the edge (or Route 53) sends no write to a new
        primary before its fence lets the writes commit."""
        opened = self._opened
        return (opened is not None and opened[0] == epoch
                and time.monotonic() < opened[1])

    def retry(self) -> None:
        """A write found the fence shut while the lease is held (right after a promote, before
        the first extension reached the new primary): extend now from the current lease."""
        view = self.lease.holds()
        if view is not None:
            self.confirmed(view)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._wanted is None and not self._stop:
                    self._cond.wait()
                view, self._wanted = self._wanted, None
                if self._stop or view is None:
                    return
            try:
                self._extend(view)
            except Exception as exc:  # the next confirmation tries again
                self._close()
                if self.engine.classify(exc) is Fault.READ_ONLY:  # a standby: not ours
                    continue
                line = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                if line != self._last_error:
                    log.warning("the database's fence was not extended: %s", line)
                self._last_error = line
            else:
                self._last_error = ""

    def _extend(self, view: LeaseView) -> None:
        if self._conn is None:
            self._conn = self.engine.fence_connection(self.dsn)
        started = time.monotonic()
        seconds = self.lease.remaining_s(view) * self.lease.clock.factor - self.slack_s
        if seconds <= 0:
            return  # this confirmation is used up: nothing to extend
        if self.engine.extend_fence(self._conn, seconds, self.region, view.epoch,
                                    finish_by=started + self.slack_s):
            self.extended += 1
            self._opened = (view.epoch, started + seconds)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:  # closing a broken connection: nothing to do
                log.debug("closing the fence's connection: %s", exc)
