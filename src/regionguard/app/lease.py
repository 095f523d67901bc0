"""The app's write lease: it takes writes only while it has confirmed, recently, that its region
is the writer named by the arbiter.

Across a real network nobody can SIGKILL the other region, so the old primary's apps must fence
themselves. Every `refresh_s` a background thread reads the arbiter (a strongly consistent read
of the MRSC table, answered only by a replica that can reach a quorum of sites). A confirmation
counts from the moment its read *started*, and lasts `lease_s` on this process's own monotonic
clock. A region that is cut off from the arbiter, or that the arbiter no longer names, refuses
writes within `lease_s` (pg_auto_failover's `network_partition_timeout`, done by the app); the
engine routes writes elsewhere only once every such lease has ended: that long (with slack)
after revoking it, or, on AWS, after the latest end the region's apps recorded in the arbiter
before their confirmations (`dynamodb_reader`), when that is earlier: a region that died
stopped renewing when it died.

The token is the epoch at which the arbiter named this writer (`writer_epoch`): every write
stores it, so a write can never carry an epoch its region did not hold.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from regionguard.app.errors import Unavailable
from regionguard.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("regionguard.lease")

# -> (the writer's epoch, the writer region[, how long at most the arbiter still guarantees
# it, from the read: etcd's TTL left on the writer key]); raises when it cannot
ReadArbiter = Callable[[], tuple[int, str] | tuple[int, str, float]]


@dataclass(frozen=True, slots=True)
class LeaseView:
    epoch: int
    writer: str
    confirmed_at: float  # the world clock's monotonic time when the confirming read started
    lasts_s: float = float("inf")  # this confirmation's life: lease_s, or less when the
    # arbiter said its guarantee ends sooner (etcd: the writer key's TTL left)


class LeaseGuard:
    def __init__(self, region: str, read: ReadArbiter, lease_s: float,
                 refresh_s: float | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.region = region
        self.read = read
        self.lease_s = lease_s
        self.refresh_s = refresh_s or min(5.0, lease_s / 3)
        self.clock = clock
        self._view: LeaseView | None = None
        self._last_error = ""
        self._stop = threading.Event()
        self._wake = threading.Event()  # a health check found the lease aging: refresh now
        self._thread: threading.Thread | None = None
        # told of each confirmation that names this region, with the real seconds it has
        # left, before it counts (the database's own fence is kept ahead by it: db.py)
        self.on_confirmed: Callable[[LeaseView, float], None] | None = None

    # -- confirming ---------------------------------------------------------------------------

    def refresh(self) -> LeaseView | None:
        """One read of the arbiter. A failed read keeps the previous confirmation, which then
        simply ages out."""
        started = self.clock.monotonic()
        try:
            epoch, writer, *guaranteed = self.read()
        except Exception as exc:  # any failure to confirm is a lease not renewed
            self._last_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            return self._view
        lasts = min([self.lease_s, *(float(g) for g in guaranteed)])
        view = LeaseView(epoch, writer, started, lasts)
        if writer == self.region and self.on_confirmed is not None:
            left_real_s = (lasts - (self.clock.monotonic() - started)) * self.clock.factor
            try:
                self.on_confirmed(view, left_real_s)
            except Exception as exc:  # the lease stands whatever the fence's keeper did
                log.warning("keeping the database's fence ahead failed: %s",
                            str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
        previous = self._view
        if previous is None or started >= previous.confirmed_at:
            self._view = view
        self._last_error = ""
        return self._view

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="rg-lease")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._wake.wait(self.refresh_s * self.clock.factor)
            self._wake.clear()

    def kick(self) -> None:
        """Ask the background thread for a refresh now, without waiting for it (on Lambda the
        thread was frozen with the process between invocations)."""
        self._wake.set()

    # -- deciding ---------------------------------------------------------------------------

    def age_s(self) -> float | None:
        view = self._view
        return None if view is None else self.clock.monotonic() - view.confirmed_at

    def holds(self) -> LeaseView | None:
        """The lease, if this region holds it now (named writer, confirmed within lease_s)."""
        view, age = self._view, self.age_s()
        if view is None or age is None or age >= view.lasts_s or view.writer != self.region:
            return None
        return view

    def current(self) -> LeaseView | None:
        """The lease if held, re-confirmed first when the background refresh fell behind (on
        Lambda the process is frozen between invocations, and its thread with it)."""
        age = self.age_s()
        if age is None or age >= 2 * self.refresh_s:
            self.refresh()
        return self.holds()

    def named_writer(self) -> str | None:
        """The region the arbiter named in a confirmation still within lease_s (None: none
        confirmed recently); what a region that does not write forwards its writes to."""
        self.current()  # refreshed when behind
        view, age = self._view, self.age_s()
        if view is None or age is None or age >= view.lasts_s or not view.writer:
            return None
        return view.writer

    def remaining_s(self, view: LeaseView) -> float:
        """World seconds left on the lease `view` confirmed (negative: it has run out)."""
        return min(self.lease_s, view.lasts_s) - (self.clock.monotonic() - view.confirmed_at)

    def require_write(self) -> LeaseView:
        """The lease to write under (its epoch is the token), or `Unavailable` saying why this
        region may not write."""
        view = self.current()
        if view is not None:
            return view
        raise Unavailable(self.refusal(), retry_after_s=max(1, round(self.refresh_s)))

    def require_commit(self, granted: LeaseView, margin_s: float) -> None:
        """Just before a write commits: this region still holds the lease it began under (same
        epoch; a newer confirmation counts) with at least `margin_s` left for the commit
        itself, else `Unavailable` (the transaction is rolled back). Never refreshes inline:
        a commit does not wait on the arbiter."""
        view = self.holds()
        if view is None:
            raise Unavailable(self.refusal() + "; the write was not committed",
                              retry_after_s=max(1, round(self.refresh_s)))
        if view.epoch != granted.epoch:
            raise Unavailable(f"the write lease of {self.region} moved from epoch "
                              f"{granted.epoch} to {view.epoch} during the write; not committed")
        left = self.remaining_s(view)
        if left < margin_s:
            raise Unavailable(self.running_out(view, margin_s) + "; not committed",
                              retry_after_s=max(1, round(self.refresh_s)))

    def running_out(self, view: LeaseView, margin_s: float) -> str:
        """Why a write may not start (or commit) under a lease with less than `margin_s`
        left: it has not been renewed, and why."""
        age = self.clock.monotonic() - view.confirmed_at
        why = f": arbiter unreachable ({self._last_error})" if self._last_error else ""
        return (f"write lease of {self.region} not confirmed for {age:.1f} s (lease "
                f"{self.lease_s:g} s){why}; it runs out in "
                f"{max(0.0, self.remaining_s(view)):.2f} s, less than the {margin_s:g} s a "
                "write may take")

    def refusal(self) -> str:
        view, age = self._view, self.age_s()
        if view is None or age is None:
            return (f"write lease of {self.region} not confirmed yet"
                    + (f" ({self._last_error})" if self._last_error else ""))
        if age >= min(self.lease_s, view.lasts_s):
            return (f"write lease of {self.region} not confirmed for {age:.1f} s "
                    f"(lease {self.lease_s:g} s): arbiter unreachable"
                    + (f" ({self._last_error})" if self._last_error else ""))
        return (f"{self.region} does not hold the write lease: the arbiter names "
                f"{view.writer or 'no region'} at epoch {view.epoch}")

    def describe(self, refresh: bool = True) -> dict[str, Any]:
        """The lease as this process last confirmed it. `refresh=False` (the health path:
        Route 53's checkers give an answer 2 s) never reads the arbiter inline: it answers
        from the last confirmation and, when that is aging, kicks the background refresh."""
        if refresh:
            held = self.current() is not None
        else:
            age = self.age_s()
            if age is None or age >= 2 * self.refresh_s:
                self.kick()
            held = self.holds() is not None
        view, age = self._view, self.age_s()
        return {"region": self.region, "holds_lease": held,
                "writer": view.writer if view else None, "epoch": view.epoch if view else None,
                "confirmed_age_s": None if age is None else round(age, 3),
                "lease_s": self.lease_s, "error": self._last_error or None}


def dynamodb_reader(table: str, replica_regions: Sequence[str], region: str, lease_s: float,
                    clock: Clock = SYSTEM_CLOCK, clients: Any = None) -> ReadArbiter:
    """Read (epoch, writer) from the arbiter's `state` item, nearest replica first, strongly
    consistent; and before any read that may confirm `region` as the writer, record in its
    `lease#<region>` item when the lease it grants may end at the latest (`lease_s` on this
    host's wall clock from the confirmation's start, only ever raised: several apps share it).

    The order is what makes the record usable. A confirmation needs a read that names this
    region and *started after* the record was stored. The engine revokes the writer, then
    reads the record: any app whose read preceded the revoke had stored its record before
    that, so the engine sees it, and waits for the last lease of a Region that is out from
    that Region's last renewal, not for a whole lease from the revoke. A record that could
    not be stored confirms nothing, so the lease ages out. boto3 is imported only here: the
    app needs it only in the AWS world."""
    from regionguard.aws_naming import LEASE_RECORD_ATTRIBUTE, lease_record_key
    from regionguard.providers.aws.arbiter import CONDITION_FAILED
    from regionguard.providers.aws.boundary import error_code
    from regionguard.providers.aws.clients import AwsClients, NearestReplica

    clients = clients or AwsClients(clock=clock)
    nearest = NearestReplica(replica_regions)
    key = {"pk": {"S": lease_record_key(region)}}
    named_last = False  # the last read named this region: record before the next one

    def get(replica: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = clients.get("dynamodb", replica).get_item(
            TableName=table, Key={"pk": {"S": "state"}}, ConsistentRead=True,
            ProjectionExpression="epoch, writer, writer_epoch").get("Item")
        return item

    def record(until: float) -> Callable[[str], None]:
        # rounded up to the millisecond: a record never ends before the lease it covers
        value = {"N": f"{math.ceil(until * 1000) / 1000:.3f}"}

        def put(replica: str) -> None:
            try:
                clients.get("dynamodb", replica).update_item(
                    TableName=table, Key=key, UpdateExpression="SET #until = :until",
                    ConditionExpression="attribute_not_exists(#until) OR #until < :until",
                    ExpressionAttributeNames={"#until": LEASE_RECORD_ATTRIBUTE},
                    ExpressionAttributeValues={":until": value})
            except Exception as exc:  # a later end already recorded (another app): it covers
                if error_code(exc) != CONDITION_FAILED:
                    raise
        return put

    def confirm() -> tuple[int, str]:
        item = nearest.call(get)  # any failure of every replica: the lease is not renewed
        if item is None:
            raise LookupError(f"arbiter {table} has no state item yet")
        # the writer's own epoch, not the latest claimed one: a plan claims E+1 before it
        # revokes the old writer, who must keep writing at E until then, never at E+1
        token = item.get("writer_epoch", item["epoch"])
        return int(token["N"]), item.get("writer", {}).get("S", "")

    def read() -> tuple[int, str, float]:
        nonlocal named_last
        until = clock.time() + lease_s  # this confirmation's start, on the wall clock
        record_first = named_last  # this call's own choice (a concurrent refresh may change it)
        if record_first:
            nearest.call(record(until))  # not stored: raised, nothing confirmed
        epoch, writer = confirm()
        if writer == region and not record_first:  # newly named: record, then read again
            nearest.call(record(until))
            epoch, writer = confirm()
        named_last = writer == region
        return epoch, writer, lease_s  # never confirmed for longer than it was recorded

    return read


def etcd_reader(members: Mapping[str, str], app: str, timeout_s: float = 0.5,
                tls: tuple[str | None, str | None, str | None] = (None, None, None)
                ) -> ReadArbiter:
    """Read (epoch, writer) from the self-managed sites' etcd: the writer key, which lives only
    while its agent's lease does (a primary whose agent is cut off, frozen or dead loses it
    when etcd expires the lease), and not when a plan has revoked it. Linearizable reads, this
    site's member first. The etcd client is imported only here."""
    from regionguard.providers.etcd.client import EtcdArbiter, EtcdTls

    arbiter = EtcdArbiter(members, timeout_s=timeout_s, nearest=next(iter(members), None),
                          tls=EtcdTls(*tls) if any(tls) else None)
    prefix = f"/regionguard/{app}/"

    def read() -> tuple[int, str, float]:
        held = arbiter.get(prefix + "writer")
        if held is None:
            raise LookupError("no region holds the write lease in etcd")
        writer = held.json()
        entry = arbiter.get(prefix + "state")
        state = entry.json() if entry is not None else {}
        epoch = int(writer["epoch"])
        # as the holder's own agent judges it: a plan that claimed a later epoch, or revoked
        # this writer, ended its lease whatever etcd still holds
        if int(state.get("epoch", epoch)) != epoch or state.get("revoked") == {
                "region": writer["region"], "epoch": epoch}:
            raise LookupError(f"{writer['region']}'s write lease at epoch {epoch} was revoked "
                              f"(the arbiter is at epoch {state.get('epoch')})")
        # etcd's guarantee ends when the key's lease does: whole seconds, rounded down (none
        # left under a second), so this app never trusts the key past etcd's own expiry
        left = arbiter.time_to_live(held.lease) if held.lease else -1
        if left <= 0:
            raise LookupError(f"{writer['region']}'s write lease is about to end in etcd")
        return epoch, str(writer["region"]), float(left)

    return read
