"""One region's PostgreSQL cluster: create, start/stop, status, promote, fence, rebuild.

Each operation is idempotent (it first asks "already true?") and bounded in time. A cluster is
addressed by its data directory; its processes are found by what they are (a `postgres` binary
whose cwd is this data directory), so a killed postmaster's orphaned children are found too and
no pid of another program is ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from regionguard.errors import NotAvailable, ProviderError
from regionguard.orchestrator.lsn import format_lsn, parse_lsn
from regionguard.orchestrator.ports import DbStatus
from regionguard.providers.local import pgbin
from regionguard.providers.local.proctrack import kill, wait_dead

CONF_FILE = "regionguard.conf"
AUTO_CONF = "postgresql.auto.conf"
HBA = """# written by regionguard: over TCP, the sandbox's password (scram-sha-256); the unix
# socket lives in a 0700 directory of the PostgreSQL user and is trusted
local   all          all                     trust
host    all          all   127.0.0.0/8       scram-sha-256
host    replication  all   127.0.0.0/8       scram-sha-256
"""


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
            "user": "postgres",
            "passfile": str(self.passfile),
            "application_name": "regionguard",
            **extra,
        }
        return " ".join(f"{k}={v}" for k, v in params.items())

    def replication_conninfo(self, application_name: str) -> str:
        return (
            f"host={self.address} port={self.port} user=postgres passfile={self.passfile} "
            f"application_name={application_name} connect_timeout=2"
        )

    # -- creation --------------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def create_primary(self) -> None:
        """initdb (copied from a per-machine template), configure, start, create the database."""
        if not self.exists():
            pgbin.make_pg_dir(self.root)
            pgbin.make_pg_dir(self.socket_dir, 0o700)
            _copy_template(self.data_dir)
            _write_as_pg(self.data_dir / "pg_hba.conf", HBA)
        self.write_config()
        self.start()
        self._set_password()
        with self.connect("postgres", autocommit=True) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,)
            ).fetchone()
            if not found:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.dbname)))

    def _set_password(self) -> None:
        """The sandbox's password for `postgres` (created once, kept in the passfile), set
        over the unix socket, the one way in that needs none."""
        password = _ensure_passfile(self.passfile)
        with psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres",
                             dbname="postgres", autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(
                sql.Literal(password)))

    def create_standby(self, primary: PostgresCluster, timeout_s: float = 120.0) -> None:
        """A streaming hot standby of `primary` by pg_basebackup; idempotent."""
        if self.exists() and (self.data_dir / "standby.signal").exists():
            self.write_config()
            self.follow(primary)
            self.start()
            return
        if self.exists():
            raise ProviderError(
                f"{self.name}: {self.data_dir} holds a database that is not a standby; "
                "refusing to overwrite it (rebuild it with `regionguard failback`)"
            )
        self._basebackup(primary, timeout_s)
        self.start()

    def _basebackup(self, primary: PostgresCluster, timeout_s: float) -> None:
        pgbin.make_pg_dir(self.root)
        pgbin.make_pg_dir(self.socket_dir, 0o700)
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        pgbin.run(
            "pg_basebackup",
            "-D", str(self.data_dir),
            "-d", primary.replication_conninfo(self.name),
            "-c", "fast", "-R", "-X", "stream",
            timeout_s=timeout_s,
        )
        self.write_config()
        self.follow(primary)

    def write_config(self) -> None:
        """(Re)write this cluster's own settings; pg_basebackup copies the primary's."""
        conf = self.data_dir / "postgresql.conf"
        text = conf.read_text()
        include = f"include_if_exists = '{CONF_FILE}'"
        if include not in text:
            conf.write_text(text + f"\n{include}\n")
        settings = {
            "listen_addresses": f"'{self.address}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "wal_level": "replica",
            "wal_log_hints": "on",  # pg_rewind needs it
            "hot_standby": "on",
            "hot_standby_feedback": "on",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "wal_keep_size": "'512MB'",
            "max_connections": "200",
            "shared_buffers": "'32MB'",
            "fsync": "on" if self.fsync else "off",
            "wal_sender_timeout": "'5s'",
            "wal_receiver_timeout": "'5s'",
            "wal_receiver_status_interval": "'1s'",
            "wal_retrieve_retry_interval": "'200ms'",
            "log_recovery_conflict_waits": "on",
            "log_min_messages": "warning",
            "log_line_prefix": "'%m [%p] '",
        }
        body = "# written by regionguard; regenerated on every start\n" + "".join(
            f"{k} = {v}\n" for k, v in settings.items()
        )
        _write_as_pg(self.data_dir / CONF_FILE, body)

    def follow(self, primary: PostgresCluster) -> None:
        """Point this (stopped) cluster at `primary` as a streaming standby."""
        self._set_auto_conf("primary_conninfo", primary.replication_conninfo(self.name))
        _write_as_pg(self.data_dir / "standby.signal", "")

    def _set_auto_conf(self, key: str, value: str | None) -> None:
        path = self.data_dir / AUTO_CONF
        lines = path.read_text().splitlines() if path.exists() else []
        kept = [ln for ln in lines if not ln.strip().startswith(f"{key} ")]
        kept = [ln for ln in kept if not ln.strip().startswith(f"{key}=")]
        if value is not None:
            escaped = value.replace("'", "''")
            kept.append(f"{key} = '{escaped}'")
        _write_as_pg(path, "\n".join(kept) + "\n")

    # -- processes -------------------------------------------------------------------------

    def processes(self) -> list[psutil.Process]:
        """Every live process of this cluster: the postmaster and all its children."""
        target = str(self.data_dir.resolve()) if self.data_dir.exists() else None
        if target is None:
            return []
        postgres_bin = str(Path(pgbin.tool("postgres")).resolve())
        found: list[psutil.Process] = []
        for proc in psutil.process_iter(["exe", "cwd", "status"]):
            try:
                if proc.info["exe"] != postgres_bin or proc.info["cwd"] != target:
                    continue
                if proc.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def pids(self) -> tuple[int, ...]:
        return tuple(sorted(p.pid for p in self.processes()))

    def postmaster_pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        return pid if pid in self.pids() else None

    def is_running(self) -> bool:
        return self.postmaster_pid() is not None

    def start(self, timeout_s: float = 30.0) -> None:
        """Start and wait until it accepts connections. Idempotent."""
        if self.is_running():
            return
        if not self.exists():
            raise NotAvailable(f"{self.name}: no database at {self.data_dir}; run `regionguard up`")
        pgbin.make_pg_dir(self.socket_dir, 0o700)
        stale = self.data_dir / "postmaster.pid"
        if stale.exists() and not self.processes():
            stale.unlink()  # a SIGKILLed postmaster leaves its pid file behind
        self.write_config()
        pgbin.run(
            "pg_ctl", "start", "-w", "-t", str(int(timeout_s)), "-D", str(self.data_dir),
            "-l", str(self.log_file), timeout_s=timeout_s + 5, log=None,
        )

    def stop(self, mode: str = "fast", timeout_s: float = 10.0) -> None:
        """Stop; escalate to SIGKILL of every process when the stop does not finish in time."""
        if self.is_running():
            with contextlib.suppress(ProviderError):
                pgbin.run(
                    "pg_ctl", "stop", "-m", mode, "-w", "-t", str(max(1, int(timeout_s))),
                    "-D", str(self.data_dir), timeout_s=timeout_s + 3,
                )
        leftover = self.processes()
        if leftover:
            for p in leftover:  # a frozen postmaster cannot act on a signal until continued
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.send_signal(signal.SIGCONT)
            survivors = wait_dead(leftover, 1.0)
            if survivors and kill(survivors):
                raise ProviderError(f"{self.name}: PostgreSQL processes survived SIGKILL")

    # -- queries ---------------------------------------------------------------------------

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
        """Up? In recovery? LSN, timeline, epoch; lag against `primary` when given.

        Never raises for an unreachable database: returns up=False with the reason."""
        pids = self.pids()
        try:
            with self.connect(statement_timeout_ms=2000) as conn:
                row = conn.execute(
                    "SELECT pg_is_in_recovery(),"
                    " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text"
                    "      ELSE pg_current_wal_lsn()::text END,"
                    " CASE WHEN pg_is_in_recovery()"
                    "      THEN (SELECT received_tli FROM pg_stat_wal_receiver)"
                    "      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))"
                    "           ::bit(32)::int END,"
                    " to_regclass('regionguard_epoch') IS NOT NULL"
                ).fetchone()
                assert row is not None
                in_recovery, lsn_text, timeline, has_epoch = row
                epoch_row = (
                    conn.execute("SELECT epoch FROM regionguard_epoch WHERE id = 1").fetchone()
                    if has_epoch else None
                )
        except psycopg.Error as exc:
            return DbStatus(self.name, up=False, pids=pids, port=self.port,
                            error=str(exc).strip().splitlines()[0] if str(exc) else "error")
        epoch = epoch_row[0] if epoch_row else None
        lsn = parse_lsn(lsn_text)  # type: ignore[arg-type]
        lag_bytes = lag_s = streaming = None
        if in_recovery and primary is not None:
            lag_bytes, lag_s, streaming = primary.replica_lag(self.name, lsn)
        elif not in_recovery:
            lag_bytes, lag_s = 0, 0.0
        return DbStatus(
            self.name, up=True, in_recovery=bool(in_recovery), lsn=lsn,
            timeline=int(timeline) if timeline is not None else None,  # type: ignore[call-overload]
            epoch=int(epoch) if epoch is not None else None,  # type: ignore[call-overload]
            lag_bytes=lag_bytes, lag_s=lag_s, streaming=streaming, pids=pids, port=self.port,
        )

    def replica_lag(
        self, standby: str, replay_lsn: int | None
    ) -> tuple[int | None, float | None, bool | None]:
        """Bytes and seconds `standby` trails this primary, and whether this primary is
        streaming to it now, from pg_stat_replication. (None, None, None) if unreachable."""
        try:
            with self.connect(statement_timeout_ms=1000) as conn:
                row = conn.execute(
                    "SELECT pg_current_wal_lsn()::text,"
                    " (SELECT COALESCE(EXTRACT(EPOCH FROM replay_lag), 0)::float8"
                    "    FROM pg_stat_replication WHERE application_name = %(s)s LIMIT 1),"
                    " EXISTS (SELECT 1 FROM pg_stat_replication"
                    "    WHERE application_name = %(s)s AND state = 'streaming')",
                    {"s": standby},
                ).fetchone()
        except psycopg.Error:
            return None, None, None
        assert row is not None
        current = parse_lsn(row[0])  # type: ignore[arg-type]
        lag_bytes = max(0, current - replay_lsn) if current is not None and replay_lsn else None
        lag_s = float(row[1]) if row[1] is not None else None  # type: ignore[arg-type]
        return lag_bytes, lag_s, bool(row[2])

    def set_sync_standby(self, standby: str | None) -> None:
        """Require `standby` to apply every commit before it is acknowledged (None: stop).

        `remote_apply` makes an acknowledged write both durable and readable on the standby,
        so "read local" in the standby region sees the client's own writes. Idempotent."""
        names = f'"{standby}"' if standby else ""
        commit = "remote_apply" if standby else "on"
        with self.connect("postgres") as conn:
            row = conn.execute(
                "SELECT current_setting('synchronous_standby_names'),"
                " current_setting('synchronous_commit')"
            ).fetchone()
            if row == (names, commit):
                return
            conn.execute(
                sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(
                    sql.Literal(names)
                )
            )
            conn.execute(
                sql.SQL("ALTER SYSTEM SET synchronous_commit = {}").format(sql.Literal(commit))
            )
            conn.execute("SELECT pg_reload_conf()")

    def confirm_sync(self, standby: str, timeout_s: float) -> int:
        """Wait until this primary reports `standby` as its synchronous standby and `standby`
        has flushed what this primary had flushed once it did; return that LSN.

        As Patroni's SyncHandler: the barrier is taken after pg_stat_replication shows the
        standby as `sync` (the reload took effect), and one small record (committed without
        waiting) moves replication on, so an idle primary confirms too."""
        try:
            return self._confirm_sync(standby, timeout_s)
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ProviderError(f"{self.name}: confirming {standby} as sync standby: "
                                f"{first}") from exc

    def _confirm_sync(self, standby: str, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        barrier: int | None = None
        flushed: int | None = None
        with self.connect("postgres", statement_timeout_ms=max(100, int(timeout_s * 1000))
                          ) as conn:
            while True:
                row = conn.execute(
                    "SELECT sync_state, flush_lsn::text FROM pg_stat_replication"
                    " WHERE application_name = %s AND state = 'streaming'"
                    " ORDER BY backend_start DESC LIMIT 1", (standby,)).fetchone()
                if row is not None and row[0] == "sync":
                    flushed = parse_lsn(row[1])  # type: ignore[arg-type]
                    if barrier is None:
                        mark = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
                        barrier = parse_lsn(mark[0]) if mark else None  # type: ignore[arg-type]
                        conn.execute("DO $$ BEGIN SET LOCAL synchronous_commit = off;"
                                     " PERFORM pg_catalog.txid_current(); END $$")
                    elif barrier is not None and flushed is not None and flushed >= barrier:
                        return barrier
                if time.monotonic() >= deadline:
                    state = row[0] if row is not None else "not streaming"
                    raise ProviderError(
                        f"{self.name}: {standby} not confirmed as synchronous standby within "
                        f"{timeout_s:g} s (state {state}, flushed {format_lsn(flushed)} of "
                        f"{format_lsn(barrier)})")
                time.sleep(0.02)

    # -- role changes ----------------------------------------------------------------------

    def promote(self, epoch: int, timeout_s: float = 30.0) -> None:
        """Promote (pg_promote, waiting), stop waiting on a sync standby, store `epoch`.

        Idempotent: a primary only gets the epoch raised to `epoch` (never lowered)."""
        deadline = time.monotonic() + timeout_s
        if (not self.is_running() and self.exists()
                and not (self.data_dir / "standby.signal").exists()):
            self.start(timeout_s)  # a cleanly stopped primary: a rolled-back switchover
        with self.connect("postgres", statement_timeout_ms=int(timeout_s * 1000)) as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(), current_setting('synchronous_standby_names')"
            ).fetchone()
            was_standby, sync_names = (bool(row[0]), str(row[1])) if row else (False, "")
            if was_standby:
                wait_s = max(1, int(deadline - time.monotonic()))
                done = conn.execute("SELECT pg_promote(true, %s)", (wait_s,)).fetchone()
                if not done or not done[0]:
                    raise ProviderError(f"{self.name}: pg_promote did not finish in {wait_s} s")
        # The synchronous_standby_names copied from the old primary name this region and would
        # block every commit here (statement_timeout does not bound a commit's wait for its
        # sync standby). A primary already promoted keeps a sync standby that streams to it (a
        # plan re-asserting promote after the standby rejoined); one that does not stream (the
        # old primary, named by a config this region inherited) would block every commit.
        if was_standby or (sync_names and not self._streams_to(sync_names.strip('"'))):
            self.set_sync_standby(None)
        self.write_epoch(epoch)

    def _streams_to(self, standby: str) -> bool:
        with self.connect("postgres") as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_replication WHERE "
                               "application_name = %s AND state = 'streaming'",
                               (standby,)).fetchone()
        return bool(row and row[0])

    def write_epoch(self, epoch: int) -> None:
        """Raise the fencing token to `epoch`. Committed locally: a commit waiting for a sync
        standby has no timeout, and the token belongs to this primary (it replicates anyway)."""
        with self.connect(autocommit=False) as conn, conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = local")
            conn.execute(
                "INSERT INTO regionguard_epoch (id, epoch, region, updated_at)"
                " VALUES (1, %(e)s, %(r)s, now())"
                " ON CONFLICT (id) DO UPDATE SET epoch = EXCLUDED.epoch,"
                "   region = EXCLUDED.region, updated_at = now()"
                " WHERE regionguard_epoch.epoch < EXCLUDED.epoch",
                {"e": epoch, "r": self.name},
            )

    def fence(self) -> list[str]:
        """Stop this database accepting writes, whatever state it is in. Idempotent.

        `pg_ctl stop -m immediate -t 2`, then SIGKILL of every process of the cluster: a frozen
        postmaster ignores a fast stop, and read-only settings can be overridden by a session."""
        actions: list[str] = []
        procs = self.processes()
        if not procs:
            return ["already stopped"]
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(signal.SIGCONT)
        try:
            pgbin.run("pg_ctl", "stop", "-m", "immediate", "-w", "-t", "2",
                      "-D", str(self.data_dir), timeout_s=4)
            actions.append("pg_ctl stop -m immediate")
        except ProviderError as exc:
            actions.append(f"pg_ctl stop failed: {exc}")
        leftover = self.processes()
        if leftover:
            kill(leftover)
            actions.append(f"SIGKILL {len(leftover)} processes")
        if self.processes():
            raise ProviderError(f"{self.name}: PostgreSQL processes survived SIGKILL")
        return actions

    def stop_writes(self, timeout_s: float = 30.0) -> int:
        """Planned demotion: a clean (fast) shutdown; returns the final checkpoint's LSN.

        A clean shutdown sends every WAL record to connected standbys before exiting, so a
        standby that replays up to this LSN has lost nothing."""
        if self.is_running():
            self.stop("fast", timeout_s)
        return self.checkpoint_lsn()

    def checkpoint_lsn(self) -> int:
        out = pgbin.run("pg_controldata", str(self.data_dir), timeout_s=10).stdout
        for line in out.splitlines():
            if line.startswith("Latest checkpoint location:"):
                lsn = parse_lsn(line.split(":", 1)[1].strip())
                if lsn is not None:
                    return lsn
        raise ProviderError(f"{self.name}: pg_controldata shows no checkpoint location")

    def wait_replayed(self, lsn: int, timeout_s: float) -> int:
        """Poll until this standby has replayed `lsn` (a clean shutdown's checkpoint record)."""
        deadline = time.monotonic() + timeout_s
        replayed: int | None = None
        while time.monotonic() < deadline:
            st = self.status()
            replayed = st.lsn
            if st.up and replayed is not None and replayed >= lsn:
                return replayed
            time.sleep(0.05)
        raise ProviderError(
            f"{self.name}: replayed {replayed} < {lsn} after {timeout_s:g} s; "
            "the standby is not caught up"
        )

    def rebuild_as_standby(self, primary: PostgresCluster, timeout_s: float = 120.0) -> str:
        """Make this (old primary) a standby of `primary`: pg_rewind, else a fresh basebackup.

        Idempotent: a running standby already streaming from `primary` is left alone."""
        if self.is_running():
            st = self.status()
            if st.up and st.in_recovery and self._follows(primary):
                return "already a standby"
            self.stop("fast", 10)
        method = "pg_rewind"
        try:
            if not self.exists():
                raise ProviderError("no data directory")
            # A just-promoted primary's pg_control still names the old timeline until its
            # end-of-recovery checkpoint completes; pg_rewind would then see "same timeline,
            # no rewind required" and leave this cluster diverged. Patroni checkpoints too.
            with primary.connect("postgres", statement_timeout_ms=int(timeout_s * 1000)) as c:
                c.execute("CHECKPOINT")
            pgbin.run(
                "pg_rewind", "-D", str(self.data_dir),
                f"--source-server={primary.dsn('postgres')}",
                log=self.log_file, timeout_s=timeout_s,
            )
            self.write_config()
            self.follow(primary)
        except ProviderError:
            method = "pg_basebackup"
            self._basebackup(primary, timeout_s)
        self.start()
        return method

    def _follows(self, primary: PostgresCluster) -> bool:
        auto = self.data_dir / AUTO_CONF
        return auto.exists() and f"port={primary.port} " in auto.read_text()

    def remove(self) -> None:
        """Stop and delete this cluster's files (used by `down --purge`)."""
        self.stop("immediate", 5)
        if self.root.exists():
            shutil.rmtree(self.root)


def _ensure_passfile(path: Path) -> str:
    """The password in `path` (pgpass format), generated once; the file is 0600 and owned by
    the PostgreSQL user (root, the CLI's user, reads it anyway)."""
    if path.exists():
        lines = path.read_text(errors="replace").strip().splitlines()
        fields = lines[0].split(":") if lines else []
        if len(fields) != 5 or not fields[4]:
            raise ProviderError(f"{path}: not a pgpass line (host:port:db:user:password); "
                                "restore it, or remove it with the data dirs "
                                "(`regionguard down --purge`)")
        return fields[4]
    password = secrets.token_urlsafe(24)  # no ':' or '\\' to escape in pgpass
    _write_as_pg(path, f"*:*:*:postgres:{password}\n")
    return password


def _write_as_pg(path: Path, text: str) -> None:
    """Written 0600 and owned by the PostgreSQL user before the first byte (passwords live
    here), never through a symlink."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:  # ELOOP: a symlink planted where our file goes
        raise ProviderError(f"cannot write {path}: {exc.strerror}; remove it and run "
                            "`regionguard up` again") from None
    with os.fdopen(fd, "w") as f:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        user = pgbin.pg_user()
        if user.name is not None:
            os.fchown(fd, user.uid, user.gid)
        f.write(text)


def _copy_template(target: Path) -> None:
    """A fresh data directory copied from a per-machine initdb template (initdb is slow)."""
    user = pgbin.pg_user()
    template = pgbin.VAR_ROOT / f"template-{pgbin.bin_dir().parent.name}-{user.uid}"
    if user.name is None:
        template = Path.home() / ".cache" / "regionguard" / template.name
    if not (template / "PG_VERSION").exists():
        staging = template.with_name(template.name + f".{os.getpid()}")
        pgbin.make_pg_dir(staging.parent)
        if staging.exists():
            shutil.rmtree(staging)
        pgbin.make_pg_dir(staging)
        pgbin.run(
            "initdb", "-D", str(staging), "-U", "postgres", "--auth=trust",
            "--locale=C.UTF-8", "-E", "UTF8", "--no-sync", timeout_s=120,
        )
        try:
            staging.rename(template)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another process won the race
    shutil.copytree(template, target, symlinks=True)
    if user.name is not None:
        for dirpath, _dirs, files in os.walk(target):
            os.chown(dirpath, user.uid, user.gid)
            for f in files:
                os.chown(os.path.join(dirpath, f), user.uid, user.gid)
    os.chmod(target, 0o700)
