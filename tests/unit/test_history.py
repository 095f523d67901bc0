"""The history checker: silent on a clean history, and firing on an injected anomaly of each
kind (and only then)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regionguard.drill.history import AnomalyKind, Row, Timelines, check
from regionguard.drill.load import Request
from regionguard.drill.measures import Fence, fences_in
from regionguard.providers.local.postgres.queries import parse_timeline_history

pytestmark = pytest.mark.unit

MS = 1_000_000
FENCE_NS = 500 * MS


def clean_history(writes_per_side: int = 6) -> tuple[list[Request], list[Row], list[Fence]]:
    """east writes in epoch 1, is fenced at 500 ms, west writes in epoch 2; reads read back."""
    requests: list[Request] = []
    rows: list[Row] = []
    for i in range(2 * writes_per_side):
        east = i < writes_per_side
        step = 400 * MS // writes_per_side  # east before its fence, west after it
        t = i * step if east else 600 * MS + (i - writes_per_side) * step
        rid, qty, oid = f"load-x-{i:08d}", i % 997 + 1, 1000 + i
        requests.append(Request(t, 0.01, "write", True, 201, rid, "east" if east else "west",
                                1 if east else 2, oid, worker=i % 2, quantity=qty))
        requests.append(Request(t + 20 * MS, 0.005, "read", True, 200, rid,
                                "east" if east else "west", 1 if east else 2, oid,
                                worker=i % 2, quantity=qty))
        rows.append(Row(rid, oid, qty))
    # a write that failed during the outage: never acknowledged, absent, no anomaly
    requests.append(Request(510 * MS, 1.0, "write", False, 0, "load-x-failed", worker=1,
                            quantity=5))
    return requests, rows, [Fence("east", FENCE_NS, epoch=2)]


def acked(requests: list[Request], region: str) -> list[int]:
    return [i for i, r in enumerate(requests) if r.kind == "write" and r.ok
            and r.region == region]


def test_a_clean_history_has_no_anomaly() -> None:
    verdict = check(*clean_history())
    assert verdict.anomalies == [] and verdict.lost_acked == []
    assert verdict.acked_writes == 12 and verdict.reads_checked == 12


Mutation = Callable[[list[Request], list[Row], list[Fence]], None]


def lose_a_row(requests: list[Request], rows: list[Row], fences: list[Fence]) -> None:
    rows.pop(3)


def duplicate_a_row(requests: list[Request], rows: list[Row], fences: list[Fence]) -> None:
    rows.append(rows[2])


def read_an_unwritten_value(requests: list[Request], rows: list[Row],
                            fences: list[Fence]) -> None:
    i = next(i for i, r in enumerate(requests) if r.kind == "read")
    requests[i] = dataclasses.replace(requests[i], quantity=requests[i].quantity + 1)


def epoch_backwards(requests: list[Request], rows: list[Row], fences: list[Fence]) -> None:
    """The last west write (epoch 2) is acknowledged in epoch 0: older than writes that had
    finished before it started, with no other property broken."""
    i = acked(requests, "west")[-1]
    requests[i] = dataclasses.replace(requests[i], epoch=0)
    fences.clear()


def two_writers(requests: list[Request], rows: list[Row], fences: list[Fence]) -> None:
    """An east write acknowledged in epoch 2, the epoch west writes in (before the fence)."""
    i = acked(requests, "east")[-1]
    requests[i] = dataclasses.replace(requests[i], epoch=2)
    requests[acked(requests, "west")[0]] = dataclasses.replace(
        requests[acked(requests, "west")[0]], t_ns=requests[i].end_ns + MS)
    fences.clear()


def acked_after_fence(requests: list[Request], rows: list[Row], fences: list[Fence]) -> None:
    """An east write in epoch 1 sent after east's fence (the zombie); nothing else broken."""
    rid, oid, qty = "load-x-zombie", 7777, 42
    requests.append(Request(FENCE_NS + 5 * MS, 0.01, "write", True, 201, rid, "east", 1, oid,
                            worker=3, quantity=qty))
    rows.append(Row(rid, oid, qty))


@pytest.mark.parametrize(("mutate", "kind"), [
    (lose_a_row, AnomalyKind.LOST),
    (duplicate_a_row, AnomalyKind.DUPLICATED),
    (read_an_unwritten_value, AnomalyKind.UNWRITTEN_READ),
    (epoch_backwards, AnomalyKind.EPOCH_BACKWARDS),
    (two_writers, AnomalyKind.TWO_WRITERS),
    (acked_after_fence, AnomalyKind.FENCED_ACK),
])
def test_each_kind_fires_on_its_injected_anomaly_and_only_it(mutate: Mutation,
                                                             kind: AnomalyKind) -> None:
    requests, rows, fences = clean_history()
    mutate(requests, rows, fences)
    verdict = check(requests, rows, fences)
    assert verdict.kinds == {kind}, [a.detail for a in verdict.anomalies]
    anomaly = verdict.anomalies[0]
    assert anomaly.count >= 1 and anomaly.excerpt, "an anomaly shows the history behind it"


def test_a_value_read_with_another_id_than_acknowledged_is_unwritten() -> None:
    requests, rows, fences = clean_history()
    i = next(i for i, r in enumerate(requests) if r.kind == "read")
    requests[i] = dataclasses.replace(requests[i], order_id=999_999)
    assert check(requests, rows, fences).kinds == {AnomalyKind.UNWRITTEN_READ}


def test_a_row_with_another_value_is_a_lost_write() -> None:
    requests, rows, fences = clean_history()
    rows[0] = dataclasses.replace(rows[0], quantity=rows[0].quantity + 1)
    assert check(requests, rows, fences).kinds == {AnomalyKind.LOST}


def test_async_loss_from_the_failed_region_is_counted_not_an_anomaly() -> None:
    requests, rows, fences = clean_history()
    rows.pop(0)  # an east write (epoch 1) that never reached west
    verdict = check(requests, rows, fences, loss_allowed_from=["east"])
    assert verdict.anomalies == [] and verdict.lost_acked == ["load-x-00000000"]
    rows.pop()  # a west write is not covered by the allowance
    assert check(requests, rows, fences, loss_allowed_from=["east"]).kinds == {AnomalyKind.LOST}


def test_a_region_promoted_back_may_write_again_in_its_new_epoch() -> None:
    requests, rows, fences = clean_history()
    rid, oid, qty = "load-x-back", 8888, 43
    requests.append(Request(2000 * MS, 0.01, "write", True, 201, rid, "east", 3, oid,
                            worker=0, quantity=qty))
    rows.append(Row(rid, oid, qty))
    assert check(requests, rows, fences).anomalies == []


def test_fences_come_from_the_journal_with_the_plan_source_and_claimed_epoch() -> None:
    entries = [
        {"event": "plan", "outcome": "started", "plan": "p1", "source": "east",
         "target": "west", "mono_ns": 10},
        {"event": "step", "step": "fence", "outcome": "started", "plan": "p1", "epoch": 4,
         "mono_ns": 11},
        {"event": "step", "step": "fence", "outcome": "done", "plan": "p1", "epoch": 4,
         "mono_ns": 12},
        {"event": "plan", "outcome": "started", "plan": "p2", "source": "west",
         "target": "east", "mono_ns": 20},
        {"event": "step", "step": "stop_writes", "outcome": "done", "plan": "p2", "epoch": 5,
         "mono_ns": 21},
    ]
    assert fences_in(entries, since_ns=0) == [Fence("east", 12, 4), Fence("west", 21, 5)]
    assert fences_in(entries, since_ns=15) == [Fence("west", 21, 5)]


@settings(max_examples=60, deadline=None)
@given(writes=st.integers(1, 30), drop=st.data())
def test_any_dropped_acknowledged_row_is_found(writes: int, drop: st.DataObject) -> None:
    requests, rows, fences = clean_history(writes)
    victim = drop.draw(st.integers(0, len(rows) - 1))
    lost = rows.pop(victim)
    verdict = check(requests, rows, fences)
    assert verdict.lost_acked == [lost.request_id]
    assert verdict.kinds == {AnomalyKind.LOST}


# -- property 6: each acknowledged write placed on the surviving primary's own history ---------

SWITCH = "0/3000000"  # where west's timeline 2 branched off timeline 1


def positioned_history() -> tuple[list[Request], list[Row], list[Fence]]:
    """The clean history, each acknowledged write with the commit position the server gave:
    east's on timeline 1 below the switch point, west's on timeline 2."""
    requests, rows, fences = clean_history()
    for i, r in enumerate(requests):
        if r.kind == "write" and r.ok:
            low = 0x2000000 + i * 0x100
            requests[i] = dataclasses.replace(
                r, timeline=1 if r.region == "east" else 2,
                after_lsn=f"0/{low:X}", by_lsn=f"0/{low + 0x80:X}")
    return requests, rows, fences


def surviving() -> Timelines:
    return Timelines(2, parse_timeline_history(f"1\t{SWITCH}\tno recovery target specified\n"))


def test_a_timeline_history_file_is_read_and_a_clean_placed_history_is_silent() -> None:
    assert surviving() == Timelines(2, {1: SWITCH})
    assert parse_timeline_history("1\t0/3000148\tno recovery target specified\n\n"
                                  "2\t0/5000A0\tbefore 2026-12-04\n") == {
        1: "0/3000148", 2: "0/5000A0"}
    requests, rows, fences = positioned_history()
    for sync in (True, False):
        verdict = check(requests, rows, fences, timelines=surviving(), sync=sync)
        assert verdict.anomalies == [], [a.detail for a in verdict.anomalies]


def test_a_lost_write_inside_the_surviving_history_is_never_allowed() -> None:
    """Async allows losing the failed region's writes, but not one whose commit lies before
    the point where the survivor branched: the survivor's own history holds it."""
    requests, rows, fences = positioned_history()
    rows.pop(0)  # east's first write, committed at 0/2000080, far below the switch
    allowed = check(requests, rows, fences, loss_allowed_from=["east"])
    assert allowed.anomalies == []  # without the timelines, the loss looks allowed
    verdict = check(requests, rows, fences, loss_allowed_from=["east"], timelines=surviving())
    assert verdict.kinds == {AnomalyKind.LOST_ON_HISTORY}, [a.detail for a in verdict.anomalies]
    assert verdict.lost_acked == ["load-x-00000000"]


def test_a_write_acknowledged_past_the_fork_breaks_sync_and_is_allowed_async() -> None:
    requests, rows, fences = positioned_history()
    i = acked(requests, "east")[-1]
    requests[i] = dataclasses.replace(requests[i], after_lsn="0/3000010", by_lsn="0/3000090")
    rows[:] = [row for row in rows if row.request_id != requests[i].request_id]
    sync = check(requests, rows, fences, timelines=surviving(), sync=True)
    assert sync.kinds == {AnomalyKind.ACKED_PAST_FORK}, [a.detail for a in sync.anomalies]
    relaxed = check(requests, rows, fences, loss_allowed_from=["east"], timelines=surviving())
    assert relaxed.anomalies == [] and relaxed.lost_acked == [requests[i].request_id]


def test_a_commit_that_straddles_the_switch_point_is_not_placed() -> None:
    requests, rows, fences = positioned_history()
    i = acked(requests, "east")[-1]
    requests[i] = dataclasses.replace(requests[i], after_lsn="0/2FFFFF0", by_lsn="0/3000090")
    assert surviving().place(requests[i]) is None
    rows[:] = [row for row in rows if row.request_id != requests[i].request_id]
    assert check(requests, rows, fences, timelines=surviving(), sync=True).kinds == {
        AnomalyKind.LOST}


def test_a_timeline_number_alone_does_not_place_another_region_s_write() -> None:
    """Two promotions can pick the same timeline number: a write of another region on the
    survivor's timeline number is not placed inside the survivor's history."""
    requests, _, _ = positioned_history()
    east_write = requests[acked(requests, "east")[0]]
    twin = dataclasses.replace(east_write, timeline=2)  # east's own sibling timeline 2
    assert Timelines(2, {1: SWITCH}).place(twin) is True  # by number alone: wrongly placed
    assert Timelines(2, {1: SWITCH}, region="west").place(twin) is None
    west_write = requests[acked(requests, "west")[0]]
    assert Timelines(2, {1: SWITCH}, region="west").place(west_write) is True
