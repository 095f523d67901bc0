"""The lab: real hosts on one machine (a network and a PID namespace per site), a real
etcd member and a `regionguard agent` per site, real partitions (nftables in the namespaces),
a client load through the edge. Every fault is the lab's; every fence is the hurt site's own.
Every lab of these tests is taken down at the end, and `lab down` is checked to have left
nothing (lab_helpers.running_lab)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from regionguard.lab.observe import EdgeLoad, WritableWatch, WriterWatch

from ..local.sandbox_helpers import wait_for
from .lab_helpers import journal_events, live_primary, rows, running_lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]
TTL_S = 4


def _serving(load: EdgeLoad, region: str, count: int = 20, timeout_s: float = 30) -> None:
    before = len(load.by(region))
    wait_for(f"{count} writes acknowledged by {region}",
             lambda: len(load.by(region)) >= before + count, timeout_s=timeout_s, every_s=0.05)


def test_killing_the_primary_site_fails_over_with_one_writer_and_no_acknowledged_loss(
        tmp_path: Path) -> None:
    with running_lab(tmp_path) as lab, EdgeLoad(lab) as load:
        _serving(load, "east")
        lab.kill("east")
        killed_at = time.monotonic()
        _serving(load, "west", timeout_s=60)
        rto = min(load.by("west")) - killed_at
        assert max(load.by("east")) < min(load.by("west")), "two writers"
        wait_for("the plan to end", lambda: live_primary(lab) == "west", timeout_s=30)
        load.stop.set()
        load.thread.join(5)
        missing = {rid for _, rid, _ in load.acked} - rows(lab, "west")
        assert not missing, f"{len(missing)} acknowledged writes lost (sync)"
        assert rto < 10, rto
        print(f"lab kill-site RTO {rto:.2f} s, {len(load.acked)} writes, 0 lost")


def test_a_primary_partitioned_from_both_peers_fences_itself_and_the_majority_waits_for_etcd(
        tmp_path: Path) -> None:
    """Async replication, where only the lease stands between the old primary and a second
    writer. Without the promote's wait for etcd's expiry of the old lease, west's database
    takes writes while east's still does (shown by removing `_wait_out_old_lease`: the
    assertion on writable databases fails; the apps would still refuse, as west's agent
    cannot take the writer key before east's lease is gone)."""
    with running_lab(tmp_path, replication="async") as lab, EdgeLoad(lab) as load, \
            WriterWatch(lab, "east") as watch, WritableWatch(lab) as writable:
        _serving(load, "east")
        lab.partition("east", ["west", "witness"])  # the client still reaches east
        cut_at = time.monotonic()
        wait_for("east to fence itself", lambda: not lab.pids("east")["postgres"],
                 timeout_s=TTL_S * 3, every_s=0.02)
        fenced_at = time.monotonic()
        _serving(load, "west", timeout_s=60)
        wait_for("etcd to have ended east's lease", lambda: watch.ended_at is not None,
                 timeout_s=10)
        ended_at = watch.ended_at
        assert ended_at is not None
        wait_for("west's database seen writable", lambda: bool(writable.seen["west"]),
                 timeout_s=10)
        east_db, west_db = max(writable.seen["east"]), min(writable.seen["west"])
        assert east_db < west_db, (
            f"two writable primaries: east's until {east_db - cut_at:.2f} s after the cut, "
            f"west's from {west_db - cut_at:.2f} s")
        assert west_db >= ended_at - 0.1, "west promoted before etcd ended east's lease"
        east, west = load.by("east"), load.by("west")
        assert max(east) < min(west), (
            f"two writers: east acknowledged until {max(east) - cut_at:.2f} s after the cut, "
            f"west from {min(west) - cut_at:.2f} s")
        late = [t for t in east if t > ended_at]
        assert not late, f"{len(late)} writes acknowledged by east after its lease ended"
        assert fenced_at - cut_at < TTL_S, f"east fenced {fenced_at - cut_at:.2f} s after the cut"
        promote = next(e for e in journal_events(lab, "west") if e.get("event") == "step"
                       and e.get("step") == "promote" and e.get("outcome") == "done")
        assert "old write lease expired" in str(promote["detail"]), promote
        print(f"lab partition: east fenced {fenced_at - cut_at:.2f} s after the cut, last east "
              f"write {max(east) - cut_at:.2f} s, lease ended {ended_at - cut_at:.2f} s, first "
              f"west write {min(west) - cut_at:.2f} s")


def test_losing_the_standby_the_witness_or_an_etcd_member_fails_nothing_over(
        tmp_path: Path) -> None:
    """Sync with `degrade`: the standby lost, the primary records the degrade in etcd and
    writes on; the witness cut off, or one etcd member lost, nothing changes."""
    with running_lab(tmp_path) as lab, EdgeLoad(lab) as load:
        _serving(load, "east")
        scenarios = (
            ("west partitioned", lambda: lab.partition("west", ["east", "witness", "client"]),
             lambda: lab.heal("west")),
            ("west's database killed",
             lambda: lab.signal_site("west", signal.SIGKILL, only="postgres"), lambda: None),
            ("witness partitioned",
             lambda: lab.partition("witness", ["east", "west", "client"]),
             lambda: lab.heal("witness")),
            ("witness's etcd member lost", lambda: lab.stop_etcd("witness"),
             lambda: lab.heal("witness")))
        for name, fault, heal in scenarios:
            fault()
            hurt_at = time.monotonic()
            # well past the detection time (0.75 s) and the lease (4 s): east still writes
            wait_for(f"{name}: east writing 5 s on", lambda hurt_at=hurt_at: any(
                t > hurt_at + 5 for t in load.by("east")), timeout_s=30, every_s=0.1)
            assert live_primary(lab) == "east", name
            heal()
        assert not load.by("west")
        assert all(e.get("event") != "plan" for e in journal_events(lab, "west"))


def test_a_frozen_primary_agent_is_stopped_by_its_watchdog_and_no_second_writer_appears(
        tmp_path: Path) -> None:
    with running_lab(tmp_path) as lab, EdgeLoad(lab) as load:
        _serving(load, "east")
        lab.signal_site("east", signal.SIGSTOP, only="agent")
        frozen_at = time.monotonic()
        wait_for("east's watchdog to stop PostgreSQL", lambda: not lab.pids("east")["postgres"],
                 timeout_s=TTL_S * 3, every_s=0.02)
        stopped_at = time.monotonic()
        _serving(load, "west", timeout_s=60)
        assert stopped_at - frozen_at < TTL_S + 1
        assert max(load.by("east")) < min(load.by("west")), "two writers"
        assert max(load.by("east")) <= stopped_at
