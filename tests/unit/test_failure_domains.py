"""The emulated AWS's failure domains and request classification, without a network: who can
reach whom under each fault, which replica keeps its quorum, and which API call a request is
(from requests botocore itself builds, captured before they are sent)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("boto3", reason="the aws extra is not installed")

import boto3
from botocore.awsrequest import AWSResponse

from regionguard.emulated.domains import (
    INTERNET,
    FailMode,
    FailureDomains,
    Fault,
    FaultKind,
)
from regionguard.emulated.operations import Call, classify

pytestmark = pytest.mark.unit

E, W, WITNESS = "us-east-1", "us-west-2", "us-east-2"


def domains(kind: FaultKind | None = None, region: str = E) -> FailureDomains:
    d = FailureDomains((E, W, WITNESS))
    if kind is not None:
        d.inject(Fault(kind, region, FailMode.REFUSED, 0.0))
    return d


def test_a_region_outage_fails_every_request_to_and_from_it() -> None:
    d = domains(FaultKind.REGION_OUTAGE)
    for caller in (E, W, WITNESS, INTERNET):
        assert d.check(caller, E, control_mutation=False) is not None
    assert d.check(E, W, False) is not None  # a dead region makes no calls either
    assert d.check(W, W, False) is None and d.check(INTERNET, W, False) is None
    assert not d.quorum(E) and d.quorum(W)  # the surviving replica still has the witness


def test_a_partition_cuts_the_region_off_from_the_others_not_from_the_internet() -> None:
    d = domains(FaultKind.PARTITION)
    assert d.check(W, E, False) is not None and d.check(E, W, False) is not None
    assert d.check(WITNESS, E, False) is not None
    assert d.check(INTERNET, E, False) is None and d.check(E, E, False) is None
    assert not d.quorum(E)  # the cut-off replica can reach no other site: no writes there
    assert d.quorum(W)


def test_a_control_plane_outage_fails_mutating_control_plane_calls_only() -> None:
    d = domains(FaultKind.CONTROL_PLANE_OUTAGE)
    block = d.check(W, E, control_mutation=True)
    assert block is not None and block.mode is FailMode.ERROR
    assert d.check(W, E, control_mutation=False) is None
    assert d.quorum(E)


def test_healing_restores_every_path() -> None:
    d = domains(FaultKind.REGION_OUTAGE)
    d.heal()
    assert all(d.check(c, t, True) is None for c in (E, W, WITNESS) for t in (E, W, WITNESS))


def captured(service: str, region: str, call: str, **kwargs: Any) -> Call:
    """Build the request botocore would send, classify it, and send nothing."""
    client = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x").client(
        service, region_name=region)
    seen: dict[str, Call] = {}

    def capture(request: Any, **_: Any) -> AWSResponse:
        body = request.body or b""
        body = body if isinstance(body, bytes) else body.encode()
        path = request.url.split(".com", 1)[1] if ".com" in request.url else request.url
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else v
                   for k, v in request.headers.items()}
        seen["call"] = classify(request.method, path or "/", headers, body)
        raise _Captured

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Captured):
        getattr(client, call)(**kwargs)
    return seen["call"]


class _Captured(Exception):
    pass


@pytest.mark.parametrize(("service", "call", "kwargs", "operation", "control_mutation"), [
    ("dynamodb", "put_item", {"TableName": "t", "Item": {"pk": {"S": "x"}}}, "PutItem", False),
    ("rds", "promote_read_replica", {"DBInstanceIdentifier": "db"}, "PromoteReadReplica", True),
    ("rds", "describe_db_instances", {}, "DescribeDBInstances", False),
    ("autoscaling", "update_auto_scaling_group", {"AutoScalingGroupName": "a"},
     "UpdateAutoScalingGroup", True),
    ("cloudwatch", "put_metric_data", {"Namespace": "n", "MetricData": []}, "PutMetricData",
     False),
    ("route53", "change_resource_record_sets",
     {"HostedZoneId": "Z1", "ChangeBatch": {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
         "Name": "a.example.com", "Type": "A", "TTL": 60,
         "ResourceRecords": [{"Value": "192.0.2.1"}]}}]}},
     "ChangeResourceRecordSets", True),
    ("route53", "list_resource_record_sets", {"HostedZoneId": "Z1"}, "ListResourceRecordSets",
     False),
])
def test_every_protocol_is_classified_as_the_call_it_is(
        service: str, call: str, kwargs: dict[str, Any], operation: str,
        control_mutation: bool) -> None:
    c = captured(service, "us-east-1", call, **kwargs)
    assert c.operation == operation and c.control_mutation is control_mutation
    assert c.region == "us-east-1"


def test_the_apps_own_traffic_is_data_plane() -> None:
    for operation in ("GET /health/deep", "POST /orders"):
        assert not Call("app", operation, E).control_mutation
