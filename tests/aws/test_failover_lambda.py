"""The guard Lambda against an in-process moto estate: its handler, its events and its decisions.

A real-format alarm SNS event wakes the standby's guard; it fails over only when the vantage
points outside the primary agree (its own probe and the witness's report), promotes the replica,
scales the backup ASG, hands the write lease (and so DNS) to the standby through the arbiter,
and notifies. A duplicate delivery changes nothing. Route 53's API is never called: the records
stay as the IaC made them. (The region-outage drills in test_emulated.py run the same handler
against moto's server behind the fault proxy.)
"""

from __future__ import annotations

import contextlib
import importlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

pytest.importorskip("moto", reason="the aws extra is not installed")

from moto import mock_aws

from regionguard.aws_naming import names_for
from regionguard.clock import CLOCK_ENV, ScaledClock
from regionguard.providers.aws.state import DynamoDBStateStore

from .estate import EAST, WEST, Estate, alarm_sns_event, build_estate, write_report
from .stub_apps import StubApps
from .topologies import topology

pytestmark = pytest.mark.aws

WITNESS = "us-east-2"
# the lease wait and the pollers run on a scaled clock, 20x faster: a report stays fresh for
# 70 world seconds (3.5 s real), which a loaded 2-core machine's handler start cannot outlast
FACTOR = 0.05
SEED_EVERY_S = 0.05  # real seconds between a seeded report's renewals (1 world second)


class Context:
    function_name = "orders-regionguard-failover"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{WEST}:123456789012:function:{function_name}"
    aws_request_id = "req-1"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 600_000


def _promote_like_rds(original: Any) -> Any:
    """moto 5 keeps reporting ReadReplicaSourceDBInstanceIdentifier after PromoteReadReplica;
    real RDS drops it (the instance is no longer a replica). Patch only that."""

    def promote(self: Any, db_kwargs: dict[str, Any]) -> Any:
        database = original(self, db_kwargs)
        database.source_db_instance_identifier = None
        return database

    return promote


class World:
    def __init__(self, estate: Estate, entry: Any, apps: StubApps, clock: ScaledClock,
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.estate, self.entry, self.apps, self.clock = estate, entry, apps, clock
        self.monkeypatch = monkeypatch
        self._seeders: dict[str, tuple[threading.Event, threading.Thread]] = {}

    def close(self) -> None:
        for vantage in list(self._seeders):
            self._stop_seeding(vantage)

    def _stop_seeding(self, vantage: str) -> None:
        if vantage in self._seeders:
            stop, seeder = self._seeders.pop(vantage)
            stop.set()
            seeder.join(timeout=5)

    def run_in(self, region: str, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the handler as the guard function deployed in `region`."""
        self.monkeypatch.setenv("AWS_REGION", region)
        result: dict[str, Any] = self.entry.handler(event, Context())
        return result

    def seed_down(self, vantage: str, failures: int) -> None:
        """`vantage`'s guard has seen the primary fail `failures` times and keeps reporting
        it, as a scheduled guard does every probe interval: the report is renewed with the
        current time every SEED_EVERY_S until that site's own guard publishes its report
        there (the guard under test takes over from "its last run"). At 100x a handler's
        start under a loaded machine can take most of the 70 s (0.7 s real) staleness
        window; a report stamped once could go stale before the handler reads it, and one
        stamped ahead is what the guard rejects as a clock running fast."""
        self._stop_seeding(vantage)
        write_report(self.estate, vantage, "east", failures, self.clock.time())
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(SEED_EVERY_S):
                if not write_report(self.estate, vantage, "east", failures, self.clock.time(),
                                    only_over_seeds=True):
                    return  # the site's own guard reports now

        seeder = threading.Thread(target=renew, daemon=True, name=f"seed-{vantage}")
        seeder.start()
        self._seeders[vantage] = (stop, seeder)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with make_world(monkeypatch) as w:
        yield w


@contextlib.contextmanager
def make_world(monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Iterator[World]:
    from moto.rds.models import RDSBackend

    monkeypatch.setattr(RDSBackend, "promote_read_replica",
                        _promote_like_rds(RDSBackend.promote_read_replica))
    clock = ScaledClock.starting_now(FACTOR)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": WEST,
                       "AWS_REGION": WEST, CLOCK_ENV: clock.to_env(),
                       "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        est = build_estate(lambda zone: topology("pilot-light", aws={"hosted_zone_id": zone},
                                                 **overrides))
        n = names_for(est.topology)
        monkeypatch.setenv("RG_TOPOLOGY", est.topology.model_dump_json(exclude={"state_dir"}))
        monkeypatch.setenv("RG_STATE_TABLE", n.state_table())
        with StubApps(n.state_table(), {EAST: "east", WEST: "west"}).running() as apps:
            monkeypatch.setenv("RG_APP_ENDPOINTS", json.dumps(apps.endpoints()))
            import regionguard.providers.aws.lambda_entry as entry

            world = World(est, importlib.reload(entry), apps, clock, monkeypatch)
            try:
                yield world
            finally:
                world.close()


def records(est: Estate) -> list[dict[str, Any]]:
    return boto3.client("route53", region_name=EAST).list_resource_record_sets(
        HostedZoneId=est.zone_id)["ResourceRecordSets"]


def snapshot(est: Estate) -> dict[str, Any]:
    n = names_for(est.topology)
    replica = boto3.client("rds", region_name=WEST).describe_db_instances(
        DBInstanceIdentifier=n.db_instance(WEST))["DBInstances"][0]
    asg = boto3.client("autoscaling", region_name=WEST).describe_auto_scaling_groups(
        AutoScalingGroupNames=[n.asg(WEST)])["AutoScalingGroups"][0]
    state = boto3.client("dynamodb", region_name=WEST).get_item(
        TableName=n.state_table(), Key={"pk": {"S": "state"}}).get("Item", {})
    return {"replica_source": replica.get("ReadReplicaSourceDBInstanceIdentifier"),
            "asg": (asg["MinSize"], asg["MaxSize"], asg["DesiredCapacity"]),
            "records": records(est), "epoch": int(state.get("epoch", {"N": "1"})["N"]),
            "writer": state.get("writer", {}).get("S"),
            "roles": json.loads(state["roles"]["S"]) if "roles" in state else None}


def notifications(est: Estate) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=WEST)
    out = []
    while msgs := sqs.receive_message(QueueUrl=est.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []):
        for m in msgs:
            out.append(json.loads(json.loads(m["Body"])["Message"]))
            sqs.delete_message(QueueUrl=est.queue_url, ReceiptHandle=m["ReceiptHandle"])
    return out


def test_alarm_with_the_vantage_points_agreeing_fails_over_and_a_duplicate_changes_nothing(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    est = world.estate
    world.run_in(WEST, {"action": "status"})  # the arbiter's state item, as deployed
    before = snapshot(est)
    assert before["replica_source"] and before["asg"] == (0, 0, 0) and before["epoch"] == 1
    world.apps.up[EAST] = False  # the primary's endpoint stops answering
    world.seed_down(WITNESS, 3)  # the witness has seen it fail three times
    world.seed_down(WEST, 2)  # and the standby's guard twice, in its last run

    result = world.run_in(WEST, alarm_sns_event())
    assert result["cycle"] == "failover" and result["outcome"]["result"] == "done", repr(result)
    after = snapshot(est)
    assert after["replica_source"] is None  # promoted
    assert after["asg"] == (2, 2, 2)  # scaled to the primary capacity
    assert after["epoch"] == 2 and after["writer"] == "west"
    assert after["roles"] == {"east": "standby", "west": "primary"}
    assert after["records"] == before["records"]  # Route 53 untouched: DNS follows the lease
    sent = notifications(est)
    assert any(m["event"] == "failover_done" and m["to"] == "west" for m in sent), sent
    # the metrics, as embedded-metric log lines (no CloudWatch API call on the failover path)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines()
           if line.startswith("{") and '"_aws"' in line]
    names = {m["Name"]: doc for doc in emf
             for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"Failovers", "RTO", "StepDuration"} <= set(names), names
    assert names["Failovers"]["Kind"] == "failover" and names["Failovers"]["Outcome"] == "done"
    rto = names["RTO"]["RTO"]
    assert (rto[0] if isinstance(rto, list) else rto) > 0 and names["RTO"]["App"] == "orders"
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "RegionGuard" for d in emf)

    again = world.run_in(WEST, alarm_sns_event())  # SNS delivers at least once
    assert again == result
    assert snapshot(est) == after and notifications(est) == []


def test_a_warm_environment_reuses_its_clients_and_the_replica_that_answered(
        world: World) -> None:
    """boto3 clients and the arbiter's replica order are made once per execution environment
    (one Region): a warm invocation neither rebuilds them nor tries a replica that failed
    again first."""
    first, again = world.entry._ports(), world.entry._ports()
    assert isinstance(first.state, DynamoDBStateStore)
    assert isinstance(again.state, DynamoDBStateStore)
    assert first.state.ctx.clients is again.state.ctx.clients
    order = list(first.state.nearest.order)
    first.state.nearest._prefer(order[-1])  # the last replica answered this invocation
    assert world.entry._ports().state.nearest.order[0] == order[-1]
    world.monkeypatch.setenv("AWS_REGION", EAST)  # another Region: another environment
    elsewhere = world.entry._ports()
    assert isinstance(elsewhere.state, DynamoDBStateStore)
    assert elsewhere.state.ctx.clients is not first.state.ctx.clients


def test_ok_and_insufficient_data_transitions_are_ignored(world: World) -> None:
    before = snapshot(world.estate)
    for state in ("OK", "INSUFFICIENT_DATA"):
        result = world.run_in(WEST, alarm_sns_event(state, message_id=f"m-{state}"))
        assert result["action"] == "ignored" and result["state"] == state
    assert snapshot(world.estate) == before


def test_an_alarm_the_standby_does_not_confirm_does_not_fail_over(world: World) -> None:
    world.seed_down(WITNESS, 5)  # one vantage point sees the primary fail ...
    world.seed_down(WEST, 2)
    result = world.run_in(WEST, alarm_sns_event(message_id="blip"))  # ... the other reaches it
    assert result["cycle"] == "watching" and result["verdict"] != "down", result
    assert snapshot(world.estate)["epoch"] == 1


def test_the_witness_reports_but_never_acts(world: World) -> None:
    world.apps.up[EAST] = False
    world.seed_down(WEST, 5)
    world.seed_down(WITNESS, 2)
    world.monkeypatch.setenv("RG_GUARD_RUN_S", "1")  # one cycle of a scheduled run
    result = world.run_in(WITNESS, {"regionguard": "guard"})
    assert result["cycle"] == "down_seen" and result["verdict"] == "down", result
    assert result["detail"] == "not the failover target"
    assert snapshot(world.estate)["epoch"] == 1


def test_without_the_witness_the_standbys_second_prober_is_the_second_vote(
        world: World) -> None:
    """The witness's guard is gone (it never reports). The standby's guard alone is one
    vote: no failover. The standby's second prober (its own schedule) probes, reports under
    its own name and never acts; with its vote the standby's guard fails over."""
    world.apps.up[EAST] = False
    world.seed_down(WEST, 3)
    world.monkeypatch.setenv("RG_GUARD_RUN_S", "1")  # one cycle of a scheduled run
    alone = world.run_in(WEST, {"regionguard": "guard"})
    assert alone["verdict"] != "down" and snapshot(world.estate)["epoch"] == 1, alone
    world.monkeypatch.setenv("RG_GUARD_RUN_S", "16")  # three failed probes and more
    second = world.run_in(WEST, {"regionguard": "guard", "prober": "b"})
    assert second["prober"] == "b" and second.get("outcome") is None, second
    assert snapshot(world.estate)["epoch"] == 1  # it only reports
    world.monkeypatch.setenv("RG_GUARD_RUN_S", "1")
    acted = world.run_in(WEST, {"regionguard": "guard"})
    assert acted["cycle"] == "failover" and acted["outcome"]["result"] == "done", acted
    assert snapshot(world.estate)["writer"] == "west"


def test_direct_status_and_switchover_refusal(world: World) -> None:
    status = world.run_in(WEST, {"action": "status"})
    assert status["epoch"] == 1 and status["roles"]["east"] == "primary"
    assert status["databases"]["west"]["in_recovery"] is True
    refused = world.run_in(WEST, {"action": "switchover", "to": "west"})
    assert refused["action"] == "refused" and "asynchronous" in refused["error"]
    assert snapshot(world.estate)["epoch"] == 1  # nothing was claimed


def test_manual_approval_waits_in_the_arbiter_and_the_approved_plan_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """failover.approval = manual on AWS: the standby's guard opens the request in the
    arbiter instead of failing over; `regionguard --world aws approve` answers it there; the
    next run (any invocation: the request outlives it) runs exactly that plan."""
    from regionguard.providers.aws.wiring import approvals

    with make_world(monkeypatch, failover={"approval": "manual"}) as world:
        world.apps.up[EAST] = False
        world.seed_down(WITNESS, 3)
        world.seed_down(WEST, 2)
        result = world.run_in(WEST, alarm_sns_event())
        assert result["cycle"] == "down_seen" and "approval" in result["detail"], result
        assert snapshot(world.estate)["epoch"] == 1  # nothing ran
        box = approvals(world.entry._ports())
        pending = box.pending()
        assert pending is not None and (pending["source"], pending["target"]) == ("east", "west")
        status = world.run_in(WEST, {"action": "status"})
        assert status["awaiting_approval"]["plan_id"] == pending["plan_id"]
        sent = notifications(world.estate)
        assert any(m["event"] == "approval_requested" for m in sent), sent

        box.decide(pending["plan_id"], "approved", "ada@ops", world.clock.time())
        world.seed_down(WITNESS, 4)
        world.seed_down(WEST, 3)
        world.monkeypatch.setenv("RG_GUARD_RUN_S", "1")
        ran = world.run_in(WEST, {"regionguard": "guard"})
        assert ran["cycle"] == "failover" and ran["outcome"]["result"] == "done", ran
        assert ran["outcome"]["plan"] == pending["plan_id"]
        assert snapshot(world.estate)["writer"] == "west" and box.pending() is None


def test_the_standbys_guard_evaluates_readiness_on_quiet_runs_and_alerts_a_drift(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    n = names_for(world.estate.topology)
    world.monkeypatch.setenv("RG_GUARD_RUN_S", "1")
    quiet = world.run_in(WEST, {"regionguard": "guard"})
    assert quiet["cycle"] == "watching" and quiet["readiness"] == "fail", quiet  # no drill yet
    assert world.run_in(EAST, {"regionguard": "guard"}).get("readiness") is None  # one judge
    checks = readiness_checks(world)
    assert checks["standby_replication"]["status"] == "pass", checks
    assert checks["standby_capacity"]["status"] == "pass", checks
    assert checks["configuration_drift"]["status"] == "pass", checks
    assert checks["last_drill"]["status"] == "fail"
    # moto runs the code as a user, not the guard's role: the simulation says it cannot look
    assert checks["failover_permissions"]["status"] == "warn"
    assert checks["sessions_table"]["status"] == "pass", checks["sessions_table"]

    # someone scaled the primary's group by hand: the next quiet run says so, and alerts
    boto3.client("autoscaling", region_name=EAST).set_desired_capacity(
        AutoScalingGroupName=n.asg(EAST), DesiredCapacity=1)
    notifications(world.estate)  # drain
    world.run_in(WEST, {"regionguard": "guard"})
    drift = readiness_checks(world)["configuration_drift"]
    assert drift["status"] == "fail" and "wants 1 instances" in drift["observed"], drift
    sent = notifications(world.estate)
    assert [m["name"] for m in sent if m["event"] == "readiness_failed"] == [
        "configuration_drift"]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines()
           if line.startswith("{") and '"ReadinessFailing"' in line]
    assert {d["Check"] for d in emf} >= {"configuration_drift", "last_drill"}


def test_readiness_warns_on_slow_session_replication_and_fails_on_a_missing_replica(
        world: World) -> None:
    """The sessions' global table: DynamoDB's ReplicationLatency (CloudWatch, in the source
    Region) above aws.sessions_replication_warn_s warns; a replica gone fails."""
    n = names_for(world.estate.topology)
    world.monkeypatch.setenv("RG_GUARD_RUN_S", "1")
    now = datetime.fromtimestamp(world.clock.time(), UTC)
    boto3.client("cloudwatch", region_name=EAST).put_metric_data(
        Namespace="AWS/DynamoDB", MetricData=[{
            "MetricName": "ReplicationLatency", "Timestamp": now - timedelta(minutes=1),
            "Dimensions": [{"Name": "TableName", "Value": n.sessions_table()},
                           {"Name": "ReceivingRegion", "Value": WEST}],
            "Value": 9000.0, "Unit": "Milliseconds"}])
    world.run_in(WEST, {"regionguard": "guard"})
    slow = readiness_checks(world)["sessions_table"]
    assert slow["status"] == "warn" and f"{EAST} -> {WEST} 9.0 s" in slow["observed"], slow
    boto3.client("dynamodb", region_name=WEST).delete_table(TableName=n.sessions_table())
    world.run_in(WEST, {"regionguard": "guard"})
    gone = readiness_checks(world)["sessions_table"]
    assert gone["status"] == "fail" and WEST in gone["observed"], gone


def readiness_checks(world: World) -> dict[str, dict[str, Any]]:
    from regionguard.providers.aws.wiring import build_ports

    entries = build_ports(world.estate.topology).journal.entries()
    last = next(e for e in reversed(entries) if e["event"] == "readiness")
    return {c["name"]: c for c in last["checks"]}


def test_anti_flap_holds_a_verdict_back_after_an_automatic_plan_in_aws_too(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """failover.min_interval_s on AWS: the last plan's record in the arbiter says it was
    automatic and when it ended; the failover target's guard holds a new verdict back within
    the interval (journaled and notified once), where before it would have failed over."""
    from dataclasses import replace

    from regionguard.config import Role
    from regionguard.orchestrator.plans import Plan, PlanKind

    with make_world(monkeypatch, failover={"min_interval_s": 600}) as world:
        ports = world.entry._ports()
        last = replace(Plan("failover-earlier", PlanKind.FAILOVER, "west", "east", 1, ()),
                       automatic=True)
        ports.state.claim_epoch(1, last)  # an automatic plan that ended 30 s ago
        ports.state.finish_plan(last.id, {"east": Role.PRIMARY, "west": Role.STANDBY},
                                world.clock.time() - 30)
        world.apps.up[EAST] = False
        world.seed_down(WITNESS, 3)
        world.seed_down(WEST, 2)
        result = world.run_in(WEST, alarm_sns_event())
        assert result["cycle"] == "down_seen" and "held back" in result["detail"], repr(result)
        assert snapshot(world.estate)["epoch"] == 2  # nothing claimed
        world.seed_down(WEST, 3)  # its next scheduled run, as the guard's own report
        again = world.run_in(WEST, alarm_sns_event(message_id="second-alarm"))
        assert again["cycle"] == "down_seen", repr(again)
        held = [e for e in ports.journal.entries() if e["event"] == "held_back"]
        assert len(held) >= 1 and "min_interval_s = 600" in held[0]["detail"]
        assert any(m["event"] == "held_back" for m in notifications(world.estate))
