"""Readiness on self-managed sites: the checks only the sites have (agent/site_readiness.py),
and a lab drill's journal moved onto its driller's clock for the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from regionguard.agent.site_readiness import arbiter_members, vantage_points
from regionguard.config import Topology, load_topology
from regionguard.lab.drill_report import on_driller_clock
from regionguard.lab.layout import LabLayout, lab_topology
from regionguard.orchestrator.ports import VantageReport

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
MEMBERS = {"east": "https://e:2379", "west": "https://w:2379", "witness": "https://x:2379"}


def _sites_topology() -> Topology:
    user = load_topology(REPO / "regionguard.toml")
    return lab_topology(user, LabLayout.of(Path("/srv/lab"), user))


def test_the_arbiter_check_follows_the_majority() -> None:
    assert arbiter_members(MEMBERS, {}).status == "pass"
    one = arbiter_members(MEMBERS, {"west": "connection refused"})
    assert one.status == "warn" and "2 of 3" in one.observed and "west: connection refused" \
        in one.observed
    two = arbiter_members(MEMBERS, {"west": "timed out", "east": "connection refused"})
    assert two.status == "fail" and "1 of 3" in two.observed and "fences itself" in two.action


def test_vantage_points_need_a_fresh_quorum_outside_the_primary() -> None:
    topology = _sites_topology()
    now = 1_000.0

    def report(vantage: str, age_s: float) -> VantageReport:
        return VantageReport(vantage, "east", 0, 5, now - age_s)

    fresh = [report("west", 0.5), report("witness", 1.0)]
    assert vantage_points(topology, "east", fresh, now).status == "pass"
    # the primary's own report never counts toward its DOWN quorum
    silent_witness = [report("west", 0.5), report("east", 0.1), report("witness", 60.0)]
    check = vantage_points(topology, "east", silent_witness, now)
    assert check.status == "fail" and "witness" in check.observed, check
    assert "never failed over" in check.action
    assert vantage_points(topology, "east", [], now).status == "fail"


def test_a_sites_journal_is_moved_onto_the_drillers_clock_with_its_verdicts_first_failure(
        ) -> None:
    offset = 1_700_000_000_000_000_000
    entries = [{"event": "verdict", "mono_ns": offset + 5_000, "first_failure_ns": offset + 1_000},
               {"event": "step", "mono_ns": offset + 7_000}, {"event": "cut short"}]
    moved = on_driller_clock(entries, offset)
    assert [e.get("mono_ns") for e in moved] == [5_000, 7_000]
    assert moved[0]["first_failure_ns"] == 1_000
