"""The primary site's agent keeps the write lease, or fences its own database.

Two threads, so that safety never waits on a network call:
- the renewer takes the writer key when the arbiter names this region primary, and renews it
  every `renew_every_s`; a renewal etcd refuses (the lease expired, or a plan revoked this
  region) fences at once;
- the deadline monitor fences when the holder's own deadline (its last renewal *sent* plus the
  TTL, less the margin) passes, however long a renewal call hangs.

With a `heartbeat`, each renewal publishes the new deadline for the watchdog (watchdog.py),
which fences the database when the whole agent is frozen or dead. With a `watch`, a change of
the arbiter's state (a plan claiming the epoch) wakes the renewer at once, so a primary that
a switchover takes the writer from hands over within a round trip, not at its next renewal.

The fence is this site's own (`fence` is given the reason and acts on the local database):
no other site ever signals this one. Once fenced, the keeper stays fenced while the arbiter
names this region primary; once a plan has made it a standby (its database is rebuilt by
`rejoin`), a later plan may make it primary again and the keeper takes the key anew.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from regionguard.agent.watchdog import Heartbeat
from regionguard.clock import SYSTEM_CLOCK, Clock
from regionguard.errors import ProviderError
from regionguard.providers.etcd.writer_lease import LeaseLost, WriterLease

log = logging.getLogger("regionguard.agent.lease")

MONITOR_EVERY_S = 0.05  # how often the deadline monitor looks (it only reads a clock)


class KeeperState(StrEnum):
    IDLE = "idle"  # not the primary, or another holder's key still stands
    HOLDING = "holding"
    FENCED = "fenced"


class LeaseKeeper:
    """Keep `region`'s write lease while the arbiter names it primary; fence on losing it."""

    def __init__(self, lease: WriterLease, region: str, fence: Callable[[str], object], *,
                 renew_every_s: float, clock: Clock = SYSTEM_CLOCK,
                 heartbeat: Heartbeat | None = None,
                 watch: Callable[[Callable[[], None], threading.Event], None] | None = None
                 ) -> None:
        self.lease = lease
        self.region = region
        self._fence = fence
        self.renew_every_s = renew_every_s
        self.clock = clock
        self.heartbeat = heartbeat  # the watchdog's view of the fence deadline
        self.watch = watch  # (on_change, stop): calls on_change when the state changes
        self._published: float | None = None  # what the heartbeat says now
        self.state = KeeperState.IDLE
        self.fenced_because: str | None = None
        self.revoked_by: dict[str, Any] | None = None  # the plan behind the last fence
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # renew (or take the key) now, not at the next turn
        self._threads: list[threading.Thread] = []

    # -- one step each (the threads loop over these; tests call them directly) ---------------

    def renew_once(self) -> KeeperState:
        with self._lock:
            fenced = self.state is KeeperState.FENCED
            holding = self.lease.holding
        try:
            if fenced:
                return self._after_fence()
            if holding is None:
                doc, _ = self.lease.store.read_state()
                if doc["roles"].get(self.region) != "primary":
                    return self._set(KeeperState.IDLE)
                self.lease.acquire(self.region, int(doc["epoch"]))
                log.info("%s holds the write lease at epoch %s", self.region, doc["epoch"])
                return self._set(KeeperState.HOLDING)
            self.lease.renew()
            return self._set(KeeperState.HOLDING)
        except LeaseLost as exc:
            if holding is None:
                return self._set(KeeperState.IDLE)  # not ours to take (yet)
            return self.fence(f"write lease lost: {exc}", revoked_by=exc.plan)
        except ProviderError as exc:  # etcd unreachable: the monitor fences at the deadline
            if holding is not None and self.lease.holding is None:  # dropped: fence now
                return self.fence(f"write lease dropped: {exc}")
            log.warning("%s could not renew its write lease: %s", self.region, exc)
            return self.state

    def _after_fence(self) -> KeeperState:
        """Fenced stays fenced while a plan runs, while this region's lease is revoked, or
        while a writer key still stands. Otherwise the fence is history: after a plan made this
        region a standby, a later plan may promote it and the keeper takes the key anew; and a
        primary that fenced itself over an etcd outage that moved nothing takes the key again
        at the same epoch (its agent then restarts and unfences its database), as a
        restarted agent would. A survivor's plan that claims a later epoch meanwhile revokes
        it again: acquiring never changes the state document a claim compares."""
        doc, _ = self.lease.store.read_state()
        if doc["roles"].get(self.region) == "primary" and (
                doc.get("plan") or {}).get("status") == "running":
            return KeeperState.FENCED  # a plan may be moving the writer: it decides
        if doc["roles"].get(self.region) == "primary" and (
                doc.get("revoked") == {"region": self.region, "epoch": int(doc["epoch"])}
                or self.lease.store.writer() is not None):
            return KeeperState.FENCED  # revoked, or a key still stands: not ours to take
        with self._lock:
            self.state = KeeperState.IDLE
            self.fenced_because = None
        log.info("%s: its fence is history (epoch %s, %s)", self.region, doc["epoch"],
                 doc["roles"].get(self.region))
        return KeeperState.IDLE

    def check_deadline(self) -> KeeperState:
        with self._lock:
            if self.state is not KeeperState.HOLDING:
                return self.state
            deadline = self.lease.fence_deadline()
        if deadline is not None and self.clock.monotonic() >= deadline:
            return self.fence("the write lease could not be renewed before its deadline")
        return self.state

    def fence(self, reason: str, revoked_by: dict[str, Any] | None = None) -> KeeperState:
        """`revoked_by`: the record of the plan that revoked the lease, as etcd said it (no
        other read: a fence at the deadline must not wait on an etcd it cannot reach)."""
        with self._lock:
            if self.state is KeeperState.FENCED:
                return self.state
            self.state = KeeperState.FENCED
            self.fenced_because = reason
            self.revoked_by = revoked_by
        log.error("%s fences itself: %s", self.region, reason)
        try:
            self._fence(reason)
        finally:
            self.lease.holding = None  # whatever the key's fate in etcd, this site acts on none
        # the fence is done: nothing is left for the watchdog to stop. Left standing, the old
        # deadline would fire later on whatever runs then (a standby rebuilt a second after a
        # switchover's handover, fenced read-only). A fence that raised keeps it standing.
        if self.heartbeat is not None:
            self.heartbeat.publish(None)
            self._published = None
        return KeeperState.FENCED

    def _set(self, state: KeeperState) -> KeeperState:
        with self._lock:
            if self.state is KeeperState.FENCED:
                return self.state
            self.state = state
            deadline = self.lease.fence_deadline() if state is KeeperState.HOLDING else None
        # after the renewal (never a later deadline than etcd's), outside the lock the
        # deadline monitor takes; a standby's "none" is written once, not on every look
        if self.heartbeat is not None and (deadline is not None or self._published is not None):
            self.heartbeat.publish(deadline)
            self._published = deadline
        return state

    # -- the threads ----------------------------------------------------------------------

    def wake(self) -> None:
        """Look now: a plan just made this region primary, and its `route` waits for the key."""
        self._wake.set()

    def start(self) -> None:
        for name, step, every, wake in (
                ("rg-lease-renew", self.renew_once, self.renew_every_s, self._wake),
                ("rg-lease-deadline", self.check_deadline, MONITOR_EVERY_S, None)):
            thread = threading.Thread(target=self._loop, args=(step, every, wake), daemon=True,
                                      name=name)
            thread.start()
            self._threads.append(thread)
        if self.watch is not None:  # not joined at stop: it may sit in a connect to a member
            threading.Thread(target=self.watch, args=(self.wake, self._stop), daemon=True,
                             name="rg-lease-watch").start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout_s)

    def _loop(self, step: Callable[[], KeeperState], every_s: float,
              wake: threading.Event | None) -> None:
        while not self._stop.is_set():
            try:  # a fenced keeper keeps looking: a later plan may make this region primary
                step()
            except Exception:  # a bug or a failed fence: told, and looked at again next turn
                log.exception("%s: lease keeper step failed", self.region)
            if wake is None:
                self._stop.wait(every_s * self.clock.factor)
            else:
                wake.wait(every_s * self.clock.factor)
                wake.clear()
