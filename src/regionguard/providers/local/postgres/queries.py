"""What a running cluster says about itself: role, LSN, timeline, epoch, lag against its
primary, whether a standby is confirmed synchronous, a standby's replay progress. Read-only
(but for one tiny WAL record that moves replication on), bounded by statement timeouts."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import psycopg

from regionguard.errors import ProviderError
from regionguard.orchestrator.lsn import format_lsn, parse_lsn
from regionguard.orchestrator.ports import DbStatus
from regionguard.providers.local import pgbin

if TYPE_CHECKING:
    from regionguard.providers.local.postgres import PostgresCluster


def status(c: PostgresCluster, primary: PostgresCluster | None = None) -> DbStatus:
    """Up? In recovery? LSN, timeline, epoch; lag against `primary` when given.

    Never raises for an unreachable database: returns up=False with the reason."""
    pids = c.pids()
    try:
        with c.connect(statement_timeout_ms=2000) as conn:
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
        return DbStatus(c.name, up=False, pids=pids, port=c.port,
                        error=str(exc).strip().splitlines()[0] if str(exc) else "error")
    epoch = epoch_row[0] if epoch_row else None
    lsn = parse_lsn(lsn_text)  # type: ignore[arg-type]
    lag_bytes = lag_s = streaming = None
    if in_recovery and primary is not None:
        lag_bytes, lag_s, streaming = primary.replica_lag(c.name, lsn)
    elif not in_recovery:
        lag_bytes, lag_s = 0, 0.0
    return DbStatus(
        c.name, up=True, in_recovery=bool(in_recovery), lsn=lsn,
        timeline=int(timeline) if timeline is not None else None,  # type: ignore[call-overload]
        epoch=int(epoch) if epoch is not None else None,  # type: ignore[call-overload]
        lag_bytes=lag_bytes, lag_s=lag_s, streaming=streaming, pids=pids, port=c.port,
    )


def replica_lag(
    c: PostgresCluster, standby: str, replay_lsn: int | None
) -> tuple[int | None, float | None, bool | None]:
    """Bytes and seconds `standby` trails this primary, and whether this primary is
    streaming to it now, from pg_stat_replication. (None, None, None) if unreachable."""
    try:
        with c.connect(statement_timeout_ms=1000) as conn:
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


def confirm_sync(c: PostgresCluster, standby: str, timeout_s: float) -> int:
    """Wait until this primary reports `standby` as its synchronous standby and `standby`
    has flushed what this primary had flushed once it did; return that LSN.

    As Patroni's SyncHandler: the barrier is taken after pg_stat_replication shows the
    standby as `sync` (the reload took effect), and one small record (committed without
    waiting) moves replication on, so an idle primary confirms too."""
    try:
        return _confirm_sync(c, standby, timeout_s)
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ProviderError(f"{c.name}: confirming {standby} as sync standby: "
                            f"{first}") from exc


def _confirm_sync(c: PostgresCluster, standby: str, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    barrier: int | None = None
    flushed: int | None = None
    with c.connect("postgres", statement_timeout_ms=max(100, int(timeout_s * 1000))
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
                    f"{c.name}: {standby} not confirmed as synchronous standby within "
                    f"{timeout_s:g} s (state {state}, flushed {format_lsn(flushed)} of "
                    f"{format_lsn(barrier)})")
            time.sleep(0.02)


def timeline_history(conn: psycopg.Connection[tuple[object, ...]]
                     ) -> tuple[int, dict[int, str]]:
    """A primary's timeline now (from its current WAL segment's name: exact right after a
    promotion) and where each earlier timeline of its history ended (its history file: the
    LSN where the next timeline branched off). Superuser (pg_read_file)."""
    row = conn.execute("SELECT pg_walfile_name(pg_current_wal_insert_lsn())").fetchone()
    assert row is not None
    current = int(str(row[0])[:8], 16)
    if current == 1:
        return 1, {}
    text = conn.execute("SELECT pg_read_file(%s)", (f"pg_wal/{current:08X}.history",)
                        ).fetchone()
    return current, parse_timeline_history(str(text[0]) if text else "")


def parse_timeline_history(text: str) -> dict[int, str]:
    """A timeline history file (`parent TAB switch-lsn TAB reason` per line): timeline ->
    the LSN where it ended."""
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            found[int(parts[0])] = parts[1]
    return found


def checkpoint_lsn(c: PostgresCluster) -> int:
    out = pgbin.run("pg_controldata", str(c.data_dir), timeout_s=10).stdout
    for line in out.splitlines():
        if line.startswith("Latest checkpoint location:"):
            lsn = parse_lsn(line.split(":", 1)[1].strip())
            if lsn is not None:
                return lsn
    raise ProviderError(f"{c.name}: pg_controldata shows no checkpoint location")


def clean_shutdown_lsn(c: PostgresCluster) -> int:
    """The shutdown checkpoint's LSN of a cluster that was shut down cleanly, and only then:
    after a crash or an immediate stop, "Latest checkpoint location" is an older checkpoint,
    and WAL written after it may never have reached the standby."""
    out = pgbin.run("pg_controldata", str(c.data_dir), timeout_s=10).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    state = fields.get("Database cluster state", "").strip()
    if state != "shut down":
        raise ProviderError(f"{c.name}: not shut down cleanly (cluster state {state!r}); its "
                            "last WAL may not have reached the standby, so no end position "
                            "is given")
    return checkpoint_lsn(c)


def wait_replayed(c: PostgresCluster, lsn: int, timeout_s: float) -> int:
    """Poll until this standby has replayed `lsn` (a clean shutdown's checkpoint record)."""
    deadline = time.monotonic() + timeout_s
    replayed: int | None = None
    while time.monotonic() < deadline:
        st = c.status()
        replayed = st.lsn
        if st.up and replayed is not None and replayed >= lsn:
            return replayed
        time.sleep(0.05)
    raise ProviderError(
        f"{c.name}: replayed {replayed} < {lsn} after {timeout_s:g} s; "
        "the standby is not caught up"
    )
