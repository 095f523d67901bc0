"""One self-managed site as its own agent sees it: where its files are, where every site
listens, and handles on the databases and the arbiter.

Everything here is derived from the topology alone (hosts and fixed ports), so each site knows
where the others listen without asking anyone: on the failover path nothing needs the failed
site to answer a question first. A site's files live under `state_dir/sites/NAME` (on a real
host `state_dir` is the host's own; the loopback sandbox and the lab keep every site's under one
directory, each site touching only its own subdirectory).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from regionguard.config import Topology
from regionguard.errors import ConfigError
from regionguard.providers.etcd.client import EtcdArbiter, EtcdTls
from regionguard.providers.etcd.state import EtcdStateStore
from regionguard.providers.local import pgbin
from regionguard.providers.local.postgres import PostgresCluster
from regionguard.providers.local.postgres.files import write_as_pg
from regionguard.providers.local.postgres.monitor import MONITOR_USER
from regionguard.providers.local.postgres.tls import PgTls


@dataclass(frozen=True)
class Site:
    topology: Topology
    name: str

    def __post_init__(self) -> None:
        if self.topology.arbiter.kind != "etcd":
            raise ConfigError('arbiter.kind: an agent needs "etcd" (one member per site); the '
                              '"file" topology is the sandbox\'s input, run `regionguard up`')
        if self.name not in self.topology.sites:
            raise ConfigError(f"--site {self.name}: not a site of this topology; choose one of "
                              f"{', '.join(self.topology.sites)}")

    # -- this site ---------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self.topology.state_dir.absolute() / "sites" / self.name

    @property
    def host(self) -> str:
        return self.topology.site_host(self.name)

    @property
    def is_region(self) -> bool:
        return self.name in self.topology.regions

    @property
    def region(self) -> str:
        """This site's region (a witness has none)."""
        if not self.is_region:
            raise ConfigError(f"{self.name} is the witness: it runs no database and no apps")
        return self.name

    @property
    def heartbeat(self) -> Path:
        return self.root / "agent" / "lease.heartbeat"

    @property
    def watchdog_record(self) -> Path:
        """The watchdog beside this site's PostgreSQL (pid and start time): it outlives the
        agent on purpose, so whoever stops the site stops it too."""
        return self.root / "agent" / "watchdog.pid"

    @property
    def journal_path(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def data_root(self) -> Path:
        """PostgreSQL's files of this site (reachable by the postgres user when run as root);
        its `pgpass` holds the database secret every site shares."""
        return pgbin.data_root(self.root)

    def install_db_secret(self, pgpass_line: str) -> None:
        """This site's copy of the database secrets (pgpass lines): a region's, the superuser's
        (replication, pg_rewind, its agent's upkeep) and the monitoring role's; the witness's,
        the monitoring role's alone (`postgres/monitor.py`: its probe only asks whether the
        primary answers; a witness without it would report the primary down forever)."""
        pgbin.make_pg_dir(self.data_root)
        write_as_pg(self.data_root / "pgpass", pgpass_line)

    @property
    def pg_tls(self) -> PgTls | None:
        """This site's copies of its TLS files for PostgreSQL (`install_tls`), or None."""
        return PgTls(self.data_root / "tls") if self.topology.tls is not None else None

    def install_tls(self) -> bool:
        """Copy this site's CA, certificate and key where PostgreSQL (its own user: the server
        reads the key, the WAL receiver and the tools verify the other sites) can read them;
        again at every agent start, so a renewed certificate is taken by a restart. True when
        a file changed (a running server then reloads them)."""
        spec, tls = self.topology.tls, self.pg_tls
        if spec is None or tls is None:
            return False
        changed = False
        pgbin.make_pg_dir(tls.directory, 0o700)
        for name, source, target in zip(("ca_file", "cert_file", "key_file"),
                                        spec.files(self.name),
                                        (tls.ca_file, tls.cert_file, tls.key_file), strict=True):
            try:
                text = source.read_text()
            except OSError as exc:
                raise ConfigError(f"tls.{name}: cannot read {source} for site {self.name} "
                                  f"({exc.strerror}); put the site's file there") from None
            if not target.exists() or target.read_text() != text:
                write_as_pg(target, text)
                changed = True
        return changed

    # -- every site -----------------------------------------------------------------------

    def database(self, region: str) -> PostgresCluster:
        """`region`'s cluster: this site's own files when it is this site's, else a handle
        for connecting to it over the network (this site's copy of the shared secret)."""
        spec = self.topology.regions[region]
        return PostgresCluster(name=region, root=self.data_root / region,
                               address=spec.site_host, port=spec.ports.db,
                               dbname=self.topology.app, tls=self.pg_tls,
                               peers=tuple(self.topology.site_host(s)
                                           for s in self.topology.sites),
                               user="postgres" if self.is_region else MONITOR_USER)

    def front_door_url(self, region: str) -> str:
        spec = self.topology.regions[region]
        return f"http://{spec.site_host}:{spec.ports.front_door}"

    def app_port(self, region: str, slot: int) -> int:
        return self.topology.regions[region].ports.apps + slot - 1

    @property
    def etcd_tls(self) -> EtcdTls | None:
        """The arbiter's own TLS files when set, else the sites' certificates ([tls])."""
        spec = self.topology.arbiter
        files = (spec.ca_file, spec.cert_file, spec.key_file)
        if not any(files):
            if self.topology.tls is None:
                return None
            files = self.topology.tls.files(self.name)
        return EtcdTls(*(str(f) if f is not None else None for f in files))

    def arbiter(self) -> EtcdArbiter:
        spec = self.topology.arbiter
        return EtcdArbiter(spec.members, timeout_s=spec.request_timeout_s, nearest=self.name,
                           tls=self.etcd_tls)

    def store(self) -> EtcdStateStore:
        t = self.topology
        return EtcdStateStore(self.arbiter(), app=t.app,
                              home_roles={r: s.home_role for r, s in t.regions.items()},
                              sites=t.sites)
