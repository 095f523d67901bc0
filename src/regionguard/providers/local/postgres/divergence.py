"""What a rewind is about to discard, read before pg_rewind turns an old primary into a standby
of the new one: the transactions it committed past the point where the new primary's timeline
branched off its own (pg_waldump over its WAL, from the branch point), and the rows those
transactions left, read on a private start of the old database (no TCP listener: only its own
0700 socket directory; read-only sessions; no synchronous standby to wait for). pg_rewind would
replay the same WAL itself (it runs crash recovery first, in single-user mode): this start does
that recovery, and its clean stop spares pg_rewind the step.

Under async replication these rows are what the failover lost (bounded by the RPO target);
under sync, an acknowledged write among them is a broken promise. Either way the operator is
told (`divergence.jsonl` beside the database, one entry per rewind, and the journal), and the
history checker reads them (drill/history.py).

Scope: rows inserted or updated by those transactions (their `xmin`), at most ROW_CAP per
table; a delete leaves no row to show and is counted only as a transaction.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

import psycopg
from psycopg import sql

from regionguard.errors import ProviderError
from regionguard.providers.local import pgbin
from regionguard.providers.local.postgres.queries import timeline_history

if TYPE_CHECKING:
    from regionguard.providers.local.postgres import PostgresCluster

ROW_CAP = 1000
SEGMENT = re.compile(r"^[0-9A-F]{24}(\.partial)?$")
# how pg_waldump says it reached the end of the WAL (a normal end of its dump)
END_OF_WAL = re.compile(r"error in WAL record at|could not find a valid record after")
COMMIT = re.compile(r"\btx:\s+(\d+),\s+lsn:\s+([0-9A-F]+/[0-9A-F]+).*desc: COMMIT\b")
USER_TABLES = ("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON "
               "n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN "
               "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
               "ORDER BY 1, 2")


@dataclass
class Divergence:
    """One rewind's discards: `transactions` (their xids) committed on `timeline` past
    `fork_lsn`, and the rows they left, by table."""

    region: str
    timeline: int
    fork_lsn: str
    transactions: list[int] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rows_error: str | None = None  # why the rows could not be read (the transactions stand)
    at: float = field(default_factory=time.time)  # wall time, for the operator only

    def summary(self) -> str:
        tables = ", ".join(f"{len(v)} in {k}" for k, v in self.rows.items()) or (
            f"not read: {self.rows_error}" if self.rows_error else "none")
        return (f"discarded {len(self.transactions)} transactions committed past "
                f"{self.fork_lsn} on timeline {self.timeline} (rows: {tables})")


def own_timeline(c: PostgresCluster) -> int | None:
    """The timeline this old primary last wrote on: its newest WAL segment's (the last
    checkpoint's, in pg_control, lags behind a promotion until the next checkpoint)."""
    segments = [p.name for p in (c.data_dir / "pg_wal").iterdir() if SEGMENT.match(p.name)]
    return max((int(name[:8], 16) for name in segments), default=None)


def committed_past(c: PostgresCluster, timeline: int, fork_lsn: str) -> list[int]:
    """The xids this data directory's WAL commits on `timeline` from `fork_lsn` on. pg_waldump
    ends in an error at the end of the WAL, which is expected; any other error (a segment
    missing, another timeline) is not an empty answer but a ProviderError."""
    done = pgbin.run("pg_waldump", "--path", str(c.data_dir / "pg_wal"), "--timeline",
                     str(timeline), "--start", fork_lsn, "--rmgr", "Transaction",
                     timeout_s=60, check=False)
    if done.returncode != 0 and not END_OF_WAL.search(done.stderr or ""):
        said = (done.stderr or "").strip().splitlines()
        raise ProviderError(f"pg_waldump from {fork_lsn} on timeline {timeline}: "
                            f"{said[-1] if said else f'exit {done.returncode}'}")
    return [int(m.group(1)) for m in COMMIT.finditer(done.stdout)]


def before_rewind(c: PostgresCluster, primary: PostgresCluster,
                  timeout_s: float) -> Divergence | None:
    """What a rewind of `c` (stopped) onto `primary` will discard; None when `c`'s timeline
    is not one `primary`'s history left (nothing diverged that this can read)."""
    if (c.data_dir / "standby.signal").exists():
        return None  # an earlier rebuild got this far: the old timeline's WAL is theirs now
    timeline = own_timeline(c)
    with primary.connect("postgres", statement_timeout_ms=int(timeout_s * 1000)) as conn:
        _, switched_at = timeline_history(conn)
    fork = switched_at.get(timeline or 0)
    if timeline is None or fork is None:
        return None
    found = Divergence(c.name, timeline, fork, committed_past(c, timeline, fork))
    if found.transactions:
        try:
            found.rows = _rows_of(c, found.transactions, timeout_s)
        except (ProviderError, OSError) as exc:  # the transactions are reported all the same
            found.rows_error = str(exc).splitlines()[0][:300]
    with (c.root / "divergence.jsonl").open("a") as out:
        out.write(json.dumps(asdict(found), default=str) + "\n")
    return found


def _rows_of(c: PostgresCluster, xids: list[int],
             timeout_s: float) -> dict[str, list[dict[str, Any]]]:
    """The rows `xids` left, read on a private, read-only start of `c`, stopped cleanly after."""
    pgbin.make_pg_dir(c.socket_dir, 0o700)
    stale = c.data_dir / "postmaster.pid"
    if stale.exists() and not c.processes():
        stale.unlink()  # a SIGKILLed postmaster leaves its pid file behind
    options = ("-c listen_addresses='' -c default_transaction_read_only=on "
               "-c synchronous_standby_names='' -c archive_mode=off")
    try:  # stopped whatever happens, a start that failed or timed out included
        pgbin.run("pg_ctl", "start", "-w", "-t", str(int(timeout_s)), "-D", str(c.data_dir),
                  "-l", str(c.log_file), "-o", options, timeout_s=timeout_s + 5, log=None)
        found: dict[str, list[dict[str, Any]]] = {}
        with psycopg.connect(host=str(c.socket_dir), port=c.port, dbname=c.dbname,
                             user="postgres", autocommit=True, connect_timeout=5) as conn:
            for schema, table in conn.execute(USER_TABLES).fetchall():
                rows = conn.execute(sql.SQL(
                    "SELECT to_jsonb(t) FROM {}.{} t WHERE t.xmin::text::bigint = ANY(%s) "
                    "LIMIT {}").format(sql.Identifier(str(schema)), sql.Identifier(str(table)),
                                       sql.Literal(ROW_CAP)), (xids,)).fetchall()
                if rows:
                    found[f"{schema}.{table}"] = [cast(dict[str, Any], r[0]) for r in rows]
        return found
    except psycopg.Error as exc:
        raise ProviderError(f"{c.name}: cannot read the rows past the fork: {exc}") from exc
    finally:
        c.stop("fast", timeout_s)

