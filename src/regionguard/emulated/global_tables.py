"""DynamoDB global tables (multi-Region eventual consistency) between moto's Regions.

moto keeps one independent table per Region. For a table listed here, the emulator replicates
each acknowledged write from the Region's replica that took it to every other replica, as
DynamoDB does, after AWS's documented contract:

- "Changes made to an item in one region are typically replicated to all other regions within
  a second" (DynamoDB developer guide, Tutorials: creating global tables, MREC). The delay is
  `LatencyModel.global_table_replication_s` (world seconds; 1 s by default, a parameter with
  the range docs/emulated.md gives).
- "If a replica in an MREC global table becomes isolated or impaired, any data not yet
  replicated to other Regions will be replicated when the replica becomes healthy" (how global
  tables work, MREC). A change waits while the link between its two Regions is cut (either
  Region out, or partitioned: the failure domains decide) and is delivered once it heals.
- "If the same item is modified in multiple Regions simultaneously, DynamoDB will resolve the
  conflict by using the modification with the latest internal timestamp on a per-item basis,
  referred to as a 'last writer wins' conflict resolution" (same page).

What travels is the item's state, not the request: a delivery copies the source replica's
current version of the item (or its absence) with the timestamp of that version, and a replica
keeps whichever version is newer, so the replicas converge whatever the order of deliveries. A
conflict is counted when a delivery meets a version written locally in the target that the
source has not received yet (two Regions wrote the item concurrently). TTL's background
deletions are not emulated: the app filters expired items on read, as it must on AWS.

Each delivery pass publishes what it measured as DynamoDB does, `ReplicationLatency` (average
milliseconds from the write to its arrival, per source Region and `ReceivingRegion`) in the
source Region's CloudWatch, where readiness reads it as on AWS.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

from regionguard.clock import ScaledClock
from regionguard.emulated.domains import FailureDomains
from regionguard.emulated.operations import Call

log = logging.getLogger("regionguard.emulated.global_tables")

WRITES = frozenset({"PutItem", "DeleteItem", "UpdateItem"})
TICK_S = 0.1  # world seconds between looks at the queue...
MIN_TICK_REAL_S = 0.005  # ... but never a busier loop than this, in real seconds


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """Ordered by time, then by Region: two Regions' writes in one world instant (world time
    stands still while the emulator works) still have one winner, the same in every replica."""

    ts: float  # world time of the write that made it (DynamoDB's internal timestamp)
    origin: str  # the Region whose replica took that write


@dataclass(frozen=True, slots=True)
class Change:
    table: str
    key: str  # the item's key, as JSON (its key attributes in DynamoDB's wire form)
    source: str
    target: str
    due: float  # world time it reaches the target, when the link allows


@dataclass
class ReplicationStats:
    """What the replication did, for a drill's report."""

    replicated: int = 0  # deliveries that changed the target
    superseded: int = 0  # deliveries the target already had a newer version for
    conflicts: int = 0  # concurrent writes to one item in two Regions, resolved
    seen: set[tuple[str, Version, Version]] = field(default_factory=set)  # (key, older, newer)

    def as_dict(self) -> dict[str, int]:
        return {"replicated": self.replicated, "superseded": self.superseded,
                "conflicts": self.conflicts}


class GlobalTables:
    def __init__(self, tables: Iterable[str], regions: Iterable[str], moto_url: str,
                 domains: FailureDomains, clock: ScaledClock, delay_s: float) -> None:
        self.tables = frozenset(tables)
        self.regions = tuple(regions)
        self.domains, self.clock, self.delay_s = domains, clock, delay_s
        session = boto3.session.Session(aws_access_key_id="emulated",
                                        aws_secret_access_key="emulated")
        # the service's own replication: straight to moto, never through the fault proxy
        self._clients = {r: session.client("dynamodb", region_name=r, endpoint_url=moto_url)
                         for r in self.regions}
        self._metrics = {r: session.client("cloudwatch", region_name=r, endpoint_url=moto_url)
                         for r in self.regions}
        self._versions: dict[tuple[str, str, str], Version] = {}  # (table, region, key)
        self._keys: dict[tuple[str, str], dict[str, Any]] = {}  # (table, key) -> the Key
        self._schemas: dict[str, list[str]] = {}  # table -> its key attributes' names
        self._pending: list[Change] = []
        self._lock = threading.Lock()
        # a replica's item changes one at a time: a delivery (read the source, compare, write
        # the target) never interleaves with an app's write to the same replicas
        self._apply_lock = threading.Lock()
        self._delivering = threading.Lock()  # one delivery pass at a time (the tick, a fault)
        self._stop = threading.Event()
        self._queued = threading.Event()  # set when a change is queued: the ticker wakes
        self._thread: threading.Thread | None = None
        self.stats = ReplicationStats()

    # -- the proxy's hooks: a call about to be relayed, and its answer ----------------------

    def serialize(self, call: Call, body: bytes) -> contextlib.AbstractContextManager[Any]:
        """Held around relaying a write to a global table and `observe`-ing its answer."""
        if call.service == "dynamodb" and call.operation in WRITES \
                and any(f'"{t}"'.encode() in body for t in self.tables):
            return self._apply_lock
        return contextlib.nullcontext()

    def observe(self, region: str, call: Call, body: bytes, status: int) -> None:
        """A call the proxy relayed to `region`'s AWS and moto answered; writes to a global
        table's replica are queued for the other Regions. Never raises into the proxy (the
        write is applied already): a failure here is logged as the divergence it is."""
        if call.service != "dynamodb" or call.operation not in WRITES or status >= 300:
            return
        try:
            self._queue(region, json.loads(body))
        except Exception as exc:
            log.error("global tables: a write in %s was not queued for replication: %s",
                      region, exc)

    def _queue(self, region: str, request: dict[str, Any]) -> None:
        table = request.get("TableName")
        if table not in self.tables or region not in self.regions:
            return
        key_attrs = request.get("Key") or self._key_of(table, request.get("Item") or {})
        if not key_attrs:
            return
        key = json.dumps(key_attrs, sort_keys=True)
        now = self.clock.time()
        with self._lock:
            self._keys[(table, key)] = key_attrs
            before = self._versions.get((table, region, key))
            # strictly after the version it replaced (two writes in one world instant)
            ts = max(now, before.ts + 1e-6) if before else now
            self._versions[(table, region, key)] = Version(ts, region)
            # one change per item and direction: it carries the item's version at delivery,
            # so a second write before it left rides along (due with the first)
            queued = {(c.key, c.target) for c in self._pending
                      if c.table == table and c.source == region}
            self._pending.extend(Change(table, key, region, other, now + self.delay_s)
                                 for other in self.regions
                                 if other != region and (key, other) not in queued)
        self._queued.set()

    def _key_of(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        """The key attributes (all of them) of a put item, by the table's key schema."""
        schema = self._schema(table)
        return {name: item[name] for name in schema if name in item}

    def _schema(self, table: str) -> list[str]:
        if table not in self._schemas:
            described = self._clients[self.regions[0]].describe_table(TableName=table)
            self._schemas[table] = [k["AttributeName"] for k in described["Table"]["KeySchema"]]
        return self._schemas[table]

    # -- delivery ---------------------------------------------------------------------------

    def start(self) -> None:
        for table in self.tables:
            self._schema(table)  # known before the first write, never looked up on its path
        self._thread = threading.Thread(target=self._run, daemon=True, name="global-tables")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._queued.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def client(self, region: str) -> Any:
        """moto's DynamoDB in `region`, directly (for looking inside, as the operator would)."""
        return self._clients[region]

    def pending(self, source: str | None = None) -> list[Change]:
        with self._lock:
            return [c for c in self._pending if source is None or c.source == source]

    def _run(self) -> None:
        """Ticks while changes wait; with none queued it sleeps until one is (a drill without
        session writes costs the emulator nothing here)."""
        while not self._stop.is_set():
            if not self.pending():
                self._queued.wait()
                self._queued.clear()
                continue
            if self._stop.wait(max(MIN_TICK_REAL_S, self.clock.real_seconds(TICK_S))):
                return
            try:
                self.deliver_due()
            except Exception as exc:  # moto busy or gone: the next tick tries again
                log.debug("global table replication: %s", exc)

    def deliver_due(self) -> int:
        """Deliver every change that is due and whose link is up; returns how many."""
        with self._delivering:
            now = self.clock.time()
            with self._lock:
                ready = [c for c in self._pending
                         if c.due <= now and self.domains.link_ok(c.source, c.target)]
            latencies: dict[tuple[str, str, str], list[float]] = defaultdict(list)
            for change in ready:
                self._deliver(change)
                latencies[(change.table, change.source, change.target)].append(
                    self.clock.time() - (change.due - self.delay_s))
                with self._lock:
                    self._pending.remove(change)
            self._publish(latencies)
            return len(ready)

    def _publish(self, latencies: dict[tuple[str, str, str], list[float]]) -> None:
        """One `ReplicationLatency` datapoint per table and Region pair a pass delivered to:
        the average from each write to its arrival (time queued behind a cut link included,
        as AWS's figure grows while a Region is impaired)."""
        at = datetime.fromtimestamp(self.clock.time(), UTC)
        for (table, source, target), seconds in latencies.items():
            with self.clock.pause():
                self._metrics[source].put_metric_data(Namespace="AWS/DynamoDB", MetricData=[{
                    "MetricName": "ReplicationLatency", "Timestamp": at, "Unit": "Milliseconds",
                    "Value": 1000 * sum(seconds) / len(seconds),
                    "Dimensions": [{"Name": "TableName", "Value": table},
                                   {"Name": "ReceivingRegion", "Value": target}]}])

    def _deliver(self, change: Change) -> None:
        table, key = change.table, change.key
        with self._apply_lock, self.clock.pause():
            with self._lock:
                version = self._versions.get((table, change.source, key))
                held = self._versions.get((table, change.target, key))
                key_attrs = self._keys[(table, key)]
            assert version is not None, "a change is queued only after its version is noted"
            if held is not None and held >= version:
                self._count_superseded(change, held, version)
                return
            item = self._clients[change.source].get_item(
                TableName=table, Key=key_attrs, ConsistentRead=True).get("Item")
            target = self._clients[change.target]
            if item is None:
                target.delete_item(TableName=table, Key=key_attrs)
            else:
                target.put_item(TableName=table, Item=item)
            with self._lock:
                self._note_conflict(change, held, version)
                self._versions[(table, change.target, key)] = version
                self.stats.replicated += 1

    def _count_superseded(self, change: Change, held: Version, version: Version) -> None:
        with self._lock:
            self.stats.superseded += 1
            self._note_conflict(change, held, version)

    def _note_conflict(self, change: Change, held: Version | None, version: Version) -> None:
        """A delivery meets a different version the target wrote itself and the source has
        not received yet: two concurrent versions of one item, counted once (whichever
        replica sees them first). Called under `_lock`."""
        if held is None or held.origin != change.target or held == version:
            return
        if not any(c.table == change.table and c.key == change.key
                   and c.source == change.target and c.target == change.source
                   for c in self._pending):
            return  # the source had seen it: a later write, not a concurrent one
        pair = (change.key, min(held, version), max(held, version))
        if pair not in self.stats.seen:
            self.stats.seen.add(pair)
            self.stats.conflicts += 1
