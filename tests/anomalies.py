"""Anomalies injected into a real drill history, one of each kind the checker knows: the
proof that the checker fires (tests/lab/test_lab.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from regionguard.drill.history import LOSSES, AnomalyKind
from regionguard.drill.history_file import DrillHistory

Mutation = Callable[[DrillHistory], None]


def _acked(h: DrillHistory) -> list[int]:
    return [i for i, r in enumerate(h.requests) if r.kind == "write" and r.ok]


def lose(h: DrillHistory) -> None:
    assert h.rows
    h.rows.pop(len(h.rows) // 2)


def duplicate(h: DrillHistory) -> None:
    assert h.rows
    h.rows.append(h.rows[0])


def unwritten_read(h: DrillHistory) -> None:
    i = next(i for i, r in enumerate(h.requests) if r.kind == "read" and r.status == 200)
    h.requests[i] = dataclasses.replace(h.requests[i], quantity=(h.requests[i].quantity or 0)
                                        + 1)


def epoch_backwards(h: DrillHistory) -> None:
    i = _acked(h)[-1]
    h.requests[i] = dataclasses.replace(h.requests[i], epoch=0)


def two_writers(h: DrillHistory) -> None:
    """The first acknowledged write relabelled to the other region (a failover drill has
    acknowledged writes from both)."""
    i = _acked(h)[0]
    other = next(h.requests[j].region for j in _acked(h)
                 if h.requests[j].region != h.requests[i].region)
    h.requests[i] = dataclasses.replace(h.requests[i], region=other)


def acked_after_fence(h: DrillHistory) -> None:
    fence = h.fences[0]
    i = next(i for i in _acked(h) if h.requests[i].t_ns > fence.done_ns)
    h.requests[i] = dataclasses.replace(h.requests[i], region=fence.region,
                                        epoch=(fence.epoch or 1) - 1)




def _placed(h: DrillHistory, inside: bool) -> int:
    """An acknowledged write on an earlier timeline than the survivor's, placed inside its
    history (or, `inside` False, any on an earlier timeline)."""
    assert h.timelines is not None, "the drill recorded no timeline history of the survivor"
    current = h.timelines.current
    return next(i for i in _acked(h) if (t := h.requests[i].timeline) is not None
                and t < current and (not inside or h.timelines.place(h.requests[i])))


def _drop_row(h: DrillHistory, request_id: str | None) -> None:
    assert h.rows is not None
    h.rows[:] = [row for row in h.rows if row.request_id != request_id]


def lose_on_history(h: DrillHistory) -> None:
    """The old primary's write whose commit the survivor's own history holds, gone: even with
    its region's loss allowed (async), the checker must fire."""
    i = _placed(h, inside=True)
    _drop_row(h, h.requests[i].request_id)
    h.loss_allowed_from = sorted({*h.loss_allowed_from, h.requests[i].region or ""})


def ack_past_fork(h: DrillHistory) -> None:
    """Under sync, an old primary's write whose commit the server placed past the point where
    the survivor's timeline branched off, gone."""
    from regionguard.orchestrator.lsn import format_lsn, parse_lsn

    i = _placed(h, inside=False)
    r = h.requests[i]
    assert h.timelines is not None and r.timeline is not None
    switch = parse_lsn(h.timelines.switched_at[r.timeline])
    assert switch is not None
    h.requests[i] = dataclasses.replace(r, after_lsn=format_lsn(switch + 0x10),
                                        by_lsn=format_lsn(switch + 0x90))
    _drop_row(h, r.request_id)
    h.sync = True


def each_kind(fences: bool) -> list[tuple[Mutation, frozenset[AnomalyKind]]]:
    """Every injection and the kinds it must raise (a loss: any of the loss kinds); the fence's
    only where the history holds a fence (a lab drill that failed over: etcd's end of the old
    primary's lease, on the driller's own clock)."""
    found: list[tuple[Mutation, frozenset[AnomalyKind]]] = [
        (lose, LOSSES), (duplicate, frozenset({AnomalyKind.DUPLICATED})),
        (unwritten_read, frozenset({AnomalyKind.UNWRITTEN_READ})),
        (epoch_backwards, frozenset({AnomalyKind.EPOCH_BACKWARDS})),
        (two_writers, frozenset({AnomalyKind.TWO_WRITERS})),
        (lose_on_history, frozenset({AnomalyKind.LOST_ON_HISTORY})),
        (ack_past_fork, frozenset({AnomalyKind.ACKED_PAST_FORK}))]
    if fences:
        found.append((acked_after_fence, frozenset({AnomalyKind.FENCED_ACK})))
    return found
