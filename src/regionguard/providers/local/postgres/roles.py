"""Role changes: promote (and store the epoch), synchronous replication on and off, a clean
stop that hands over (switchover), and rebuilding an old primary as a standby (pg_rewind, else
a fresh copy). Each is idempotent: it asks "already true?" first."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from regionguard.errors import ProviderError
from regionguard.providers.local import pgbin
from regionguard.providers.local.postgres import bootstrap, divergence, queries
from regionguard.providers.local.postgres.bootstrap import AUTO_CONF

if TYPE_CHECKING:
    from regionguard.providers.local.postgres import PostgresCluster


def set_sync_standby(c: PostgresCluster, standby: str | None) -> bool:
    """Require `standby` to apply every commit before it is acknowledged (None: stop).

    `remote_apply` makes an acknowledged write both durable and readable on the standby,
    so "read local" in the standby region sees the client's own writes. Idempotent; True
    when it changed the setting."""
    names = f'"{standby}"' if standby else ""
    commit = "remote_apply" if standby else "on"
    with c.connect("postgres") as conn:
        row = conn.execute(
            "SELECT current_setting('synchronous_standby_names'),"
            " current_setting('synchronous_commit')"
        ).fetchone()
        if row == (names, commit):
            return False
        conn.execute(
            sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(
                sql.Literal(names)
            )
        )
        conn.execute(
            sql.SQL("ALTER SYSTEM SET synchronous_commit = {}").format(sql.Literal(commit))
        )
        conn.execute("SELECT pg_reload_conf()")
    return True


def promote(c: PostgresCluster, epoch: int, timeout_s: float = 30.0) -> None:
    """Promote (pg_promote, waiting), stop waiting on a sync standby, store `epoch`.

    Idempotent: a primary only gets the epoch raised to `epoch` (never lowered)."""
    deadline = time.monotonic() + timeout_s
    if (not c.is_running() and c.exists()
            and not (c.data_dir / "standby.signal").exists()):
        c.start(timeout_s)  # a cleanly stopped primary: a rolled-back switchover
    with c.connect("postgres", statement_timeout_ms=int(timeout_s * 1000)) as conn:
        row = conn.execute(
            "SELECT pg_is_in_recovery(), current_setting('synchronous_standby_names')"
        ).fetchone()
        was_standby, sync_names = (bool(row[0]), str(row[1])) if row else (False, "")
        if was_standby:
            wait_s = max(1, int(deadline - time.monotonic()))
            done = conn.execute("SELECT pg_promote(true, %s)", (wait_s,)).fetchone()
            if not done or not done[0]:
                raise ProviderError(f"{c.name}: pg_promote did not finish in {wait_s} s")
    # The synchronous_standby_names copied from the old primary name this region and would
    # block every commit here (statement_timeout does not bound a commit's wait for its
    # sync standby). A primary already promoted keeps a sync standby that streams to it (a
    # plan re-asserting promote after the standby rejoined); one that does not stream (the
    # old primary, named by a config this region inherited) would block every commit.
    if was_standby or (sync_names and not _streams_to(c, sync_names.strip('"'))):
        c.set_sync_standby(None)
    c.write_epoch(epoch)


def _streams_to(c: PostgresCluster, standby: str) -> bool:
    with c.connect("postgres") as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_replication WHERE "
                           "application_name = %s AND state = 'streaming'",
                           (standby,)).fetchone()
    return bool(row and row[0])


def write_epoch(c: PostgresCluster, epoch: int) -> None:
    """Raise the fencing token to `epoch`. Committed locally: a commit waiting for a sync
    standby has no timeout, and the token belongs to this primary (it replicates anyway)."""
    with c.connect(autocommit=False) as conn, conn.transaction():
        conn.execute("SET LOCAL synchronous_commit = local")
        conn.execute(
            "INSERT INTO regionguard_epoch (id, epoch, region, updated_at)"
            " VALUES (1, %(e)s, %(r)s, now())"
            " ON CONFLICT (id) DO UPDATE SET epoch = EXCLUDED.epoch,"
            "   region = EXCLUDED.region, updated_at = now()"
            " WHERE regionguard_epoch.epoch < EXCLUDED.epoch",
            {"e": epoch, "r": c.name},
        )


def self_fence(c: PostgresCluster) -> list[str]:
    """This site's own database stops taking writes, now: its agent lost the write lease.

    First read-only for every new transaction (`default_transaction_read_only`, reloaded) with
    every client session terminated, which takes effect in milliseconds even while a stop
    would wait; then stopped (`fence`: immediate, then SIGKILL of this cluster's own
    processes). The read-only setting stays in `postgresql.auto.conf`, so a database restarted
    by hand before a plan rebuilds it comes back refusing writes (a rebuild as a standby
    takes the new primary's configuration). Each part is attempted
    whatever the other did; returns what was done."""
    actions: list[str] = []
    try:
        with c.connect("postgres", connect_timeout=1, statement_timeout_ms=1000) as conn:
            conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            conn.execute("SELECT pg_reload_conf()")
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchone()
            actions.append(f"read-only, {row[0] if row else 0} sessions terminated")
    except psycopg.Error as exc:
        actions.append(f"read-only not set ({type(exc).__name__}); stopping")
    actions += c.fence()
    return actions


def lift_self_fence(c: PostgresCluster) -> bool:
    """Take writes again after a self-fence, once this site's agent holds the write lease anew
    at the same epoch: its lease keeper found no plan running, no revoke and no writer key
    (an etcd outage that moved nothing), or the agent restarted. Returns True when the
    setting was there to lift."""
    with c.connect("postgres", connect_timeout=2, statement_timeout_ms=2000) as conn:
        row = conn.execute("SELECT current_setting('default_transaction_read_only')").fetchone()
        if not row or row[0] != "on":
            return False
        conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
        conn.execute("SELECT pg_reload_conf()")
    return True


def stop_writes(c: PostgresCluster, timeout_s: float = 30.0) -> int:
    """Planned demotion: a clean (fast) shutdown; returns the final checkpoint's LSN.

    A clean shutdown sends every WAL record to connected standbys before exiting, so a
    standby that replays up to this LSN has lost nothing. A stop that was not clean (it
    escalated to SIGKILL, or something stopped it by an immediate stop meanwhile) gives no
    position: ProviderError."""
    if c.is_running():
        c.stop("fast", timeout_s)
    return queries.clean_shutdown_lsn(c)


def rebuild_as_standby(c: PostgresCluster, primary: PostgresCluster,
                       timeout_s: float = 120.0) -> str:
    """Make this (old primary) a standby of `primary`: pg_rewind, else a fresh basebackup.

    Idempotent: a running standby already streaming from `primary` is left alone."""
    if c.is_running():
        st = c.status()
        if st.up and st.in_recovery and _follows(c, primary):
            return "already a standby"
        c.stop("fast", 10)
    method = "pg_rewind"
    try:
        if not c.exists():
            raise ProviderError("no data directory")
        # A just-promoted primary's pg_control still names the old timeline until its
        # end-of-recovery checkpoint completes; pg_rewind would then see "same timeline,
        # no rewind required" and leave this cluster diverged. Patroni checkpoints too.
        with primary.connect("postgres", statement_timeout_ms=int(timeout_s * 1000)) as conn:
            conn.execute("CHECKPOINT")
        method += _divergence(c, primary, timeout_s)
        if c.is_running():  # never rewind a live target (the report's start is stopped)
            c.stop("fast", 10)
        pgbin.run(
            "pg_rewind", "-D", str(c.data_dir),
            f"--source-server={primary.dsn('postgres')}",
            log=c.log_file, timeout_s=timeout_s,
        )
        c.write_config()
        c.follow(primary)
    except ProviderError:
        method = "pg_basebackup"
        bootstrap.basebackup(c, primary, timeout_s)
    c.start()
    return method


def _divergence(c: PostgresCluster, primary: PostgresCluster, timeout_s: float) -> str:
    """What the rewind is about to discard (divergence.py), as a few words for the journal;
    never a reason not to rejoin: a failure to read it is said, and the rewind goes on."""
    try:
        found = divergence.before_rewind(c, primary, timeout_s)
    except Exception as exc:  # any failure of the report (a tool missing, a parse): said, and
        # the rejoin goes on; a report must never keep a region from rejoining
        return f" (what it discards could not be read: {str(exc).splitlines()[0][:200]})"
    return "" if found is None else f" ({found.summary()}; {c.root / 'divergence.jsonl'})"


def _follows(c: PostgresCluster, primary: PostgresCluster) -> bool:
    auto = c.data_dir / AUTO_CONF
    # host and port: the lab's sites all use port 5432, each on its own address
    return auto.exists() and (f"host={primary.address} port={primary.port} "
                              in auto.read_text())
