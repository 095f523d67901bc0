"""The lab: real hosts on one machine (a network and a PID namespace per site), a real etcd
member and a `regionguard agent` per site, real partitions (nftables in the namespaces), the
drills' own client through the edge from the client site. Every fault is the lab's; every
fence is the hurt site's own.

One lab, one campaign of eight drills, every lab fault once, each healed (the old primary
rebuilt as a standby by its own agent) before the next, so the roles move east -> west ->
east -> west -> east: each test below asserts on what its drill measured. The lab is taken down at
the end and checked to have left nothing (lab_helpers.running_lab)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from regionguard.agent.site import Site
from regionguard.agent.site_readiness import sites_readiness
from regionguard.cli import app
from regionguard.drill.history_file import read_history
from regionguard.lab.drill import campaign_faults, run_lab_campaign
from regionguard.lab.lab import Lab

from .. import anomalies
from ..local.sandbox_helpers import wait_for
from .lab_helpers import running_lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
TTL_S = 4
SEED = 27
FAULTS = ["freeze-primary-agent", "kill-standby-db", "kill-primary", "partition-primary",
          "partition-witness", "partition-primary-etcd", "partition-standby", "stop-witness-etcd"]


@pytest.fixture(scope="module")
def lab_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Path, TlsFacts]]:
    """The lab, and what its sites' TLS looked like from the client site once it was up."""
    tmp = tmp_path_factory.mktemp("lab")
    with running_lab(tmp) as lab:
        yield lab, tmp, tls_facts(lab)


@pytest.fixture(scope="module")
def campaign(lab_up: tuple[Lab, Path, TlsFacts]) -> tuple[Path, dict[str, Any]]:
    lab, tmp, _ = lab_up
    out = tmp / "out"
    return out, run_lab_campaign(lab, len(FAULTS), SEED, out, print)


@dataclass
class TlsFacts:
    plain_db_error: str  # a connection to the primary without TLS, from another host
    replication_ssl: list[tuple[str, bool]]  # (standby, TLS?) of each walsender
    etcd_without_cert_error: str
    peer_urls: list[str]


def tls_facts(lab: Lab) -> TlsFacts:
    primary = lab.topology.home_primary
    site = Site(lab.topology, "witness")  # a vantage point's own files (its etcd identity)
    tls = site.etcd_tls
    # the standby's site: the witness's login-only role may not read the primary's
    # replication statistics
    db = Site(lab.topology, lab.topology.other_region(primary)).database(primary)
    assert tls is not None and tls.ca_file and tls.cert_file and tls.key_file
    member = lab.topology.arbiter.members[primary]

    def look() -> TlsFacts:
        try:
            psycopg.connect(db.dsn(sslmode="disable"), connect_timeout=3).close()
            plain = "connected"
        except psycopg.OperationalError as exc:
            plain = str(exc)
        with psycopg.connect(db.dsn(), connect_timeout=3) as conn:
            rows = conn.execute("SELECT r.application_name, s.ssl FROM pg_stat_replication r "
                                "JOIN pg_stat_ssl s USING (pid)").fetchall()
        try:
            httpx.post(f"{member}/v3/kv/range", json={"key": "Zm9v"}, timeout=3,
                       verify=ssl.create_default_context(cafile=tls.ca_file), trust_env=False)
            bare = "answered"
        except httpx.HTTPError as exc:
            bare = repr(exc)
        context = ssl.create_default_context(cafile=tls.ca_file)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        members = httpx.post(f"{member}/v3/cluster/member/list", json={}, verify=context,
                             timeout=3, trust_env=False).json()["members"]
        return TlsFacts(plain, [(str(a), bool(b)) for a, b in rows], bare,
                        [url for m in members for url in m["peerURLs"]])

    facts: TlsFacts = lab.client(look)
    return facts


def test_the_sites_talk_tls_only_and_check_each_others_certificates(
        lab_up: tuple[Lab, Path, TlsFacts]) -> None:
    """The lab's sites replicate, probe and reach etcd (client and peer) over TLS with the
    lab's CA; from another host a database refuses a connection without TLS and etcd a client
    without a certificate of that CA."""
    facts = lab_up[2]
    assert "no encryption" in facts.plain_db_error, facts.plain_db_error
    assert facts.replication_ssl == [("west", True)], facts.replication_ssl
    assert "certificate" in facts.etcd_without_cert_error.lower() or \
        "handshake" in facts.etcd_without_cert_error.lower(), facts.etcd_without_cert_error
    assert len(facts.peer_urls) == 3 and all(u.startswith("https://") for u in facts.peer_urls)


def drill(campaign: tuple[Path, dict[str, Any]], fault: str) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in campaign[1]["per_drill"] if d["fault"] == fault)
    return found


def test_every_drill_healed_and_the_checker_found_nothing(
        campaign: tuple[Path, dict[str, Any]]) -> None:
    out, summary = campaign
    assert campaign_faults(len(FAULTS), SEED) == FAULTS
    page = (out / "lab-campaign.html").read_text()  # the histogram and one cell per drill
    assert page.count('aria-label="drill outcomes"') == 1
    assert page.count("<rect") >= len(FAULTS) and "<script" not in page
    assert summary["drills"] == len(FAULTS) and summary["unhealed"] == [], summary["per_drill"]
    assert summary["anomalies"] == [] and summary["lost_acked"] == 0  # sync: nothing lost
    assert summary["split_brain"] == 0 and summary["two_writable"] == 0
    assert summary["old_acked_after_lease"] == 0
    failovers = [(d["old_primary"], d["new_primary"]) for d in summary["per_drill"]
                 if d["failover"]]
    assert failovers == [("east", "west"), ("west", "east"), ("east", "west"),
                         ("west", "east")]
    assert all(d["acked_writes"] > 50 for d in summary["per_drill"])
    # every old primary's agent said what its rewind discarded, and (sync) nothing acknowledged
    rewound = [d for d in summary["per_drill"] if d["failover"]]
    assert all(d["discarded_transactions"] is not None for d in rewound), rewound
    assert sum(d["discarded_acked"] for d in rewound) == 0, rewound
    print("discarded by the rewinds (transactions, this run's rows):",
          [(d["fault"], d["discarded_transactions"], d["discarded_rows"]) for d in rewound])


def test_each_drill_reports_in_html_and_readiness_sees_the_last_one(
        lab_up: tuple[Lab, Path, TlsFacts], campaign: tuple[Path, dict[str, Any]]) -> None:
    """Every lab drill leaves an HTML report (a failover's with the plan's steps and the
    driller's view of the old lease's end), and records itself in etcd, where readiness on
    the sites finds it."""
    lab = lab_up[0]
    for d in campaign[1]["per_drill"]:
        page = Path(d["report"]).read_text()
        assert f"Drill: {d['fault']} on {d['site']}" in page and "<svg" in page, d["report"]
        if d["failover"]:
            assert "old lease ended (etcd)" in page and ">promote<" in page, d["report"]
    def checks() -> dict[str, Any]:
        return {c.name: c for c in lab.client(lambda: sites_readiness(lab.topology,
                                                                      datetime.now(UTC)))}

    assert checks()["last_drill"].status == "pass", checks()["last_drill"]
    # the rest once the healed site settled (a restarted etcd member learns its leader, the
    # witness's reports are fresh again): polled, with what did not pass on a timeout
    seen: dict[str, Any] = {}

    def all_pass() -> bool:
        seen.update(checks())
        return all(c.status == "pass" for c in seen.values())

    try:
        wait_for("every readiness check to pass", all_pass, timeout_s=30, every_s=0.5)
    except AssertionError:
        raise AssertionError({n: c for n, c in seen.items() if c.status != "pass"}) from None


def test_killing_the_primary_site_fails_over_with_one_writer(
        campaign: tuple[Path, dict[str, Any]]) -> None:
    d = drill(campaign, "kill-primary")
    assert d["failover"] and not d["two_writable"] and d["lost_acked"] == 0
    assert 0 < d["client_rto_s"] < 10, d


def test_a_primary_cut_from_both_peers_fences_itself_and_the_majority_waits_for_etcd(
        campaign: tuple[Path, dict[str, Any]]) -> None:
    """East, cut from west and the witness (the client still reaches it), fences itself
    within the lease; west's database takes writes only after east's stopped and after etcd
    ended east's lease. Run with the promote's wait for etcd removed
    (`steps._wait_out_old_lease` returning at once), this fails: west's database was writable
    1.2 s after the cut, east's until 2.2 s (the apps alone would still refuse: west's agent
    cannot take the writer key before east's lease is gone)."""
    d = drill(campaign, "partition-primary")
    assert d["failover"] and d["old_primary"] == "east"
    assert d["old_stopped_s"] is not None and d["old_stopped_s"] < TTL_S, d
    assert not d["two_writable"], (
        f"two writable primaries: east's until {d['old_writable_until_s']:.2f} s after the cut, "
        f"west's from {d['new_writable_from_s']:.2f} s")
    assert d["new_writable_from_s"] >= d["lease_ended_s"] - 0.1, d
    assert d["old_acked_after_lease_s"] == 0


def test_a_primary_cut_from_etcd_only_fences_itself_while_its_replication_still_flows(
        campaign: tuple[Path, dict[str, Any]]) -> None:
    """West (the primary by then), cut from the other sites' etcd members and they from its
    own (nftables on etcd's client and peer ports only: its database still streams to east
    and the edge still reaches its apps), cannot renew its write lease: it stops its own
    database before the lease can end in etcd, and east takes the writes only after etcd
    ended west's lease. Nothing west acknowledged after that is anywhere."""
    d = drill(campaign, "partition-primary-etcd")
    assert d["failover"] and (d["old_primary"], d["new_primary"]) == ("west", "east"), d
    assert d["old_stopped_s"] is not None and d["old_stopped_s"] < TTL_S, d
    assert d["lease_ended_s"] is not None and d["old_stopped_s"] < d["lease_ended_s"], d
    assert not d["two_writable"] and d["lost_acked"] == 0, d
    assert d["new_writable_from_s"] >= d["lease_ended_s"] - 0.1, d
    assert d["old_acked_after_lease_s"] == 0


def test_a_frozen_primary_agent_is_stopped_by_its_watchdog(
        campaign: tuple[Path, dict[str, Any]]) -> None:
    d = drill(campaign, "freeze-primary-agent")
    assert d["failover"] and not d["two_writable"]
    assert d["old_stopped_s"] is not None and d["old_stopped_s"] < TTL_S + 1, d


@pytest.mark.parametrize("fault", ["partition-standby", "kill-standby-db", "partition-witness",
                                   "stop-witness-etcd"])
def test_losing_the_standby_the_witness_or_an_etcd_member_fails_nothing_over(
        campaign: tuple[Path, dict[str, Any]], fault: str) -> None:
    """Sync with `degrade`: the primary records the degrade in etcd and writes on."""
    d = drill(campaign, fault)
    assert not d["failover"] and d["new_primary"] == d["old_primary"]
    assert d["acked_late_in_fault"] > 10, d  # still writing, 5 s into the fault


def test_the_checker_fires_on_each_anomaly_injected_into_a_real_lab_history(
        campaign: tuple[Path, dict[str, Any]]) -> None:
    out, _ = campaign
    # the partition: writes from both regions, and the old primary's fence (etcd's end of
    # its lease, seen from the client site)
    path = out / f"drill-{FAULTS.index('partition-primary') + 1:03d}.history.jsonl"
    clean = read_history(path)
    assert clean.check().anomalies == [] and clean.sync
    assert [f.region for f in clean.fences] == ["east"], clean.fences
    assert clean.timelines is not None and clean.timelines.current >= 2, clean.timelines
    placed = [clean.timelines.place(r) for r in clean.requests if r.kind == "write" and r.ok]
    # none past the fork; most inside (a commit followed at once by others may straddle it)
    assert False not in placed and placed.count(True) > len(placed) / 2, placed
    for mutate, kind in anomalies.each_kind(fences=True):
        h = read_history(path)
        mutate(h)
        assert h.check().kinds & kind, (kind, [a.detail for a in h.check().anomalies])


def test_a_switchover_across_sites_hands_over_and_the_old_primary_follows(
        lab_up: tuple[Lab, Path, TlsFacts], campaign: tuple[Path, dict[str, Any]]) -> None:
    """After the campaign, `switchover` from the client site: the target's agent runs it, the
    old primary's agent hands over, and then follows the new primary (checked in sync)."""
    lab = lab_up[0]
    store = Site(lab.topology, "witness").store()
    before = lab.client(store.load)
    target = lab.topology.other_region(before.primary)
    result = lab.client(lambda: CliRunner().invoke(app, [
        "-c", str(lab.layout.config), "switchover", "--to", target, "--yes"]), timeout_s=120)
    assert result.exit_code == 0, result.output
    after = lab.client(store.load)
    assert (after.primary, after.epoch, after.plan) == (target, before.epoch + 1, None)
    wait_for("the old primary to follow the new one in sync", lab.in_sync, timeout_s=60)
