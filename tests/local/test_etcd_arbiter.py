"""The etcd arbiter for real: three etcd 3.4 members on loopback (one address per site), the
StateStore and ObservationStore ports over them, and the writer key on an etcd lease.

What must hold (issue 21): the epoch claim is one compare-and-set that exactly one runner
wins; a stale runner cannot overwrite its successor's plan; a failover learns from etcd itself
when the old writer's lease has expired (the holder's own expiry, not a TTL counted from the
revoke); one member down changes nothing, a majority down is one line naming every member."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from regionguard.config import Role
from regionguard.errors import PlanConflict, ProviderError, UsageError
from regionguard.orchestrator.ports import VantageReport
from regionguard.orchestrator.records import PlanRecord
from regionguard.providers.etcd.approvals import EtcdApprovals
from regionguard.providers.etcd.client import EtcdArbiter, EtcdTls
from regionguard.providers.etcd.member import MemberTls
from regionguard.providers.etcd.state import EtcdStateStore
from regionguard.providers.etcd.writer_lease import LeaseLost, WriterLease

from ..plan_helpers import bare_plan
from ..tls import certificate_authority
from .etcd_helpers import HOME_ROLES, SITES, EtcdCluster, etcd_cluster
from .sandbox_helpers import wait_for

pytestmark = pytest.mark.local

TTL_S = 2  # etcd's smallest lease with its default election timeout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with etcd_cluster(tmp_path_factory.mktemp("etcd")) as running:
        yield running


def test_exactly_one_of_two_sites_claims_an_epoch_and_a_replay_is_its_own(
        cluster: EtcdCluster) -> None:
    app = "claim"
    east, west = cluster.store("east", app), cluster.store("west", app)
    assert east.load().epoch == 1
    results: dict[str, object] = {}

    def claim(name: str, store: EtcdStateStore, plan_id: str) -> None:
        try:
            results[name] = store.claim_epoch(1, bare_plan(plan_id))
        except PlanConflict as exc:
            results[name] = exc

    threads = [threading.Thread(target=claim, args=("east", east, "p-east")),
               threading.Thread(target=claim, args=("west", west, "p-west"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, r in results.items() if r == 2]
    assert len(winners) == 1, results
    loser = "west" if winners == ["east"] else "east"
    assert isinstance(results[loser], PlanConflict)
    state = west.load()
    assert state.epoch == 2 and state.plan is not None and state.plan.id == f"p-{winners[0]}"
    # the winner's retry (its reply was lost) is recognised, not a second increment
    winner_store = east if winners == ["east"] else west
    assert winner_store.claim_epoch(1, bare_plan(f"p-{winners[0]}")) == 2
    assert east.load().epoch == 2


def test_a_runner_that_lost_its_plan_cannot_overwrite_its_successor(
        cluster: EtcdCluster) -> None:
    app = "stale"
    store = cluster.store("west", app)
    first = bare_plan("first")
    store.claim_epoch(1, first)
    store.finish_plan("first", {"east": Role.STANDBY, "west": Role.PRIMARY}, time.time())
    second = bare_plan("second", base_epoch=2)
    store.claim_epoch(2, second)
    with pytest.raises(PlanConflict, match="no longer the current plan"):
        store.save_plan(PlanRecord(first, 2))
    with pytest.raises(PlanConflict):
        store.finish_plan("first", {}, time.time())
    with pytest.raises(PlanConflict):
        store.set_roles({}, plan_id="first")
    record = store.read_plan()
    assert record is not None and record.id == "second" and record.running
    assert store.load().roles["west"] == "primary"


def test_the_sync_degrade_record_keeps_its_first_point_and_clears_only_by_compare(
        cluster: EtcdCluster) -> None:
    store = cluster.store("east", "degrade")
    assert store.note_sync_degraded(100) == 100
    assert store.note_sync_degraded(200) == 100  # the first point is where divergence began
    assert store.clear_sync_degraded(200) is False and store.load().sync_degraded_lsn == 100
    assert store.clear_sync_degraded(100) is True and store.load().sync_degraded_lsn is None


def test_a_failover_learns_from_etcd_when_an_isolated_writers_lease_expired(
        cluster: EtcdCluster) -> None:
    """The holder stops renewing (cut off): etcd keeps its writer key until the holder's own
    lease runs out, counted from its last renewal, however early the survivor revokes."""
    app = "isolated"
    east, west = cluster.store("east", app), cluster.store("west", app)
    holder = WriterLease(east, ttl_s=TTL_S, margin_s=0.5)
    holder.acquire("east", 1)
    time.sleep(1.0)
    last_renewal = time.monotonic()
    holding = holder.renew()  # its last: from here on it is "partitioned" and renews nothing
    assert holding.valid_until <= last_renewal + TTL_S + 0.1

    west.claim_epoch(1, bare_plan("failover"))
    until = west.revoke_writer("east")
    assert until is not None and until > time.time()  # etcd says some of the lease is left
    assert not west.writer_lease_ended("east"), "the revoke itself must not end the lease"
    wait_for("etcd to expire east's lease", lambda: west.writer_lease_ended("east"),
             timeout_s=TTL_S * 4, every_s=0.05)
    # etcd's own expiry comes no earlier than the holder's deadline (counted from when it
    # sent its last renewal), and the holder stopped writing a margin before that
    assert time.monotonic() >= holding.valid_until, holding.valid_until - time.monotonic()
    assert not holder.may_write()  # the holder's own clock stopped it first
    # a holder from before the claim cannot take the key back: the epoch moved
    with pytest.raises(LeaseLost, match="not the primary at epoch 1"):
        WriterLease(east, ttl_s=TTL_S, margin_s=0.5).acquire("east", 1)


def test_a_connected_holder_releases_on_revoke_and_the_survivor_waits_for_nothing(
        cluster: EtcdCluster) -> None:
    app = "connected"
    east, west = cluster.store("east", app), cluster.store("west", app)
    holder = WriterLease(east, ttl_s=30, margin_s=1.0)
    holder.acquire("east", 1)
    assert not west.writer_lease_ended("east")
    west.claim_epoch(1, bare_plan("switchover", kind="switchover"))
    west.revoke_writer("east")
    with pytest.raises(LeaseLost, match="revoked"):
        holder.renew()  # the epoch moved: it steps down and releases its lease at once
    assert west.writer_lease_ended("east")  # long before the 30 s TTL
    assert not holder.may_write()


def test_a_second_writer_key_cannot_be_taken_while_the_first_is_held(
        cluster: EtcdCluster) -> None:
    app = "second"
    east = cluster.store("east", app)
    WriterLease(east, ttl_s=30, margin_s=1.0).acquire("east", 1)
    with pytest.raises(LeaseLost, match="held by east"):
        WriterLease(cluster.store("west", app), ttl_s=30, margin_s=1.0).acquire("east", 1)
    with pytest.raises(LeaseLost, match="not the primary"):
        WriterLease(cluster.store("west", app), ttl_s=30, margin_s=1.0).acquire("west", 1)


def test_one_approval_request_and_one_answer_win(cluster: EtcdCluster) -> None:
    """Two agents open one request; a person's answer and the default never both win."""
    west, witness = (EtcdApprovals(cluster.store(site, "approvals")) for site in ("west",
                                                                                   "witness"))
    request = {"plan_id": "failover-1", "target": "west", "expires_at": 100.0,
               "timeout_s": 60.0, "default": "reject"}
    assert west.open(request) and not witness.open({**request, "plan_id": "failover-2"})
    assert witness.pending() == request
    with pytest.raises(UsageError, match="no failover waits for approval as plan"):
        witness.decide("failover-2", "approved", "ada", 50.0)
    assert witness.resolve(50.0, "reject") == request  # not expired: unchanged
    answered = witness.decide("failover-1", "approved", "ada", 50.0)
    assert answered["decision"]["by"] == "ada"
    with pytest.raises(UsageError, match="already approved by ada"):
        west.decide("failover-1", "rejected", "bob", 51.0)
    assert west.resolve(200.0, "reject") == answered  # expired, but answered: the answer stands
    west.mark_handled()
    assert witness.pending()["decision"]["handled"] is True  # type: ignore[index]
    west.close()
    assert witness.pending() is None
    late = {**request, "plan_id": "failover-3"}
    assert west.open(late)
    defaulted = west.resolve(200.0, "reject")  # expired unanswered: the default decides
    assert defaulted is not None and defaulted["decision"]["outcome"] == "rejected"
    with pytest.raises(UsageError, match="already rejected"):
        witness.decide("failover-3", "approved", "ada", 201.0)
    west.close()
    # a compare-and-set at a stale revision fails, and the other answer stands
    assert west.open({**request, "plan_id": "failover-4", "expires_at": 300.0})
    seen = west.read()
    assert seen is not None
    bob = witness.decide("failover-4", "rejected", "bob", 60.0)
    assert not west.replace({**seen[0], "decision": {"outcome": "approved"}}, seen[1])
    assert west.pending() == bob
    west.close()
    # a create that was applied though its answer was lost (a timeout, then a retry on
    # another member) is still this runner's request: recognised by its plan id
    mine = {**request, "plan_id": "failover-5"}
    assert west.create(mine) and west.open(mine) and not witness.open(
        {**request, "plan_id": "failover-6"})
    west.close()
    # an unreadable value does not hold the key forever: it reads as a request nobody matches
    cluster.store("east", "approvals").arbiter.put(west.key, b"not json")
    assert west.pending() == {"unreadable": True}
    west.close()


def test_the_last_drill_is_recorded_with_the_arbiter(cluster: EtcdCluster) -> None:
    """Readiness on any site sees a drill run from anywhere: the record lives in etcd."""
    store = cluster.store("east", "drills")
    assert store.last_drill() is None
    store.record_drill("kill-primary", 1_000.5, rto_s=4.2)
    seen = cluster.store("witness", "drills").last_drill()
    assert seen == {"fault": "kill-primary", "ended_at": 1_000.5, "rto_s": 4.2}


def test_observations_and_the_plan_lock(cluster: EtcdCluster) -> None:
    app = "obs"
    west, witness = cluster.store("west", app), cluster.store("witness", app)
    now = time.time()
    west.publish(VantageReport("west", "east", 2, 0, now, now - 1, "refused"))
    witness.publish(VantageReport("witness", "east", 3, 0, now, now - 2, "timeout"))
    reports = sorted(west.reports("east"), key=lambda r: r.vantage)
    assert [(r.vantage, r.failures, r.failing_since) for r in reports] == [
        ("west", 2, now - 1), ("witness", 3, now - 2)]
    assert west.reports("west") == []
    with west.plan_lock() as held:
        assert held
        with witness.plan_lock() as other:
            assert not other
    with witness.plan_lock() as other:
        assert other  # released with its lease on the way out


def test_one_member_down_changes_nothing_and_a_majority_down_is_one_line(
        tmp_path: Path) -> None:
    with etcd_cluster(tmp_path) as small:
        store = small.store("west", "members")
        store.claim_epoch(1, bare_plan("before"))
        small.stop("west")  # this site's own member: the others answer
        assert store.load().epoch == 2
        assert set(store.arbiter.unhealthy_members()) == {"west"}  # readiness's view
        store.finish_plan("before", {}, time.time())
        small.stop("east")  # no majority: the witness's member cannot answer alone
        started = time.monotonic()
        with pytest.raises(ProviderError) as err:
            store.load()
        assert set(store.arbiter.unhealthy_members()) == {"east", "west"}
        message = str(err.value)
        assert "\n" not in message and "no member answered" in message
        for site in ("east", "west", "witness"):
            assert f"{site} (" in message
        assert time.monotonic() - started < 5  # bounded by the client's timeouts
        small.start("east")
        small.start("west")
        wait_for("the majority back", lambda: _answers(small), timeout_s=20)
        assert small.store("east", "members").load().epoch == 2


def _answers(cluster: EtcdCluster) -> bool:
    try:
        cluster.store("east", "members").load()
    except ProviderError:
        return False
    return True


def test_members_that_require_client_certificates_are_reached_over_tls(tmp_path: Path) -> None:
    """etcd as docs/sites.md deploys it: https only, client certificates required. A client
    with this host's certificate works; one without is refused, in one line, by every
    member."""
    files = certificate_authority(tmp_path, list(SITES.values()))
    member_tls = MemberTls(str(files["server"]), str(files["server-key"]), str(files["ca"]))
    client = (str(files["ca"]), str(files["client"]), str(files["client-key"]))
    with etcd_cluster(tmp_path / "etcd", member_tls, client) as cluster:
        assert all(url.startswith("https://") for url in cluster.client_urls.values())
        store = EtcdStateStore(EtcdArbiter(cluster.client_urls, timeout_s=1.0, nearest="east",
                                           tls=EtcdTls(*client)), app="tls",
                               home_roles=HOME_ROLES, sites=tuple(SITES))
        assert store.claim_epoch(1, bare_plan("failover")) == 2
        anonymous = EtcdArbiter(cluster.client_urls, timeout_s=1.0,
                                tls=EtcdTls(ca_file=client[0]))
        with pytest.raises(ProviderError) as refused:
            anonymous.get("/regionguard/tls/state")
        assert len(str(refused.value).splitlines()) == 1
        assert "no member answered" in str(refused.value)
    with pytest.raises(ProviderError, match=r"arbiter\.cert_file: .*cannot be read"):
        EtcdArbiter({"east": "https://127.0.0.21:1"}, timeout_s=1.0,
                    tls=EtcdTls(client[0], str(tmp_path / "missing.pem"), client[2]))


def test_the_witness_takes_etcds_leadership(cluster: EtcdCluster) -> None:
    """So that a region's loss never costs an election (etcd restarts every lease's TTL on a
    leader change: a whole TTL more before a failover may promote)."""
    arbiter = cluster.arbiter("witness")
    moved = arbiter.lead_from("witness")
    witness = arbiter._clients["witness"]

    def leader_is_witness() -> bool:
        status = witness.post(witness.get_url("/maintenance/status"), json={})
        return bool(status["leader"] == status["header"]["member_id"])

    wait_for("the witness to lead", leader_is_witness, timeout_s=10, every_s=0.05)
    assert arbiter.lead_from("witness") is False  # already: nothing moves
    assert moved or leader_is_witness()


def test_a_degrade_and_a_failover_claim_never_both_pass(cluster: EtcdCluster) -> None:
    """The primary records a degrade before it commits alone; a failover planned before that
    record must not claim (its standby may lack those writes), and no degrade is recorded
    while a plan runs (the primary keeps waiting for its standby instead)."""
    east, west = cluster.store("east", "race"), cluster.store("west", "race")
    east.note_sync_degraded(500)  # after west planned from a state without it
    with pytest.raises(PlanConflict, match="a sync degrade was recorded while planning"):
        west.claim_epoch(1, bare_plan("failover-planned-before"))
    assert east.clear_sync_degraded(500)
    assert west.claim_epoch(1, bare_plan("failover-now")) == 2
    with pytest.raises(ProviderError, match="a plan is running; the sync degrade is not "
                                            "recorded"):
        east.note_sync_degraded(600)
    assert west.load().sync_degraded_lsn is None


def test_a_watch_calls_back_on_each_change_of_its_key_and_ends_with_its_stop(
        cluster: EtcdCluster) -> None:
    """The lease keeper's wake-up: a change of the watched key reaches the watcher within a
    round trip (a hint; the keeper still reads and decides), and the watch ends when told."""
    arbiter = cluster.arbiter("east")
    key = "/regionguard/test/watched"
    changes: list[float] = []
    stop = threading.Event()
    thread = threading.Thread(target=arbiter.watch,
                              args=(key, lambda: changes.append(time.monotonic()), stop),
                              daemon=True)
    thread.start()
    try:
        values = (str(n).encode() for n in range(1000))
        wait_for("the watch stream to deliver a change",  # no readiness signal: change until
                 lambda: bool(arbiter.put(key, next(values)) or changes),  # one is seen
                 timeout_s=10, every_s=0.2)
        for n in range(3):  # then each change reaches it within a round trip
            seen = len(changes)
            asked = time.monotonic()
            arbiter.put(key, next(values))
            wait_for(f"change {n} to be seen", lambda seen=seen: len(changes) > seen,
                     timeout_s=5, every_s=0.01)
            assert changes[seen] - asked < 1.0, changes[seen] - asked
        arbiter.put("/regionguard/test/other", b"x")  # another key: no call
        settled = len(changes)
        arbiter.put(key, next(values))
        wait_for("the next change", lambda: len(changes) > settled, timeout_s=5, every_s=0.01)
        assert len(changes) == settled + 1
    finally:
        stop.set()
    thread.join(5)
    assert not thread.is_alive()
