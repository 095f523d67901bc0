"""A client that bypasses the apps and writes straight to each Region's database.

The app's write lease says nothing to a client that reaches the database without it: what
stops one is the database's own fence (`app/fence.py`: a row the lease holder keeps ahead, and
a trigger that refuses a commit after it). With the real app over real PostgreSQL
(`real_app`), this client inserts an order into every Region's database directly, every few
world seconds, and remembers which commits went through: after a fault, the old primary's
database must refuse it within the old lease (the drill reports the last commit it took).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from regionguard.clock import Clock, wait_event
from regionguard.emulated.databases import EmulatedDatabases

INSERT = ("INSERT INTO orders (request_id, customer, item, quantity, region, served_by, epoch)"
          " VALUES (%s, 'bypass', 'direct', 1, %s, 'nobody', 0)")


@dataclass(frozen=True, slots=True)
class BypassWrite:
    t: float  # world time it was sent
    region: str
    committed: bool
    detail: str = ""  # the refusal's SQLSTATE and first line


class BypassClient:
    def __init__(self, databases: EmulatedDatabases, clock: Clock, every_s: float) -> None:
        self.databases, self.clock, self.every_s = databases, clock, every_s
        self.writes: list[BypassWrite] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="drill-bypass")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not wait_event(self.clock, self._stop, self.every_s):
            for region in self.databases.clusters:
                self.writes.append(self._write(region))

    def _write(self, region: str) -> BypassWrite:
        t = self.clock.time()
        try:
            with psycopg.connect(self.databases.dsn(region), connect_timeout=2) as conn:
                conn.execute(INSERT, (f"bypass-{uuid.uuid4().hex[:10]}", region))
        except psycopg.Error as exc:
            line = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            return BypassWrite(t, region, False, f"{exc.sqlstate}: {line}")
        return BypassWrite(t, region, True)

    def summary(self, t_fault: float) -> dict[str, Any]:
        """Per Region: commits and refusals after the fault, the last commit's time after it,
        and the refusals' kinds."""
        out: dict[str, Any] = {}
        for region in self.databases.clusters:
            mine = [w for w in self.writes if w.region == region]
            after = [w for w in mine if w.t >= t_fault]
            committed = [w.t - t_fault for w in after if w.committed]
            out[region] = {
                "before_fault_committed": sum(1 for w in mine if w.t < t_fault and w.committed),
                "after_fault_committed": len(committed),
                "after_fault_refused": sum(1 for w in after if not w.committed),
                "last_committed_after_fault_s": round(max(committed), 1) if committed else None,
                "refusals": sorted({w.detail.split(":")[0] for w in after if not w.committed}),
            }
        return out
