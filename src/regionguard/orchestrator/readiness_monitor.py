"""Readiness, watched continuously (as ARC's plan evaluation): what happens with each evaluation.

The checks themselves are pure (`readiness.py`); a world gathers the facts. The monitor is the
part every loop shares: a change of any check's status is journaled (with every check, so the
journal alone says what readiness was when a plan started), and a check that newly fails is
alerted once. What it last saw lives in a `ReadinessMemory`: the loop's own memory where a
loop runs for days, the arbiter where each run is a new process (the
AWS guard), so a Lambda does not alert the same failure every minute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from regionguard.errors import RegionGuardError
from regionguard.orchestrator import readiness
from regionguard.orchestrator.events import Event
from regionguard.orchestrator.ports import DbStatus, LiveState, Ports


class ReadinessMemory(Protocol):
    def last_statuses(self) -> Mapping[str, str]:
        """Each check's status at the last evaluation (empty before the first)."""
        ...

    def remember(self, statuses: Mapping[str, str]) -> None:
        ...


class InProcessMemory:
    def __init__(self) -> None:
        self._statuses: dict[str, str] = {}

    def last_statuses(self) -> Mapping[str, str]:
        return self._statuses

    def remember(self, statuses: Mapping[str, str]) -> None:
        self._statuses = dict(statuses)


class ReadinessMonitor:
    def __init__(self, ports: Ports, memory: ReadinessMemory | None = None) -> None:
        self.ports = ports
        self.memory = memory or InProcessMemory()

    def evaluate(self, facts: readiness.Facts) -> list[readiness.Check]:
        checks = readiness.evaluate(self.ports.topology, facts)
        self.take(checks)
        return checks

    def take(self, checks: list[readiness.Check]) -> bool:
        """Journal and alert what changed since the last evaluation; True when anything did."""
        now = {c.name: c.status for c in checks}
        before = self.memory.last_statuses()
        if now == dict(before):
            return False
        self.memory.remember(now)
        self.ports.journal.record(Event.READINESS, outcome=readiness.overall(checks),
                                  checks=[c.as_dict() for c in checks])
        for c in checks:
            if c.status == "fail" and before.get(c.name) != "fail":
                self.ports.notifier.notify("readiness_failed", c.as_dict())
        return True


def observe_pair(ports: Ports) -> tuple[LiveState, str, DbStatus | None]:
    """What every world's readiness starts from: the live roles, the standby's name, and its
    database (None when it cannot be asked: a finding, not an error)."""
    live = ports.state.load()
    standby = ports.topology.other_region(live.primary)
    try:
        return live, standby, ports.database.status(standby)
    except RegionGuardError:
        return live, standby, None
