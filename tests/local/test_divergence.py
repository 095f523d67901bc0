"""What a rewind discards, read before it: an old primary that committed past the point where
its standby was promoted (writes acknowledged without the standby, as async replication does)
is rebuilt as a standby of the new primary, and the transactions and rows pg_rewind throws
away are reported first (providers/local/postgres/divergence.py), never silently lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from regionguard.providers.local.postgres import PostgresCluster

from ..conftest import PgPair, a_pg_pair

pytestmark = pytest.mark.local


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[PgPair]:
    """A pair of its own: this test promotes the standby."""
    with a_pg_pair(tmp_path) as pair:
        yield pair


def ids(cluster: PostgresCluster) -> set[str]:
    with cluster.connect() as conn:
        return {str(r[0]) for r in conn.execute("SELECT id FROM probe").fetchall()}


def test_a_rewind_reports_the_transactions_and_rows_it_discards(pair: PgPair) -> None:
    east, west = pair.primary, pair.standby
    with east.connect() as conn:
        conn.execute("CREATE TABLE probe (id text PRIMARY KEY)")
        conn.execute("INSERT INTO probe VALUES ('kept')")  # sync: west has it
    west.stop("fast")  # the standby goes away; east writes on without it
    with east.connect() as conn:
        conn.execute("SET synchronous_commit = local")
        for name in ("past-1", "past-2"):
            conn.execute("INSERT INTO probe VALUES (%s)", (name,))
        conn.execute("UPDATE probe SET id = 'kept-changed' WHERE id = 'kept'")
    east.stop("immediate")  # east's host lost, mid-flight
    west.start()
    west.promote(2)

    method = east.rebuild_as_standby(west, timeout_s=60)

    assert method.startswith("pg_rewind (discarded 3 transactions committed past"), method
    [entry] = [json.loads(line) for line in (east.root / "divergence.jsonl").read_text()
               .splitlines()]
    assert entry["region"] == "east" and entry["timeline"] == 1 and len(entry["transactions"]) == 3
    assert {r["id"] for r in entry["rows"]["public.probe"]} == {"past-1", "past-2",
                                                               "kept-changed"}
    assert ids(west) == {"kept"}  # what the rewind threw away never reached the new primary
    assert east.status().in_recovery and ids(east) == {"kept"}  # and east follows it now
