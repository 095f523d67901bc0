"""The primary's agent keeps its write lease on a real etcd, or fences its own PostgreSQL.

Cut from every etcd member (a relay that stops relaying, as a partition does), the primary's
keeper cannot renew, and its own deadline fences its database: no write is acknowledged after
etcd expired the lease, which is the moment a survivor may promote. No other process signals
it. Removing the fence (a keeper whose fence does nothing) makes this test fail: writes go on
past the lease."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from regionguard.agent.lease_keeper import KeeperState, LeaseKeeper
from regionguard.agent.watchdog import Heartbeat, Watchdog, read_deadline
from regionguard.errors import ProviderError
from regionguard.providers.etcd.client import EtcdArbiter
from regionguard.providers.etcd.state import EtcdStateStore
from regionguard.providers.etcd.writer_lease import WriterLease
from regionguard.providers.local import pgbin
from regionguard.providers.local.netutil import free_port
from regionguard.providers.local.postgres import PostgresCluster

from ..plan_helpers import bare_plan
from .etcd_helpers import HOME_ROLES, SITES, CuttableProxy, EtcdCluster, etcd_cluster
from .sandbox_helpers import wait_for

pytestmark = pytest.mark.local

TTL_S = 2
MARGIN_S = 1.0


@pytest.fixture
def primary_db(tmp_path: Path) -> Iterator[PostgresCluster]:
    cluster = PostgresCluster("east", pgbin.data_root(tmp_path) / "east", "127.0.0.1",
                              free_port(), "orders")
    try:
        cluster.create_primary()
        with cluster.connect() as conn:
            conn.execute("CREATE TABLE acked (n int)")
        yield cluster
    finally:
        cluster.remove()
        assert not cluster.processes()


class Writer:
    """A client committing one row every 20 ms; the time of each acknowledged commit."""

    def __init__(self, db: PostgresCluster) -> None:
        self.db = db
        self.acked: list[float] = []
        self.tried: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        n = 0
        while not self.stop.wait(0.02):
            n += 1
            self.tried.append(time.monotonic())
            try:
                with psycopg.connect(self.db.dsn(), connect_timeout=1, autocommit=True) as conn:
                    conn.execute("INSERT INTO acked VALUES (%s)", (n,))
                self.acked.append(time.monotonic())
            except psycopg.Error:
                pass


def test_a_primary_cut_from_etcd_fences_itself_before_its_lease_can_end(
        tmp_path: Path, primary_db: PostgresCluster) -> None:
    with etcd_cluster(tmp_path / "etcd") as cluster, _relays(cluster) as relays:
        via_relays = EtcdArbiter({site: r.url for site, r in relays.items()}, timeout_s=0.25,
                                 nearest="east")
        east = EtcdStateStore(via_relays, app="keeper", home_roles=HOME_ROLES,
                              sites=tuple(SITES))
        west = cluster.store("west", "keeper")
        fences: list[tuple[float, list[str]]] = []
        keeper = LeaseKeeper(
            WriterLease(east, ttl_s=TTL_S, margin_s=MARGIN_S), "east",
            lambda _: fences.append((time.monotonic(), primary_db.self_fence())),
            renew_every_s=TTL_S / 4)
        writer = Writer(primary_db)
        keeper.start()
        writer.thread.start()
        try:
            wait_for("east to hold the lease", lambda: keeper.state is KeeperState.HOLDING,
                     timeout_s=10, every_s=0.02)
            time.sleep(1.0)  # a few renewals, under load
            assert keeper.state is KeeperState.HOLDING and writer.acked
            for relay in relays.values():
                relay.cut()  # east's site can reach no etcd member from here on
            cut_at = time.monotonic()
            west.claim_epoch(1, bare_plan("failover"))  # the survivors fail over...
            west.revoke_writer("east")
            wait_for("etcd to expire east's lease", lambda: west.writer_lease_ended("east"),
                     timeout_s=TTL_S * 4, every_s=0.02)
            ended_at = time.monotonic()  # ...and could promote now
            wait_for("east to fence itself", lambda: keeper.state is KeeperState.FENCED,
                     timeout_s=5, every_s=0.02)
            # the client keeps trying while a survivor would be promoting
            wait_for("10 more writes tried", lambda: sum(
                t >= ended_at for t in writer.tried) >= 10, timeout_s=20, every_s=0.02)
        finally:
            writer.stop.set()
            writer.thread.join(5)
            keeper.stop()
        late = [t for t in writer.acked if t >= ended_at]
        assert late == [], f"{len(late)} writes acknowledged after east's lease ended"
        assert fences, "the keeper never fenced"
        fenced_at, actions = fences[0]
        assert fenced_at < ended_at, "east fenced only after etcd let a survivor promote"
        assert fenced_at - cut_at < TTL_S, fenced_at - cut_at
        assert any("read-only" in a for a in actions), actions
        assert not primary_db.processes()  # stopped, by its own site's agent
        assert "deadline" in (keeper.fenced_because or "")


def test_a_revoke_seen_while_connected_fences_at_once(
        tmp_path: Path, primary_db: PostgresCluster) -> None:
    with etcd_cluster(tmp_path / "etcd") as cluster:
        east, west = cluster.store("east", "revoked"), cluster.store("west", "revoked")
        fenced = threading.Event()
        heartbeat = tmp_path / "lease.heartbeat"
        keeper = LeaseKeeper(WriterLease(east, ttl_s=30, margin_s=MARGIN_S), "east",
                             lambda _: (primary_db.self_fence(), fenced.set()),
                             renew_every_s=0.2, heartbeat=Heartbeat(heartbeat))
        assert keeper.renew_once() is KeeperState.HOLDING
        assert _holds(heartbeat)  # the watchdog guards the holder
        west.claim_epoch(1, bare_plan("failover"))
        west.revoke_writer("east")
        assert keeper.renew_once() is KeeperState.FENCED  # long before the 30 s TTL
        assert fenced.is_set() and "revoked" in (keeper.fenced_because or "")
        assert west.writer_lease_ended("east")
        # fenced by the agent: the watchdog is told there is nothing left to stop (an old
        # deadline would fence whatever runs later: a standby rebuilt after a switchover)
        assert not _holds(heartbeat)
        assert keeper.renew_once() is KeeperState.FENCED  # it stays fenced


@contextlib.contextmanager
def _relays(cluster: EtcdCluster) -> Iterator[dict[str, CuttableProxy]]:
    relays = {site: CuttableProxy(url) for site, url in cluster.client_urls.items()}
    try:
        yield relays
    finally:
        for relay in relays.values():
            relay.close()


# the primary's agent, alone in a process of its own: it keeps the lease and publishes its
# deadline, and its own fence does nothing (it is frozen when it would matter)
AGENT = """
import json, sys, threading
from pathlib import Path
from regionguard.agent.lease_keeper import LeaseKeeper
from regionguard.agent.watchdog import Heartbeat
from regionguard.config import Role
from regionguard.providers.etcd.client import EtcdArbiter
from regionguard.providers.etcd.state import EtcdStateStore
from regionguard.providers.etcd.writer_lease import WriterLease
members, heartbeat, ttl, margin = json.loads(sys.argv[1])
store = EtcdStateStore(EtcdArbiter(members, timeout_s=0.25, nearest="east"), app="watchdog",
                       home_roles={"east": Role.PRIMARY, "west": Role.STANDBY},
                       sites=tuple(members))
keeper = LeaseKeeper(WriterLease(store, ttl_s=ttl, margin_s=margin), "east", lambda _: None,
                     renew_every_s=ttl / 4, heartbeat=Heartbeat(Path(heartbeat)))
keeper.start()
threading.Event().wait()
"""


def test_the_watchdog_fences_when_the_agent_holding_the_lease_freezes(
        tmp_path: Path, primary_db: PostgresCluster) -> None:
    heartbeat = tmp_path / "agent" / "lease.heartbeat"
    with etcd_cluster(tmp_path / "etcd") as cluster:
        west = cluster.store("west", "watchdog")
        agent = subprocess.Popen(
            [sys.executable, "-c", AGENT,
             json.dumps([cluster.client_urls, str(heartbeat), TTL_S, MARGIN_S])],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        fences: list[float] = []
        watchdog = Watchdog(heartbeat, lambda _: (fences.append(time.monotonic()),
                                                  primary_db.self_fence()))
        stop = threading.Event()
        watching = threading.Thread(target=watchdog.run, args=(stop,), daemon=True)
        writer = Writer(primary_db)
        try:
            wait_for("the agent to hold the lease", lambda: _holds(heartbeat), timeout_s=15,
                     every_s=0.02)
            watching.start()
            writer.thread.start()
            wait_for("a few writes", lambda: len(writer.acked) >= 10, timeout_s=10,
                     every_s=0.02)
            assert not fences
            agent.send_signal(signal.SIGSTOP)  # the agent hangs, lease held
            west.claim_epoch(1, bare_plan("failover"))
            west.revoke_writer("east")
            wait_for("etcd to expire east's lease", lambda: west.writer_lease_ended("east"),
                     timeout_s=TTL_S * 4, every_s=0.02)
            ended_at = time.monotonic()
            wait_for("10 more writes tried", lambda: sum(
                t >= ended_at for t in writer.tried) >= 10, timeout_s=20, every_s=0.02)
        finally:
            stop.set()
            writer.stop.set()
            writer.thread.join(5)
            agent.send_signal(signal.SIGCONT)
            agent.kill()
            agent.wait(10)
        late = [t for t in writer.acked if t >= ended_at]
        assert late == [], f"{len(late)} writes acknowledged after east's lease ended"
        assert fences and fences[0] < ended_at and watchdog.fired is not None
        assert not primary_db.processes()


def _holds(heartbeat: Path) -> bool:
    try:
        return read_deadline(heartbeat) is not None
    except ValueError:
        return False


def test_a_handover_gives_an_end_position_only_for_a_clean_shutdown(
        primary_db: PostgresCluster) -> None:
    """A switchover's old primary tells its standby where its WAL ends: only a clean stop
    knows. After an immediate stop (the watchdog's, a crash), "Latest checkpoint location"
    is an older checkpoint and the WAL after it may never have left: no position is given."""
    with primary_db.connect() as conn:
        conn.execute("INSERT INTO acked VALUES (1)")
    primary_db.stop("immediate", 5)
    with pytest.raises(ProviderError, match="not shut down cleanly"):
        primary_db.stop_writes(5)
    primary_db.start()
    lsn = primary_db.stop_writes(10)  # a fast shutdown: every WAL record written and sent
    assert lsn > 0 and not primary_db.processes()
