"""The journal's last entries as the sites' live page shows them: the fields a person reads,
newest last."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

EVENT_FIELDS = ("ts", "event", "region", "plan", "step", "outcome", "verdict", "detail")
LAST_EVENTS = 20


def last_events(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k: e[k] for k in EVENT_FIELDS if k in e} for e in entries[-LAST_EVENTS:]]


def past_rtos(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every plan in `entries` that ended with an RTO, oldest first: the live page's RTO
    sparkline."""
    return [{"plan": e.get("plan"), "rto_s": e["rto_s"]} for e in entries
            if e.get("event") == "plan" and e.get("outcome") == "done"
            and isinstance(e.get("rto_s"), int | float)]
