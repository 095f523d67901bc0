"""The app on RDS MySQL (seed 000): started from the MySQL variant's template environment, on a
real MariaDB server from Debian's packages that requires TLS and a password, as RDS does.

The app runs its MySQL migrations, takes writes while the arbiter names its Region, refuses them
(503, never a 500) when its database is read-only (an RDS replica) or its lease names another
Region, replays an order idempotently, and turns a value the database cannot store into a 400.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto", reason="the aws extra is not installed")

import pymysql
from fastapi.testclient import TestClient

from regionguard.app.engines import Fault, engine
from regionguard.app.engines.mysql import mysql_dsn
from regionguard.app.main import create_app
from regionguard.app.settings import AppSettings

from ..tls import self_signed_pem
from . import mariadb
from .synth import Synth
from .test_app_environment import (
    ADMIN_TOKEN,
    PASSWORD,
    Unreachable,
    ec2_environment,
    order,
    provision,
    resolve,
)

pytestmark = [pytest.mark.local,
              pytest.mark.skipif(mariadb.available() is not None,
                                 reason=mariadb.available() or "")]


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = self_signed_pem()
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_text(cert)
    key_path.write_text(key)
    return cert_path, key_path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[mariadb.MariaDbServer]:
    db = mariadb.MariaDbServer(PASSWORD, *self_signed(tmp_path_factory.mktemp("tls")))
    try:
        db.start()
        yield db
    finally:
        db.stop()


@pytest.fixture
def orders_db(server: mariadb.MariaDbServer) -> Iterator[mariadb.MariaDbServer]:
    """An empty `orders` database (the name the templates give), writable."""
    server.sql("DROP DATABASE IF EXISTS orders")
    server.sql("CREATE DATABASE orders")
    server.sql("SET GLOBAL read_only = 0")
    yield server
    server.sql("SET GLOBAL read_only = 0")


@pytest.fixture
def aws(moto: None) -> None:
    """AWS in-process, for the app's secret and arbiter."""


def dsn(server: mariadb.MariaDbServer, sslmode: str = "require") -> str:
    return mysql_dsn(host="127.0.0.1", port=server.port, database="orders",
                     user=mariadb.MASTER_USER, password=PASSWORD, sslmode=sslmode)


def wait_until(check: Any, what: str, deadline_s: float = 15) -> Any:
    end = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.parametrize("stack", ["Orders-East-Compute", "Orders-West-Compute"])
def test_the_mysql_app_starts_from_the_templates_environment(
        synths: dict[str, Synth], stack: str, orders_db: mariadb.MariaDbServer,
        aws: None) -> None:
    synth = synths["pilot-light-mysql"]
    env, tokens = ec2_environment(synth, stack)
    assert env["RG_DB_ENGINE"] == "mysql" and "RG_DSNS" not in env
    provision(resolve(env, tokens, "127.0.0.1", orders_db.port), writer="east")
    settings = AppSettings.from_env(resolve(env, tokens, "127.0.0.1", orders_db.port))
    assert settings.engine == "mysql" and "sslmode=require" in settings.dsns[settings.region]

    network = Unreachable()
    with TestClient(create_app(settings, forward_transport=network)) as client:
        wait_until(lambda: client.get("/health/deep").is_success, "the first migration pass")
        deep = client.get("/health/deep").json()
        assert (deep["engine"], deep["role"], deep["epoch"]) == ("mysql", "primary", 1), deep
        tables = {r[0] for r in orders_db.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'orders'")}
        assert {"orders", "regionguard_epoch", "regionguard_canary",
                "schema_migrations"} <= tables
        if settings.region == "east":
            created = wait_until(lambda: (r := order(client)).status_code == 201 and r,
                                 "the write lease")
            assert (created.json()["region"], created.json()["epoch"]) == ("east", 1)
            assert created.json()["created_at"].endswith(("Z", "+00:00"))  # UTC, aware
            canary = client.post("/_regionguard/canary", json={"token": "verify-mysql"},
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert canary.status_code == 200 and canary.json()["region"] == "east", canary.text
        else:  # reads local, writes to the writer's regional host (unreachable here)
            refused = order(client)
            assert refused.status_code == 503 and "Retry-After" in refused.headers
            assert [r.url.host for r in network.sent] == ["us-east-1.app.example.com"]


def lease_app(server: mariadb.MariaDbServer, writer: str) -> tuple[TestClient, Any]:
    env = {"RG_REGION": "east", "RG_DB_ENGINE": "mysql", "RG_DB_HOST": "127.0.0.1",
           "RG_DB_PORT": str(server.port), "RG_DB_NAME": "orders",
           "RG_DB_SECRET_ID": "orders/regionguard/db", "RG_DB_SECRET_REGION": "us-east-1",
           "RG_ADMIN_TOKEN_SECRET": "orders/regionguard/admin",
           "RG_ARBITER_TABLE": "orders-regionguard-state",
           "RG_ARBITER_REGIONS": "us-east-1,us-west-2", "RG_LEASE_S": "30"}
    provision(env, writer=writer)
    return TestClient(create_app(AppSettings.from_env(env))), env


def test_orders_on_mysql_replay_idempotently_and_a_read_only_database_refuses_writes(
        orders_db: mariadb.MariaDbServer, aws: None) -> None:
    client, _ = lease_app(orders_db, writer="east")
    with client:
        wait_until(lambda: client.get("/health/deep").is_success, "the migrations")
        body = {"request_id": f"mysql-{uuid.uuid4().hex[:8]}", "customer": "ada ✓ 🚀",
                "item": "widget", "quantity": 3}
        first = wait_until(lambda: (r := client.post("/orders", json=body)).status_code == 201
                           and r, "the write lease")
        replay = client.post("/orders", json=body)
        assert replay.status_code == 200 and replay.json() == first.json()  # same row
        assert client.get(f"/orders/{first.json()['id']}").json()["customer"] == "ada ✓ 🚀"
        listed = client.get("/orders", params={"request_id": body["request_id"]}).json()
        assert [o["id"] for o in listed["items"]] == [first.json()["id"]]

        orders_db.sql("SET GLOBAL read_only = 1")  # what an RDS replica is
        refused = client.post("/orders", json={**body, "request_id": "after-read-only"})
        assert refused.status_code == 503 and "read-only" in refused.json()["detail"]
        assert refused.headers["Retry-After"]
        assert client.get("/health/deep").json()["role"] == "standby"
        # a lease holder whose database still promotes takes traffic (DNS moves meanwhile),
        # and says its writes are refused until then
        route = client.get("/health/route")
        assert route.status_code == 200 and route.json()["writable"] is False, route.text
        assert orders_db.sql("SELECT count(*) FROM orders.orders "
                             "WHERE request_id = 'after-read-only'") == [(0,)]
        delete = client.delete(f"/orders/{first.json()['id']}",
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert delete.status_code == 503


def test_the_lease_denies_a_write_on_mysql_when_the_arbiter_names_another_region(
        orders_db: mariadb.MariaDbServer, aws: None) -> None:
    client, _ = lease_app(orders_db, writer="west")
    with client:
        wait_until(lambda: client.get("/health/deep").is_success, "the migrations")
        denied = order(client)
        assert denied.status_code == 503, denied.text
        assert orders_db.sql("SELECT count(*) FROM orders.orders") == [(0,)]
        assert client.get("/health/route").status_code == 503


def test_the_engine_classifies_mysql_errors_and_migrates_once_under_its_lock(
        orders_db: mariadb.MariaDbServer) -> None:
    mysql = engine("mysql")
    pool = mysql.pool("east", dsn(orders_db), size=4, timeout_s=2)
    try:
        with pool.connection() as conn:
            with pytest.raises(pymysql.err.MySQLError) as missing:
                mysql.fetchone(conn, "SELECT * FROM orders")
            assert mysql.classify(missing.value) is Fault.NO_SCHEMA
        results: list[list[str]] = []

        def migrate() -> None:
            with pool.connection() as conn:
                results.append(mysql.migrate(conn))

        threads = [threading.Thread(target=migrate) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(results, key=len) == [[], [], ["001_orders", "002_regionguard",
                                                "003_sessions"]]
        with pool.connection() as conn:
            row = {"request_id": "too-long", "customer": "x" * 201, "item": "i",
                   "quantity": 1, "region": "east", "served_by": "east", "epoch": 1}
            with pytest.raises(pymysql.err.MySQLError) as too_long:
                mysql.insert_if_absent(conn, "orders", row, key="request_id")
            assert mysql.classify(too_long.value) is Fault.BAD_VALUE  # never truncated
            with pytest.raises(pymysql.err.MySQLError) as negative:
                mysql.insert_if_absent(conn, "orders", {**row, "customer": "ada",
                                                        "quantity": 0}, key="request_id")
            assert mysql.classify(negative.value) is Fault.BAD_VALUE  # the CHECK constraint
            assert mysql.insert_if_absent(conn, "orders", {**row, "customer": "ada"},
                                          key="request_id") is True
            assert mysql.insert_if_absent(conn, "orders", {**row, "customer": "ada"},
                                          key="request_id") is False
            # a session replaced whole by a second write of its key (one statement)
            for n in (1, 2):
                mysql.upsert(conn, "sessions", {"id": "s-1", "data": f'{{"n": {n}}}',
                                                "expires_at": 1e10, "updated_at": float(n),
                                                "region": "east"}, key="id")
            assert mysql.fetchall(conn, "SELECT data, updated_at FROM sessions") == [
                ('{"n": 2}', 2.0)]
    finally:
        pool.close()


def test_mysql_connections_are_encrypted_and_plain_text_is_refused(
        orders_db: mariadb.MariaDbServer) -> None:
    mysql = engine("mysql")
    pool = mysql.pool("east", dsn(orders_db), size=1, timeout_s=2)
    try:
        with pool.connection() as conn:
            assert mysql.fetchone(conn, "SHOW SESSION STATUS LIKE 'Ssl_version'")[1]
    finally:
        pool.close()
    plain = mysql.pool("east", dsn(orders_db, sslmode="disable"), size=1, timeout_s=2)
    try:
        with pytest.raises(Exception) as refused, plain.connection():
            pass
        assert mysql.classify(refused.value) is Fault.UNAVAILABLE  # the server says no
    finally:
        plain.close()
