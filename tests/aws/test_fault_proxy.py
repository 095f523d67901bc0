"""The emulated AWS's failure domains at the API boundary: moto's server behind the fault
proxy, called by real boto3 clients configured per Region, as the providers are.

- A dead Region fails every request, control and data planes alike, and the global services
  homed there too: Route 53's API and the Route 53 health-check metrics in CloudWatch
  (us-east-1), whoever calls and whatever Region the caller's client names.
- A control-plane outage fails mutating control-plane calls only.
- The arbiter (MRSC) answers on a replica only while it reaches one more site.
Every request is in the proxy's log with its outcome.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("moto", reason="the aws extra is not installed")

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from regionguard.clock import ScaledClock
from regionguard.emulated.domains import INTERNET, FailMode, FailureDomains, Fault, FaultKind
from regionguard.emulated.models import MRSC_TAG, LatencyModel
from regionguard.emulated.motoserver import MotoProcess
from regionguard.emulated.proxy import HOLD_S, FaultProxy
from regionguard.providers.aws.clients import AwsClients

pytestmark = pytest.mark.emulated

E, W, WITNESS = "us-east-1", "us-west-2", "us-east-2"
TABLE = "orders-regionguard-state"


class Aws:
    def __init__(self, moto: MotoProcess, proxy: FaultProxy, clock: ScaledClock) -> None:
        self.moto, self.proxy, self.clock = moto, proxy, clock

    def at(self, caller: str) -> AwsClients:
        """A process in `caller`'s Region (or on the internet), configured as the guard is."""
        session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x")
        return AwsClients(session, self.proxy.endpoints_for(caller), self.clock)

    def fault(self, kind: FaultKind, region: str, mode: FailMode = FailMode.REFUSED) -> float:
        self.proxy.inject(Fault(kind, region, mode, self.clock.time()))
        return self.clock.time()


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    tmp = tmp_path_factory.mktemp("proxy")
    clock = ScaledClock.starting_now(0.02)
    moto = MotoProcess(clock, LatencyModel(), tmp / "control.json")
    port = moto.start()
    proxy = FaultProxy(FailureDomains((E, W, WITNESS)), clock, ("127.0.0.1", port),
                       mrsc_tables={TABLE}, log_path=tmp / "requests.jsonl")
    proxy.start([E, W])
    direct = boto3.client("dynamodb", region_name=E, endpoint_url=moto.url,
                          aws_access_key_id="x", aws_secret_access_key="x")
    direct.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        Tags=[{"Key": MRSC_TAG, "Value": f"{E},{W}"}])
    try:
        yield Aws(moto, proxy, clock)
    finally:
        proxy.stop()
        moto.stop()


@pytest.fixture(autouse=True)
def healed(aws: Aws) -> Iterator[None]:
    yield
    aws.proxy.heal()


def calls_to(c: AwsClients, region: str) -> dict[str, Any]:
    """One call per plane and service, all aimed at `region` (Route 53 at its home)."""
    now = datetime.now(UTC)
    return {
        "dynamodb": lambda: c.get("dynamodb", region).get_item(
            TableName=TABLE, Key={"pk": {"S": "state"}}, ConsistentRead=True),
        "rds": lambda: c.get("rds", region).describe_db_instances(),
        "autoscaling": lambda: c.get("autoscaling", region).describe_auto_scaling_groups(),
        "sns": lambda: c.get("sns", region).list_topics(),
        # Route 53's API lives in us-east-1 whatever Region the client names
        "route53": lambda: c.get("route53", W).list_hosted_zones(),
        "route53-metrics": lambda: c.get("cloudwatch", E).get_metric_statistics(
            Namespace="AWS/Route53", MetricName="HealthCheckStatus", Statistics=["Minimum"],
            Dimensions=[{"Name": "HealthCheckId", "Value": "abcd"}],
            StartTime=now - timedelta(minutes=5), EndTime=now, Period=60),
    }


def test_a_dead_region_fails_every_request_global_services_homed_there_included(
        aws: Aws) -> None:
    for caller in (W, WITNESS, INTERNET):
        for call in calls_to(aws.at(caller), E).values():
            call()  # all answered before the fault
    fault_at = aws.fault(FaultKind.REGION_OUTAGE, E)
    for caller in (W, WITNESS, INTERNET):
        for name, call in calls_to(aws.at(caller), E).items():
            with pytest.raises(BotoCoreError):
                call()
                pytest.fail(f"{name} from {caller} answered during the outage of {E}")
    west = aws.at(W)
    west.get("rds", W).describe_db_instances()  # the survivor serves its own callers
    west.get("dynamodb", W).get_item(TableName=TABLE, Key={"pk": {"S": "state"}},
                                     ConsistentRead=True)  # and keeps its quorum (witness)
    logged = [e for e in aws.proxy.records if e["t"] >= fault_at and e["region"] == E]
    assert logged and all(e["outcome"] == "refused" for e in logged)
    assert {"route53", "monitoring", "dynamodb", "rds"} <= {e["service"] for e in logged}
    aws.proxy.heal()
    calls_to(aws.at(W), E)["route53"]()  # back after the heal


def test_a_timing_out_region_costs_the_caller_its_connect_timeout(aws: Aws) -> None:
    aws.fault(FaultKind.REGION_OUTAGE, E, FailMode.TIMEOUT)
    started = time.monotonic()
    with pytest.raises(BotoCoreError):
        aws.at(W).get("rds", E).describe_db_instances()
    elapsed = time.monotonic() - started
    assert elapsed >= HOLD_S * aws.clock.factor  # held, then dropped: no answer
    assert aws.proxy.records[-1]["outcome"] == "timeout"


def test_a_control_plane_outage_fails_mutations_and_keeps_reads_and_data_planes(
        aws: Aws) -> None:
    aws.fault(FaultKind.CONTROL_PLANE_OUTAGE, E)
    c = aws.at(W)
    with pytest.raises(ClientError) as info:
        c.get("rds", E).promote_read_replica(DBInstanceIdentifier="orders-db-us-east-1")
    assert info.value.response["Error"]["Code"] == "ServiceUnavailable"
    with pytest.raises(ClientError, match="ServiceUnavailable"):
        c.get("autoscaling", E).update_auto_scaling_group(AutoScalingGroupName="a",
                                                          DesiredCapacity=2)
    c.get("rds", E).describe_db_instances()  # reads work
    c.get("dynamodb", E).put_item(TableName=TABLE, Item={"pk": {"S": "cp"}})  # data plane


def test_the_arbiter_is_one_store_that_answers_only_where_a_quorum_is_reached(
        aws: Aws) -> None:
    east, west = aws.at(E), aws.at(W)
    east.get("dynamodb", E).put_item(TableName=TABLE, Item={"pk": {"S": "k"},
                                                             "v": {"S": "from-east"}})
    item = west.get("dynamodb", W).get_item(TableName=TABLE, Key={"pk": {"S": "k"}},
                                            ConsistentRead=True)["Item"]
    assert item["v"]["S"] == "from-east"  # one linearizable store behind both replicas
    aws.fault(FaultKind.PARTITION, W)
    with pytest.raises(ClientError) as info:  # cut off from both other sites: no quorum
        west.get("dynamodb", W).put_item(TableName=TABLE, Item={"pk": {"S": "k"}})
    assert info.value.response["Error"]["Code"] == "InternalServerError"
    east.get("dynamodb", E).put_item(TableName=TABLE, Item={"pk": {"S": "k"},
                                                             "v": {"S": "east-with-witness"}})
    assert aws.proxy.records[-2]["outcome"] == "no-quorum"
