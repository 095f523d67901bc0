"""The app starts on AWS from exactly the environment the synthesized templates give it.

For the EC2 app (pilot light: the launch template's user data writes the systemd environment
file) and the Lambda app (warm standby: the function's environment), in both Regions: take
the variables from the template as CloudFormation would deploy them, fill in only the values a
deploy alone knows (the database endpoint), and start the app against a real PostgreSQL that
requires TLS and a password, with the credentials in Secrets Manager (moto) in the app's own
Region and the arbiter in DynamoDB (moto). The app must run its migrations, take a write where
the arbiter names its Region and refuse one where it does not.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto", reason="the aws extra is not installed")

import boto3
import httpx
from fastapi.testclient import TestClient

from regionguard.app.main import create_app
from regionguard.app.settings import AppSettings
from regionguard.providers.local import pgbin
from regionguard.providers.local.netutil import free_port
from regionguard.providers.local.postgres import PostgresCluster
from regionguard.providers.local.postgres.files import write_as_pg

from ..tls import self_signed_pem
from .synth import Synth

PASSWORD = "s3cret-from-secrets-manager"
ADMIN_TOKEN = "admin-token-from-secrets-manager"
ORIGIN_SECRET = "origin-secret-from-secrets-manager"
DEPLOY_TIME = {"RG_DB_HOST", "RG_DB_PORT"}  # the endpoint: known only once the DB exists


def render(value: Any, tokens: dict[str, Any]) -> str:
    """A template value as a string; an intrinsic CloudFormation resolves at deploy time
    becomes a `${tokenN}` placeholder, recorded in `tokens`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return str(sep).join(render(p, tokens) for p in parts)
    if isinstance(value, dict) and "Fn::Base64" in value:
        return render(value["Fn::Base64"], tokens)
    name = f"${{token{len(tokens)}}}"
    tokens[name] = value
    return name


def resolve(env: dict[str, str], tokens: dict[str, Any], host: str, port: int) -> dict[str, str]:
    """Fill in the deploy-time values; anything else left unresolved fails the test."""
    unresolved = {k for k, v in env.items() if any(t in v for t in tokens)}
    assert unresolved == DEPLOY_TIME, f"deploy-time values: {unresolved}"
    return {**env, "RG_DB_HOST": host, "RG_DB_PORT": str(port)}


def lambda_environment(synth: Synth, stack: str) -> tuple[dict[str, str], dict[str, Any]]:
    tokens: dict[str, Any] = {}
    [fn] = [r for r in synth.raw(stack)["Resources"].values()
            if r["Type"] == "AWS::Lambda::Function"
            and r["Properties"].get("Handler") == "regionguard.app.lambda_handler.handler"]
    variables = fn["Properties"]["Environment"]["Variables"]
    return {k: render(v, tokens) for k, v in variables.items()}, tokens


def ec2_environment(synth: Synth, stack: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The lines of /etc/regionguard.env as the user data writes them (systemd's format)."""
    tokens: dict[str, Any] = {}
    [lt] = [r for r in synth.raw(stack)["Resources"].values()
            if r["Type"] == "AWS::EC2::LaunchTemplate"]
    script = render(lt["Properties"]["LaunchTemplateData"]["UserData"], tokens)
    body = script.split("cat > /etc/regionguard.env <<'ENV'\n", 1)[1].split("\nENV", 1)[0]
    env = dict(line.split("=", 1) for line in body.splitlines())
    assert all(k.startswith("RG_") and " " not in v for k, v in env.items()), env
    return env, tokens


def self_signed(data_dir: Path) -> None:
    cert, key = self_signed_pem()
    write_as_pg(data_dir / "server.crt", cert)
    write_as_pg(data_dir / "server.key", key)


@pytest.fixture(scope="module")
def rds_like(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    """A PostgreSQL as RDS runs it for us: TLS on, and a password user `regionguard`."""
    root = pgbin.data_root(tmp_path_factory.mktemp("rds"))
    cluster = PostgresCluster("east", root / "east", "127.0.0.1", free_port(), "postgres")
    try:
        cluster.create_primary()
        self_signed(cluster.data_dir)
        with cluster.connect("postgres") as conn:
            conn.execute("ALTER SYSTEM SET ssl = on")
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f"CREATE ROLE regionguard LOGIN PASSWORD '{PASSWORD}'")
        yield cluster
    finally:
        cluster.remove()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_database(rds_like: PostgresCluster) -> PostgresCluster:
    """An empty `orders` database (the name the templates give), owned by the master user."""
    with rds_like.connect("postgres") as conn:
        conn.execute("DROP DATABASE IF EXISTS orders WITH (FORCE)")
        conn.execute("CREATE DATABASE orders OWNER regionguard")
    return rds_like


@pytest.fixture
def aws(moto: None) -> None:
    """AWS in-process, for the app's secret and arbiter."""


def provision(env: dict[str, str], writer: str) -> None:
    """What the database and state stacks leave behind: the secret (or its replica) in the
    app's Region, and the arbiter table, in every Region the app reads it from."""
    secrets = boto3.client("secretsmanager", region_name=env["RG_DB_SECRET_REGION"])
    secrets.create_secret(
        Name=env["RG_DB_SECRET_ID"],
        SecretString=f'{{"username": "regionguard", "password": "{PASSWORD}"}}')
    secrets.create_secret(Name=env["RG_ADMIN_TOKEN_SECRET"], SecretString=ADMIN_TOKEN)
    if env.get("RG_ORIGIN_SECRET"):
        secrets.create_secret(Name=env["RG_ORIGIN_SECRET"], SecretString=ORIGIN_SECRET)
    for region in env["RG_ARBITER_REGIONS"].split(","):
        ddb = boto3.client("dynamodb", region_name=region)
        ddb.create_table(TableName=env["RG_ARBITER_TABLE"], BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        ddb.put_item(TableName=env["RG_ARBITER_TABLE"], Item={
            "pk": {"S": "state"}, "epoch": {"N": "1"}, "writer": {"S": writer},
            "roles": {"S": "{}"}})
    if env.get("RG_SESSIONS_TABLE"):  # the sessions' global table: this Region's replica
        boto3.client("dynamodb", region_name=env["RG_SESSIONS_REGION"]).create_table(
            TableName=env["RG_SESSIONS_TABLE"], BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])


class Unreachable(httpx.BaseTransport):
    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        raise httpx.ConnectError("unreachable in tests", request=request)


def order(client: TestClient, origin: str | None = None) -> Any:
    """An order as CloudFront passes it on (with its origin header, when given)."""
    return client.post("/orders", json={"request_id": f"env-{uuid.uuid4().hex[:10]}",
                                         "customer": "ada", "item": "widget", "quantity": 1},
                       headers={"X-Regionguard-Origin": origin} if origin else {})


@pytest.mark.local  # a real PostgreSQL
@pytest.mark.parametrize("strategy,stack,kind", [
    ("pilot-light", "Orders-East-Compute", "ec2"),
    ("pilot-light", "Orders-West-Compute", "ec2"),
    ("warm-standby", "Orders-East-Compute", "lambda"),
    ("warm-standby", "Orders-West-Compute", "lambda"),
])
def test_the_app_starts_from_the_templates_environment(
        synths: dict[str, Synth], strategy: str, stack: str, kind: str,
        fresh_database: PostgresCluster, aws: None) -> None:
    synth = synths[strategy]
    env, tokens = (ec2_environment if kind == "ec2" else lambda_environment)(synth, stack)
    assert "RG_DSNS" not in env  # no password in the template, none in user data
    assert env["RG_DB_SECRET_REGION"] == synth.stack(stack).region  # its own Region's copy
    env = resolve(env, tokens, "127.0.0.1", fresh_database.port)
    provision(env, writer="east")

    settings = AppSettings.from_env(env)
    # serverless: only what came through CloudFront (its origin header) reaches the API
    assert ("RG_ORIGIN_SECRET" in env) is (kind == "lambda")
    origin = ORIGIN_SECRET if kind == "lambda" else None
    network = Unreachable()  # no test talks to the internet: writes forwarded stop here
    with TestClient(create_app(settings, forward_transport=network)) as client:
        deadline = time.monotonic() + 15  # the first discovery pass runs the migrations
        while time.monotonic() < deadline and not client.get("/health/deep").is_success:
            time.sleep(0.1)
        deep = client.get("/health/deep").json()
        assert deep["in_recovery"] is False and deep["epoch"] == 1, deep
        with fresh_database.connect("orders") as conn:
            tables = {r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tableowner = 'regionguard'")}
            ssl = conn.execute("SELECT bool_or(ssl) FROM pg_stat_ssl JOIN pg_stat_activity "
                               "USING (pid) WHERE usename = 'regionguard'").fetchone()
        assert {"orders", "regionguard_epoch", "regionguard_canary"} <= tables
        assert ssl == (True,)  # sslmode=require, as rds.force_ssl demands
        # sessions: in this Region's replica of the global table, in either Region, with no
        # write lease (the standby takes them too)
        assert env["RG_SESSIONS_REGION"] == synth.stack(stack).region
        headers = {"X-Regionguard-Origin": origin} if origin else {}
        put = client.put("/sessions/env-1", json={"data": {"theme": "dark"}}, headers=headers)
        assert put.status_code == 200 and put.json()["region"] == settings.region, put.text
        got = client.get("/sessions/env-1", headers=headers)
        assert got.status_code == 200 and got.json()["data"] == {"theme": "dark"}, got.text
        stored = boto3.client("dynamodb", region_name=env["RG_SESSIONS_REGION"]).get_item(
            TableName=env["RG_SESSIONS_TABLE"], Key={"id": {"S": "env-1"}})
        assert "Item" in stored

        if settings.region == "east":  # the arbiter names east: it writes, once confirmed
            deadline = time.monotonic() + 15
            created = order(client, origin)
            while created.status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.1)
                created = order(client, origin)
            assert created.status_code == 201, created.text
            if origin:  # around the edge (and its web ACL): refused, with or without a guess
                assert order(client).status_code == 403
                assert order(client, "guess").status_code == 403
                assert client.get("/orders").status_code == 403
            assert (created.json()["region"], created.json()["epoch"]) == ("east", 1)
            # the engine's canary (`verify`) with the credential from the admin secret
            canary = client.post("/_regionguard/canary", json={"token": "verify-env"},
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert canary.status_code == 200, canary.text
            assert client.post("/_regionguard/canary",
                               json={"token": "verify-nobody"}).status_code == 401
        else:  # reads local, writes to the writer's regional host (it is unreachable here)
            refused = order(client, origin)
            assert refused.status_code == 503 and "Retry-After" in refused.headers
            assert [r.url.host for r in network.sent] == ["us-east-1.app.example.com"]
            if origin:  # the hop carries the edge's header on: the writer checks it too
                assert network.sent[0].headers["x-regionguard-origin"] == origin


@pytest.mark.aws  # moto in-process only
def test_a_missing_secret_is_one_line_naming_it_and_the_fix(aws: None) -> None:
    from regionguard.app.settings import SettingsError

    env = {"RG_REGION": "west", "RG_DB_HOST": "db.internal", "RG_DB_NAME": "orders",
           "RG_DB_SECRET_ID": "orders/regionguard/db", "RG_DB_SECRET_REGION": "us-west-2"}
    with pytest.raises(SettingsError, match=r"secret 'orders/regionguard/db' in us-west-2: "
                                            r"ResourceNotFoundException; check that it is "
                                            r"replicated to this Region"):
        AppSettings.from_env(env)
    with pytest.raises(SettingsError, match="no database configured"):
        AppSettings.from_env({"RG_REGION": "west"})


@pytest.mark.aws  # moto in-process only
def test_a_lambda_container_that_cannot_start_answers_503_not_500(
        aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from regionguard.app import lambda_handler

    for key, value in {"RG_REGION": "west", "RG_DB_INSTANCE": "orders-db-us-west-2",
                       "RG_DB_NAME": "orders", "RG_DB_SECRET_ID": "orders/regionguard/db",
                       "RG_DB_SECRET_REGION": "us-west-2"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(lambda_handler, "_handler", None)
    answer = lambda_handler.handler({"requestContext": {"http": {"method": "GET"}}}, None)
    assert answer["statusCode"] == 503 and answer["headers"]["retry-after"] == "5"
    assert "restore it first" in answer["body"]
