"""The workload app against a real primary + hot standby: read local, write primary, 503 not 500."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from regionguard.app.lambda_handler import build_handler
from regionguard.app.main import create_app
from regionguard.app.settings import AppSettings, SettingsError
from regionguard.orchestrator.lsn import parse_lsn

from ..conftest import PgPair

pytestmark = pytest.mark.local


def rid() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def order(request_id: str | None = None, **kw: object) -> dict[str, object]:
    return {"request_id": request_id or rid(), "customer": "ada", "item": "widget",
            "quantity": 2, **kw}


# what a front door in front of these apps (run without a write lease) sends: east writes,
# epoch 1
ROUTED = {"X-Regionguard-Epoch": "1", "X-Regionguard-Writer": "east"}
ADMIN = {"Authorization": "Bearer s3cret-admin-token"}


@pytest.fixture
def east(pg_pair: PgPair) -> Iterator[TestClient]:
    settings = AppSettings("east", pg_pair.dsns(), admin_token="s3cret-admin-token")
    with TestClient(create_app(settings), headers=ROUTED) as client:
        yield client


@pytest.fixture
def west(pg_pair: PgPair) -> Iterator[TestClient]:
    settings = AppSettings("west", pg_pair.dsns())
    with TestClient(create_app(settings), headers=ROUTED) as client:
        yield client


def wait_for_writer(client: TestClient, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get("/health/deep").json().get("writer"):
            return
        time.sleep(0.05)
    raise AssertionError("the app never discovered the primary")


def test_write_goes_to_primary_and_replay_returns_the_same_row(east: TestClient) -> None:
    wait_for_writer(east)
    body = order()
    first = east.post("/orders", json=body)
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["region"] == "east" and created["served_by"] == "east"
    assert created["epoch"] == 1 and created["request_id"] == body["request_id"]
    again = east.post("/orders", json=body)
    assert again.status_code == 200
    assert again.json()["id"] == created["id"]
    assert east.get(f"/orders/{created['id']}").json()["request_id"] == body["request_id"]
    # where the commit lies in the server's log: a new write only (a replay committed nothing)
    commit = created["commit"]
    assert commit["timeline"] == 1, commit
    assert parse_lsn(commit["after_lsn"]) < parse_lsn(commit["by_lsn"]), commit
    assert again.json()["commit"] is None
    following = east.post("/orders", json=order()).json()["commit"]
    assert parse_lsn(following["after_lsn"]) >= parse_lsn(commit["by_lsn"])


def test_standby_region_reads_locally_and_writes_to_the_primary(
    west: TestClient, pg_pair: PgPair
) -> None:
    wait_for_writer(west)
    deep = west.get("/health/deep").json()
    assert deep["role"] == "standby" and deep["in_recovery"] is True
    assert deep["writer"] == "east"
    created = west.post("/orders", json=order()).json()
    assert created["region"] == "east" and created["served_by"] == "west"
    # remote_apply: the acknowledged write is already visible on the standby
    read = west.get(f"/orders/{created['id']}")
    assert read.status_code == 200
    with pg_pair.standby.connect() as conn:  # and the read really came from the standby
        row = conn.execute("SELECT pg_is_in_recovery(), count(*) FROM orders WHERE id = %s",
                           (created["id"],)).fetchone()
    assert row == (True, 1)


def test_sessions_live_in_the_primarys_database_and_read_locally(
    east: TestClient, west: TestClient, pg_pair: PgPair
) -> None:
    """The local world's sessions: written to the primary (under the front door's route, like
    an order), read from each region's own database, expired ones read as absent."""
    wait_for_writer(west)
    put = west.put("/sessions/s-1", json={"data": {"cart": ["a"]}, "ttl_s": 60})
    assert put.status_code == 200, put.text
    assert (put.json()["region"], put.json()["served_by"]) == ("west", "west")
    got = west.get("/sessions/s-1")  # remote_apply: already on the standby
    assert got.status_code == 200 and got.json()["data"] == {"cart": ["a"]}
    assert east.put("/sessions/s-1", json={"data": {"v": 2}}).status_code == 200
    assert west.get("/sessions/s-1").json()["data"] == {"v": 2}  # the last write, whole
    with pg_pair.primary.connect() as conn:
        assert conn.execute("SELECT count(*) FROM sessions WHERE id = 's-1'").fetchone() == (1,)
        conn.execute("UPDATE sessions SET expires_at = 1 WHERE id = 's-1'")  # long past
    assert east.get("/sessions/s-1").status_code == 404
    assert east.delete("/sessions/s-1").status_code == 204
    refused = west.put("/sessions/s-2", json={"data": {}},
                       headers={"X-Regionguard-Writer": "west"})
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert west.put("/sessions/s 2", json={"data": {}}).status_code == 422


def test_write_routed_to_the_standby_gets_503_with_retry_after(west: TestClient) -> None:
    response = west.post("/orders", json=order(), headers={"X-Regionguard-Writer": "west"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "standby" in response.json()["detail"]


def test_write_with_a_stale_epoch_is_refused(east: TestClient) -> None:
    body = order()
    response = east.post("/orders", json=body, headers={"X-Regionguard-Epoch": "7",
                                                         "X-Regionguard-Writer": "east"})
    assert response.status_code == 503
    assert "epoch mismatch" in response.json()["detail"]
    by_request = east.get("/orders", params={"request_id": body["request_id"]}).json()
    assert by_request["items"] == []  # refused means not written
    ok = east.post("/orders", json=body, headers={"X-Regionguard-Epoch": "1",
                                                   "X-Regionguard-Writer": "east"})
    assert ok.status_code == 201


def test_a_write_without_a_token_is_refused_never_waved_through(
        east: TestClient, pg_pair: PgPair) -> None:
    """An app without a write lease writes only with the front door's token, which the
    database must hold: a write straight to its port with none, or with a token the database
    does not hold (a newer epoch elsewhere), is refused, and nothing lands."""
    assert east.post("/orders", json=order()).status_code == 201  # routed: east at epoch 1
    body = order()
    newer = east.post("/orders", json=body, headers={"X-Regionguard-Epoch": "2"})
    assert newer.status_code == 503 and "epoch mismatch" in newer.json()["detail"]
    direct = TestClient(east.app)  # a client calling the app's port: no front door, no token
    lost = direct.post("/orders", json=body)
    assert lost.status_code == 503 and "no fencing token" in lost.json()["detail"]
    for placeholder in ("0", "-1", "x"):  # what a front door without a route sends, or junk
        answer = east.post("/orders", json=order(), headers={"X-Regionguard-Epoch": placeholder})
        assert answer.status_code in (400, 503), placeholder
    assert east.get("/orders", params={"request_id": body["request_id"]}).json()["items"] == []


def test_bad_input_found_by_fuzzing_is_a_4xx_naming_the_field(east: TestClient) -> None:
    nul = east.post("/orders", json={**order(), "customer": "a\x00b"})
    assert nul.status_code == 422
    assert [e["loc"] for e in nul.json()["detail"]] == [["body", "customer"]]
    canary = east.post("/_regionguard/canary", json={"token": "t\x00"},
                       headers={"X-Regionguard-Epoch": "null", "X-Regionguard-Writer": "eAV5"})
    assert 400 <= canary.status_code < 500
    huge = east.post("/orders", content=b"x" * 20_000,
                     headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "16384 bytes" in huge.json()["detail"]
    big_epoch = east.post("/orders", json=order(), headers={"X-Regionguard-Epoch": "9" * 30})
    assert big_epoch.status_code == 400


def test_the_canary_and_delete_need_the_admin_credential_and_are_off_without_one(
        east: TestClient, pg_pair: PgPair) -> None:
    wrong = {"Authorization": "Bearer guessed"}
    assert east.post("/_regionguard/canary", json={"token": "c1"}).status_code == 401
    assert east.post("/_regionguard/canary", json={"token": "c1"},
                     headers=wrong).status_code == 401
    ok = east.post("/_regionguard/canary", json={"token": "c1"}, headers=ADMIN)
    assert ok.status_code == 200 and ok.json()["region"] == "east"
    settings = AppSettings("east", pg_pair.dsns())
    with TestClient(create_app(settings), headers=ROUTED) as unconfigured:
        off = unconfigured.post("/_regionguard/canary", json={"token": "c2"}, headers=ADMIN)
        assert off.status_code == 403 and "disabled" in off.json()["detail"]
        assert unconfigured.delete("/orders/1", headers=ADMIN).status_code == 403


def test_validation_errors_are_422_with_field_paths(east: TestClient) -> None:
    response = east.post("/orders", json={"request_id": "", "customer": "x", "quantity": 0})
    assert response.status_code == 422
    fields = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert {("body", "request_id"), ("body", "item"), ("body", "quantity")} <= fields
    assert east.get("/orders", params={"limit": 0}).status_code == 422


def test_list_pages_by_id_and_delete(east: TestClient) -> None:
    wait_for_writer(east)
    ids = [east.post("/orders", json=order()).json()["id"] for _ in range(3)]
    page = east.get("/orders", params={"after": ids[0] - 1, "limit": 2}).json()
    assert [o["id"] for o in page["items"]] == ids[:2]
    assert page["next_after"] == ids[1]
    rest = east.get("/orders", params={"after": page["next_after"], "limit": 2}).json()
    assert rest["items"][0]["id"] == ids[2]
    assert east.delete(f"/orders/{ids[0]}").status_code == 401  # not without the credential
    assert east.get(f"/orders/{ids[0]}").status_code == 200  # and nothing was deleted
    assert east.delete(f"/orders/{ids[0]}", headers=ADMIN).status_code == 204
    assert east.get(f"/orders/{ids[0]}").status_code == 404
    assert east.delete(f"/orders/{ids[0]}", headers=ADMIN).status_code == 404


def test_health_endpoints_and_openapi(east: TestClient) -> None:
    assert east.get("/health").json() == {"status": "ok", "region": "east"}
    deep = east.get("/health/deep").json()
    assert deep["role"] == "primary" and deep["epoch"] == 1 and deep["lag_bytes"] == 0
    spec = east.get("/openapi.json").json()
    assert "/orders" in spec["paths"] and "/health/deep" in spec["paths"]


def test_unreachable_database_is_503_not_500(pg_pair: PgPair) -> None:
    dsns = {**pg_pair.dsns(), "east": "host=127.0.0.1 port=1 dbname=orders user=postgres"}
    with TestClient(create_app(AppSettings("east", dsns, db_timeout_s=0.3))) as client:
        deep = client.get("/health/deep")
        assert deep.status_code == 503 and deep.headers["Retry-After"]
        assert client.get("/orders/1").status_code == 503


def test_migrations_are_idempotent_and_skipped_on_the_standby(pg_pair: PgPair) -> None:
    from regionguard.app.migrate import migrate

    assert migrate(pg_pair.primary.dsn()) == []
    assert migrate(pg_pair.standby.dsn()) == []


def test_settings_from_env_reject_bad_input() -> None:
    with pytest.raises(SettingsError, match="RG_REGION"):
        AppSettings.from_env({})
    with pytest.raises(SettingsError, match="RG_DSNS"):
        AppSettings.from_env({"RG_REGION": "east", "RG_DSNS": "{not json"})
    with pytest.raises(SettingsError, match="'east'"):
        AppSettings.from_env({"RG_REGION": "east", "RG_DSNS": '{"west": "x"}'})


def http_api_v2_event(method: str, path: str, body: dict[str, object] | None = None,
                      query: str = "") -> dict[str, object]:
    """The event API Gateway HTTP API (payload format 2.0) sends to a Lambda integration."""
    raw = json.dumps(body).encode() if body is not None else b""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json", "host": "api.example.com",
                    "x-forwarded-proto": "https", "x-forwarded-port": "443",
                    **{k.lower(): v for k, v in ROUTED.items()}},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api1", "domainName": "api.example.com",
            "domainPrefix": "api", "requestId": "req-1", "routeKey": "$default",
            "stage": "$default", "time": "23/Nov/2026:10:00:00 +0000", "timeEpoch": 0,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "test"},
        },
        "body": base64.b64encode(raw).decode() if raw else None,
        "isBase64Encoded": bool(raw),
    }


def test_lambda_handler_serves_the_same_app_for_http_api_v2(pg_pair: PgPair) -> None:
    handler = build_handler(AppSettings("east", pg_pair.dsns()))
    try:
        _exercise_lambda(handler)
    finally:
        handler.app.state.router.close()


def _exercise_lambda(handler: Any) -> None:
    body = order()
    created = handler(http_api_v2_event("POST", "/orders", body), None)
    # the pools open without waiting, so the first write may find no writer yet
    deadline = time.monotonic() + 10
    while created["statusCode"] == 503 and time.monotonic() < deadline:
        time.sleep(0.1)
        created = handler(http_api_v2_event("POST", "/orders", body), None)
    assert created["statusCode"] in (200, 201), created
    row = json.loads(created["body"])
    got = handler(http_api_v2_event("GET", f"/orders/{row['id']}"), None)
    assert got["statusCode"] == 200
    assert json.loads(got["body"])["request_id"] == body["request_id"]
    health = handler(http_api_v2_event("GET", "/health"), None)
    assert json.loads(health["body"])["region"] == "east"


def test_a_standby_never_makes_the_app_give_up_commit_positions(pg_pair: PgPair) -> None:
    """Under a lease handed over while its database promotes, the app writes to a standby
    (refused) before the promotion: the log position functions fail there with "recovery is
    in progress". That is not a server without them: the app must ask again once promoted
    (it once stopped asking for good after three failures, leaving every later write
    unplaceable by the history checker)."""
    import psycopg

    from regionguard.app.db import POSITION_GIVE_UP, DatabaseRouter

    router = DatabaseRouter(AppSettings(region="west", dsns=pg_pair.dsns()))
    with psycopg.connect(pg_pair.standby.dsn(), autocommit=True) as standby:
        for _ in range(POSITION_GIVE_UP + 1):
            assert router._position(standby) is None
    with psycopg.connect(pg_pair.primary.dsn(), autocommit=True) as primary:
        assert router._position(primary) is not None
