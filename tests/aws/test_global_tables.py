"""The emulated DynamoDB global table (MREC) between moto's Regions: a write reaches the other
replica after the modelled delay, waits while the link is cut, and concurrent writes converge
on the last writer's version, each conflict counted once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from regionguard.emulated.domains import FailMode, FailureDomains, Fault, FaultKind
from regionguard.emulated.global_tables import GlobalTables
from regionguard.emulated.operations import Call

from ..manual_clock import ManualClock

pytestmark = pytest.mark.aws

E, W, WITNESS = "us-east-1", "us-west-2", "us-east-2"
TABLE = "orders-sessions"
DELAY_S = 1.0


class World:
    def __init__(self, url: str) -> None:
        self.clock = ManualClock()
        self.domains = FailureDomains((E, W, WITNESS))
        self.tables = GlobalTables([TABLE], (E, W), url, self.domains,
                                   self.clock, DELAY_S)  # type: ignore[arg-type]
        session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x")
        self.clients = {r: session.client("dynamodb", region_name=r, endpoint_url=url)
                        for r in (E, W)}
        for client in self.clients.values():
            client.create_table(
                TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])

    def put(self, region: str, key: str, value: str) -> None:
        """What the app's write through the fault proxy does: the write, then the hook."""
        request = {"TableName": TABLE, "Item": {"id": {"S": key}, "v": {"S": value}}}
        with self.tables.serialize(Call("dynamodb", "PutItem", region),
                                   json.dumps(request).encode()):
            self.clients[region].put_item(**request)
            self.tables.observe(region, Call("dynamodb", "PutItem", region),
                                json.dumps(request).encode(), 200)

    def delete(self, region: str, key: str) -> None:
        request = {"TableName": TABLE, "Key": {"id": {"S": key}}}
        self.clients[region].delete_item(**request)
        self.tables.observe(region, Call("dynamodb", "DeleteItem", region),
                            json.dumps(request).encode(), 200)

    def get(self, region: str, key: str) -> str | None:
        item: dict[str, Any] | None = self.clients[region].get_item(
            TableName=TABLE, Key={"id": {"S": key}}).get("Item")
        return item["v"]["S"] if item else None

    def after_the_delay(self) -> int:
        self.clock.sleep(DELAY_S * 1.05)
        return self.tables.deliver_due()


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def world(moto_url: str) -> World:
    for region in (E, W):  # a fresh table per test
        client = boto3.client("dynamodb", region_name=region, endpoint_url=moto_url,
                              aws_access_key_id="x", aws_secret_access_key="x")
        if TABLE in client.list_tables()["TableNames"]:
            client.delete_table(TableName=TABLE)
    return World(moto_url)


def test_a_write_reaches_the_other_replica_after_the_delay_and_a_delete_too(
        world: World) -> None:
    world.put(E, "s-1", "a")
    assert world.tables.deliver_due() == 0  # not yet due
    assert world.get(W, "s-1") is None
    assert world.after_the_delay() == 1
    assert world.get(W, "s-1") == "a"
    world.delete(W, "s-1")
    world.after_the_delay()
    assert world.get(E, "s-1") is None
    assert world.tables.stats.conflicts == 0
    # what it took, published as DynamoDB does: in the source Region, per receiving Region
    points = world.tables._metrics[E].get_metric_statistics(
        Namespace="AWS/DynamoDB", MetricName="ReplicationLatency",
        Dimensions=[{"Name": "TableName", "Value": TABLE},
                    {"Name": "ReceivingRegion", "Value": W}],
        StartTime=datetime.fromtimestamp(world.clock.time() - 600, UTC),
        EndTime=datetime.fromtimestamp(world.clock.time() + 60, UTC), Period=60,
        Statistics=["Average"])["Datapoints"]
    assert points and all(DELAY_S * 1000 <= p["Average"] < 3 * DELAY_S * 1000 for p in points)


def test_a_cut_link_queues_the_change_and_concurrent_writes_converge_on_the_last(
        world: World) -> None:
    world.put(E, "shared", "from-east")  # acknowledged in east, not yet replicated...
    world.domains.inject(Fault(FaultKind.REGION_OUTAGE, E, FailMode.REFUSED, 0.0))
    assert world.after_the_delay() == 0  # ... and east is out: it waits
    assert world.get(W, "shared") is None
    world.clock.sleep(0.5)
    world.put(W, "shared", "from-west")  # later, in the survivor
    world.put(W, "own", "west-only")
    assert world.after_the_delay() == 0  # nothing crosses while east is out
    world.domains.heal()
    assert world.tables.deliver_due() == 3
    # the last writer (west) wins in both replicas; the survivor's own session arrives too
    assert world.get(E, "shared") == world.get(W, "shared") == "from-west"
    assert world.get(E, "own") == "west-only"
    assert world.tables.stats.conflicts == 1  # one item written concurrently in two Regions
    assert world.tables.stats.superseded == 1  # east's older version lost, in west
    assert world.tables.pending() == []


def test_the_order_of_deliveries_does_not_change_the_outcome(world: World) -> None:
    """West's newer version reaches east first, then east's older one reaches west: both
    replicas keep west's, whatever order the queue ran in."""
    world.domains.inject(Fault(FaultKind.PARTITION, W, FailMode.TIMEOUT, 0.0))
    world.put(E, "k", "old")
    world.clock.sleep(0.2)
    world.put(W, "k", "new")
    world.domains.heal()
    world.clock.sleep(DELAY_S * 1.05)
    for change in reversed(world.tables.pending()):  # west -> east first
        world.tables._deliver(change)
    assert world.get(E, "k") == world.get(W, "k") == "new"
    assert world.tables.stats.conflicts == 1


def test_writes_in_one_instant_in_two_regions_converge_on_one_winner(world: World) -> None:
    """World time stands still while the emulator works: two Regions can write one item at
    the same timestamp. The Region breaks the tie, the same way in both replicas."""
    world.put(E, "tie", "from-east")
    world.put(W, "tie", "from-west")  # the same world instant
    assert world.after_the_delay() == 2
    assert world.get(E, "tie") == world.get(W, "tie") == "from-west"
    assert world.tables.stats.conflicts == 1


def test_a_second_write_before_the_first_left_rides_along(world: World) -> None:
    """One queued change per item and direction: it carries the item's version when it is
    delivered, so two writes in a row arrive as the second, with no conflict counted."""
    world.put(E, "k", "first")
    world.clock.sleep(0.3)
    world.put(E, "k", "second")
    assert len(world.tables.pending()) == 1
    world.after_the_delay()
    assert world.get(W, "k") == "second"
    world.put(W, "k", "third")  # sequential: west had seen east's last version
    world.after_the_delay()
    assert world.get(E, "k") == "third" and world.tables.stats.conflicts == 0


def test_a_write_that_cannot_be_queued_is_logged_never_raised(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.tables.observe(E, Call("dynamodb", "PutItem", E), b"{not json", 200)
    assert "was not queued for replication" in caplog.text


def test_only_the_global_tables_writes_are_replicated(world: World) -> None:
    other = {"TableName": "something-else", "Item": {"id": {"S": "x"}}}
    world.tables.observe(E, Call("dynamodb", "PutItem", E), json.dumps(other).encode(), 200)
    refused = {"TableName": TABLE, "Item": {"id": {"S": "y"}}}
    world.tables.observe(E, Call("dynamodb", "PutItem", E), json.dumps(refused).encode(), 400)
    read = {"TableName": TABLE, "Key": {"id": {"S": "y"}}}
    world.tables.observe(E, Call("dynamodb", "GetItem", E), json.dumps(read).encode(), 200)
    assert world.tables.pending() == []


def test_the_drill_counts_the_unreplicated_sessions_a_survivor_wrote_again() -> None:
    """Each of them is a conflict the heal must resolve; the drill's test holds the resolved
    conflicts to at least this many."""
    from types import SimpleNamespace

    from regionguard.emulated.global_tables import Change, ReplicationStats
    from regionguard.emulated.session_load import SessionWrite, summary

    def stuck(session: str) -> Change:
        return Change("orders-sessions", json.dumps({"id": {"S": session}}), "us-east-1",
                      "us-west-2", due=104.0)

    load = SimpleNamespace(writes=[
        SessionWrite(101.0, "us-west-2", "shared-1", 200),  # written again: a conflict
        SessionWrite(101.0, "us-west-2", "shared-2", 503),  # refused: none
        SessionWrite(99.0, "us-west-2", "shared-3", 200)])  # before the fault: none
    tables = SimpleNamespace(delay_s=5.0, tables={"orders-sessions"}, stats=ReplicationStats())
    s = summary(load, tables, "us-east-1", 100.0,  # type: ignore[arg-type]
                [stuck("shared-1"), stuck("shared-2"), stuck("shared-3"), stuck("us-east-1-7")],
                converged=True, drained=True, conflicts_before_heal=0)
    assert (s["unreplicated_at_fault"], s["unreplicated_then_rewritten"]) == (4, 1)
    assert s["rpo_s"] == 1.0
