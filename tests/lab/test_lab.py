"""The lab: real hosts on one machine (a network and a PID namespace per site), a real etcd
member and a `regionguard agent` per site, real partitions (nftables in the namespaces), the
drills' own client through the edge from the client site. Every fault is the lab's; every
fence is the hurt site's own.

One lab, one campaign of seven drills, every lab fault once, each healed (the old primary
rebuilt as a standby by its own agent) before the next, so the roles move east -> west ->
east -> west: each test below asserts on what its drill measured. The lab is taken down at
the end and checked to have left nothing (lab_helpers.running_lab)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regionguard.drill.campaign import read_history
from regionguard.drill.history import AnomalyKind
from regionguard.lab.drill import campaign_faults, run_lab_campaign

from .. import anomalies
from .lab_helpers import running_lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
TTL_S = 4
SEED = 27
FAULTS = ["partition-primary", "stop-witness-etcd", "kill-primary", "partition-standby",
          "freeze-primary-agent", "kill-standby-db", "partition-witness"]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("lab")
    with running_lab(tmp) as lab:
        out = tmp / "out"
        yield out, run_lab_campaign(lab, len(FAULTS), SEED, out, print)


def drill(campaign: tuple[Path, dict[str, Any]], fault: str) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in campaign[1]["per_drill"] if d["fault"] == fault)
    return found


def test_every_drill_healed_and_the_checker_found_nothing(
        campaign: tuple[Path, dict[str, Any]]) -> None:
    _, summary = campaign
    assert campaign_faults(len(FAULTS), SEED) == FAULTS
    assert summary["drills"] == len(FAULTS) and summary["unhealed"] == [], summary["per_drill"]
    assert summary["anomalies"] == [] and summary["lost_acked"] == 0  # sync: nothing lost
    assert summary["split_brain"] == 0 and summary["two_writable"] == 0
    assert summary["old_acked_after_lease"] == 0
    failovers = [(d["old_primary"], d["new_primary"]) for d in summary["per_drill"]
                 if d["failover"]]
    assert failovers == [("east", "west"), ("west", "east"), ("east", "west")]
    assert all(d["acked_writes"] > 50 for d in summary["per_drill"])


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
    path = out / "drill-001.history.jsonl"  # the partition: writes from both regions
    assert read_history(path).check().anomalies == []
    for mutate, kind in [(anomalies.lose, AnomalyKind.LOST),
                         (anomalies.duplicate, AnomalyKind.DUPLICATED),
                         (anomalies.unwritten_read, AnomalyKind.UNWRITTEN_READ),
                         (anomalies.epoch_backwards, AnomalyKind.EPOCH_BACKWARDS),
                         (anomalies.two_writers, AnomalyKind.TWO_WRITERS)]:
        h = read_history(path)
        mutate(h)
        assert kind in h.check().kinds, (kind, [a.detail for a in h.check().anomalies])
