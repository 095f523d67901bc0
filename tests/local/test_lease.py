"""The app's write lease, for real: the FastAPI app on a real PostgreSQL primary confirms its
lease by reading the arbiter (DynamoDB, moto in-process), writes only while the arbiter names
its region, stamps each row with the lease's epoch, and refuses (503) once the arbiter names
another region or cannot be read for `lease_s`. Time runs on a scaled clock (x50)."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

pytest.importorskip("moto", reason="the aws extra is not installed")

import boto3
import httpx
import psycopg
from fastapi.testclient import TestClient
from moto import mock_aws

from regionguard.app.engines.postgres import PostgresEngine
from regionguard.app.main import create_app
from regionguard.app.settings import AppSettings
from regionguard.clock import CLOCK_ENV, ScaledClock

from ..conftest import PgPair

pytestmark = pytest.mark.local

TABLE = "orders-regionguard-state"
LEASE_S = 30.0
FACTOR = 0.02  # the 30 s lease lasts 0.6 real seconds


def set_arbiter(epoch: int, writer: str) -> None:
    boto3.client("dynamodb", region_name="us-east-1").put_item(TableName=TABLE, Item={
        "pk": {"S": "state"}, "epoch": {"N": str(epoch)}, "writer": {"S": writer},
        "roles": {"S": "{}"}})


def until(cond: Callable[[], bool], timeout_s: float = 10.0) -> float:
    started = time.monotonic()
    while not cond():
        if time.monotonic() - started > timeout_s:
            raise AssertionError("condition not reached")
        time.sleep(0.02)
    return time.monotonic() - started


def takes_writes(app: TestClient) -> bool:
    """What Route 53 sees (200: it holds the lease, its database answers) and that its
    database takes the writes now (promoted, its own fence open)."""
    answer = app.get("/health/route")
    return answer.status_code == 200 and answer.json()["writable"] is True


@contextlib.contextmanager
def east_app(pg_pair: PgPair, monkeypatch: pytest.MonkeyPatch,
             lease_s: float = LEASE_S) -> Iterator[TestClient]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1",
                       CLOCK_ENV: ScaledClock.starting_now(FACTOR).to_env()}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        set_arbiter(3, "east")
        settings = AppSettings("east", pg_pair.dsns(), arbiter_table=TABLE,
                               arbiter_regions=("us-east-1",), lease_s=lease_s)
        with TestClient(create_app(settings)) as client:
            yield client


@pytest.fixture
def east(pg_pair: PgPair, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with east_app(pg_pair, monkeypatch) as client:
        yield client


def order() -> dict[str, object]:
    return {"request_id": f"lease-{uuid.uuid4().hex[:10]}", "customer": "ada",
            "item": "widget", "quantity": 1}


def stored(pg_pair: PgPair, request_id: object) -> list[tuple[object, ...]]:
    with pg_pair.primary.connect() as conn:
        return conn.execute("SELECT region, epoch FROM orders WHERE request_id = %s",
                            (request_id,)).fetchall()


def test_the_app_writes_only_while_the_arbiter_names_its_region(
        east: TestClient, pg_pair: PgPair) -> None:
    until(lambda: takes_writes(east))
    body = order()
    created = east.post("/orders", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["epoch"] == 3  # the lease's epoch is the token
    assert stored(pg_pair, body["request_id"]) == [("east", 3)]
    set_arbiter(4, "west")  # a failover elsewhere took the lease
    until(lambda: east.get("/health/route").status_code == 503)
    refused = order()
    answer = east.post("/orders", json=refused)
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert "does not hold the write lease" in answer.json()["detail"]
    assert "west at epoch 4" in answer.json()["detail"]
    assert stored(pg_pair, refused["request_id"]) == []  # nothing landed


def _write_straight_to(pg_pair: PgPair) -> str | None:
    """A client that bypasses the app (no lease, no header) inserts an order on the primary;
    None when it committed, else why it was refused."""
    try:
        with psycopg.connect(pg_pair.primary.dsn(), connect_timeout=3) as conn:
            conn.execute("INSERT INTO orders (request_id, customer, item, quantity, region,"
                         " served_by, epoch) VALUES (%s, 'mallory', 'x', 1, 'east', 'east', 3)",
                         (f"bypass-{uuid.uuid4().hex[:10]}",))
    except psycopg.Error as exc:
        assert exc.sqlstate == "RGF01", exc  # the fence's refusal, nothing else
        return str(exc)
    return None


def test_a_client_that_bypasses_the_app_cannot_write_once_the_region_lost_its_lease(
        east: TestClient, pg_pair: PgPair) -> None:
    """The database's own fence (issue 22): while east's app holds the write lease it keeps
    the primary writable about a lease ahead, on the database's clock; once the lease moves
    nobody renews it, and a client writing straight to the database (no app, no lease, no
    header) is refused at its commit within the lease. Nothing from outside the region has to
    reach the database. Run with the fence's trigger dropped, this fails: the write lands."""
    until(lambda: takes_writes(east))
    assert _write_straight_to(pg_pair) is None  # the lease is held: the fence is ahead
    set_arbiter(4, "west")  # a failover elsewhere took the lease
    waited = until(lambda: _write_straight_to(pg_pair) is not None, timeout_s=5)
    assert waited <= LEASE_S * FACTOR + 0.3, waited  # within the lease (real seconds)
    refusal = _write_straight_to(pg_pair)
    assert refusal is not None and "regionguard fence" in refusal, refusal
    with psycopg.connect(pg_pair.primary.dsn(), connect_timeout=3) as conn:
        late = conn.execute("SELECT count(*), (SELECT count(*) FROM orders WHERE customer ="
                            " 'mallory') FROM orders, regionguard_fence WHERE customer ="
                            " 'mallory' AND created_at > writable_until").fetchone()
    assert late is not None and late[0] == 0 and late[1] >= 1, late  # none after the fence
    through_app = east.post("/orders", json=order())  # and the app says so as a 503
    assert through_app.status_code == 503
    # sessions are written under the lease locally, and fenced alike
    with pytest.raises(psycopg.Error, match="regionguard fence"), \
            psycopg.connect(pg_pair.primary.dsn(), connect_timeout=3) as conn:
        conn.execute("INSERT INTO sessions (id, data, expires_at, updated_at, region)"
                     " VALUES ('bypass', '{}', 1e10, 0, 'east')")
    assert east.put("/sessions/s-1", json={"data": {}}).status_code == 503


def test_a_fence_extension_that_came_back_late_is_rolled_back(
        east: TestClient, pg_pair: PgPair) -> None:
    """What is left of the lease is read before the statement: one that came back later than
    the slack may have started late, and could outlast the lease, so it never commits."""
    until(lambda: takes_writes(east))
    east.app.state.router.fence.stop()  # the app's own keeper would overwrite what is read
    engine = PostgresEngine()
    conn = engine.fence_connection(pg_pair.primary.dsn())
    try:
        assert engine.extend_fence(conn, 3600, "east", 3,
                                   finish_by=time.monotonic() - 1) is False
        row = conn.execute("SELECT writable_until < clock_timestamp() + interval '1 minute'"
                           " FROM regionguard_fence").fetchone()
        assert row == (True,), row  # not an hour ahead: the late extension did not land
        assert engine.extend_fence(conn, 3600, "east", 3, finish_by=time.monotonic() + 5)
        row = conn.execute("SELECT writable_until > clock_timestamp() + interval '1 minute'"
                           " FROM regionguard_fence").fetchone()
        assert row == (True,), row  # and one in time does
    finally:
        conn.close()


def test_a_region_that_cannot_read_the_arbiter_stops_writing_within_its_lease(
        east: TestClient, pg_pair: PgPair) -> None:
    until(lambda: takes_writes(east))
    first = east.post("/orders", json=order())
    assert first.status_code == 201, first.text
    boto3.client("dynamodb", region_name="us-east-1").delete_table(TableName=TABLE)
    cut_off = time.monotonic()  # from now on no read of the arbiter succeeds
    waited = until(lambda: east.post("/orders", json=order()).status_code == 503)
    # the lease runs out at most lease_s after the last confirmation (plus one refresh)
    assert waited <= (LEASE_S + 5.0) * FACTOR + 0.5
    # the first refusals may be the database's own fence, which ends a slack before the lease
    # (here, on a clock 50 times fast, longer than the app's own margin); then the app's
    answers: list[str] = []

    def the_apps_own() -> bool:
        answers.append(east.post("/orders", json=order()).json()["detail"])
        return "not confirmed for" in answers[-1]

    until(the_apps_own, timeout_s=2)
    detail = answers[-1]
    assert "arbiter unreachable" in detail, answers
    assert all("not confirmed for" in a or "is fenced" in a for a in answers), answers
    assert time.monotonic() - cut_off < 10
    # the health answer reads the last confirmed lease (never renews inline): it follows
    # within one pass of the renewer
    until(lambda: east.get("/health/route").json()["holds_lease"] is False, timeout_s=2)


def test_a_lease_left_stale_by_a_frozen_process_is_reconfirmed_before_a_write(
        east: TestClient, pg_pair: PgPair) -> None:
    """On Lambda the process (and its refresh thread) is frozen between invocations: the first
    write after a pause confirms the lease inline instead of being refused."""
    until(lambda: takes_writes(east))
    lease = east.app.state.router.lease
    lease.stop()  # the refresh thread no longer runs, as in a frozen execution environment
    time.sleep((LEASE_S + 1) * FACTOR)
    assert lease.holds() is None  # what the thread confirmed has aged out
    assert east.post("/orders", json=order()).status_code == 201  # confirmed on demand


class ToEast(httpx.BaseTransport):
    """The network between the Regions, in-process: requests to east's host reach east's app."""

    def __init__(self, east: TestClient) -> None:
        self.east = east
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        assert request.url.host == "east.app.example.com"
        answer = self.east.request(request.method, request.url.path, content=request.read(),
                                   headers=dict(request.headers))
        return httpx.Response(answer.status_code, headers=answer.headers,
                              content=answer.content)


def test_a_region_without_the_lease_reads_locally_and_forwards_writes_to_the_writer_once(
        east: TestClient, pg_pair: PgPair) -> None:
    """Active-active: reads local, writes to the Region the arbiter names, one hop at most."""
    until(lambda: takes_writes(east))
    network = ToEast(east)
    settings = AppSettings("west", pg_pair.dsns(), arbiter_table=TABLE,
                           arbiter_regions=("us-east-1",), lease_s=LEASE_S,
                           region_hosts={"east": "east.app.example.com",
                                         "west": "west.app.example.com"})
    with TestClient(create_app(settings, forward_transport=network)) as west:
        until(lambda: west.get("/health/route").json().get("writer") == "east")
        body = order()
        created = west.post("/orders", json=body)
        assert created.status_code == 201, created.text
        assert created.headers["X-Regionguard-Written-In"] == "east"
        assert (created.json()["region"], created.json()["epoch"]) == ("east", 3)
        assert stored(pg_pair, body["request_id"]) == [("east", 3)]
        [hop] = network.sent
        assert hop.headers["X-Regionguard-Forwarded-From"] == "west"
        # the read is west's own (the sync standby has the row)
        read = west.get(f"/orders/{created.json()['id']}")
        assert read.status_code == 200 and read.json()["request_id"] == body["request_id"]
        # a write forwarded to a Region without the lease is refused, not bounced on
        bounced = west.post("/orders", json=order(),
                            headers={"X-Regionguard-Forwarded-From": "east"})
        assert bounced.status_code == 503 and len(network.sent) == 1
        # an operator's DELETE goes the same way, with its credential; east answers it (east
        # has no admin credential configured here: 403 from east, not 503 from west)
        deleted = west.delete(f"/orders/{created.json()['id']}",
                              headers={"Authorization": "Bearer operator"})
        assert deleted.status_code == 403 and deleted.headers["X-Regionguard-Written-In"] == "east"
        assert network.sent[-1].method == "DELETE"
        assert network.sent[-1].headers["Authorization"] == "Bearer operator"


@contextlib.contextmanager
def orders_locked(pg_pair: PgPair) -> Iterator[Callable[[], None]]:
    """Another session holds a lock every insert into `orders` waits for (a long migration, a
    hot row); the block's caller releases it (or it is released on exit)."""
    conn = pg_pair.primary.connect(autocommit=False)
    conn.execute("LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE")
    try:
        yield conn.rollback
    finally:
        conn.rollback()
        conn.close()


def post_in_background(client: TestClient, body: dict[str, object]
                       ) -> tuple[threading.Thread, list[httpx.Response]]:
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(client.post("/orders", json=body)))
    thread.start()
    return thread, answers


def test_a_write_held_past_the_end_of_its_lease_is_refused_and_never_visible(
        east: TestClient, pg_pair: PgPair) -> None:
    """A write waits on a lock while its region is cut off from the arbiter: the lease ends
    (the other region may be routed by then), and the write must not land after it."""
    until(lambda: takes_writes(east))
    body = order()
    with orders_locked(pg_pair) as release:
        thread, answers = post_in_background(east, body)
        time.sleep(0.05)  # the insert is waiting on the lock now (or about to)
        boto3.client("dynamodb", region_name="us-east-1").delete_table(TableName=TABLE)
        lease_end = time.monotonic() + LEASE_S * FACTOR  # at the latest
        until(lambda: time.monotonic() > lease_end + 0.5)  # well past the lease's end
        release()
        thread.join(timeout=10)
    [answer] = answers
    assert answer.status_code == 503, answer.text
    assert "time left on its write lease" in answer.json()["detail"]
    assert stored(pg_pair, body["request_id"]) == []  # never visible


def test_a_write_whose_lease_moved_meanwhile_is_rolled_back_at_commit(
        pg_pair: PgPair, monkeypatch: pytest.MonkeyPatch) -> None:
    """The arbiter names another region while the write waits; the wait ends inside the old
    lease, but the re-check just before the commit sees the lease gone."""
    with east_app(pg_pair, monkeypatch, lease_s=150.0) as east:  # 3 real seconds
        until(lambda: takes_writes(east))
        body = order()
        with orders_locked(pg_pair) as release:
            thread, answers = post_in_background(east, body)
            time.sleep(0.05)
            set_arbiter(4, "west")  # a failover elsewhere took the lease
            until(lambda: east.get("/health/route").status_code == 503, timeout_s=2.0)
            release()  # well inside the old lease's time: the insert goes through
            thread.join(timeout=10)
        [answer] = answers
        assert answer.status_code == 503, answer.text
        assert "west at epoch 4" in answer.json()["detail"]
        assert "not committed" in answer.json()["detail"]
        assert stored(pg_pair, body["request_id"]) == []


def test_a_database_promoted_past_the_lease_epoch_refuses_the_write(
        east: TestClient, pg_pair: PgPair) -> None:
    """The epoch row is share-locked and checked under a lease too: a database a later plan
    promoted (a newer epoch) is not written with an older lease's token."""
    until(lambda: takes_writes(east))
    with pg_pair.primary.connect() as conn:
        before = conn.execute("SELECT epoch FROM regionguard_epoch WHERE id = 1").fetchone()
        conn.execute("UPDATE regionguard_epoch SET epoch = 9 WHERE id = 1")
    try:
        body = order()
        answer = east.post("/orders", json=body)
        assert answer.status_code == 503, answer.text
        assert "holds epoch 9, newer than this region's write lease at epoch 3" in \
            answer.json()["detail"]
        assert stored(pg_pair, body["request_id"]) == []
    finally:
        with pg_pair.primary.connect() as conn:
            conn.execute("UPDATE regionguard_epoch SET epoch = %s WHERE id = 1",
                         (before[0] if before else 1,))


def test_the_health_check_answers_from_the_last_confirmation_without_asking_the_arbiter(
        east: TestClient, pg_pair: PgPair) -> None:
    """Route 53's checkers give a health check 2 s: /health/route never reads the arbiter
    inline, even when the last confirmation is old (a frozen Lambda) and the arbiter slow."""
    until(lambda: takes_writes(east))
    lease = east.app.state.router.lease
    lease.stop()  # frozen: no background refresh
    slow_reads: list[float] = []
    real_read = lease.read

    def slow() -> tuple[int, str]:
        slow_reads.append(time.monotonic())
        time.sleep(3.0)
        return real_read()

    lease.read = slow
    time.sleep((LEASE_S + 1) * FACTOR)  # the last confirmation has aged out
    started = time.monotonic()
    answer = east.get("/health/route")
    assert time.monotonic() - started < 1.0
    assert answer.status_code == 503 and answer.json()["holds_lease"] is False
    assert slow_reads == []
