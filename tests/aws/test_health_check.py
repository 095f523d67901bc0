"""`GET /health-check` (seed 004) answers for every Region from the serving Region's replica of
the table: the standby's endpoint still reports the primary (as stale) when the primary stopped
writing its rows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("moto", reason="the aws extra is not installed")

import boto3
from moto import mock_aws

from regionguard.providers.aws import health

pytestmark = pytest.mark.aws

TABLE = "orders-regionguard-state"


@pytest.fixture
def west(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_REGION": "us-west-2", "RG_REGION": "west",
                       "RG_REGIONS": "east,west", "RG_STATE_TABLE": TABLE}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        boto3.client("dynamodb", region_name="us-west-2").create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        yield


def report(region: str, status: str, age_s: float) -> None:
    boto3.client("dynamodb", region_name="us-west-2").put_item(TableName=TABLE, Item={
        "pk": {"S": f"health#{region}"}, "status": {"S": status}, "detail": {"S": "HTTP 200"},
        "checked_at": {"N": str(time.time() - age_s)}, "latency_s": {"N": "0.042"}})


def test_every_region_is_reported_with_its_age(west: None) -> None:
    report("east", "ok", age_s=600)  # the primary stopped reporting ten minutes ago
    report("west", "ok", age_s=20)
    answer = health.handler({"requestContext": {"http": {"method": "GET"}}}, None)
    assert answer["statusCode"] == 200
    body = json.loads(answer["body"])
    assert body["served_by"] == "west"
    regions = {r["region"]: r for r in body["regions"]}
    assert set(regions) == {"east", "west"}
    assert regions["east"]["age_s"] >= 600 and regions["west"]["age_s"] < 60
    assert (regions["east"]["status"], regions["west"]["status"]) == ("stale", "ok")


def test_a_region_that_never_reported_is_unknown_not_missing(west: None) -> None:
    report("west", "ok", age_s=5)
    body = json.loads(health.handler({"requestContext": {"http": {}}}, None)["body"])
    assert {r["region"]: r["status"] for r in body["regions"]} == {"east": "unknown",
                                                                   "west": "ok"}
