"""Independent probers for the local world.

`PostgresProber` opens its own libpq connection straight to a region's database; `HttpProber`
asks the app's `/health/deep` through the front door's per-region probe backend (selected by the
`X-Regionguard-Region` header, never routed), with its own httpx client; `ReplicationProber` asks
the live primary how its standby is doing (pg_stat_replication: what sync replication itself
waits on). Different clients and different paths: one failing alone means a part of the region,
not the region.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import psycopg

from regionguard.orchestrator.ports import ProbeKind, ProbeResult


class PostgresProber:
    name = "postgres"
    kind = ProbeKind.DATABASE

    def __init__(self, dsn_of: Callable[[str], str]) -> None:
        self.dsn_of = dsn_of

    def probe(self, region: str, timeout_s: float) -> ProbeResult:
        started = time.monotonic()
        try:
            # psycopg enforces a 2 s minimum connect timeout; the prober's caller stops waiting
            # after timeout_s and counts a late answer as a failure.
            with psycopg.connect(self.dsn_of(region), connect_timeout=2, autocommit=True,
                                 options=f"-c statement_timeout={int(timeout_s * 1000)}") as c:
                row = c.execute("SELECT pg_is_in_recovery()").fetchone()
        except psycopg.Error as exc:
            return ProbeResult(self.name, region, False, time.monotonic() - started,
                               str(exc).strip().splitlines()[0] if str(exc).strip() else "error")
        role = "standby" if row and row[0] else "primary"
        return ProbeResult(self.name, region, True, time.monotonic() - started, role)


class HttpProber:
    name = "http"
    kind = ProbeKind.APPLICATION

    def __init__(self, front_door_url: Callable[[], str]) -> None:
        self.front_door_url = front_door_url
        self._local = threading.local()

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=4))
            self._local.client = client
        return client

    def probe(self, region: str, timeout_s: float) -> ProbeResult:
        started = time.monotonic()
        try:
            r = self._client().get(f"{self.front_door_url()}/health/deep", timeout=timeout_s,
                                   headers={"X-Regionguard-Region": region})
        except httpx.HTTPError as exc:
            return ProbeResult(self.name, region, False, time.monotonic() - started,
                               type(exc).__name__)
        body: Mapping[str, Any] = r.json() if r.headers.get("content-type", "").startswith(
            "application/json") else {}
        return ProbeResult(self.name, region, r.status_code == 200, time.monotonic() - started,
                           f"HTTP {r.status_code} {body.get('role', '')}".strip())


class ReplicationProber:
    """The primary's own view of a standby: its walsender streams, and the standby replays
    what it was sent (the sandbox's sync commits wait on replay: `remote_apply`). A standby
    fails this probe when the primary has no streaming walsender to it, or when WAL the
    primary flushed is not replayed and the standby's replay position has not moved for
    longer than the probe's timeout, as this prober's own clock measures it (the standby's
    `reply_time` is another host's clock). An idle pair with nothing outstanding is healthy
    however long it has been quiet. It is the second vantage point on a standby that runs no
    apps (pilot light), so a sync degrade needs the same quorum as any verdict. It always
    passes for the primary (it is not judged here).
    """

    name = "replication"
    kind = ProbeKind.REPLICATION

    def __init__(self, primary_dsn: Callable[[], tuple[str, str]]) -> None:
        self.primary_dsn = primary_dsn  # -> (the live primary's region, its DSN)
        self._progress: dict[str, tuple[str | None, float]] = {}  # region -> replay, since

    def probe(self, region: str, timeout_s: float) -> ProbeResult:
        started = time.monotonic()
        try:
            primary, dsn = self.primary_dsn()
            if region == primary:
                return ProbeResult(self.name, region, True, 0.0, "primary")
            with psycopg.connect(dsn, connect_timeout=2, autocommit=True,
                                 options=f"-c statement_timeout={int(timeout_s * 1000)}") as c:
                row = c.execute(
                    "SELECT state, replay_lsn::text,"
                    " pg_wal_lsn_diff(pg_current_wal_flush_lsn(), replay_lsn)::bigint"
                    " FROM pg_stat_replication WHERE application_name = %s"
                    " ORDER BY backend_start DESC LIMIT 1", (region,)).fetchone()
        except (psycopg.Error, OSError) as exc:  # the primary itself is not reachable
            first = str(exc).strip().splitlines()
            return ProbeResult(self.name, region, False, time.monotonic() - started,
                               f"primary unreachable: {first[0] if first else 'error'}")
        now = time.monotonic()
        latency = now - started
        if row is None:
            self._progress.pop(region, None)
            return ProbeResult(self.name, region, False, latency, f"no walsender to {region}")
        state, replayed, behind = row
        if state != "streaming":
            return ProbeResult(self.name, region, False, latency, f"walsender {state}")
        seen = self._progress.get(region)
        if seen is None or seen[0] != replayed:  # it moved (or this is the first look)
            seen = (str(replayed) if replayed is not None else None, now)
            self._progress[region] = seen
        stalled_s = now - seen[1]
        if (behind is None or int(behind) > 0) and stalled_s > timeout_s:
            return ProbeResult(self.name, region, False, latency,
                               f"{behind if behind is not None else '?'} bytes not replayed, "
                               f"no progress for {stalled_s:.2f} s")
        return ProbeResult(self.name, region, True, latency, "streaming")
