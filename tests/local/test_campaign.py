"""A short randomized fault campaign on a real sandbox, through the CLI: every drill healed,
the checker silent on the real histories, and firing on an anomaly of each kind injected into
one of them; a seed replays its drill."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regionguard.drill.campaign import read_history

from .. import anomalies
from .sandbox_helpers import cli, write_topology

pytestmark = pytest.mark.local

# four drills: a second fault in recovery, a freeze at the threshold, the sync standby lost and
# then the primary (frozen 1.7 s: past the degrade), the controller killed at a step
SEED = 4015
DRILLS = 4
KILL_PRIMARY_DB_SEED = 4011  # kill: kill-db east


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("campaign")
    config = write_topology(tmp)
    cli(config, "up", "--embedded", timeout=180)
    try:
        out = tmp / "out"
        proc = cli(config, "drill", "--campaign", str(DRILLS), "--seed", str(SEED),
                   "--rate", "60", "--workers", "3", "--out", str(out), timeout=600,
                   check=False)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        report = json.loads((out / "campaign-report.json").read_text())
        yield config, {"out": out, "report": report, "stdout": proc.stdout}
    finally:
        cli(config, "down", "--purge", check=False, timeout=180)


def test_the_campaign_heals_every_drill_and_finds_nothing(
        campaign: tuple[Path, dict[str, Any]]) -> None:
    _, run = campaign
    report = run["report"]
    assert report["drills"] == DRILLS and report["campaign"]["stopped_early"] is None
    assert report["anomalies"] == [] and report["lost_acked"] == 0
    assert report["split_brain"] == 0 and report["unavailable"] == []
    assert sum(report["faults"].values()) >= DRILLS
    assert report["acked_writes"] > 100 * DRILLS
    assert all(d["healed"] for d in report["per_drill"])
    assert [d["seed"] for d in report["per_drill"]] == list(range(SEED, SEED + DRILLS))
    html = (run["out"] / "campaign-report.html").read_text()
    assert "no anomaly" in html and "<script" not in html


def test_the_checker_fires_on_an_anomaly_of_each_kind_in_a_real_history(
        campaign: tuple[Path, dict[str, Any]]) -> None:
    _, run = campaign
    drill = next(d for d in run["report"]["per_drill"] if d["failover"])
    path = run["out"] / drill["history"]
    assert read_history(path).check().anomalies == []
    assert read_history(path).fences, "a failover drill's history holds its fence"
    for mutate, kind in anomalies.each_kind(fences=True):
        h = read_history(path)
        mutate(h)
        assert h.check().kinds & kind, (kind, [a.detail for a in h.check().anomalies])


def test_a_seed_replays_its_drill(campaign: tuple[Path, dict[str, Any]]) -> None:
    config, run = campaign
    original = run["report"]["per_drill"][2]
    out = run["out"].parent / "replay"
    proc = cli(config, "drill", "--campaign", "1", "--seed", str(original["seed"]),
               "--rate", "60", "--workers", "3", "--out", str(out), timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    replay = json.loads((out / "campaign-report.json").read_text())["per_drill"][0]
    assert replay["seed"] == original["seed"]
    assert replay["description"] == original["description"]


def test_a_drill_whose_writes_never_come_back_is_a_liveness_failure(tmp_path: Path) -> None:
    """Manual mode: the primary's database is killed and nobody fails over. No anomaly (nothing
    acknowledged was lost), but writes did not come back: the campaign must not call that a
    pass. The heal (restart the database, a canary write) still brings the sandbox back."""
    config = write_topology(tmp_path, **{'mode = "automatic"': 'mode = "manual"'})
    cli(config, "up", "--embedded", timeout=180)
    try:
        out = tmp_path / "out"
        proc = cli(config, "drill", "--campaign", "1", "--seed", str(KILL_PRIMARY_DB_SEED),
                   "--settle", "8s", "--out", str(out), timeout=300, check=False)
        assert proc.returncode == 3, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert "liveness" in proc.stderr
        report = json.loads((out / "campaign-report.json").read_text())
        assert report["anomalies"] == [] and report["lost_acked"] == 0
        [drill] = report["per_drill"]
        assert drill["kind"] == "kill" and drill["healed"], drill
        assert "no write acknowledged since the last action" in drill["unavailable"]
        assert [u["seed"] for u in report["unavailable"]] == [KILL_PRIMARY_DB_SEED]
    finally:
        cli(config, "down", "--purge", check=False, timeout=180)
