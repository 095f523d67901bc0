"""One region's PostgreSQL cluster, behind one facade: create, start/stop, status, promote,
fence, rebuild. As Patroni splits its `postgresql/` package, the work lives in modules with one
job each (`bootstrap`, `postmaster`, `queries`, `roles`, `files`); `PostgresCluster` names a
cluster (its region, files and address) and hands each operation to its module.

Each operation is idempotent (it first asks "already true?") and bounded in time. A cluster is
addressed by its data directory; its processes are found by what they are, so a killed
postmaster's orphaned children are found too and no pid of another program is ever signalled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg

from regionguard.orchestrator.ports import DbStatus
from regionguard.providers.local import pgbin
from regionguard.providers.local.postgres import bootstrap, postmaster, queries, roles
from regionguard.providers.local.postgres.tls import PgTls


@dataclass(frozen=True, slots=True)
class PostgresCluster:
    """A PostgreSQL cluster for region `name` with files under `root` (= data root / region)."""

    name: str
    root: Path
    address: str
    port: int
    dbname: str
    # every commit reaches the disk before it is acknowledged: RPO figures then hold against
    # a power cut too, not only a process kill (benchmarks.durability measures the cost);
    # off only where a benchmark compares the two
    fsync: bool = True
    tls: PgTls | None = None  # TLS between sites (the topology's [tls]): see postgres/tls.py
    peers: tuple[str, ...] = ()  # every site's host (self-managed sites): let in by pg_hba
    user: str = "postgres"  # who `dsn()` connects as (a witness: the monitoring role)

    @property
    def data_dir(self) -> Path:
        return self.root / "db"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def passfile(self) -> Path:
        """The sandbox's password file (pgpass format, 0600, readable by the PostgreSQL
        user for the tools and the standby's WAL receiver). Over TCP every connection
        authenticates with scram-sha-256; the unix socket (a 0700 directory) is local only."""
        return self.root.parent / "pgpass"

    def dsn(self, dbname: str | None = None, **extra: str | int) -> str:
        params: dict[str, str | int] = {
            "host": self.address,
            "port": self.port,
            "dbname": dbname or self.dbname,
            "user": self.user,
            "passfile": str(self.passfile),
            "application_name": "regionguard",
            **(self.tls.client_params() if self.tls is not None else {}),
            **extra,
        }
        return " ".join(f"{k}={v}" for k, v in params.items())

    def replication_conninfo(self, application_name: str) -> str:
        tls = "".join(f" {k}={v}" for k, v in
                      (self.tls.client_params() if self.tls is not None else {}).items())
        return (
            f"host={self.address} port={self.port} user=postgres passfile={self.passfile} "
            f"application_name={application_name} connect_timeout=2{tls}"
        )

    def exists(self) -> bool:
        return bootstrap.exists(self)

    def create_primary(self) -> None:
        bootstrap.create_primary(self)

    def create_standby(self, primary: PostgresCluster, timeout_s: float = 120.0) -> None:
        bootstrap.create_standby(self, primary, timeout_s)

    def write_config(self) -> None:
        bootstrap.write_config(self)

    def follow(self, primary: PostgresCluster) -> None:
        bootstrap.follow(self, primary)

    def processes(self) -> list[psutil.Process]:
        return postmaster.processes(self)

    def pids(self) -> tuple[int, ...]:
        return postmaster.pids(self)

    def postmaster_pid(self) -> int | None:
        return postmaster.postmaster_pid(self)

    def is_running(self) -> bool:
        return postmaster.is_running(self)

    def start(self, timeout_s: float = 30.0) -> None:
        postmaster.start(self, timeout_s)

    def stop(self, mode: str = "fast", timeout_s: float = 10.0) -> None:
        postmaster.stop(self, mode, timeout_s)

    def connect(
        self, dbname: str | None = None, autocommit: bool = True, connect_timeout: int = 2,
        statement_timeout_ms: int = 5000,
    ) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            self.dsn(dbname),
            autocommit=autocommit,
            connect_timeout=connect_timeout,
            options=f"-c statement_timeout={statement_timeout_ms}",
        )

    def status(self, primary: PostgresCluster | None = None) -> DbStatus:
        return queries.status(self, primary)

    def replica_lag(
        self, standby: str, replay_lsn: int | None
    ) -> tuple[int | None, float | None, bool | None]:
        return queries.replica_lag(self, standby, replay_lsn)

    def set_sync_standby(self, standby: str | None) -> bool:
        return roles.set_sync_standby(self, standby)

    def confirm_sync(self, standby: str, timeout_s: float) -> int:
        return queries.confirm_sync(self, standby, timeout_s)

    def promote(self, epoch: int, timeout_s: float = 30.0) -> None:
        roles.promote(self, epoch, timeout_s)

    def write_epoch(self, epoch: int) -> None:
        roles.write_epoch(self, epoch)

    def fence(self) -> list[str]:
        return postmaster.fence(self)

    def self_fence(self) -> list[str]:
        return roles.self_fence(self)

    def reload_config(self) -> None:
        """Re-read the settings and the TLS files (`pg_ctl reload`)."""
        pgbin.run("pg_ctl", "reload", "-D", str(self.data_dir), timeout_s=10)

    def lift_self_fence(self) -> bool:
        return roles.lift_self_fence(self)

    def stop_writes(self, timeout_s: float = 30.0) -> int:
        return roles.stop_writes(self, timeout_s)

    def checkpoint_lsn(self) -> int:
        return queries.checkpoint_lsn(self)

    def wait_replayed(self, lsn: int, timeout_s: float) -> int:
        return queries.wait_replayed(self, lsn, timeout_s)

    def rebuild_as_standby(self, primary: PostgresCluster, timeout_s: float = 120.0) -> str:
        return roles.rebuild_as_standby(self, primary, timeout_s)

    def remove(self) -> None:
        bootstrap.remove(self)
