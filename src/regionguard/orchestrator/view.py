"""What an automatic loop saw on its last tick, published whole for readers outside it.

The loop replaces the view in one assignment each tick, so a reader (the ops endpoint's metrics
and status page) gets one consistent picture without a lock. The engine writes it; `ops/`
reads it: metrics depend on the engine, never the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TickView:
    """What a loop (a site's agent) saw on its last look (written by it, read by scrapes)."""

    verdicts: dict[str, str] = field(default_factory=dict)  # region -> verdict
    probes: dict[tuple[str, str], bool] = field(default_factory=dict)  # (region, prober) -> ok
    lag: dict[str, tuple[int | None, float | None]] = field(default_factory=dict)  # bytes, s
    readiness: list[Mapping[str, Any]] = field(default_factory=list)  # name, status, ...
    awaiting_approval: Mapping[str, Any] | None = None
