"""Operations on fake ports: manual approval through the sites' guards (waits, runs on
approve, nothing on reject or expiry), the anti-flap delay, readiness checks, metrics from the
journal, execution reports."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from regionguard.clock import SYSTEM_CLOCK
from regionguard.config import Role
from regionguard.errors import UsageError
from regionguard.ops.metrics import EngineCollector
from regionguard.ops.report import plan_report, plan_report_html
from regionguard.orchestrator import readiness
from regionguard.orchestrator.ports import DbStatus
from regionguard.orchestrator.view import TickView

from ..plan_helpers import bare_plan
from .fakes import Sites, failed_over_journal, make_ports, topology
from .file_approvals import FileApprovals

pytestmark = pytest.mark.unit


@dataclass
class ManualClock:
    """Wall time a test moves; the rest is the system's."""

    offset: float = 0.0

    def monotonic(self) -> float:
        return SYSTEM_CLOCK.monotonic()

    def monotonic_ns(self) -> int:
        return SYSTEM_CLOCK.monotonic_ns()

    def time(self) -> float:
        return SYSTEM_CLOCK.time() + self.offset

    def sleep(self, seconds: float) -> None:
        SYSTEM_CLOCK.sleep(seconds)


def manual(tmp_path: Path, **failover: Any) -> tuple[Sites, Any, FileApprovals, ManualClock]:
    topo = topology(failover={"approval": "manual", "approval_timeout_s": 60, **failover})
    ports, world = make_ports(tmp_path, topo=topo)
    clock = ManualClock()
    ports = replace(ports, clock=clock)
    world.dbs["east"]["up"] = False
    box = FileApprovals(tmp_path / "state")
    return Sites(ports, box), world, box, clock


def test_a_manual_approval_failover_waits_then_runs_the_approved_plan(tmp_path: Path) -> None:
    sites, _, box, _ = manual(tmp_path)
    sites.tick(10)
    pending = box.pending()
    assert pending is not None and pending["target"] == "west"
    assert sites.ports.state.load().roles["east"] is Role.PRIMARY  # nothing ran
    assert not sites.events("plan")
    assert [e["outcome"] for e in sites.events("approval")] == ["requested"]

    box.decide(pending["plan_id"], "approved", "ada@ops", time.time())
    sites.tick(3)
    assert sites.ports.state.load().roles["west"] is Role.PRIMARY
    done = [e for e in sites.events("plan") if e.get("outcome") == "done"]
    assert [e["plan"] for e in done] == [pending["plan_id"]]  # the plan that was approved
    report = plan_report(sites.ports.journal.entries(), pending["plan_id"])
    assert report is not None and report["outcome"] == "done"
    assert [(a["outcome"], a.get("by")) for a in report["approvals"]] == [
        ("requested", None), ("approved", "ada@ops")]
    assert box.pending() is None


def test_a_rejected_failover_runs_nothing_and_is_not_asked_again_this_outage(
        tmp_path: Path) -> None:
    sites, _, box, _ = manual(tmp_path)
    sites.tick(10)
    pending = box.pending()
    assert pending is not None
    box.decide(pending["plan_id"], "rejected", "bob@ops", time.time())
    sites.tick(20)
    assert sites.ports.state.load().roles["east"] is Role.PRIMARY
    assert not sites.events("plan")
    assert [(e["outcome"], e.get("by")) for e in sites.events("approval")] == [
        ("requested", None), ("rejected", "bob@ops")]
    # the rejection outlives the agent: a restarted one does not ask again
    sites.restart_west()
    sites.tick(20)
    assert not sites.events("plan")
    assert [e["outcome"] for e in sites.events("approval")] == ["requested", "rejected"]


def test_a_restarted_agent_keeps_the_request_and_runs_it_once_approved(
        tmp_path: Path) -> None:
    sites, _, box, _ = manual(tmp_path)
    sites.tick(10)
    pending = box.pending()
    assert pending is not None
    sites.restart_west()
    sites.tick(1)
    assert box.pending() == pending  # not withdrawn by a restart
    box.decide(pending["plan_id"], "approved", "ada@ops", time.time())
    sites.tick(10)
    done = [e["plan"] for e in sites.events("plan") if e.get("outcome") == "done"]
    assert done == [pending["plan_id"]]


def test_an_ineligible_standby_under_manual_approval_is_alerted_not_raised(
        tmp_path: Path) -> None:
    sites, world, box, _ = manual(tmp_path)
    world.dbs["west"]["up"] = False  # nothing to fail over to
    sites.tick(10)  # must not raise out of a cycle
    assert box.pending() is None and not sites.events("plan")
    assert any("west" in str(e.get("detail")) for e in sites.events("alert"))


def test_an_unanswered_request_does_the_default_when_it_expires(tmp_path: Path) -> None:
    sites, _, box, clock = manual(tmp_path)  # default: reject
    sites.tick(10)
    pending = box.pending()
    assert pending is not None
    clock.offset = 61  # past approval_timeout_s
    sites.tick(2)
    assert [e["outcome"] for e in sites.events("approval")] == ["requested", "expired"]
    assert not sites.events("plan")
    with pytest.raises(UsageError, match="already rejected"):  # too late to answer
        box.decide(pending["plan_id"], "approved", "late@ops", time.time() + 61)

    approving, _, _, clock2 = manual(tmp_path / "b", approval_default="approve")
    approving.tick(10)
    clock2.offset = 61
    approving.tick(3)
    assert approving.ports.state.load().roles["west"] is Role.PRIMARY


def test_the_anti_flap_delay_holds_a_second_verdict_back(tmp_path: Path) -> None:
    topo = topology(failover={"min_interval_s": 600})
    ports, world = make_ports(tmp_path, topo=topo)
    world.dbs["east"]["up"] = False
    # the last plan was automatic and ended 30 s ago (its record says so)
    ports.state.claim_epoch(1, replace(bare_plan("failover-1"), automatic=True))
    ports.state.finish_plan("failover-1", {"east": Role.PRIMARY, "west": Role.STANDBY},
                            time.time() - 30)
    sites = Sites(ports)
    sites.tick(15)
    assert ports.state.load().roles["east"] is Role.PRIMARY  # held back
    held = sites.events("held_back")
    assert len(held) == 1 and "570 s more" in held[0]["detail"]
    assert ("held_back", {"region": "west", "detail": held[0]["detail"]}) in world.notes


def facts(**overrides: Any) -> readiness.Facts:
    db = DbStatus("west", up=True, in_recovery=True, streaming=True, lag_bytes=0, lag_s=0.0)
    base = readiness.Facts(primary="east", standby="west", standby_db=db,
                           last_drill_age_s=3600.0)
    return replace(base, **overrides)


def statuses(topo: Any, f: readiness.Facts) -> dict[str, str]:
    return {c.name: c.status for c in readiness.evaluate(topo, f)}


def test_readiness_catches_a_stopped_standby_lag_drift_and_an_old_drill() -> None:
    topo = topology()
    assert set(statuses(topo, facts()).values()) == {"pass"}
    stopped = facts(standby_db=DbStatus("west", up=False))
    assert statuses(topo, stopped)["standby_replication"] == "fail"
    async_topo = topology(replication="async", failover={"rpo_target_s": 1})
    lagging = facts(standby_db=DbStatus("west", up=True, in_recovery=True, streaming=True,
                                        lag_bytes=9_000, lag_s=5.0))
    assert statuses(async_topo, lagging)["standby_replication"] == "fail"
    assert statuses(async_topo, facts())["standby_replication"] == "pass"
    drifted = facts(drift=["east (primary) runs 2 app processes, the topology wants 3"])
    check = next(c for c in readiness.evaluate(topo, drifted)
                 if c.name == "configuration_drift")
    assert check.status == "fail" and "wants 3" in check.observed and check.action
    assert statuses(topo, facts(last_drill_age_s=8 * 86_400))["last_drill"] == "fail"
    assert statuses(topo, facts(last_drill_age_s=None))["last_drill"] == "fail"
    assert statuses(topo, facts(capacity_problems=["HAProxy is missing"]))[
        "standby_capacity"] == "fail"
    assert readiness.overall(readiness.evaluate(topo, stopped)) == "fail"


def scrape(collector: EngineCollector) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    from prometheus_client import generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_metrics_count_failovers_from_the_journal_and_report_the_last_rto(
        tmp_path: Path) -> None:
    ports, world = make_ports(tmp_path)
    journal_file = tmp_path / "journal.jsonl"
    from regionguard.orchestrator.journal import FileSink, Journal

    ports = replace(ports, journal=Journal(FileSink(journal_file)))
    world.dbs["east"]["up"] = False
    sites = Sites(ports)
    collector = EngineCollector(journal_file, lambda: {"epoch": ports.state.load().epoch,
                                                       "plan": None}, TickView)
    before = scrape(collector)
    done = (("kind", "failover"), ("outcome", "done"))
    assert before["regionguard_failovers_total"][done] == 0
    sites.tick(10)
    after = scrape(collector)
    assert after["regionguard_failovers_total"][done] == 1  # from the journal
    assert after["regionguard_epoch"][()] == 2
    assert after["regionguard_last_rto_seconds"][()] > 0
    steps = after["regionguard_last_plan_step_seconds"]
    assert (("in_rto", "true"), ("step", "promote")) in steps
    # retire runs once traffic moved: shown, and said not to count toward the RTO
    assert (("in_rto", "false"), ("step", "retire")) in steps
    assert after["regionguard_last_plan_step_attempts"][(("step", "promote"),)] == 1
    assert after["regionguard_plans_total"][done] == 1


def test_a_switchover_counts_as_a_plan_never_as_a_failover(tmp_path: Path) -> None:
    """An alert on failovers must not fire on a planned switchover: plans_total counts every
    kind, failovers_total failovers alone."""
    from regionguard.orchestrator import engine, plans
    from regionguard.orchestrator.journal import FileSink, Journal

    ports, _ = make_ports(tmp_path)
    journal_file = tmp_path / "journal.jsonl"
    ports = replace(ports, journal=Journal(FileSink(journal_file)))
    collector = EngineCollector(journal_file, lambda: {"epoch": ports.state.load().epoch,
                                                       "plan": None}, TickView)
    engine.drive(ports, engine.Request(plans.PlanKind.SWITCHOVER, "west"))
    after = scrape(collector)
    moved = (("kind", "switchover"), ("outcome", "done"))
    assert after["regionguard_plans_total"][moved] == 1
    failovers = after["regionguard_failovers_total"]
    assert set(failovers.values()) == {0.0} and failovers, failovers
    assert {dict(labels)["kind"] for labels in failovers} == {"failover"}


def test_an_execution_report_explains_the_plan_and_is_self_contained(tmp_path: Path) -> None:
    entries, plan_id = failed_over_journal(tmp_path)
    report = plan_report(entries, plan_id)
    assert report is not None
    assert (report["kind"], report["source"], report["target"], report["outcome"]) == (
        "failover", "east", "west", "done")
    steps = {s["step"]: s for s in report["steps"]}
    assert {"fence", "promote", "route", "verify"} <= set(steps)
    assert all(s["attempts"] >= 1 and s["outcome"] == "done" for s in steps.values())
    assert report["verdict"]["verdict"] == "down" and report["rto"]["rto_s"] > 0
    page = plan_report_html(entries, plan_id)
    assert page is not None and "<svg" in page and "promote" in page
    assert steps["retire"]["in_rto"] is False and "retire" in report["rto"]["after_rto"]
    assert "after the RTO: not in it" in page  # the breakdown says which parts count
    # what triggered it, as tables a person reads (the verdict, the databases seen), no dump
    assert "vantage points" in page and "roles then" in page and "<pre>" not in page
    assert "src=" not in page and "http://" not in page and "https://" not in page
    assert "<script" not in page


def test_the_live_pages_rto_sparkline_reads_every_finished_plan() -> None:
    from regionguard.ops.events import past_rtos

    entries = [{"event": "plan", "plan": "p1", "outcome": "started"},
               {"event": "plan", "plan": "p1", "outcome": "done", "rto_s": 4.2},
               {"event": "plan", "plan": "p2", "outcome": "failed"},
               {"event": "plan", "plan": "p3", "outcome": "done", "rto_s": 1},
               {"event": "plan", "plan": "p4", "outcome": "done"}]  # a rebuild: no RTO
    assert past_rtos(entries) == [{"plan": "p1", "rto_s": 4.2}, {"plan": "p3", "rto_s": 1}]


def test_a_sample_that_answers_none_replaces_the_last_one_only_when_that_is_news() -> None:
    """The front door's totals: once HAProxy stops answering, the page must show a gap, not
    the last totals (which read as no traffic); a probe's sample keeps its last value."""
    from regionguard.agent.ops import Sampled

    answers: list[int | None] = [5, None]

    def fetch() -> int | None:
        return answers.pop(0)

    for none_is_news, expected in ((True, None), (False, 5)):
        answers[:] = [5, None]
        sampled: Sampled[int] = Sampled(fetch, every_s=0.0, none_is_news=none_is_news)
        for want in (5, expected):
            sampled.get()
            deadline = time.monotonic() + 5
            while (sampled._busy or sampled._value != want) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sampled._value == want, (none_is_news, want)
