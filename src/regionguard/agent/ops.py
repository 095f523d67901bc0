"""A site's agent's own endpoint, on its host at `[arbiter] agent_port` (the part Patroni's REST
API plays): `/metrics` for Prometheus, `/api/status` (this site's view, JSON) and `/health`
(200 while the agent's loop turns: what a process supervisor or a load balancer checks).

Every site is scraped on its own, as Patroni's members are: a dashboard sums them. The metrics
are computed at scrape time from what the agent last saw (its loop writes `AgentView`), from
its lease keeper, from its guard's last report and from its own journal (plans it ran,
`ops/metrics.py`). Read-only; a failing source answers 503 for that
scrape and never touches the agent's loop.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from regionguard.agent.front_door_stats import FrontDoorCounts
from regionguard.agent.lease_keeper import KeeperState, LeaseKeeper
from regionguard.agent.ports import status_against
from regionguard.agent.site import Site
from regionguard.agent.site_status import sites_status
from regionguard.config import Role
from regionguard.errors import RegionGuardError
from regionguard.ops.events import last_events, past_rtos
from regionguard.ops.metrics import EngineCollector
from regionguard.ops.server import OpsServer
from regionguard.orchestrator.ports import LiveState, VantageReport
from regionguard.orchestrator.view import TickView
from regionguard.providers.etcd.state import EtcdStateStore

log = logging.getLogger("regionguard.agent.ops")

ROLES = tuple(r.value for r in Role)
AGENT_TIMEOUT_S = 0.5  # another site's agent, for the page: one that is down must not stall it
TAIL_BYTES = 64 * 1024  # the journal's end read for the page: far more than its last events
HEALTHY_CYCLES = 8  # /health fails when the loop has not finished a cycle in this many intervals
BUSY_MAX_S = 900.0  # ... unless a cycle runs, for at most this long (a rebuild by a full copy)

T = TypeVar("T")


@dataclass
class AgentView:
    """What the agent's loop saw last (written by the loop, read by scrapes)."""

    cycle_at: float | None = None  # wall time the last cycle ended
    live: LiveState | None = None  # etcd's state as the last cycle read it
    trouble: str | None = None  # why the last cycle could not finish (etcd unreachable, ...)
    verdict: str | None = None  # this vantage point's verdict on the primary
    ended_mono: float | None = None  # monotonic: when the last cycle ended
    running_since: float | None = None  # monotonic: when the cycle now running began
    lock: threading.Lock = field(default_factory=threading.Lock)

    def began(self) -> None:
        with self.lock:
            self.running_since = time.monotonic()

    def saw(self, live: LiveState | None, verdict: str | None, trouble: str | None) -> None:
        with self.lock:
            self.live = live if live is not None else self.live
            self.verdict = verdict
            self.trouble = trouble
            self.cycle_at = time.time()
            self.ended_mono = time.monotonic()
            self.running_since = None

    def healthy(self, interval_s: float) -> bool:
        """The loop turns: its last cycle ended within HEALTHY_CYCLES intervals, or the cycle
        running now (a failover, a switchover, a rebuild of the database: seconds to minutes)
        began within BUSY_MAX_S. A supervisor must not restart an agent in the middle of its
        plan; one stuck longer than any step's deadline is stuck."""
        now = time.monotonic()
        with self.lock:
            ended, running = self.ended_mono, self.running_since
        if running is not None and now - running < BUSY_MAX_S:
            return True
        return ended is not None and now - ended < HEALTHY_CYCLES * max(interval_s, 0.25)


class SiteCollector(Collector):
    """The site's own metrics: the agent's heartbeat, the live roles as it read them, whether
    this region holds the write lease and how long until it would fence itself."""

    def __init__(self, site: Site, view: AgentView, keeper: LeaseKeeper | None) -> None:
        self.site, self.view, self.keeper = site, view, keeper

    def collect(self) -> Iterator[Metric]:
        with self.view.lock:
            cycle_at, live, trouble = self.view.cycle_at, self.view.live, self.view.trouble
        beat = GaugeMetricFamily("regionguard_agent_heartbeat_timestamp_seconds",
                                 "Wall time the agent's loop last finished a cycle",
                                 labels=["site"])
        if cycle_at is not None:
            beat.add_metric([self.site.name], cycle_at)
        yield beat
        busy = GaugeMetricFamily("regionguard_agent_cycle_running",
                                 "1 while a cycle runs (a plan or a rebuild can take minutes: "
                                 "the heartbeat does not move meanwhile)", labels=["site"])
        with self.view.lock:
            running = self.view.running_since is not None
        busy.add_metric([self.site.name], 1.0 if running else 0.0)
        yield busy
        healthy = GaugeMetricFamily("regionguard_agent_arbiter_ok",
                                    "1 when the agent's last cycle read etcd and finished",
                                    labels=["site"])
        healthy.add_metric([self.site.name], 0.0 if trouble else 1.0)
        yield healthy
        role = GaugeMetricFamily("regionguard_region_role",
                                 "1 for each region's live role, as this agent last read etcd",
                                 labels=["region", "role"])
        if live is not None:
            for region, current in sorted(live.roles.items()):
                for r in ROLES:
                    role.add_metric([region, r], 1.0 if r == current.value else 0.0)
        yield role
        if self.keeper is None:
            return
        held = GaugeMetricFamily("regionguard_write_lease_held",
                                 "1 while this region holds the write lease", labels=["region"])
        held.add_metric([self.site.name],
                        1.0 if self.keeper.state is KeeperState.HOLDING else 0.0)
        yield held
        left = GaugeMetricFamily("regionguard_write_lease_fence_in_seconds",
                                 "Seconds until this region fences itself unless it renews",
                                 labels=["region"])
        deadline = self.keeper.lease.fence_deadline()
        if self.keeper.state is KeeperState.HOLDING and deadline is not None:
            left.add_metric([self.site.name], max(0.0, deadline - time.monotonic()))
        yield left


class Sampled(Generic[T]):
    """A value fetched on a thread of its own, at most every `every_s` while someone asks,
    and read from memory: the asker never waits on what the fetch waits on. A fetch that
    fails keeps the last value; one that answers None replaces it when `none_is_news` (a front
    door that stopped answering must show as a gap, not as its last totals)."""

    def __init__(self, fetch: Callable[[], T | None], every_s: float = 2.0,
                 none_is_news: bool = False) -> None:
        self.fetch, self.every_s, self.none_is_news = fetch, every_s, none_is_news
        self._value: T | None = None
        self._at = float("-inf")
        self._busy = False
        self._lock = threading.Lock()

    def get(self) -> T | None:
        with self._lock:
            stale = time.monotonic() - self._at >= self.every_s and not self._busy
            if stale:
                self._busy = True
            value = self._value
        if stale:
            threading.Thread(target=self._refresh, daemon=True, name="rg-sample").start()
        return value

    def _refresh(self) -> None:
        answered = True
        try:
            value: T | None = self.fetch()
        except Exception as exc:  # a sample missed is a gap in a sparkline, no more
            log.debug("sampling for the live page failed: %s", exc)
            value, answered = None, False
        with self._lock:
            if value is not None or (answered and self.none_is_news):
                self._value = value
            self._at, self._busy = time.monotonic(), False


def site_tick(site: Site, view: AgentView, report: Callable[[str], VantageReport | None],
              awaiting: Callable[[], dict[str, Any] | None] = lambda: None) -> TickView:
    """The shared engine collector's tick, from this site: its verdict and probe of the
    primary, and its own database's lag when it is a standby (bounded: a scrape never waits
    on a dead primary)."""
    with view.lock:
        live, verdict = view.live, view.verdict
    tick = TickView()
    try:
        waiting = awaiting()  # a request in etcd that no one answered yet
    except RegionGuardError:
        waiting = None
    tick.awaiting_approval = waiting if waiting and not waiting.get("decision") else None
    if live is None:
        return tick
    primary = live.primary
    if verdict is not None:
        tick.verdicts[primary] = verdict
    mine = report(primary)
    if mine is not None:
        tick.probes[(primary, site.name)] = mine.failures == 0
    if site.is_region and site.name != primary:
        try:
            db = status_against(site, site.name, primary)
            tick.lag[site.name] = (db.lag_bytes, db.lag_s)
        except RegionGuardError:
            pass
    return tick


def start_agent_ops(site: Site, store: EtcdStateStore, view: AgentView,
                    keeper: LeaseKeeper | None,
                    report: Callable[[str], VantageReport | None],
                    awaiting: Callable[[], dict[str, Any] | None] = lambda: None,
                    front_door: Callable[[], FrontDoorCounts | None] = lambda: None
                    ) -> OpsServer | None:
    """The endpoint on the site's host; None (told in the log) when its port is taken: the
    agent's safety work goes on without its metrics. `front_door` reads the region's front
    door's totals (a region site's), for the page's request and error rates."""
    registry = CollectorRegistry(auto_describe=False)

    def live() -> dict[str, Any]:
        with view.lock:
            state = view.live
        return {"epoch": state.epoch if state else 0, "plan": state.plan if state else None}

    registry.register(EngineCollector(site.journal_path, live,
                                      lambda: site_tick(site, view, report, awaiting)))
    registry.register(SiteCollector(site, view, keeper))
    interval = site.topology.health.interval_s

    def healthy() -> bool:
        return view.healthy(interval)

    sampled: Sampled[TickView] = Sampled(lambda: site_tick(site, view, report))
    served: Sampled[FrontDoorCounts] = Sampled(front_door, none_is_news=True)

    def status() -> dict[str, Any]:
        with view.lock:
            state, trouble, at, verdict = view.live, view.trouble, view.cycle_at, view.verdict
        # for the live page's sparklines: this site's last probe of the primary, and its
        # database's lag while a standby, as last sampled (never waited for here: peers ask
        # for this status with a 0.5 s timeout, and a frozen primary would hold a query)
        tick = sampled.get()
        probe = next(iter(tick.probes.values()), None) if tick else None
        lag_bytes, lag_s = tick.lag.get(site.name, (None, None)) if tick else (None, None)
        counts = served.get()  # running totals: the page plots their change between polls
        return {
            "site": site.name, "kind": "region" if site.is_region else "witness",
            "role": (state.roles[site.name].value if state and site.is_region else
                     None if site.is_region else "witness"),
            "epoch": state.epoch if state else None,
            "primary": state.primary if state else None,
            "holds_lease": keeper is not None and keeper.state is KeeperState.HOLDING,
            "verdict_on_primary": verdict, "last_cycle_at": at, "trouble": trouble,
            "healthy": healthy(), "probe_ok": probe, "lag_bytes": lag_bytes, "lag_s": lag_s,
            "front_door_requests": counts.requests if counts else None,
            "front_door_5xx": counts.errors_5xx if counts else None,
        }

    port = site.topology.arbiter.agent_port
    try:
        server = OpsServer(registry, status, host=site.host, port=port, exposed=True,
                           health=healthy, page=sites_page,
                           api={"/api/sites": lambda: sites_view(site, store, status)})
    except OSError as exc:
        log.error("%s: the agent's endpoint %s:%s could not start (%s); it runs without",
                  site.name, site.host, port, exc.strerror)
        return None
    return server.start()


def sites_page() -> bytes:
    return (resources.files("regionguard.agent") / "sites_page.html").read_bytes()


def sites_view(site: Site, store: EtcdStateStore,
               own: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """What the sites' page shows, from this agent: `status --json`'s view of the sites (etcd
    as this site reaches it, each region's front door), every agent's `/api/status` (this
    one's own, the others' over the network, 0.5 s each: one that does not answer is said so)
    and the last entries of this site's journal."""
    topology = site.topology
    data = sites_status(topology, store)
    data.update(site=site.name, app=topology.app,
                generated_at=datetime.now(UTC).isoformat(timespec="milliseconds"))
    agents = []
    with httpx.Client(timeout=AGENT_TIMEOUT_S, trust_env=False) as http:
        for name in topology.sites:
            url = f"http://{topology.site_host(name)}:{topology.arbiter.agent_port}"
            entry: dict[str, Any] = {"name": name, "url": url, "status": None, "error": None}
            if name == site.name:
                entry["status"] = own()
            else:
                try:
                    entry["status"] = http.get(f"{url}/api/status").json()
                except (httpx.HTTPError, ValueError) as exc:
                    entry["error"] = type(exc).__name__
            agents.append(entry)
    data["agents"] = agents
    tail = journal_tail(site.journal_path)
    data["events"] = last_events(tail)
    data["rtos"] = past_rtos(tail)
    return data


def journal_tail(path: Path) -> list[dict[str, Any]]:
    """The entries at the end of a journal, reading only its end (it only grows)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            chunk = f.read().decode(errors="replace")
    except FileNotFoundError:
        return []
    entries = []
    for line in chunk.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the first, cut line of the tail, or one cut by a crash
        if isinstance(entry, dict):
            entries.append(entry)
    return entries
