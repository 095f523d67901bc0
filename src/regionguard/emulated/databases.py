"""Each app Region's database in the emulated AWS as a real PostgreSQL cluster.

moto models RDS and Aurora's control plane (statuses, a promotion's duration); the apps need a
database that takes their SQL, so with `real_app` each app Region gets a PostgreSQL cluster
standing in for its RDS instance or Aurora cluster: the home primary's, and an asynchronous
streaming standby in the other Region, fed through a relay the failure domains cut
(`relay.py`), as a Region outage or a partition cuts cross-Region replication. When moto's
model says a Region's database has become writable (the promotion's modelled minutes are
over), its cluster is promoted, within a world second (the app's watch, `real_app.py`).

What this makes real in a drill: the app itself (`create_app`: its write lease, `/health/
route`, the commit-after-lease check, the database's own fence row kept ahead by the lease)
and a client that writes straight to a database, bypassing the app.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import psycopg

from regionguard.app.migrate import migrate
from regionguard.emulated.domains import FailureDomains
from regionguard.emulated.relay import Relay
from regionguard.infra.view import AwsView
from regionguard.providers.local import pgbin
from regionguard.providers.local.netutil import free_port
from regionguard.providers.local.postgres import PostgresCluster

log = logging.getLogger("regionguard.emulated.databases")


class EmulatedDatabases:
    def __init__(self, view: AwsView, workdir: Path, domains: FailureDomains) -> None:
        self.view = view
        self.root = pgbin.data_root(workdir / "databases")
        self.domains = domains
        self.clusters: dict[str, PostgresCluster] = {}  # topology region -> its cluster
        self.relay: Relay | None = None

    def start(self) -> None:
        primary, standby = self.view.primary, self.view.standby
        source = self._cluster(primary.name)
        source.create_primary()
        migrate(source.dsn())  # the app's schema, as a deployment's migration would
        self.relay = Relay(("127.0.0.1", source.port), lambda: self.domains.link_ok(
            primary.aws_region, standby.aws_region)).start()
        replica = self._cluster(standby.name)
        replica.create_standby(dataclasses.replace(source, port=self.relay.port))

    def _cluster(self, region: str) -> PostgresCluster:
        cluster = PostgresCluster(region, self.root / region, "127.0.0.1", free_port(), "orders")
        self.clusters[region] = cluster
        return cluster

    def dsn(self, region: str) -> str:
        return self.clusters[region].dsn()

    def promote_if_writable(self, region: str, writable: bool) -> None:
        """moto says `region`'s database takes writes now: so does its cluster."""
        cluster = self.clusters.get(region)
        if not writable or cluster is None:
            return
        try:
            with psycopg.connect(cluster.dsn(), autocommit=True, connect_timeout=2) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row and row[0]:
                    conn.execute("SELECT pg_promote(wait => true, wait_seconds => 30)")
                    log.info("%s's database promoted (moto's model says it is writable)",
                             region)
        except psycopg.Error as exc:  # tried again on the next look
            log.warning("promoting %s's database: %s", region, exc)

    def stop(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        for cluster in reversed(list(self.clusters.values())):
            cluster.remove()
        shutil.rmtree(self.root, ignore_errors=True)
