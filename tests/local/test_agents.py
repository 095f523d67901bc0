"""Self-managed sites on loopback: an agent per site, etcd as the arbiter, fencing by lease.

The harness starts one `regionguard agent` per site and then hurts one site the way a host is
lost: every process of it at once. The survivors' agents judge the primary down by a quorum of
sites outside it, and the failover target's agent promotes only once etcd says the old
writer's lease has expired. Nothing here (and nothing in any agent) signals another site.
The loopback shape runs for any user; the faults that need separate hosts (partitions, a
frozen agent and its watchdog) are proven in the lab (tests/lab)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import psycopg
import pytest

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


def test_killing_the_primary_site_fails_over_by_the_survivors_after_etcd_expired_its_lease(
        tmp_path: Path) -> None:
    with three_sites(tmp_path) as sites:
        _start(sites)
        store = sites.store()
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
        finished = [e for e in journal if e.get("event") == "plan" and e.get("outcome") == "done"]
        assert finished, "west's agent ran no plan to its end"
        promoted = next(e for e in journal if e.get("event") == "step"
                        and e.get("step") == "promote" and e.get("outcome") == "done")
        assert "old write lease expired" in str(promoted.get("detail")), promoted
        verdict = next(e for e in journal if e.get("event") == "verdict")
        for vantage in ("west", "witness"):  # a quorum of sites outside east, both probing
            assert f"{vantage}: " in str(verdict["vantages"]), verdict
        assert "east:" not in str(verdict["vantages"]), verdict
        assert not _journal(sites, "witness") or all(
            e.get("event") != "plan" for e in _journal(sites, "witness"))
        # sync replication: every write east acknowledged is on west
        acked = {rid for _, rid, _ in client.acked}
        missing = acked - _rows(sites, "west")
        assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:5]}"
        assert rto < TTL_S + 10, rto
        print(f"kill-site RTO {rto:.2f} s, {len(acked)} writes acknowledged, 0 lost")
