"""What the sync-degrade rule stands on, against a real primary and standby: the primary's
confirmation that its standby is synchronous and has everything (`confirm_sync`), and the
replication prober, the primary's own view of whether its standby keeps up."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from regionguard.errors import ProviderError
from regionguard.providers.local.probes import ReplicationProber

from ..conftest import PgPair

pytestmark = pytest.mark.local


@contextlib.contextmanager
def frozen(pg_pair: PgPair) -> Iterator[None]:
    """SIGSTOP every process of the standby (a host that stopped answering), then SIGCONT."""
    procs = pg_pair.standby.processes()
    for p in procs:
        p.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(signal.SIGCONT)


def write_without_waiting(pg_pair: PgPair) -> None:
    """A commit the primary acknowledges without its standby: WAL outstanding for it."""
    with pg_pair.primary.connect() as conn:
        conn.execute("SET synchronous_commit = local")
        conn.execute("CREATE TABLE IF NOT EXISTS replication_probe (n int)")
        conn.execute("INSERT INTO replication_probe VALUES (1)")


def probe_until(prober: ReplicationProber, ok: bool, timeout_s: float = 10.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        result = prober.probe("west", 0.2)
        if result.ok is ok:
            return result.detail
        assert time.monotonic() < deadline, f"probe never became ok={ok}: {result.detail}"
        time.sleep(0.05)


def test_the_primary_confirms_a_sync_standby_that_has_everything_and_no_other(
        pg_pair: PgPair) -> None:
    lsn = pg_pair.primary.confirm_sync("west", 5.0)
    assert lsn > 0
    with frozen(pg_pair):  # still listed as `sync`, but it flushes nothing more
        write_without_waiting(pg_pair)
        started = time.monotonic()
        with pytest.raises(ProviderError, match="not confirmed as synchronous standby"):
            pg_pair.primary.confirm_sync("west", 0.5)
        assert time.monotonic() - started < 3
    pg_pair.primary.set_sync_standby(None)
    try:
        with pytest.raises(ProviderError, match=r"state async|not streaming"):
            pg_pair.primary.confirm_sync("west", 0.5)  # not the sync standby now
    finally:
        pg_pair.primary.set_sync_standby("west")
    assert pg_pair.primary.confirm_sync("west", 5.0) >= lsn


def test_the_replication_prober_fails_a_standby_that_stops_replaying_what_it_was_sent(
        pg_pair: PgPair) -> None:
    prober = ReplicationProber(lambda: ("east", pg_pair.primary.dsn()))
    assert prober.probe("east", 0.2).ok  # the primary is not judged by it
    probe_until(prober, ok=True)
    for _ in range(5):  # an idle, live pair stays healthy probe after probe
        assert prober.probe("west", 0.2).ok
    with frozen(pg_pair):
        writer = threading.Thread(target=write_without_waiting, args=(pg_pair,))
        writer.start()
        writer.join(timeout=10)
        detail = probe_until(prober, ok=False)
        assert "not replayed, no progress for" in detail
    probe_until(prober, ok=True)  # thawed: it replays again
