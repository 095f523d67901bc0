"""The app's sessions on AWS: this Region's replica of the DynamoDB global table (moto), and
no other Region's; last writer wins; expired sessions read as absent; bad input is a 4xx
naming the field; throttling and an unreachable replica are 503 + Retry-After, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from fastapi.testclient import TestClient

from regionguard.app.main import create_app
from regionguard.app.sessions.dynamodb import DynamoDBSessions
from regionguard.app.settings import AppSettings

from ..manual_clock import ManualClock

pytestmark = pytest.mark.aws

TABLE = "orders-sessions"
HOME, OTHER = "us-west-2", "us-east-1"
NOWHERE = {"west": "postgresql://127.0.0.1:9/none?connect_timeout=1"}  # sessions need no SQL


def make_table(region: str) -> None:
    boto3.client("dynamodb", region_name=region).create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])


@pytest.fixture
def app(moto: None) -> Iterator[tuple[TestClient, ManualClock]]:
    for region in (HOME, OTHER):
        make_table(region)
    clock = ManualClock()
    settings = AppSettings("west", NOWHERE, sessions_table=TABLE, sessions_region=HOME)
    with TestClient(create_app(settings, clock=clock)) as client:  # type: ignore[arg-type]
        yield client, clock


def item(region: str, session_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = boto3.client("dynamodb", region_name=region).get_item(
        TableName=TABLE, Key={"id": {"S": session_id}}).get("Item")
    return found


def test_a_session_is_written_and_read_in_this_regions_replica_alone(
        app: tuple[TestClient, ManualClock]) -> None:
    client, clock = app
    put = client.put("/sessions/s-1", json={"data": {"cart": [1, 2]}, "ttl_s": 600})
    assert put.status_code == 200, put.text
    assert put.json()["region"] == "west" and put.json()["data"] == {"cart": [1, 2]}
    stored = item(HOME, "s-1")
    assert stored is not None and int(stored["expires_at"]["N"]) == int(clock.now + 600)
    assert item(OTHER, "s-1") is None  # no call to another Region: replication is DynamoDB's
    got = client.get("/sessions/s-1")
    assert got.status_code == 200 and got.json()["data"] == {"cart": [1, 2]}
    # the last writer wins: a second write replaces the first, whole
    clock.now += 1
    assert client.put("/sessions/s-1", json={"data": {"theme": "dark"}}).status_code == 200
    assert client.get("/sessions/s-1").json()["data"] == {"theme": "dark"}
    assert client.delete("/sessions/s-1").status_code == 204
    assert client.get("/sessions/s-1").status_code == 404
    assert client.delete("/sessions/s-1").status_code == 204  # idempotent
    # no lease, no front door: an epoch header (even the "no route yet" 0) is not asked for
    routed = client.put("/sessions/s-1", json={"data": {}},
                        headers={"X-Regionguard-Epoch": "0", "X-Regionguard-Writer": "east"})
    assert routed.status_code == 200, routed.text


def test_an_expired_session_reads_as_absent_before_the_ttl_sweep(
        app: tuple[TestClient, ManualClock]) -> None:
    client, clock = app
    assert client.put("/sessions/s-2", json={"data": {}, "ttl_s": 60}).status_code == 200
    clock.now += 59
    assert client.get("/sessions/s-2").status_code == 200
    clock.now += 1
    assert item(HOME, "s-2") is not None  # still stored: DynamoDB's TTL deletes it later
    assert client.get("/sessions/s-2").status_code == 404


BAD = [
    ("/sessions/bad id", {"data": {}}, "session_id"),
    ("/sessions/" + "x" * 129, {"data": {}}, "session_id"),
    ("/sessions/s", {"data": [1]}, "data"),
    ("/sessions/s", {"data": {"k": "v" * 5000}}, "data"),
    ("/sessions/s", {"data": {}, "ttl_s": 0}, "ttl_s"),
    ("/sessions/s", {"data": {}, "ttl_s": 31 * 86400}, "ttl_s"),
    ("/sessions/s", {}, "data"),
]


def test_bad_input_is_a_4xx_naming_the_field(app: tuple[TestClient, ManualClock]) -> None:
    client, _ = app
    for path, body, field in BAD:
        answer = client.put(path, json=body)
        assert 400 <= answer.status_code < 500, (path, body, answer.text)
        assert field in answer.text, (path, body, answer.text)
    # NaN parses in Python, but is not JSON: refused, never stored and then a 500 on the answer
    nan = client.put("/sessions/s", content=b'{"data": {"x": NaN}}',
                     headers={"content-type": "application/json"})
    assert nan.status_code == 422 and "NaN" in nan.text, nan.text
    order = client.post("/orders", content=b'{"request_id": "r", "customer": "a", "item": "b",'
                        b' "quantity": NaN}', headers={"content-type": "application/json"})
    assert order.status_code == 422 and "quantity" in order.text, order.text  # no 500 either
    assert item(HOME, "s") is None


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException",
                                  "ThrottlingException"])
def test_throttling_is_a_503_with_retry_after(moto: None, code: str) -> None:
    client = boto3.client("dynamodb", region_name=HOME)
    stubber = Stubber(client)
    stubber.add_client_error("put_item", service_error_code=code, http_status_code=400)
    stubber.add_client_error("get_item", service_error_code=code, http_status_code=400)
    store = DynamoDBSessions(TABLE, HOME, client)
    settings = AppSettings("west", NOWHERE)
    with stubber, TestClient(create_app(settings, sessions=store)) as app:
        put = app.put("/sessions/s-3", json={"data": {}})
        got = app.get("/sessions/s-3")
    for answer in (put, got):
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1", answer.text
        assert "throttling" in answer.json()["detail"]


def test_an_unreachable_replica_is_a_503_never_a_500(moto: None) -> None:
    client = boto3.client("dynamodb", region_name=HOME, endpoint_url="http://127.0.0.1:9")
    store = DynamoDBSessions(TABLE, HOME, client)
    with TestClient(create_app(AppSettings("west", NOWHERE), sessions=store)) as app:
        answer = app.get("/sessions/s-4")
    assert answer.status_code == 503 and "Retry-After" in answer.headers, answer.text
    assert "does not answer" in answer.json()["detail"]


def test_the_table_needs_its_region() -> None:
    from regionguard.app.settings import SettingsError

    with pytest.raises(SettingsError, match="RG_SESSIONS_REGION"):
        AppSettings.from_env({"RG_REGION": "west", "RG_DSNS": '{"west": "x"}',
                              "RG_SESSIONS_TABLE": TABLE})
