"""Watching the lab from its client site: when etcd stopped naming a writer, when each
region's database took writes. Each runs in a thread of its own
that joins the client's network namespace first, and stamps what it saw with this process's
monotonic clock: one observer, so its times compare (a site's own clock never is)."""

from __future__ import annotations

import contextlib
import threading
import time

import psycopg

from regionguard.agent.site import Site
from regionguard.lab.lab import Lab


class WriterWatch:
    """When etcd stopped naming `region` the writer (its lease expired, was released, or the
    key moved): polled every 20 ms through the surviving members, from the client site."""

    def __init__(self, lab: Lab, region: str) -> None:
        self.lab = lab
        self.region = region
        self.ended_at: float | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        self.lab.enter_client()
        store = Site(self.lab.topology, "witness").store()
        while not self.stop.wait(0.02) and self.ended_at is None:
            with contextlib.suppress(Exception):
                held = store.writer()
                if held is None or held.json().get("region") != self.region:
                    # when the answer came back: the key was gone by then (taking the time
                    # the read started could put the end before it, and the checker's fence
                    # would then fire on a write acknowledged in time)
                    self.ended_at = time.monotonic()

    def __enter__(self) -> WriterWatch:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(5)


class WritableWatch:
    """When each region's database was seen taking writes (a primary, not read-only), polled
    every 20 ms from the client site: the engine's first invariant, at the database."""

    def __init__(self, lab: Lab, regions: tuple[str, ...] = ("east", "west")) -> None:
        self.lab = lab
        self.seen: dict[str, list[float]] = {r: [] for r in regions}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(r,), daemon=True)
                        for r in regions]

    def _loop(self, region: str) -> None:
        self.lab.enter_client()
        dsn = Site(self.lab.topology, region).database(region).dsn()
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        while not self.stop.wait(0.02):
            asked = time.monotonic()
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(dsn, connect_timeout=2, autocommit=True)
                row = conn.execute("SELECT NOT pg_is_in_recovery() AND current_setting("
                                   "'default_transaction_read_only') = 'off'").fetchone()
                if row and row[0]:
                    self.seen[region].append(asked)
            except psycopg.Error:
                conn = None
        if conn is not None:
            conn.close()

    def __enter__(self) -> WritableWatch:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(5)
