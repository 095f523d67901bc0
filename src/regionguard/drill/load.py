"""An independent client of the front door: sequenced writes and reads, bounded in time.

It keeps its own history of every request (Jepsen-style): a write counts as acknowledged only
when the server answered 200/201 with the row, and only acknowledged writes are checked for RPO
afterwards. It never reads the engine's state to judge the engine.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True, slots=True)
class Request:
    t_ns: int  # time.monotonic_ns() when sent
    latency_s: float
    kind: str  # "write" | "read"
    ok: bool
    status: int  # HTTP status, 0 for a connection error or timeout
    request_id: str | None = None
    region: str | None = None
    epoch: int | None = None
    order_id: int | None = None
    worker: int = 0  # the client thread: its requests are sequential, in real-time order
    # the value: the quantity a write sent, or the quantity a read returned (with the row's
    # request_id), so a checker can tell a read of a value that was never written
    quantity: int | None = None
    # an acknowledged write's commit in its database's log, as the server read it (the app's
    # `commit`): after `after_lsn`, at or before `by_lsn`, on `timeline`
    timeline: int | None = None
    after_lsn: str | None = None
    by_lsn: str | None = None

    @property
    def end_ns(self) -> int:
        return self.t_ns + int(self.latency_s * 1e9)


@dataclass
class LoadResult:
    requests: list[Request] = field(default_factory=list)
    started_ns: int = 0
    stopped_ns: int = 0

    @property
    def acked_writes(self) -> list[Request]:
        return [r for r in self.requests if r.kind == "write" and r.ok]

    @property
    def failed(self) -> list[Request]:
        return [r for r in self.requests if not r.ok]


class LoadGenerator:
    """`rate` requests/s in total over `workers` threads, `write_ratio` of them writes.

    Stops by itself after `duration_s` (or `stop()`), and after `max_requests`."""

    def __init__(self, url: str, rate: float = 50.0, workers: int = 4,
                 write_ratio: float = 0.7, duration_s: float = 30.0,
                 timeout_s: float = 1.0, max_requests: int = 1_000_000,
                 headers: dict[str, str] | None = None,
                 enter: Callable[[], None] | None = None) -> None:
        self.url = url.rstrip("/")
        # run first in each worker thread: the lab's client joins its site's network namespace
        self.enter = enter
        self.headers = dict(headers or {})  # e.g. a client that sends its own (stale) token
        self.rate = rate
        self.workers = workers
        self.write_ratio = write_ratio
        self.duration_s = duration_s
        self.timeout_s = timeout_s
        self.max_requests = max_requests
        self.run_id = uuid.uuid4().hex[:8]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._seq = 0
        self._threads: list[threading.Thread] = []
        self.result = LoadResult()

    def _next(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def start(self) -> LoadGenerator:
        self.result.started_ns = time.monotonic_ns()
        for i in range(self.workers):
            t = threading.Thread(target=self._work, args=(i,), daemon=True, name=f"load-{i}")
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout_s + 2)
        self.result.stopped_ns = time.monotonic_ns()
        return self.result

    def run_until_end(self) -> LoadResult:
        """Wait for the configured duration to pass (counted from start), then stop."""
        end = self.result.started_ns / 1e9 + self.duration_s
        while time.monotonic_ns() / 1e9 < end and not self._stop.is_set():
            time.sleep(0.05)
        return self.stop()

    def run(self) -> LoadResult:
        self.start()
        deadline = time.monotonic() + self.duration_s
        while time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.05)
        return self.stop()

    def _work(self, worker: int) -> None:
        if self.enter is not None:
            self.enter()
        interval = self.workers / self.rate
        deadline = time.monotonic() + self.duration_s
        next_at = time.monotonic() + worker * interval / self.workers
        last_order: int | None = None
        # no proxies from the environment: the client talks to the world under test only
        with httpx.Client(timeout=self.timeout_s, headers=self.headers,
                          trust_env=False) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                seq = self._next()
                if seq > self.max_requests:
                    return
                is_write = (seq * 0.6180339887) % 1.0 < self.write_ratio or last_order is None
                req = (self._write(client, seq, worker) if is_write
                       else self._read(client, last_order, worker))
                if req.kind == "write" and req.ok:
                    last_order = req.order_id
                with self._lock:
                    self.result.requests.append(req)
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_at = time.monotonic()

    def _write(self, client: httpx.Client, seq: int, worker: int) -> Request:
        request_id = f"load-{self.run_id}-{seq:08d}"
        quantity = value_of(seq)
        t0 = time.monotonic_ns()
        try:
            r = client.post(f"{self.url}/orders", json={
                "request_id": request_id, "customer": "drill", "item": "widget",
                "quantity": quantity})
        except httpx.HTTPError:
            return Request(t0, (time.monotonic_ns() - t0) / 1e9, "write", False, 0, request_id,
                           worker=worker, quantity=quantity)
        latency = (time.monotonic_ns() - t0) / 1e9
        if r.status_code in (200, 201):
            body = r.json()
            commit = body.get("commit") or {}
            return Request(t0, latency, "write", True, r.status_code, request_id,
                           body.get("region"), body.get("epoch"), body.get("id"),
                           worker=worker, quantity=quantity, timeline=commit.get("timeline"),
                           after_lsn=commit.get("after_lsn"), by_lsn=commit.get("by_lsn"))
        return Request(t0, latency, "write", False, r.status_code, request_id,
                       worker=worker, quantity=quantity)

    def _read(self, client: httpx.Client, order_id: int | None, worker: int) -> Request:
        t0 = time.monotonic_ns()
        try:
            r = client.get(f"{self.url}/orders/{order_id}")
        except httpx.HTTPError:
            return Request(t0, (time.monotonic_ns() - t0) / 1e9, "read", False, 0,
                           order_id=order_id, worker=worker)
        latency = (time.monotonic_ns() - t0) / 1e9
        if r.status_code == 200:
            body = r.json()
            return Request(t0, latency, "read", True, 200, body.get("request_id"),
                           body.get("region"), body.get("epoch"), order_id,
                           worker=worker, quantity=body.get("quantity"))
        # 404 is a served answer (async replication may not have the row yet), not an outage
        return Request(t0, latency, "read", r.status_code == 404, r.status_code,
                       order_id=order_id, worker=worker)


def value_of(seq: int) -> int:
    """The quantity write `seq` sends: varied, so a read of a wrong row shows."""
    return seq % 997 + 1


def outage(result: LoadResult, since_ns: int = 0) -> tuple[int, int | None] | None:
    """(first failed request, end of the first successful write after the last failure), as
    monotonic ns, for requests sent at or after `since_ns`; None when nothing failed.

    Every failure after `since_ns` belongs to the outage: a write that slipped through between
    two failures (a process not yet killed) does not end it."""
    reqs = sorted((r for r in list(result.requests) if r.t_ns >= since_ns),
                  key=lambda r: r.t_ns)
    failures = [r for r in reqs if not r.ok]
    if not failures:
        return None
    last_fail = failures[-1].t_ns
    ok = next((r for r in reqs if r.kind == "write" and r.ok and r.t_ns > last_fail), None)
    return failures[0].t_ns, (None if ok is None else ok.t_ns + int(ok.latency_s * 1e9))


def client_rto_s(result: LoadResult, since_ns: int = 0) -> float | None:
    """First failed request -> first successful write after the outage (the headline RTO);
    0.0 when no request failed, None when the client never recovered."""
    window = outage(result, since_ns)
    if window is None:
        return 0.0
    first, recovered = window
    return None if recovered is None else (recovered - first) / 1e9
