"""Creating a cluster and its configuration: a primary from the template, a standby by
pg_basebackup, the settings regionguard owns (regenerated on every start) and where a standby
follows. Idempotent: an existing cluster is configured, never overwritten."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from regionguard.errors import ProviderError
from regionguard.providers.local import pgbin
from regionguard.providers.local.postgres import tls
from regionguard.providers.local.postgres.files import copy_template, ensure_passfile, write_as_pg

if TYPE_CHECKING:
    from regionguard.providers.local.postgres import PostgresCluster

CONF_FILE = "regionguard.conf"
AUTO_CONF = "postgresql.auto.conf"


def exists(c: PostgresCluster) -> bool:
    return (c.data_dir / "PG_VERSION").exists()


def create_primary(c: PostgresCluster) -> None:
    """initdb (copied from a per-machine template), configure, start, create the database."""
    if not c.exists():
        pgbin.make_pg_dir(c.root)
        pgbin.make_pg_dir(c.socket_dir, 0o700)
        copy_template(c.data_dir)
    c.write_config()
    c.start()
    _set_password(c)
    with c.connect("postgres", autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (c.dbname,)
        ).fetchone()
        if not found:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(c.dbname)))


def _set_password(c: PostgresCluster) -> None:
    """The sandbox's password for `postgres` (created once, kept in the passfile), set
    over the unix socket, the one way in that needs none."""
    password = ensure_passfile(c.passfile)
    with psycopg.connect(host=str(c.socket_dir), port=c.port, user="postgres",
                         dbname="postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(
            sql.Literal(password)))


def create_standby(c: PostgresCluster, primary: PostgresCluster,
                   timeout_s: float = 120.0) -> None:
    """A streaming hot standby of `primary` by pg_basebackup; idempotent."""
    if c.exists() and (c.data_dir / "standby.signal").exists():
        c.write_config()
        c.follow(primary)
        c.start()
        return
    if c.exists():
        raise ProviderError(
            f"{c.name}: {c.data_dir} holds a database that is not a standby; "
            "refusing to overwrite it (rebuild it with `regionguard failback`)"
        )
    basebackup(c, primary, timeout_s)
    c.start()


def basebackup(c: PostgresCluster, primary: PostgresCluster, timeout_s: float) -> None:
    pgbin.make_pg_dir(c.root)
    pgbin.make_pg_dir(c.socket_dir, 0o700)
    if c.data_dir.exists():
        shutil.rmtree(c.data_dir)
    pgbin.run(
        "pg_basebackup",
        "-D", str(c.data_dir),
        "-d", primary.replication_conninfo(c.name),
        "-c", "fast", "-R", "-X", "stream",
        timeout_s=timeout_s,
    )
    c.write_config()
    c.follow(primary)


def write_config(c: PostgresCluster) -> None:
    """(Re)write this cluster's own settings; pg_basebackup copies the primary's."""
    conf = c.data_dir / "postgresql.conf"
    text = conf.read_text()
    include = f"include_if_exists = '{CONF_FILE}'"
    if include not in text:
        conf.write_text(text + f"\n{include}\n")
    settings = {
        "listen_addresses": f"'{c.address}'",
        "port": str(c.port),
        "unix_socket_directories": f"'{c.socket_dir}'",
        "wal_level": "replica",
        "wal_log_hints": "on",  # pg_rewind needs it
        "hot_standby": "on",
        "hot_standby_feedback": "on",
        "max_wal_senders": "10",
        "max_replication_slots": "10",
        "wal_keep_size": "'512MB'",
        "max_connections": "200",
        "shared_buffers": "'32MB'",
        "fsync": "on" if c.fsync else "off",
        "wal_sender_timeout": "'5s'",
        "wal_receiver_timeout": "'5s'",
        "wal_receiver_status_interval": "'1s'",
        "wal_retrieve_retry_interval": "'200ms'",
        "log_recovery_conflict_waits": "on",
        "log_min_messages": "warning",
        "log_line_prefix": "'%m [%p] '",
        **(c.tls.server_settings() if c.tls is not None else {}),
    }
    body = "# written by regionguard; regenerated on every start\n" + "".join(
        f"{k} = {v}\n" for k, v in settings.items()
    )
    write_as_pg(c.data_dir / CONF_FILE, body)
    write_as_pg(c.data_dir / "pg_hba.conf", tls.hba(c.tls, c.peers))


def follow(c: PostgresCluster, primary: PostgresCluster) -> None:
    """Point this (stopped) cluster at `primary` as a streaming standby."""
    _set_auto_conf(c, "primary_conninfo", primary.replication_conninfo(c.name))
    write_as_pg(c.data_dir / "standby.signal", "")


def _set_auto_conf(c: PostgresCluster, key: str, value: str | None) -> None:
    path = c.data_dir / AUTO_CONF
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [ln for ln in lines if not ln.strip().startswith(f"{key} ")]
    kept = [ln for ln in kept if not ln.strip().startswith(f"{key}=")]
    if value is not None:
        escaped = value.replace("'", "''")
        kept.append(f"{key} = '{escaped}'")
    write_as_pg(path, "\n".join(kept) + "\n")


def remove(c: PostgresCluster) -> None:
    """Stop and delete this cluster's files (the tests' throwaway clusters); the last one of
    a sandbox below /var/tmp takes the sandbox's password file and folder with it."""
    c.stop("immediate", 5)
    if c.root.exists():
        shutil.rmtree(c.root)
    folder = c.passfile.parent
    if pgbin.VAR_ROOT in folder.parents and folder.is_dir() \
            and {p.name for p in folder.iterdir()} <= {c.passfile.name}:
        c.passfile.unlink(missing_ok=True)
        folder.rmdir()
