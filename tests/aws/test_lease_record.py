"""The apps' lease record (issue 22): a failover waits for the old Region's own last lease,
recorded in the arbiter by its apps before each confirmation, not for a whole lease from the
revoke; and no interleaving of a revoke with an app's renewal lets a lease outlast the time
the arbiter hands the writer on. Against moto's DynamoDB, on a clock the test moves."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

pytest.importorskip("moto", reason="the aws extra is not installed")

from botocore.exceptions import ClientError
from moto import mock_aws

from regionguard.app.lease import LeaseGuard, dynamodb_reader
from regionguard.aws_naming import LEASE_RECORD_ATTRIBUTE
from regionguard.errors import ProviderError
from regionguard.infra.view import AwsView, aws_view
from regionguard.providers.aws.clients import AwsClients
from regionguard.providers.aws.context import AwsContext
from regionguard.providers.aws.iam_actions import app_lease_record_condition
from regionguard.providers.aws.state import DynamoDBStateStore

from ..plan_helpers import bare_plan
from .topologies import topology

pytestmark = pytest.mark.aws

TABLE = "orders-regionguard-state"
T0 = 1_800_000_000.0


class SteppedClock:
    """World time, wall and monotonic alike, that moves only when the test says."""

    factor = 0.001

    def __init__(self) -> None:
        self.now = T0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def monotonic_ns(self) -> int:
        return int(self.now * 1e9)

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class WatchedClient:
    """The app's DynamoDB client, with a hook run before each call (the guard's revoke,
    slipped in between two of the app's calls) and a record of the calls made."""

    def __init__(self, client: Any, before: Callable[[str, dict[str, Any]], None]) -> None:
        self.client, self.before = client, before

    def get_item(self, **kwargs: Any) -> Any:
        self.before("get_item", kwargs)
        return self.client.get_item(**kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        self.before("update_item", kwargs)
        return self.client.update_item(**kwargs)


class AppClients(AwsClients):
    def __init__(self, clock: SteppedClock) -> None:
        super().__init__(clock=clock)
        self.clock = clock
        self.calls: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.hook: Callable[[str], None] = lambda _op: None
        self.call_s = 0.0  # world seconds each call takes

    def get(self, service: str, region: str) -> Any:
        def before(operation: str, request: dict[str, Any]) -> None:
            self.calls.append(operation)
            self.requests.append(request)
            self.hook(operation)
            self.clock.now += self.call_s
        return WatchedClient(super().get(service, region), before)


def east_app(clock: SteppedClock, clients: AppClients) -> LeaseGuard:
    """An app of `east` (the writer) with a 30 s lease, as the AWS world's apps hold it."""
    return LeaseGuard("east", dynamodb_reader(TABLE, ["us-east-1"], "east", 30.0, clock, clients),
                      30.0, clock=clock)


class Arbiter:
    """One arbiter table; the guard's store and an app of `east` (the writer) over it."""

    def __init__(self, view: AwsView) -> None:
        self.view = view
        self.clock = SteppedClock()
        self.store = DynamoDBStateStore(AwsContext(view, AwsClients(clock=self.clock),
                                                   self.clock))
        self.store.read_state()  # the state item: east writes at epoch 1
        self.clients = AppClients(self.clock)
        self.app = east_app(self.clock, self.clients)

    def recorded(self) -> float | None:
        item = boto3.client("dynamodb", region_name="us-east-1").get_item(
            TableName=TABLE, Key={"pk": {"S": "lease#east"}}, ConsistentRead=True).get("Item")
        return None if item is None else float(item[LEASE_RECORD_ATTRIBUTE]["N"])

    def granted_until(self) -> float | None:
        """When the app's lease ends, if it holds one (world time)."""
        view = self.app.holds()
        return None if view is None else view.confirmed_at + view.lasts_s


def create_table() -> None:
    """The arbiter's table in moto (one Region stands for the MRSC set), empty."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    if TABLE in client.list_tables()["TableNames"]:
        client.delete_table(TableName=TABLE)
    client.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])


@pytest.fixture
def arbiter(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Arbiter]:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    with mock_aws():
        create_table()
        yield Arbiter(aws_view(topology("pilot-light", **getattr(request, "param", {}))))


def test_an_app_records_its_lease_before_each_read_that_confirms_it(arbiter: Arbiter) -> None:
    arbiter.app.refresh()  # newly named: read, record, then read again
    assert arbiter.clients.calls == ["get_item", "update_item", "get_item"]
    assert arbiter.granted_until() == T0 + 30 and arbiter.recorded() == T0 + 30
    arbiter.clients.calls.clear()
    arbiter.clock.now += 5
    arbiter.app.refresh()  # the writer renews: record, then read
    assert arbiter.clients.calls == ["update_item", "get_item"]
    assert arbiter.recorded() == T0 + 35 and arbiter.granted_until() == T0 + 35


def test_the_record_only_rises_whichever_app_writes_it(arbiter: Arbiter) -> None:
    arbiter.clock.now += 10
    arbiter.app.refresh()
    other = east_app(arbiter.clock, AppClients(arbiter.clock))
    arbiter.clock.now -= 4  # another host's clock, behind: its record would lower the end
    other.refresh()
    assert other.holds() is not None  # the later record covers its lease too
    assert arbiter.recorded() == T0 + 40


def test_a_failover_waits_for_the_dead_regions_last_lease_not_a_whole_lease_from_the_revoke(
        arbiter: Arbiter) -> None:
    arbiter.app.refresh()
    assert arbiter.granted_until() == T0 + 30
    arbiter.clock.now += 20  # east died right after; detection and the claim took 20 s
    assert arbiter.store.claim_epoch(1, bare_plan("p1", "failover")) == 2
    until = arbiter.store.revoke_writer("east")
    # its last record (T0 + 30) plus the clock-rate slack (3 s) and the skew bound (2 s);
    # a whole lease from the revoke would have been T0 + 20 + 33
    assert until == T0 + 35
    assert arbiter.store.revoke_writer("east") == until  # a repeat gives the same
    arbiter.clock.now = until - 0.5
    with pytest.raises(ProviderError, match="may hold its lease until"):
        arbiter.store.set_writer("west", 2)
    arbiter.clock.now = until
    assert arbiter.granted_until() is None  # east's own app stopped writing before then
    arbiter.store.set_writer("west", 2)


def test_a_region_whose_apps_still_renew_gets_a_whole_lease_from_the_revoke(
        arbiter: Arbiter, caplog: pytest.LogCaptureFixture) -> None:
    """A switchover, or a partition that left the old Region's apps reaching the arbiter: their
    latest record is about a lease from now, so the revoke's bound (the earlier) holds."""
    arbiter.app.refresh()
    arbiter.clock.now += 4
    arbiter.app.refresh()
    arbiter.store.claim_epoch(1, bare_plan("p1", "switchover"))
    assert arbiter.store.revoke_writer("east") == T0 + 4 + 33
    assert "runs ahead" not in caplog.text  # a fresh record is no sign of a clock ahead


def test_a_record_from_a_clock_running_ahead_only_lengthens_the_wait_and_is_logged(
        arbiter: Arbiter, caplog: pytest.LogCaptureFixture) -> None:
    arbiter.clock.now += 20  # the app's host runs 20 s ahead of the guard's
    arbiter.app.refresh()
    arbiter.clock.now -= 20
    arbiter.store.claim_epoch(1, bare_plan("p1", "failover"))
    assert arbiter.store.revoke_writer("east") == T0 + 33  # the revoke's bound
    assert "an app host's clock runs ahead" in caplog.text


@pytest.mark.parametrize("arbiter", [{"aws": {"lease_record": False}}], indirect=True)
def test_with_the_record_turned_off_the_wait_is_a_whole_lease_from_the_revoke(
        arbiter: Arbiter) -> None:
    """`aws.lease_record = false`: while an app predating the record may run (it confirms
    without recording), the record is not trusted."""
    arbiter.app.refresh()
    arbiter.clock.now += 20
    arbiter.store.claim_epoch(1, bare_plan("p1", "failover"))
    assert arbiter.recorded() == T0 + 30  # the apps still record
    assert arbiter.store.revoke_writer("east") == T0 + 20 + 33


@pytest.mark.parametrize("arbiter", [{"aws": {"lease_clock_skew_s": 7.5}}], indirect=True)
def test_the_wait_covers_the_apps_clock_skew_bound(arbiter: Arbiter) -> None:
    arbiter.app.refresh()
    arbiter.clock.now += 20
    arbiter.store.claim_epoch(1, bare_plan("p1", "failover"))
    assert arbiter.store.revoke_writer("east") == T0 + 30 + 3 + 7.5


def test_the_apps_record_is_what_its_iam_policy_lets_it_write(arbiter: Arbiter) -> None:
    """moto does not enforce IAM: the app's own UpdateItem is checked here against the
    condition both IaC paths grant (the one item, its key and its one attribute)."""
    arbiter.app.refresh()
    [update] = [r for op, r in zip(arbiter.clients.calls, arbiter.clients.requests, strict=True)
                if op == "update_item"]
    allowed = app_lease_record_condition("east")["ForAllValues:StringEquals"]
    assert [update["Key"]["pk"]["S"]] == allowed["dynamodb:LeadingKeys"]
    names = update.get("ExpressionAttributeNames", {})
    expressions = " ".join([update["UpdateExpression"], update.get("ConditionExpression", "")])
    words = re.findall(r"(?<![:\w#])#?[A-Za-z_]\w*", expressions)  # names, not :values
    used = {names.get(w, w) for w in words if w.upper() != w and not w.startswith("attribute_")}
    assert {"pk"} | used <= set(allowed["dynamodb:Attributes"]), used
    assert "ReturnValues" not in update  # nothing read back through a write


@pytest.mark.parametrize(("failures", "until"), [(1, T0 + 35), (2, T0 + 20 + 33)],
                         ids=["one-stall-retried", "unreadable"])
def test_without_a_readable_record_the_wait_is_a_whole_lease_from_the_revoke(
        arbiter: Arbiter, monkeypatch: pytest.MonkeyPatch, failures: int, until: float) -> None:
    arbiter.app.refresh()
    arbiter.clock.now += 20
    arbiter.store.claim_epoch(1, bare_plan("p1", "failover"))
    real_get = arbiter.store.arbiter.get
    failed: list[str] = []

    def get(key: str) -> Any:
        if key.startswith("lease#") and len(failed) < failures:
            failed.append(key)
            raise ProviderError("arbiter orders-regionguard-state get_item: no replica answered")
        return real_get(key)

    monkeypatch.setattr(arbiter.store.arbiter, "get", get)
    assert arbiter.store.revoke_writer("east") == until


def test_a_read_naming_the_region_confirms_nothing_when_its_record_fails(
        arbiter: Arbiter) -> None:
    def refuse(operation: str) -> None:
        if operation == "update_item":
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}},
                              "UpdateItem")
    arbiter.clients.hook = refuse
    arbiter.app.refresh()
    assert arbiter.granted_until() is None
    assert "AccessDeniedException" in arbiter.app.refusal()
    assert arbiter.recorded() is None


@pytest.mark.parametrize("steady", [False, True], ids=["newly-named", "renewing"])
def test_no_revoke_slipped_into_a_renewal_lets_a_lease_outlast_the_arbiters_wait(
        arbiter: Arbiter, steady: bool) -> None:
    """The guard revokes before each of the app's calls in turn (and after the last): whatever
    the app is granted ends no later than the time the arbiter lets a new writer in. Recording
    after the confirming read, or confirming from a read that preceded the record, fails it."""
    def prepare() -> Arbiter:
        create_table()
        fresh = Arbiter(arbiter.view)
        # the Region's previous renewal, 10 s before this one: by this app, or by another
        # (this one just started, or was named again)
        previous = fresh.app if steady else east_app(fresh.clock, AppClients(fresh.clock))
        previous.refresh()
        fresh.clock.now += 10
        fresh.store.claim_epoch(1, bare_plan("p1", "failover"))
        fresh.clients.calls.clear()
        fresh.clients.call_s = 0.4  # the renewal's calls take time: its start is what counts
        return fresh

    dry = prepare()
    dry.app.refresh()
    calls = len(dry.clients.calls)  # newly named: read, record, read; renewing: record, read
    for before_call in range(calls + 1):
        fresh = prepare()
        revoked: list[float] = []

        def revoke(_operation: str, fresh: Arbiter = fresh, at: int = before_call,
                   revoked: list[float] = revoked) -> None:
            if len(fresh.clients.calls) - 1 == at:
                revoked.append(fresh.store.revoke_writer("east") or 0.0)
        fresh.clients.hook = revoke
        fresh.app.refresh()
        if not revoked:  # after the renewal's last call
            revoked.append(fresh.store.revoke_writer("east") or 0.0)
        granted = fresh.granted_until()
        assert granted is None or granted <= revoked[0], (
            f"revoked before call {before_call} of {calls}: the app holds its lease until "
            f"T0 + {granted - T0:.1f}, the arbiter lets a new writer in at "
            f"T0 + {revoked[0] - T0:.1f}")
