"""The failover Lambda against a moto estate: a real-format alarm SNS event promotes the
replica, scales the backup ASG, points the records at the standby, advances the epoch and
notifies; a duplicate delivery changes nothing; OK transitions are ignored."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

pytest.importorskip("moto", reason="the aws extra is not installed")

from moto import mock_aws

from regionguard.aws_naming import names_for

from .estate import EAST, WEST, Estate, alarm_sns_event, build_estate, write_health
from .topologies import topology


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


@pytest.fixture
def estate(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Estate, Any]]:
    from moto.rds.models import RDSBackend

    monkeypatch.setattr(RDSBackend, "promote_read_replica",
                        _promote_like_rds(RDSBackend.promote_read_replica))
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": WEST,
                       "AWS_REGION": WEST}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        est = build_estate(lambda zone: topology("pilot-light", aws={"hosted_zone_id": zone}))
        monkeypatch.setenv("RG_TOPOLOGY", est.topology.model_dump_json(exclude={"state_dir"}))
        monkeypatch.setenv("RG_STATE_TABLE", names_for(est.topology).state_table())
        monkeypatch.setenv("RG_VERIFY_CANARY", "0")  # no HTTP from tests: control-plane verify
        monkeypatch.setenv("RG_POLL_S", "0.01")
        import regionguard.providers.aws.lambda_entry as entry

        yield est, importlib.reload(entry)


def failover_record(est: Estate) -> dict[str, str]:
    sets = boto3.client("route53", region_name=EAST).list_resource_record_sets(
        HostedZoneId=est.zone_id)["ResourceRecordSets"]
    return {r["SetIdentifier"]: r["Failover"] for r in sets if "SetIdentifier" in r} | {
        "primary_alias": next(r["AliasTarget"]["DNSName"] for r in sets
                              if r.get("Failover") == "PRIMARY")}


def snapshot(est: Estate) -> dict[str, Any]:
    n = names_for(est.topology)
    replica = boto3.client("rds", region_name=WEST).describe_db_instances(
        DBInstanceIdentifier=n.db_instance(WEST))["DBInstances"][0]
    asg = boto3.client("autoscaling", region_name=WEST).describe_auto_scaling_groups(
        AutoScalingGroupNames=[n.asg(WEST)])["AutoScalingGroups"][0]
    state = boto3.client("dynamodb", region_name=EAST).get_item(
        TableName=n.state_table(), Key={"pk": {"S": "state"}}).get(
        "Item", {"epoch": {"N": "1"}, "roles": {"S": '{"east": "primary", "west": "standby"}'}})
    return {"replica_source": replica.get("ReadReplicaSourceDBInstanceIdentifier"),
            "asg": (asg["MinSize"], asg["MaxSize"], asg["DesiredCapacity"]),
            "records": failover_record(est), "epoch": int(state["epoch"]["N"]),
            "roles": json.loads(state["roles"]["S"])}


def notifications(est: Estate) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=WEST)
    out = []
    while msgs := sqs.receive_message(QueueUrl=est.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []):
        for m in msgs:
            out.append(json.loads(json.loads(m["Body"])["Message"]))
            sqs.delete_message(QueueUrl=est.queue_url, ReceiptHandle=m["ReceiptHandle"])
    return out


def test_alarm_fails_over_and_a_duplicate_delivery_changes_nothing(
        estate: tuple[Estate, Any]) -> None:
    est, entry = estate
    before = snapshot(est)
    assert before["replica_source"] and before["asg"] == (0, 0, 0) and before["epoch"] == 1
    assert before["records"]["east"] == "PRIMARY"
    write_health(est, "east", "failed")  # the second, independent observer agrees

    result = entry.handler(alarm_sns_event(), Context())
    assert result["action"] == "failover", result
    after = snapshot(est)
    assert after["replica_source"] is None  # promoted
    assert after["asg"] == (2, 2, 2)  # scaled to the primary capacity
    assert after["records"]["west"] == "PRIMARY" and after["records"]["east"] == "SECONDARY"
    assert after["records"]["primary_alias"].rstrip(".") == est.alb[WEST].rstrip(".")
    assert after["epoch"] == 2 and after["roles"] == {"east": "standby", "west": "primary"}
    sent = notifications(est)
    assert any(m["event"] == "failover_done" and m["to"] == "west" for m in sent), sent
    metrics = boto3.client("cloudwatch", region_name=WEST).list_metrics(Namespace="RegionGuard")
    assert {m["MetricName"] for m in metrics["Metrics"]} >= {"RTO", "StepDuration"}

    again = entry.handler(alarm_sns_event(), Context())  # SNS delivers at least once
    assert again == result
    assert snapshot(est) == after and notifications(est) == []


def test_ok_and_insufficient_data_transitions_are_ignored(estate: tuple[Estate, Any]) -> None:
    est, entry = estate
    before = snapshot(est)
    for state in ("OK", "INSUFFICIENT_DATA"):
        result = entry.handler(alarm_sns_event(state, message_id=f"m-{state}"), Context())
        assert result["action"] == "ignored" and result["state"] == state
    assert snapshot(est) == before


def test_an_alarm_not_confirmed_by_the_health_table_does_not_fail_over(
        estate: tuple[Estate, Any]) -> None:
    est, entry = estate
    write_health(est, "east", "ok")  # the app answers: a Route 53 blip alone is not enough
    result = entry.handler(alarm_sns_event(message_id="blip"), Context())
    assert result["action"] == "none" and "quorum" in result["reason"]
    assert snapshot(est)["epoch"] == 1


def test_direct_status_and_switchover_refusal(estate: tuple[Estate, Any]) -> None:
    est, entry = estate
    status = entry.handler({"action": "status"}, Context())
    assert status["epoch"] == 1 and status["roles"]["east"] == "primary"
    assert status["databases"]["west"]["in_recovery"] is True
    refused = entry.handler({"action": "switchover", "to": "west"}, Context())
    assert refused["action"] == "refused" and "asynchronous" in refused["error"]
    assert snapshot(est)["epoch"] == 1  # the refused plan released its claim
