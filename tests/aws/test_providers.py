"""AWS providers beyond the Lambda path: Aurora global switchover/failover (botocore Stubber:
moto lacks SwitchoverGlobalCluster and FailoverGlobalCluster), the DynamoDB compare-and-set,
and the IAM registry covering every boto3 call the providers make (parsed from the source)."""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

pytest.importorskip("moto", reason="the aws extra is not installed")

from moto import mock_aws

import regionguard.providers.aws as aws_pkg
from regionguard.clock import ScaledClock
from regionguard.config import Role
from regionguard.errors import PlanConflict, ProviderError, UnsafeOperation
from regionguard.infra.view import AwsView, aws_view
from regionguard.orchestrator.records import PlanRecord, PlanStatus
from regionguard.providers.aws.arbiter import ConditionFailed
from regionguard.providers.aws.aurora import AuroraGlobalDatabase
from regionguard.providers.aws.clients import AwsClients
from regionguard.providers.aws.context import AwsContext
from regionguard.providers.aws.iam_actions import GRANTS, all_actions
from regionguard.providers.aws.rds import RdsReplicaDatabase
from regionguard.providers.aws.state import DynamoDBStateStore

from ..plan_helpers import bare_plan
from .topologies import topology

pytestmark = pytest.mark.aws

ACCOUNT = "123456789012"
EAST_ARN = f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:orders-aurora-us-east-1"
WEST_ARN = f"arn:aws:rds:us-west-2:{ACCOUNT}:cluster:orders-aurora-us-west-2"


def members(writer: str) -> dict[str, Any]:
    return {"GlobalClusters": [{
        "GlobalClusterIdentifier": "orders-global", "GlobalClusterMembers": [
            {"DBClusterArn": EAST_ARN, "IsWriter": writer == EAST_ARN},
            {"DBClusterArn": WEST_ARN, "IsWriter": writer == WEST_ARN}]}]}


class StubbedClients(AwsClients):
    """Real botocore clients (no network: every call is stubbed and asserted)."""

    def __init__(self) -> None:
        session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x")
        super().__init__(session)
        self.stubbers: dict[str, Stubber] = {}

    def get(self, service: str, region: str) -> Any:
        client = super().get(service, region)
        if region not in self.stubbers:
            self.stubbers[region] = Stubber(client)
            self.stubbers[region].activate()
        return client


@pytest.fixture
def aurora() -> Iterator[tuple[AuroraGlobalDatabase, StubbedClients]]:
    view = aws_view(topology("warm-standby"))
    clients = StubbedClients()
    db = AuroraGlobalDatabase(AwsContext(view, clients), poll_s=0)
    clients.get("rds", "us-east-1")
    clients.get("rds", "us-west-2")
    yield db, clients
    for s in clients.stubbers.values():
        s.assert_no_pending_responses()


def test_aurora_planned_promote_is_a_managed_switchover(
        aurora: tuple[AuroraGlobalDatabase, StubbedClients]) -> None:
    db, clients = aurora
    west = clients.stubbers["us-west-2"]  # every call in the target's Region: it survives
    west.add_response("describe_global_clusters", members(EAST_ARN))  # already writer?
    west.add_response("switchover_global_cluster", {},
                      {"GlobalClusterIdentifier": "orders-global",
                       "TargetDbClusterIdentifier": WEST_ARN})
    west.add_response("describe_global_clusters", members(EAST_ARN))  # still switching
    west.add_response("describe_global_clusters", members(WEST_ARN))  # done
    db.promote("west", epoch=2, timeout_s=5, planned=True)


def expect_failover_to_west(west: Stubber) -> None:
    """The unplanned failover, asked of the target's Region, and the writer then in west."""
    west.add_response("failover_global_cluster", {},
                      {"GlobalClusterIdentifier": "orders-global",
                       "TargetDbClusterIdentifier": WEST_ARN, "AllowDataLoss": True})
    west.add_response("describe_global_clusters", members(WEST_ARN))


def test_aurora_unplanned_promote_fails_over_with_allow_data_loss(
        aurora: tuple[AuroraGlobalDatabase, StubbedClients]) -> None:
    db, clients = aurora
    west = clients.stubbers["us-west-2"]
    west.add_response("describe_global_clusters", members(EAST_ARN))
    expect_failover_to_west(west)
    db.promote("west", epoch=2, timeout_s=5, planned=False)


def test_aurora_membership_is_asked_of_the_other_region_when_the_target_does_not_answer(
        aurora: tuple[AuroraGlobalDatabase, StubbedClients]) -> None:
    """A describe that fails in the target's Region is asked of the other one; the failover
    itself is still asked of the target's Region (the tests above: never of the primary's)."""
    db, clients = aurora
    west, east = clients.stubbers["us-west-2"], clients.stubbers["us-east-1"]
    west.add_client_error("describe_global_clusters", "ServiceUnavailable",
                          http_status_code=503)
    east.add_response("describe_global_clusters", members(EAST_ARN))
    expect_failover_to_west(west)
    db.promote("west", epoch=2, timeout_s=5, planned=False)


def test_aurora_promote_is_idempotent_when_already_the_writer(
        aurora: tuple[AuroraGlobalDatabase, StubbedClients]) -> None:
    db, clients = aurora
    clients.stubbers["us-west-2"].add_response("describe_global_clusters", members(WEST_ARN))
    db.promote("west", epoch=2, timeout_s=5)  # one describe, no switchover or failover


def _instance(status: str, replica: bool, retention: int) -> dict[str, Any]:
    inst: dict[str, Any] = {"DBInstanceIdentifier": "orders-db-us-west-2",
                            "DBInstanceStatus": status, "BackupRetentionPeriod": retention}
    if replica:
        inst["ReadReplicaSourceDBInstanceIdentifier"] = "arn:aws:rds:us-east-1:1:db:orders"
    return {"DBInstances": [inst]}


@pytest.mark.parametrize("retention", [0, 7])
def test_an_rds_promotion_ends_once_the_instance_takes_writes_not_after_its_first_backup(
        retention: int) -> None:
    """A replica without backups (RDS for PostgreSQL's) gets the retention with the promotion
    and then takes its first backup (`backing-up`): writable already, so the promote step is
    over. A replica deployed with backups (MySQL) keeps them: no retention is passed, so RDS
    takes no backup while it promotes."""
    clients = StubbedClients()
    db = RdsReplicaDatabase(AwsContext(aws_view(topology("pilot-light")), clients), poll_s=0)
    clients.get("rds", "us-west-2")
    rds = clients.stubbers["us-west-2"]
    name = {"DBInstanceIdentifier": db.ctx.names.db_instance("us-west-2")}
    rds.add_response("describe_db_instances", _instance("available", True, retention), name)
    days = db.ctx.view.settings.backup_retention_days
    rds.add_response("promote_read_replica", {},
                     {**name, **({} if retention else {"BackupRetentionPeriod": days})})
    rds.add_response("describe_db_instances", _instance("modifying", True, retention), name)
    rds.add_response("describe_db_instances", _instance("backing-up", False, 7), name)
    db.promote("west", epoch=2, timeout_s=5)  # no describe left for an "available" wait
    rds.assert_no_pending_responses()


def arbiter_table() -> AwsView:
    """The arbiter's table in moto (one Region stands for the MRSC set) and its topology."""
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName="orders-regionguard-state", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    return aws_view(topology("pilot-light"))


def test_dynamodb_compare_and_set_lets_exactly_one_claim_win(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    with mock_aws():
        view = arbiter_table()
        one = DynamoDBStateStore(AwsContext(view, AwsClients()))
        two = DynamoDBStateStore(AwsContext(view, AwsClients()))  # another region's controller
        assert one.load().epoch == 1
        assert one.claim_epoch(1, bare_plan("plan-a", "failover")) == 2
        assert one.claim_epoch(1, bare_plan("plan-a", "failover")) == 2  # replay: same
        with pytest.raises(UnsafeOperation, match="already running"):
            two.claim_epoch(1, bare_plan("plan-b", "failover"))
        with one.plan_lock() as held_one, two.plan_lock() as held_two:
            assert (held_one, held_two) == (True, False)


def _client_service(node: ast.AST, helpers: dict[str, str], names: dict[str, str]) -> str | None:
    """The service of an expression that yields a boto3 client, if it is one:
    `<x>.get("svc", region)`, a helper method returning one (`self._rds(region)`), or a local name
    bound to one (`rds = ...get("rds", r)`)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if (node.func.attr == "get" and len(node.args) == 2  # clients.get("svc", region)
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            return node.args[0].value
        if node.func.attr in helpers:  # self._r53(), self._rds(region)
            return helpers[node.func.attr]
    if isinstance(node, ast.Name):
        return names.get(node.id)
    return None


def boto3_calls(path: Path) -> set[tuple[str, str]]:
    """(service, operation) for every boto3 client call in a provider module: direct calls,
    and calls through a dispatcher (a method doing `getattr(client, operation)(...)`, such as
    the arbiter client's `_call("update_item", ...)`), whose string arguments are the operations."""
    tree = ast.parse(path.read_text())
    helpers: dict[str, str] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef):
            for ret in ast.walk(fn):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    svc = _client_service(ret.value, {}, {})
                    if svc:
                        helpers[fn.name] = svc
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name):
            svc = _client_service(node.value, helpers, {})
            if svc:
                names[node.targets[0].id] = svc
    dispatchers: dict[str, str] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef):
            for call in ast.walk(fn):
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                        and call.func.id == "getattr" and call.args):
                    svc = _client_service(call.args[0], helpers, names)
                    if svc:
                        dispatchers[fn.name] = svc
    calls = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            svc = _client_service(node.func.value, helpers, names)
            if svc and node.func.attr != "get":
                calls.add((svc, node.func.attr))
            via = dispatchers.get(node.func.attr)
            if via and node.args and isinstance(node.args[0], ast.Constant):
                calls.add((via, str(node.args[0].value)))
    return calls


IAM_PREFIX = {"elbv2": "elasticloadbalancing"}


def iam_action(service: str, method: str) -> str:
    """The IAM action of a boto3 method, from botocore's own model (DescribeDBInstances)."""
    client = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x").client(
        service, region_name="us-east-1")
    operation = client.meta.method_to_api_mapping[method]
    return f"{IAM_PREFIX.get(service, service)}:{operation}"


def test_the_failover_lambda_policy_covers_every_call_the_providers_make() -> None:
    package = Path(aws_pkg.__file__).parent
    calls = set()
    for path in package.glob("*.py"):
        if path.name != "health.py":  # the health Lambda has its own role (compute stack)
            calls |= boto3_calls(path)
    assert len(calls) >= 15, calls  # the parser finds the calls: it is not vacuous
    needed = {iam_action(s, op) for s, op in calls}
    assert {"rds:PromoteReadReplica", "dynamodb:UpdateItem", "dynamodb:BatchGetItem"} <= needed
    # static stability: nothing on the failover path uses Route 53's control plane
    assert not any(a.startswith("route53:") for a in needed)
    missing = needed - all_actions()
    assert not missing, f"IAM registry lacks {sorted(missing)}"
    unused = all_actions() - needed
    assert not unused, f"IAM registry grants actions no provider calls: {sorted(unused)}"
    assert all(g.why_wildcard for g in GRANTS if g.resources.__name__ == "_any")


@pytest.fixture
def arbiter(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DynamoDBStateStore,
                                                             DynamoDBStateStore, ScaledClock]]:
    """Two runners' views of one arbiter table, on a scaled clock (the 30 s lease: 0.3 s)."""
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    with mock_aws():
        view = arbiter_table()
        clock = ScaledClock.starting_now(0.01)
        yield (DynamoDBStateStore(AwsContext(view, AwsClients(clock=clock), clock)),
               DynamoDBStateStore(AwsContext(view, AwsClients(clock=clock), clock)), clock)


def test_the_arbiter_refuses_a_new_writer_while_the_old_ones_lease_may_run(
        arbiter: tuple[DynamoDBStateStore, DynamoDBStateStore, ScaledClock]) -> None:
    store, _, clock = arbiter
    state = store.read_state()
    assert (state["writer"], state["writer_epoch"]) == ("east", 1)
    assert store.claim_epoch(1, bare_plan("p1", "failover")) == 2
    # the claim does not hand epoch 2 to the old writer: its apps keep the token 1
    assert store.read_state()["writer_epoch"] == 1
    before = clock.time()
    until = store.revoke_writer("east")
    assert until >= before + 30  # counted from after the revoke was acknowledged
    assert store.revoke_writer("east") >= until  # a repeat never shortens it
    with pytest.raises(ProviderError, match="may hold its lease until"):
        store.set_writer("west", 2)  # the route step's wait is checked, not trusted
    time.sleep(max(0.0, (until - clock.time()) * clock.factor) + 0.05)  # (a slow machine may
    # already be past it: the 33 s lease is 0.33 real seconds at this factor)
    store.set_writer("west", 2)
    state = store.read_state()
    assert (state["writer"], state["writer_epoch"]) == ("west", 2)
    with pytest.raises(PlanConflict, match="epoch is 2, not 1"):
        store.set_writer("east", 1)  # a stale plan cannot route


def test_a_swap_rolled_back_before_promote_gets_its_lease_back_at_once(
        arbiter: tuple[DynamoDBStateStore, DynamoDBStateStore, ScaledClock]) -> None:
    store, _, _ = arbiter
    store.claim_epoch(1, bare_plan("swap", "switchover"))
    store.revoke_writer("east")
    store.set_writer("east", 2)  # back to the region it was taken from: nobody else wrote
    assert store.read_state()["writer"] == "east"


def test_a_runner_that_lost_its_plan_cannot_rewrite_the_record(
        arbiter: tuple[DynamoDBStateStore, DynamoDBStateStore, ScaledClock]) -> None:
    first, second, _ = arbiter
    plan = bare_plan("p1", "failover")
    first.claim_epoch(1, plan)
    second.finish_plan("p1", {"east": Role.STANDBY, "west": Role.PRIMARY}, 0.0)  # a successor
    with pytest.raises(PlanConflict, match="no longer the current plan"):
        first.save_plan(PlanRecord(plan, 2, done=(0,)))  # the stalled runner wakes up
    saved = first.read_plan()
    assert saved is not None and saved.status is PlanStatus.DONE
    second.claim_epoch(2, bare_plan("p2", "failback"))
    with pytest.raises(PlanConflict):
        first.save_plan(PlanRecord(plan, 2, PlanStatus.DONE))  # nor a newer plan's record
    with pytest.raises(PlanConflict):
        first.set_roles({"east": Role.PRIMARY}, plan_id="p1")


def test_the_arbiter_client_is_the_one_public_way_to_the_tables_items(
        arbiter: tuple[DynamoDBStateStore, DynamoDBStateStore, ScaledClock]) -> None:
    """What approvals, readiness and the guard keep in the table goes through these calls."""
    client = arbiter[0].arbiter
    assert client.get("approval") is None
    client.put("approval", {"version": {"N": "1"}}, condition="attribute_not_exists(pk)")
    with pytest.raises(ConditionFailed):  # an answer: another writer was first
        client.put("approval", {"version": {"N": "1"}}, condition="attribute_not_exists(pk)")
    client.update("approval", "SET version = :two", condition="version = :one",
                  values={":one": {"N": "1"}, ":two": {"N": "2"}})
    assert client.get("approval") == {"pk": {"S": "approval"}, "version": {"N": "2"}}
    for i in range(3):
        client.put(f"journal#{i}", {"line": {"S": str(i)}})
    assert sorted(i["pk"]["S"] for page in client.scan("journal#") for i in page) == [
        "journal#0", "journal#1", "journal#2"]
    assert {i["line"]["S"] for i in client.get_many(["journal#1", "journal#2", "nope"])} == {
        "1", "2"}
    client.delete("approval")
    assert client.get("approval") is None


def test_the_guard_presents_the_canary_credential_from_its_own_regions_secret(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from regionguard.providers.aws.wiring import build_ports

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    monkeypatch.delenv("RG_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("RG_ADMIN_TOKEN_SECRET", "orders/regionguard/admin-token")
    with mock_aws():
        ports = build_ports(topology("pilot-light"), runs_in="us-west-2")
        assert ports.traffic._credential() is None  # no secret yet: the canary will say 403
        boto3.client("secretsmanager", region_name="us-west-2").create_secret(
            Name="orders/regionguard/admin-token", SecretString="tok-west\n")
        assert ports.traffic._credential() == "tok-west"


def test_the_witness_tries_the_primarys_arbiter_replica_last() -> None:
    """A failover is needed exactly when the primary's Region is lost; the witness Region holds
    no replica, and a dead first replica's timeouts would delay every one of its votes. An app
    region tries its own replica first."""
    view = aws_view(topology("warm-standby"))
    clients = AwsClients(clock=ScaledClock.starting_now(0.01))
    primary, standby = view.primary.aws_region, view.standby.aws_region
    witness = AwsContext(view, clients, runs_in=view.witness_region)
    assert witness.replica_order() == [standby, primary]
    assert AwsContext(view, clients, runs_in=primary).replica_order() == [primary, standby]
    assert AwsContext(view, clients, runs_in=standby).replica_order() == [standby, primary]


def test_the_witness_races_the_replicas_and_an_app_region_asks_its_own_first() -> None:
    """The witness holds no replica: its reads go to both at once and the first answer wins,
    so a replica that hangs (its Region out, answering nothing until the timeout) costs its
    vote nothing. Tried one after the other, the hung one would cost its whole wait first."""
    from regionguard.providers.aws.arbiter import ArbiterClient
    from regionguard.providers.aws.clients import NearestReplica

    view = aws_view(topology("warm-standby"))
    primary, standby = view.primary.aws_region, view.standby.aws_region
    clients = AwsClients(clock=ScaledClock.starting_now(0.01))
    assert ArbiterClient(AwsContext(view, clients, runs_in=view.witness_region)).races
    assert not ArbiterClient(AwsContext(view, clients, runs_in=standby)).races

    def read(region: str) -> str:
        if region == standby:
            time.sleep(1.0)  # hung until its timeout
        return f"item from {region}"

    replicas = NearestReplica([standby, primary])
    started = time.monotonic()
    assert replicas.race(read) == f"item from {primary}"
    assert time.monotonic() - started < 0.8  # not after the hung one
    assert replicas.order[0] == primary  # the one that answered is asked first next time
    with pytest.raises(Exception, match="both failed"):
        NearestReplica([standby, primary]).race(
            lambda region: (_ for _ in ()).throw(RuntimeError("both failed")))


def test_the_replica_lag_history_comes_from_its_own_regions_cloudwatch() -> None:
    """One-minute maxima of the replica's ReplicaLag, read in the replica's Region, as (period
    end, lag): the planner takes the one before the loss; -1 (replication stopped) is left
    out."""
    from datetime import UTC, datetime, timedelta

    from regionguard.providers.aws.replica_lag import lag_points

    with mock_aws():
        ctx = AwsContext(aws_view(topology("pilot-light")), AwsClients())
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=4)
        dims = [{"Name": "DBInstanceIdentifier", "Value": "orders-db-us-west-2"}]
        boto3.client("cloudwatch", region_name="us-west-2").put_metric_data(
            Namespace="AWS/RDS", MetricData=[
                {"MetricName": "ReplicaLag", "Dimensions": dims, "Value": value,
                 "Timestamp": start + timedelta(minutes=i)}
                for i, value in enumerate((0.5, 1.5, 61.0, -1.0))])
        points = lag_points(ctx, "us-west-2", "ReplicaLag",
                            ("DBInstanceIdentifier", "orders-db-us-west-2"))
        assert not lag_points(ctx, "us-east-1", "ReplicaLag",
                              ("DBInstanceIdentifier", "orders-db-us-west-2"))
    assert [lag for _, lag in points] == [0.5, 1.5, 61.0]
    assert points[0][0] == (start + timedelta(minutes=1)).timestamp()  # the period's end


@pytest.mark.parametrize(("answer", "ok"), [
    ((200, {"holds_lease": True, "writable": True}), True),
    # DNS may move to a lease holder whose database still promotes; the live primary's
    # prober asks more: a primary that takes no writes is failing
    ((200, {"holds_lease": True, "writable": False}), False),
    ((503, {"holds_lease": False}), False),
])
def test_the_prober_judges_a_primary_that_cannot_write_as_failing(
        answer: tuple[int, dict[str, Any]], ok: bool) -> None:
    import threading
    from http.server import ThreadingHTTPServer

    from regionguard.clock import SYSTEM_CLOCK
    from regionguard.emulated.apps import json_http_handler
    from regionguard.providers.aws.probes import EndpointProber

    server = ThreadingHTTPServer(("127.0.0.1", 0), json_http_handler(lambda *_: answer))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        ctx = AwsContext(aws_view(topology("pilot-light")), StubbedClients(), SYSTEM_CLOCK,
                         "us-west-2", {"us-east-1": url})
        result = EndpointProber(ctx).probe("east", timeout_s=2.0)
    finally:
        server.shutdown()
        server.server_close()
    assert result.ok is ok, result.detail


def test_the_arbiter_journal_stores_lines_off_the_engines_path() -> None:
    """Each line is one cross-Region write: `write` hands it to the writer threads and goes
    on; `flush` (a step's end, the handler's) waits until all are stored; a read flushes
    first, and comes back in the journal's order whatever order the writes finished in."""
    import json
    import threading

    from regionguard.providers.aws.state import ArbiterJournalSink

    stored: dict[str, str] = {}
    lock = threading.Lock()

    class SlowArbiter:
        def put(self, key: str, item: dict[str, Any]) -> None:
            time.sleep(0.2)  # a cross-Region round trip, and more
            with lock:
                stored[key] = item["line"]["S"]

        def scan(self, prefix: str) -> Iterator[list[dict[str, Any]]]:
            with lock:
                yield [{"pk": {"S": k}, "line": {"S": v}} for k, v in stored.items()]

    class Store:
        arbiter = SlowArbiter()

    logged: list[str] = []
    sink = ArbiterJournalSink(Store(), logged.append)  # type: ignore[arg-type]
    started = time.monotonic()
    lines = [json.dumps({"mono_ns": 1_000 + i, "n": i}) for i in range(6)]
    for line in lines:
        sink.write(line)
    assert time.monotonic() - started < 0.6  # not one round trip per line (1.2 s) on the path
    assert logged == lines  # the log has every line at once
    sink.flush()
    assert len(stored) == 6
    assert sink.read_lines() == lines
