"""The engine's ports as one site's agent has them: its own database and data plane, and every
other site only through the network and the arbiter.

No port here signals, stops or edits anything of another site. What a plan would ask of the
failed site (fence it, retire its apps) is not this site's to do: the fence is that site's own,
by lease (its agent and watchdog), and `fence` reports it incomplete, so `promote` waits for
etcd to expire the old writer's lease; its apps follow its role (its agent scales them once
the plan has ended). A switchover's `stop_writes` of the old primary waits for that primary's
own agent to hand over (planned.py), and `rejoin` asks its agent through etcd. Routing is on
the data plane: each region's apps answer `/health/route` from the writer key they read
themselves, and the edge follows them; `route` waits for the target's front door to say it
holds the lease at the plan's epoch.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import NoReturn

import httpx
import psycopg

from regionguard.agent.dataplane import SiteDataPlane
from regionguard.agent.site import Site
from regionguard.app import admin
from regionguard.errors import ProviderError, StepAbandoned
from regionguard.orchestrator.journal import FileSink, Journal
from regionguard.orchestrator.ports import (
    ComputeStatus,
    DbStatus,
    FenceResult,
    Ports,
    ProbeKind,
    ProbeResult,
    RouteTable,
    VerifyResult,
)
from regionguard.providers.etcd.requests import SiteRequests
from regionguard.providers.etcd.state import EtcdStateStore
from regionguard.providers.local.boundary import provider_boundary
from regionguard.providers.local.canary import canary_write
from regionguard.providers.local.notify import LocalNotifier
from regionguard.providers.local.postgres import PostgresCluster

ROUTE_POLL_S = 2.0  # one try of `route`; the step retries it within its deadline
HANDOVER_POLL_S = 0.05
QUICK_CHECK_S = 0.2  # a TCP connection on a LAN: a lost host does not answer in this long


def answers(host: str, port: int, timeout_s: float) -> bool:
    """A TCP connection to host:port opens within `timeout_s` (never waits on the dead)."""
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def status_against(site: Site, region: str, primary: str) -> DbStatus:
    """`region`'s database as `site` reaches it; a standby's lag is measured against the live
    primary only when that answers at once: a failover plans from the standby alone, and a
    scrape or a readiness check never waits on the dead."""
    other = site.database(primary) if region != primary else None
    if other is not None and not answers(other.address, other.port, QUICK_CHECK_S):
        other = None
    return site.database(region).status(other)


def _not_mine(site: Site, region: str, what: str) -> NoReturn:
    """Not retried: no retry makes it this site's to do (a best-effort step is left
    unfinished, and that region's own agent completes it when it runs again)."""
    raise StepAbandoned(f"{what} {region}: only {region}'s own agent does that, and this is "
                        f"{site.name}'s; no site touches another site's processes or files")


@provider_boundary
class SiteDatabase:
    """The Database port: this site's own cluster; other regions' for reading only."""

    zero_loss_switchover = True
    stopped_writes_are_final = True  # a fast shutdown, by the old primary's own agent
    promotes_under_old_lease = False  # a sync standby keeps every write made under the lease

    def __init__(self, site: Site, store: EtcdStateStore) -> None:
        self.site = site
        self.store = store

    def _own(self, region: str, what: str) -> PostgresCluster:
        if region != self.site.name:
            _not_mine(self.site, region, what)
        return self.site.database(region)

    def status(self, region: str) -> DbStatus:
        return status_against(self.site, region, self.store.load().primary)

    def fence(self, region: str) -> FenceResult:
        if region != self.site.name:
            return FenceResult(region, False, (), (
                f"{region} fences itself when its write lease ends (its agent, or its "
                "watchdog); no site stops another",))
        return FenceResult(region, True, tuple(self.site.database(region).self_fence()))

    def promote(self, region: str, epoch: int, timeout_s: float, planned: bool = False) -> None:
        self._own(region, "promote").promote(epoch, timeout_s)

    def stop_writes(self, region: str, timeout_s: float) -> int:
        """Another region's writes are stopped by its own agent, which hands over (planned.py):
        wait for its record of the LSN its clean stop ended at."""
        if region == self.site.name:
            return self.site.database(region).stop_writes(timeout_s)
        record = self.store.read_plan()
        if record is None or not record.running or record.plan.source != region:
            raise StepAbandoned(f"stop writes of {region}: no running plan takes the writer "
                                "from it")
        requests = SiteRequests(self.store)
        deadline = time.monotonic() + timeout_s
        while (lsn := requests.handed_over(record.id, region)) is None:
            if time.monotonic() >= deadline:
                raise ProviderError(f"{region}'s agent has not handed over yet (a clean stop "
                                    "and its final LSN in etcd); waiting for it")
            time.sleep(HANDOVER_POLL_S)
        return lsn

    def wait_replayed(self, region: str, lsn: int, timeout_s: float) -> int:
        return self._own(region, "wait for replay on").wait_replayed(lsn, timeout_s)

    def rebuild_as_standby(self, region: str, of: str, timeout_s: float) -> str:
        """Another region is rebuilt by its own agent: asked through etcd, at the epoch of
        now (it does it once this plan has ended)."""
        if region == self.site.name:
            return self.site.database(region).rebuild_as_standby(self.site.database(of),
                                                                 timeout_s)
        live = self.store.load()
        self.store.request_rejoin(region, f"the plan at epoch {live.epoch}", live.epoch)
        return f"asked {region}'s agent to rebuild it as a standby of {of}"

    def set_sync_standby(self, primary: str, standby: str | None) -> bool:
        return self._own(primary, "set the sync standby of").set_sync_standby(standby)

    def confirm_sync(self, primary: str, standby: str, timeout_s: float) -> int:
        return self._own(primary, "confirm sync on").confirm_sync(standby, timeout_s)

    def stamp_epoch(self, region: str, epoch: int) -> None:
        self._own(region, "stamp the epoch of").write_epoch(epoch)


@provider_boundary
class SiteCompute:
    """The Compute port: this region's apps; another region's only as its front door says."""

    def __init__(self, site: Site, dataplane: SiteDataPlane | None) -> None:
        self.site = site
        self.dataplane = dataplane

    def scale(self, region: str, count: int) -> ComputeStatus:
        """Another region's apps follow its role: its own agent scales them."""
        if self.dataplane is not None and region == self.site.name:
            self.dataplane.scale(count)
        return ComputeStatus(region, desired=count, ready=0)

    def status(self, region: str) -> ComputeStatus:
        if self.dataplane is not None and region == self.site.name:
            return self.dataplane.status(len(self.dataplane.running_apps()))
        try:
            ok = httpx.get(f"{self.site.front_door_url(region)}/health/deep", timeout=0.5,
                           trust_env=False).status_code == 200
        except httpx.HTTPError:
            ok = False
        return ComputeStatus(region, desired=0, ready=int(ok))

    def wait_ready(self, region: str, at_least: int, timeout_s: float) -> ComputeStatus:
        """Another region's apps are started by its own agent once the plan has ended (its
        upkeep waits for every plan): nothing to wait for here."""
        if self.dataplane is None or region != self.site.name:
            return ComputeStatus(region, desired=at_least, ready=0)
        ready = self.dataplane.wait_ready(at_least, timeout_s)
        return ComputeStatus(region, desired=at_least, ready=ready)


@provider_boundary
class SiteTraffic:
    """The Traffic port on the data plane: nothing to edit anywhere. A revoked writer's apps
    stop answering `/health/route` (and stop writing) by themselves, and the edge follows."""

    def __init__(self, site: Site, store: EtcdStateStore,
                 wake_keeper: Callable[[], None] = lambda: None) -> None:
        self.site = site
        self.store = store
        self.wake_keeper = wake_keeper

    def cut(self, region: str) -> None:
        """The revoke that precedes this is the cut: the writer key no longer counts."""

    def _route_of(self, region: str, timeout_s: float) -> dict[str, object] | None:
        try:
            r = httpx.get(f"{self.site.front_door_url(region)}/health/route",
                          timeout=timeout_s, trust_env=False)
        except httpx.HTTPError:
            return None
        body: dict[str, object] = r.json() if r.status_code in (200, 503) else {}
        return body if r.status_code == 200 else None

    def route(self, table: RouteTable) -> None:
        """Done when the writer's front door says it holds the lease at the plan's epoch (its
        agent took the writer key; its apps confirmed it), which is what the edge asks."""
        self.wake_keeper()  # the target's agent takes the key now, not at its next renewal
        deadline = time.monotonic() + ROUTE_POLL_S
        body: dict[str, object] | None = None
        while time.monotonic() < deadline:
            body = self._route_of(table.writer, 0.5)
            if body is not None and body.get("epoch") == table.epoch:
                return
            time.sleep(0.05)
        raise ProviderError(f"{table.writer}'s front door does not hold the write lease at "
                            f"epoch {table.epoch} yet ({body or 'no answer'})")

    def shares(self) -> dict[str, float]:
        return {r: float(self._route_of(r, 0.5) is not None) for r in self.site.topology.regions}

    def verify(self, timeout_s: float) -> VerifyResult:
        """A canary write and read-back through the writer's front door (never user data)."""
        writer = self.store.load().primary
        return canary_write(self.site.front_door_url(writer),
                            self.site.root / "secrets" / admin.TOKEN_FILE, timeout_s)


class SiteProber:
    """A vantage point's probe of the primary: its PostgreSQL, over the network. A region
    whose database answers is not failed over (its own agent repairs its apps in place)."""

    name = "site"
    kind = ProbeKind.DATABASE

    def __init__(self, site: Site) -> None:
        self.site = site

    def probe(self, region: str, timeout_s: float) -> ProbeResult:
        started = time.monotonic()
        db = self.site.database(region)
        try:  # a lost host within timeout_s (libpq's connect timeout is 2 s at the least)
            socket.create_connection((db.address, db.port), timeout=timeout_s).close()
        except OSError as exc:
            return ProbeResult(self.name, region, False, time.monotonic() - started,
                               f"no TCP connection: {exc.strerror or type(exc).__name__}")
        try:
            # psycopg's connect timeout is at least 2 s; a late answer counts as a failure
            with psycopg.connect(db.dsn(), connect_timeout=2, autocommit=True,
                                 options=f"-c statement_timeout={int(timeout_s * 1000)}") as c:
                row = c.execute("SELECT pg_is_in_recovery()").fetchone()
        except psycopg.Error as exc:
            return ProbeResult(self.name, region, False, time.monotonic() - started,
                               (str(exc).strip().splitlines() or ["error"])[0][:200])
        took = time.monotonic() - started
        role = "standby" if row and row[0] else "primary"
        return ProbeResult(self.name, region, took <= timeout_s, took,
                           role if took <= timeout_s else f"{role}, answered late ({took:.2f} s)")


def build_site_ports(site: Site, store: EtcdStateStore, dataplane: SiteDataPlane | None,
                     wake_keeper: Callable[[], None] = lambda: None) -> Ports:
    """Every port of `site`'s agent. The journal is this site's own file, stamped with wall
    time (each site writes its own; monotonic clocks are never compared across sites)."""
    topology = site.topology
    return Ports(
        topology=topology,
        database=SiteDatabase(site, store),
        compute=SiteCompute(site, dataplane),
        traffic=SiteTraffic(site, store, wake_keeper),
        probers=[SiteProber(site)],
        notifier=LocalNotifier(topology.failover.webhook_url),
        state=store,
        journal=Journal(FileSink(site.journal_path), clock_ns=time.time_ns),
    )
