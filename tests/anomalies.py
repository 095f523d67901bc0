"""Anomalies injected into a real drill history, one of each kind the checker knows: the
proof that the checker fires (tests/local/test_campaign.py, tests/lab/test_lab_campaign.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from regionguard.drill.campaign import DrillHistory

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


