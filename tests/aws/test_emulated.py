"""Region-outage drills on the emulated AWS: the same guard handler and providers as in AWS,
against moto's server behind the fault proxy, with the fault injected at the API boundary.

Each drill is run as `regionguard --world aws-emulated drill` runs it, on a scaled clock (one
emulated minute in 1.2 s), and judged from the outside: the resolver's answers, the client's
own history of acknowledged writes, the proxy's request log, and the arbiter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto", reason="the aws extra is not installed")

from regionguard.emulated.domains import FailMode, FaultKind
from regionguard.emulated.drill import EmulatedDrillSettings, run_emulated_drill
from regionguard.emulated.models import LatencyModel

from .topologies import topology

pytestmark = pytest.mark.emulated

E, W, WITNESS = "us-east-1", "us-west-2", "us-east-2"


def drill(tmp_path: Path, variant: str, kind: FaultKind, region: str,
          **options: Any) -> dict[str, Any]:
    aws = options.pop("aws", {})
    settings = EmulatedDrillSettings(kind, region, tmp_path / "drill", **options)
    result = run_emulated_drill(topology(variant, aws=aws) if aws else topology(variant),
                                settings, report=lambda _: None)
    assert (tmp_path / "drill" / "drill-report.json").exists()
    html = (tmp_path / "drill" / "drill-report.html").read_text()
    assert "<svg" in html and "src=" not in html and "<script" not in html
    return result


def assert_failed_over_from_the_standby_alone(r: dict[str, Any]) -> None:
    assert r["outcome"] == "failed_over", r["journal"][-5:]
    assert (r["old_primary_region"], r["new_primary_region"]) == (E, W)
    assert r["epoch_after"] == r["epoch_before"] + 1
    # one promote, asked of (and from) the survivor
    assert r["promote_calls"]["succeeded"] == 1 and r["promote_calls"]["from"] == [W]
    # the dead region answered nothing after the fault, and the plan finished anyway
    assert r["calls"][E]["attempted"] > 0 and r["calls"][E]["succeeded"] == 0
    assert r["writable_regions_after"] == [W]  # exactly one writable region
    assert r["old_primary_lease_held"] is False  # its app could not confirm its lease
    assert not r["split_brain"], r["anomalies"]
    # a client is served once DNS answers the standby (plus the TTL a cache may keep the old
    # answer for) and the standby takes writes (DNS may move while its database promotes)
    assert r["rto_writes_s"] is not None
    assert r["rto_client_s"] == pytest.approx(
        max(r["rto_modeled_s"] + r["dns_ttl_s"], r["rto_writes_s"]), abs=0.11)
    assert r["drill_recorded"]  # readiness's last_drill reads it from the arbiter


def assert_sessions_served_through_the_outage_and_reconciled(r: dict[str, Any]) -> None:
    """The sessions' global table under the primary Region's outage: the survivor took every
    session write (no failover needed), the dead Region's last ones were not replicated yet
    (the tier's RPO, within the replication delay), and once the Region came back its queued
    changes arrived, each of them a survivor had written again resolved as a conflict by last
    writer wins, and both replicas hold the same items. The relational tier kept its RPO target."""
    s = r["sessions"]
    assert s["survivor_writes_after_fault"] > 0, s
    assert s["survivor_acked_after_fault"] == s["survivor_writes_after_fault"], s
    assert s["faulted_region_acked_after_fault"] == 0, s  # out: nothing answers there
    assert s["unreplicated_at_fault"] >= 1 and 0 < s["rpo_s"] <= s["replication_delay_s"], s
    # every unreplicated session a survivor wrote again is a conflict the heal resolves (the
    # table's own tests make one certain: tests/aws/test_global_tables.py)
    assert s["conflicts_resolved_after_heal"] >= s["unreplicated_then_rewritten"], s
    assert s["drained_after_heal"] and s["converged"], s
    assert r["rpo"]["acknowledged_before_fault"] > 0 and r["rpo"]["rpo_s"] <= 5.0, r["rpo"]
    html = (Path(r["request_log"]).parent.parent / "drill-report.html").read_text()
    assert "Data tiers" in html and "DynamoDB global table" in html


def assert_within_budget(r: dict[str, Any]) -> None:
    """Each part of the modelled RTO within what its model allows. The engine's own steps and
    the gaps between them cost only modelled call latencies: when the emulator's own time
    counted (each real millisecond 50 world ones), "other" alone was 55-64 s."""
    m, steps = r["models"], r["rto_breakdown_s"]
    promote = m["aurora_failover_s"] if r["topology"]["database"] == "aurora-global" \
        else m["rds_promote_s"]
    boot = m["ec2_boot_s"] + m["alb_check_interval_s"] if r["topology"]["compute"] == "ec2" \
        else 0.0
    budget = {
        # failure_threshold probes apart, a gap between two scheduled runs, a witness's offset
        "detect": 3 * m["probe_interval_s"] + 60.0,
        "scale": 5.0, "fence": 5.0, "route": 5.0, "other": 10.0,
        # the promotion's start -> the old lease ended and the target named the writer: the
        # dead Region's last recorded lease, which began before the fault, so it ends about
        # the detection before a whole lease from the revoke would have (which fails this)
        "handover": max(5.0, m["lease_s"] * 1.1 + m["lease_clock_skew_s"] - steps["detect"]
                        + 5.0),
        # the promotion's model and one poll of it (5 s), a look at the dead Region's
        # database (held requests, in timeout mode); not the old lease: only route waits it
        "promote": promote + 5.0 + 10.0,
        "await_ready": boot + 5.0,
        # the new writer's app confirms its lease, Route 53's checkers see it healthy
        "dns": m["probe_interval_s"] + m["dns_check_interval_s"] * (
            m["dns_failure_threshold"] + 1) + 5.0,
    }
    over = {k: (steps[k], v) for k, v in budget.items() if steps.get(k, 0.0) > v}
    assert not over, f"over budget (took, allowed): {over}; all: {steps}"
    assert steps["detect"] > 0


def assert_dns_moved_while_the_database_promoted(r: dict[str, Any]) -> None:
    """The lease was handed to the standby once the old one ended, before its promotion did:
    the resolver answered the standby before it took writes, and what DNS sent it meanwhile
    was refused with 503 (+ Retry-After), never lost. Without the handover, DNS waits for
    `route`, after the promotion, and this fails."""
    promoted = next(e["mono_ns"] for e in r["journal"] if e["event"] == "step"
                    and e["step"] == "promote" and e["outcome"] == "done")
    handovers = [e["mono_ns"] for e in r["journal"]
                 if e["event"] == "handover" and e["outcome"] == "done"]
    assert handovers and handovers[0] < promoted, "no handover before the promotion ended"
    assert r["dns_before_promoted"], (r["rto_modeled_s"], r["rto_writes_s"])
    assert set(r["availability"]["refused_by_new_primary"]) <= {"503"}, r["availability"]


@pytest.mark.parametrize(("variant", "aws", "mode", "hooks"), [
    # pilot light on RDS MySQL (seed 000): RDS promote, the backup ASG from 0; the Lambda
    # running the plan is killed when `promote` starts: the next scheduled run takes the plan
    # over once its lease ends (RDS PostgreSQL is promoted in the rds-lambda case)
    ("pilot-light", {"engine": "mysql"}, FailMode.REFUSED,
     {"kill_at_step": "promote", "heal_after": True}),
    # warm standby on Lambda and Aurora Global (the serverless architecture), the real app
    # with a session load in both Regions on the sessions' global table (replicated 5 s
    # behind: some sessions are not replicated yet when the Region dies); the dead region
    # times out instead of refusing; two extra schedules fire at once in the standby's Region
    ("warm-standby", {}, FailMode.TIMEOUT,
     {"concurrent_runs": 2, "real_app": True,
      "model": LatencyModel(global_table_replication_s=5.0)}),
    # warm standby on Lambda with RDS; one SNS alarm message is delivered twice
    ("warm-standby", {"database": "rds"}, FailMode.REFUSED, {"duplicate_alarm": True}),
    # warm standby on EC2 with Aurora Global
    ("warm-standby", {"compute": "ec2"}, FailMode.REFUSED, {}),
], ids=["rds-mysql-ec2-killed-mid-plan", "aurora-lambda-concurrent-runs",
        "rds-lambda-duplicate-sns", "aurora-ec2"])
def test_primary_region_out_fails_over_from_the_standby_region_alone(
        tmp_path: Path, variant: str, aws: dict[str, Any], mode: FailMode,
        hooks: dict[str, Any]) -> None:
    r = drill(tmp_path, variant, FaultKind.REGION_OUTAGE, E, aws=aws, mode=mode, **hooks)
    assert r["topology"]["engine"] == aws.get("engine", "postgres")
    assert_failed_over_from_the_standby_alone(r)
    if not hooks.get("kill_at_step"):  # a killed runner's plan waits out its plan lease
        assert_within_budget(r)
        assert_dns_moved_while_the_database_promoted(r)
    compute = r["compute_after"][W]
    if compute["kind"] == "asg":  # scaled to the primary's capacity, and serving
        assert compute["desired"] == 2 and compute["healthy"] >= 1
    if hooks.get("kill_at_step"):
        assert [h["event"] for h in r["hooks"]] == ["killed_runner"]
        assert r["plan_resumed"]  # resumed from the arbiter's progress, not restarted
    if hooks.get("heal_after"):
        # retire could not reach the dead region; once back, its own guard retired it, and
        # it stays fenced: the arbiter names the standby as writer until a failback
        assert "retire" in {e.get("step") for e in r["journal"]
                            if e.get("outcome") == "unfinished"}
        back = r["after_heal"]
        assert back["unfinished"] == [] and back["compute"][E]["desired"] == 0
        assert back["writable_regions"] == [W] and back["old_primary_lease_held"] is False
    if hooks.get("concurrent_runs"):
        assert r["hooks"][0]["count"] == 2  # and still one promote, one epoch increment
    if hooks.get("real_app"):
        assert_sessions_served_through_the_outage_and_reconciled(r)
    if hooks.get("duplicate_alarm"):
        dup = r["hooks"][-1]
        assert dup["event"] == "duplicate_sns" and dup["handled_once"] and dup["same_result"], \
            r["alarm_results"]


def test_standby_region_out_changes_nothing_and_the_primary_keeps_serving(
        tmp_path: Path) -> None:
    r = drill(tmp_path, "pilot-light", FaultKind.REGION_OUTAGE, W)
    assert r["outcome"] == "no_failover" and r["epoch_after"] == r["epoch_before"]
    assert r["availability"]["acknowledged"] == r["availability"]["writes"] > 0, \
        r["availability"]["refused"]
    assert r["writable_regions_after"] == [E]


def test_witness_out_changes_nothing(tmp_path: Path) -> None:
    r = drill(tmp_path, "pilot-light", FaultKind.REGION_OUTAGE, WITNESS)
    assert r["outcome"] == "no_failover" and r["epoch_after"] == r["epoch_before"]
    assert r["availability"]["acknowledged"] == r["availability"]["writes"] > 0, \
        r["availability"]["refused"]
    assert r["writable_regions_after"] == [E]


def test_with_the_witness_guard_gone_the_standbys_two_probers_still_fail_over(
        tmp_path: Path) -> None:
    """The witness's guard fails (its Lambda, not its Region: its arbiter replica serves) and
    its reports go stale before the primary's Region goes out. Outside the primary two
    vantage points are left, the standby's two probers, and they decide: no failover
    otherwise (one vote), which this drill would report as `no_failover`."""
    r = drill(tmp_path, "warm-standby", FaultKind.REGION_OUTAGE, E, guards_out=(WITNESS,))
    assert_failed_over_from_the_standby_alone(r)
    [verdict] = [e for e in r["journal"] if e["event"] == "verdict"]
    assert f"{W}/b" in verdict["vantages"] and WITNESS not in verdict["vantages"], verdict


def test_a_partition_never_leaves_two_writers_and_the_cut_off_database_fences_itself(
        tmp_path: Path) -> None:
    """The workload app itself (`create_app`) in both Regions, each over a real PostgreSQL
    standing in for its database (the standby streams through a relay the fault cuts). A
    partition cuts the primary off (its arbiter replica loses its quorum, so its lease; the
    others fail over to the standby): its app loses the write lease, and its database's own
    fence closes within the lease, so a client writing straight to that database (no app, no
    lease) commits before the fault and is refused after it, by the fence (RGF01). The
    standby takes over with the real app's lease and `/health/route`: no split brain, and
    once promoted its database takes the same direct writes."""
    r = drill(tmp_path, "warm-standby", FaultKind.PARTITION, E, real_app=True)
    assert r["outcome"] == "failed_over" and r["new_primary_region"] == W, r["journal"][-5:]
    assert not r["split_brain"], r["anomalies"]
    assert r["writable_regions_after"] == [W]
    assert r["acknowledged_writes"] > 0
    old, new = r["bypass"]["east"], r["bypass"]["west"]
    assert old["before_fault_committed"] > 0, old  # the fence held it open under the lease
    lease_s = r["models"]["lease_s"]
    assert old["last_committed_after_fault_s"] is None \
        or old["last_committed_after_fault_s"] <= lease_s * 1.1, old  # within the lease
    assert old["after_fault_refused"] > 0 and "RGF01" in old["refusals"], old
    assert new["after_fault_committed"] > 0, new  # the new primary's fence is open
    assert set(r["availability"]["refused_by_new_primary"]) <= {"503"}, r["availability"]


def test_the_drill_catches_the_split_brain_of_a_lease_wait_shorter_than_the_apps_lease(
        tmp_path: Path) -> None:
    """The safety test of the lease wait: a partition, with the apps holding their lease ten
    times longer than the guard waits (the wait, in effect, removed). On RDS the cut-off
    primary's database stays writable in its Region (Aurora would demote it at the failover),
    so it keeps acknowledging under its lease after the standby took writes, and the drill's
    checker says so. (RDS promotes in 60 s here, to keep the drill short.)"""
    r = drill(tmp_path, "warm-standby", FaultKind.PARTITION, E, aws={"database": "rds"},
              app_lease_s=300.0, model=LatencyModel(rds_promote_s=60.0))
    assert r["outcome"] == "failed_over" and r["new_primary_region"] == W
    assert r["split_brain"], "two writers went unnoticed"
    assert any("epoch" in a for a in r["anomalies"]), r["anomalies"]


def test_a_control_plane_outage_of_the_primary_is_not_a_reason_to_fail_over(
        tmp_path: Path) -> None:
    r = drill(tmp_path, "warm-standby", FaultKind.CONTROL_PLANE_OUTAGE, E)
    assert r["outcome"] == "no_failover" and r["epoch_after"] == r["epoch_before"]
    assert r["availability"]["acknowledged"] == r["availability"]["writes"] > 0, \
        r["availability"]["refused"]
