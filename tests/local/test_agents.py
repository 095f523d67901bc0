"""Self-managed sites on loopback: an agent per site, etcd as the arbiter, fencing by lease.

The harness starts one `regionguard agent` per site (one set for the module). A person's
switchover and failback move the writer by handover; then one site is hurt the way a host is
lost: every process of it at once. The survivors' agents judge the primary down by a quorum of
sites outside it, and the failover target's agent promotes only once etcd says the old
writer's lease has expired. Nothing here (and nothing in any agent) signals another site.
The loopback shape runs for any user; the faults that need separate hosts (partitions, a
frozen agent and its watchdog) are proven in the lab (tests/lab)."""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections.abc import Iterator

import psycopg
import pytest
from typer.testing import CliRunner, Result

from regionguard.cli import app

from .agent_sites import TTL_S, EdgeClient, Sites, three_sites, wait_started
from .sandbox_helpers import wait_for

pytestmark = [pytest.mark.local, pytest.mark.timeout(240)]


def _journal(sites: Sites, name: str) -> list[dict[str, object]]:
    path = sites.site(name).journal_path
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _rows(sites: Sites, region: str) -> set[str]:
    db = sites.site(region).database(region)
    with psycopg.connect(db.dsn(), connect_timeout=3) as conn:
        return {str(r[0]) for r in conn.execute(
            "SELECT request_id FROM orders WHERE request_id LIKE 'edge-%'").fetchall()}


def _start(sites: Sites) -> None:
    for name in ("east", "witness", "west"):
        sites.start_agent(name)
    wait_started(sites)


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    """One set of sites for the module, east primary: the switchover test moves the writer
    and brings it home; the kill test then takes east's site away."""
    with three_sites(tmp_path_factory.mktemp("sites")) as running:
        _start(running)
        yield running


def _cli(sites: Sites, *args: str) -> Result:
    return CliRunner().invoke(app, ["-c", str(sites.config), *args])


def _standby_of(sites: Sites, region: str, primary: str) -> bool:
    """`region`'s database is a standby streaming from `primary` (the primary's own view)."""
    db = sites.site(primary).database(primary)
    try:
        with db.connect(statement_timeout_ms=1000) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_replication WHERE "
                               "application_name = %s AND state = 'streaming'",
                               (region,)).fetchone()
            return bool(row and row[0])
    except psycopg.Error:
        return False


def _longest_gap(acked: list[tuple[float, str, str]], since: float) -> float:
    times = sorted(t for t, *_ in acked if t >= since)
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def test_a_switchover_and_a_failback_move_the_writer_by_handover_with_nothing_lost(
        sites: Sites) -> None:
    """`switchover --to west` is run by west's agent; east's agent, seeing a switchover take
    its writer, stops its database cleanly and writes its final LSN to etcd instead of fencing
    by an immediate stop; west replays to it and promotes; east's agent then rebuilds east as
    west's standby. `failback` moves the writer home the same way. Every acknowledged write
    is on the final primary, and writes stop only for the handover, never for a lease TTL."""
    store = sites.store()
    refused = _cli(sites, "switchover", "--to", "east", "--yes")
    assert refused.exit_code == 2 and "already the primary" in refused.output, refused.output
    manual = _cli(sites, "failover", "--yes")
    assert manual.exit_code == 2 and "switchover --to REGION" in manual.output
    with EdgeClient(sites) as client:
        wait_for("writes acknowledged by east",
                 lambda: sum(r == "east" for *_, r in client.acked) >= 20, timeout_s=20)
        asked_at = time.monotonic()
        moved = _cli(sites, "switchover", "--to", "west", "--yes")
        assert moved.exit_code == 0, moved.output
        assert store.load().primary == "west" and store.load().plan is None
        wait_for("writes acknowledged by west",
                 lambda: sum(r == "west" for *_, r in client.acked) >= 10, timeout_s=20)
        switch_gap = _longest_gap(client.acked, asked_at)
        wait_for("east to rejoin as west's standby",
                 lambda: _standby_of(sites, "east", "west"), timeout_s=60)
        back_at = time.monotonic()
        home = _cli(sites, "failback", "--yes")
        assert home.exit_code == 0, home.output
        assert store.load().primary == "east"
        wait_for("writes acknowledged by east again", lambda: sum(
            r == "east" and t > back_at for t, _, r in client.acked) >= 10, timeout_s=20)
        back_gap = _longest_gap(client.acked, back_at)
        wait_for("west to rejoin as east's standby",
                 lambda: _standby_of(sites, "west", "east"), timeout_s=60)
    handovers = [e for e in _journal(sites, "west") if e.get("event") == "step"
                 and e.get("step") == "stop_writes" and e.get("outcome") == "done"]
    assert handovers and "stopped cleanly at LSN" in str(handovers[0].get("detail"))
    waited = [e for e in _journal(sites, "west") + _journal(sites, "east")
              if e.get("event") == "lease_wait"]
    assert not waited, waited  # a clean stop leaves no lease to wait out
    acked = {rid for _, rid, _ in client.acked}
    missing = acked - _rows(sites, "east")
    assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:5]}"
    assert switch_gap < TTL_S and back_gap < TTL_S, (switch_gap, back_gap)
    print(f"switchover: writes paused {switch_gap:.2f} s; failback: {back_gap:.2f} s; "
          f"{len(acked)} writes acknowledged, 0 lost")


def test_killing_the_primary_site_fails_over_by_the_survivors_after_etcd_expired_its_lease(
        sites: Sites) -> None:
    store = sites.store()
    assert store.load().primary == "east"
    wait_started(sites)  # west streams in sync again (after the failback of the test before)
    wait_for("no sync degrade on record", lambda: store.load().sync_degraded_lsn is None,
             timeout_s=30)
    with EdgeClient(sites) as client:
        wait_for("writes acknowledged by east",
                 lambda: sum(r == "east" for *_, r in client.acked) >= 20, timeout_s=20)
        held = store.writer()
        assert held is not None and held.json()["region"] == "east"
        sites.signal_site("east", signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for("west to take writes", lambda: any(
            r == "west" for *_, r in client.acked), timeout_s=60)
        rto = min(t for t, _, r in client.acked if r == "west") - killed_at
        wait_for("a few more writes on west",
                 lambda: sum(r == "west" for *_, r in client.acked) >= 10, timeout_s=20)
    wait_for("the plan to end", lambda: store.load().plan is None, timeout_s=30)
    assert store.load().primary == "west"
    journal = _journal(sites, "west")
    journal = [e for e in journal if str(e.get("plan", "")).startswith("failover-")]
    finished = [e for e in journal if e.get("event") == "plan" and e.get("outcome") == "done"]
    assert finished, "west's agent ran no failover to its end"
    promoted = next(e for e in journal if e.get("event") == "step"
                    and e.get("step") == "promote" and e.get("outcome") == "done")
    assert "old write lease expired" in str(promoted.get("detail")), promoted
    verdict = next(e for e in journal if e.get("event") == "verdict")
    for vantage in ("west", "witness"):  # a quorum of sites outside east, both probing
        assert f"{vantage}: " in str(verdict["vantages"]), verdict
    assert "east:" not in str(verdict["vantages"]), verdict
    assert all(e.get("event") != "plan" for e in _journal(sites, "witness"))
    # sync replication: every write east acknowledged is on west
    acked = {rid for _, rid, _ in client.acked}
    missing = acked - _rows(sites, "west")
    assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:5]}"
    assert rto < TTL_S + 10, rto
    print(f"kill-site RTO {rto:.2f} s, {len(acked)} writes acknowledged, 0 lost")
