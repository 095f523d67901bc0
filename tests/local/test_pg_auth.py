"""The sandbox's PostgreSQL answers on loopback TCP, where any local user can reach it: every
TCP connection must prove the sandbox's password, which only root and the PostgreSQL user read.
"""

from __future__ import annotations

import stat

import psycopg
import pytest

from tests.conftest import PgPair

pytestmark = pytest.mark.local


def test_tcp_without_the_password_is_refused(pg_pair: PgPair) -> None:
    cluster = pg_pair.primary
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host=cluster.address, port=cluster.port, user="postgres",
                        dbname="postgres", passfile="/dev/null", connect_timeout=3).close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=cluster.address, port=cluster.port, user="postgres",
                        dbname="postgres", password="guess", connect_timeout=3).close()


def test_the_password_file_and_the_socket_dir_are_private(pg_pair: PgPair) -> None:
    cluster = pg_pair.primary
    assert stat.S_IMODE(cluster.passfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(cluster.socket_dir.stat().st_mode) == 0o700
    with psycopg.connect(cluster.dsn("postgres"), connect_timeout=3) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_standby_streams_with_the_password(pg_pair: PgPair) -> None:
    with psycopg.connect(pg_pair.primary.dsn("postgres"), connect_timeout=3) as conn:
        rows = conn.execute(
            "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'"
        ).fetchall()
    assert ("west",) in rows
