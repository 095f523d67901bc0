"""A session load in every app Region, for the drills: what the DynamoDB global table keeps
serving through a Region's outage, what it had not replicated when the Region died (the tier's
RPO), and what it reconciled once the Region came back.

Every few world seconds, a client in each app Region writes one session of its own
(`<region>-<n>`, never written elsewhere) and one of four shared sessions (`shared-<k>`, written
by both Regions: concurrent writes whose conflicts the table resolves by last writer wins), to
that Region's entry point, as the users homed there would. Nothing waits for a failover: the
writes go to the Region's own replica. A write answered 503 (with `Retry-After`) or not at all
is retried, as the app asks its clients to, twice, a world second apart: a write counts as
acknowledged when one of its attempts was, and the report says how many needed a retry.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from regionguard.clock import Clock, wait_event
from regionguard.emulated.global_tables import Change, GlobalTables

SHARED_KEYS = 4
ATTEMPTS = 3
RETRY_AFTER_S = 1.0


@dataclass(frozen=True, slots=True)
class SessionWrite:
    t: float  # world time it was sent
    region: str  # the AWS Region written to
    key: str
    status: int | None  # the last attempt's; None: no answer (the Region is out)
    attempts: int = 1
    detail: str = ""  # why the last attempt failed


class SessionLoad:
    def __init__(self, urls: dict[str, str], clock: Clock, every_s: float) -> None:
        """`urls`: each app Region's entry point (by AWS Region), as a client on the internet
        reaches it."""
        self.urls, self.clock, self.every_s = urls, clock, every_s
        self.writes: list[SessionWrite] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(region,), daemon=True,
                                          name=f"sessions-{region}") for region in urls]
        self._http = httpx.Client(timeout=max(2.0, 5.0 * clock.factor))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._http.close()

    def _loop(self, region: str) -> None:
        n = 0
        while not wait_event(self.clock, self._stop, self.every_s):
            n += 1
            for key in (f"{region}-{n}", f"shared-{n % SHARED_KEYS}"):
                self._write(region, key, n)

    def _write(self, region: str, key: str, n: int) -> None:
        t = self.clock.time()
        status: int | None = None
        detail = ""
        for attempt in range(1, ATTEMPTS + 1):
            if attempt > 1 and wait_event(self.clock, self._stop, RETRY_AFTER_S):
                break
            try:
                r = self._http.put(f"{self.urls[region]}/sessions/{key}",
                                   json={"data": {"by": region, "n": n}, "ttl_s": 86400})
                status, detail = r.status_code, "" if r.status_code == 200 else r.text[:160]
            except httpx.HTTPError as exc:
                status, detail = None, type(exc).__name__
            if status not in (None, 503):
                break
        with self._lock:
            self.writes.append(SessionWrite(t, region, key, status, attempt, detail))


def summary(load: SessionLoad, tables: GlobalTables, faulted: str, t_fault: float,
            stuck_at_fault: list[Change], converged: bool, drained: bool,
            conflicts_before_heal: int) -> dict[str, Any]:
    """The sessions' figures beside the relational RTO and RPO (AWS Regions, world seconds):
    `faulted` is the Region the fault hit; the survivors are the table's other Regions."""
    writes = list(load.writes)
    after = [w for w in writes if w.t >= t_fault]
    in_survivor = [w for w in after if w.region != faulted]
    in_dead = [w for w in after if w.region == faulted]
    written_at = [c.due - tables.delay_s for c in stuck_at_fault]
    rewritten = {w.key for w in in_survivor if w.status == 200}
    return {
        "table": sorted(tables.tables)[0] if tables.tables else None,
        "replication_delay_s": tables.delay_s,
        # served where the outage is not, with no failover needed
        "survivor_writes_after_fault": len(in_survivor),
        "survivor_acked_after_fault": sum(1 for w in in_survivor if w.status == 200),
        "survivor_retried": sum(1 for w in in_survivor if w.attempts > 1),
        # the first writes the survivors did not acknowledge, with why
        "survivor_refused": [{"t": round(w.t - t_fault, 1), "status": w.status,
                              "detail": w.detail} for w in in_survivor if w.status != 200][:5],
        "faulted_region_writes_after_fault": len(in_dead),
        "faulted_region_acked_after_fault": sum(1 for w in in_dead if w.status == 200),
        # the tier's RPO: acknowledged in the dead Region, not yet replicated when it died
        "unreplicated_at_fault": len({c.key for c in stuck_at_fault}),
        "rpo_s": round(t_fault - min(written_at), 2) if written_at else 0.0,
        # of those, the ones a survivor wrote again during the outage: each is a conflict to
        # resolve after the heal (which sessions the last window held is the load's timing)
        "unreplicated_then_rewritten": len({k for k in map(_item_id, stuck_at_fault)
                                            if k in rewritten}),
        # after the Region came back: delivered, and concurrent writes resolved (last writer)
        "conflicts_resolved_after_heal": tables.stats.conflicts - conflicts_before_heal,
        "replication": tables.stats.as_dict(),
        "drained_after_heal": drained,  # every queued change delivered once it healed
        "converged": converged,  # then every replica holds the same items
    }


def replicas_converged(tables: GlobalTables) -> bool:
    """Every replica of every table holds the same items (after the queue drained)."""
    for table in tables.tables:
        contents = []
        for region in tables.regions:
            pages = tables.client(region).get_paginator("scan").paginate(TableName=table)
            items = [item for page in pages for item in page.get("Items", [])]
            contents.append(sorted(items, key=lambda i: str(i.get("id"))))
        if any(c != contents[0] for c in contents[1:]):
            return False
    return True


def _item_id(change: Change) -> str:
    """The session id of a queued change (its key in DynamoDB's wire form, as JSON)."""
    return str(json.loads(change.key)["id"]["S"])
