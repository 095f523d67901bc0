"""A fault campaign on the lab: four drills on one lab (a partition of the primary, an etcd
member lost, the primary's host lost, a partition of the standby), each with the drills' own
client through the edge, healed (the old primary rebuilt as a standby by its own agent) and
checked by the history checker; then the checker shown firing on an anomaly of each kind it
can see here, injected into one of those real histories."""

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

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

SEED = 27  # partition-primary, stop-witness-etcd, kill-primary, partition-standby
DRILLS = 4


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("lab-campaign")
    with running_lab(tmp) as lab:
        out = tmp / "out"
        yield out, run_lab_campaign(lab, DRILLS, SEED, out, print)


def test_the_lab_campaign_heals_every_drill_and_finds_nothing(
        campaign: tuple[Path, dict[str, Any]]) -> None:
    _, summary = campaign
    assert campaign_faults(DRILLS, SEED) == ["partition-primary", "stop-witness-etcd",
                                             "kill-primary", "partition-standby"]
    assert summary["drills"] == DRILLS and summary["unhealed"] == [], summary["per_drill"]
    assert summary["anomalies"] == [] and summary["lost_acked"] == 0
    assert summary["split_brain"] == 0
    drills = summary["per_drill"]
    assert [d["failover"] for d in drills] == [True, False, True, False]
    # the roles moved with the failovers: east, then west, then east again
    assert [(d["old_primary"], d["new_primary"]) for d in drills if d["failover"]] == [
        ("east", "west"), ("west", "east")]
    assert all(d["acked_writes"] > 50 for d in drills)
    assert all(0 < d["client_rto_s"] < 15 for d in drills if d["failover"])


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
