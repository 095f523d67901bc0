"""The engine's append-only journal and the RTO breakdown computed from it.

Every verdict, step transition and alert is one JSON line with a wall-clock time (for humans)
and `time.monotonic_ns()` (for arithmetic: CLOCK_MONOTONIC is shared by every process on the
machine, so an agent, a manual command and a drill client on one host can be compared). The journal
alone explains a failover; `rto_breakdown` never guesses: time not covered by detection or a
step is reported as "other".
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from regionguard.orchestrator.events import Event


class JournalSink(Protocol):
    def write(self, line: str) -> None: ...
    def read_lines(self) -> list[str]: ...


@runtime_checkable
class BufferedSink(JournalSink, Protocol):
    """A sink that stores lines off the caller's path (the AWS arbiter's: one cross-Region
    write each): `flush` waits until what was written is stored."""

    def flush(self) -> None: ...


class FileSink:
    """One JSON object per line, appended with O_APPEND so concurrent writers never interleave."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def read_lines(self) -> list[str]:
        try:
            return self.path.read_text().splitlines()
        except FileNotFoundError:
            return []


class MemorySink:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, line: str) -> None:
        self.lines.append(line)

    def read_lines(self) -> list[str]:
        return list(self.lines)


class Journal:
    def __init__(self, sink: JournalSink, clock_ns: Any = time.monotonic_ns) -> None:
        self.sink = sink
        self.clock_ns = clock_ns

    def record(self, event: Event, **fields: Any) -> dict[str, Any]:
        """Append one event; fields that are None are left out. Returns the entry written."""
        entry = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "mono_ns": int(fields.pop("mono_ns", None) or self.clock_ns()),
            "event": event,
            **{k: v for k, v in fields.items() if v is not None},
        }
        self.sink.write(json.dumps(entry, default=str, sort_keys=False))
        return entry

    def flush(self) -> None:
        """Wait until every line written so far is stored (the executor, at the end of each
        step; a Lambda handler, before it returns). Nothing to do for a synchronous sink."""
        if isinstance(self.sink, BufferedSink):
            self.sink.flush()

    def entries(self) -> list[dict[str, Any]]:
        out = []
        for line in self.sink.read_lines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line after a crash is skipped, not fatal
        return out


def rto_breakdown(entries: Iterable[Mapping[str, Any]], plan_id: str) -> dict[str, Any] | None:
    """One plan's RTO and where it went, for every view to tell the same story: `rto_s` runs
    from the first failed probe (or the first step) to the end of the last step that counts
    toward it; `steps` are detection and those steps (what is left is `other_s`); `after_rto`
    the steps that ran once traffic was restored (a rejoin, a retire), never added to it; a
    step's figure is the sum of its attempts, and `attempts` says how many there were. None
    when the plan never finished a step."""
    entries = list(entries)
    plan_entries = [e for e in entries if e.get("plan") == plan_id]
    started = next((e for e in plan_entries if e["event"] == "plan" and
                    e.get("outcome") == "started"), None)
    if started is None:
        return None
    steps: dict[str, float] = {}
    attempts: dict[str, int] = {}
    outside_rto: set[str] = set()
    open_steps: dict[str, int] = {}
    first_rto_start = None
    last_end = None
    for e in plan_entries:
        if e["event"] != "step":
            continue
        if e["outcome"] == "started":
            open_steps[e["step"]] = e["mono_ns"]
            attempts[e["step"]] = attempts.get(e["step"], 0) + 1
            if e.get("in_rto", True) and first_rto_start is None:
                first_rto_start = e["mono_ns"]
        elif e["outcome"] in ("done", "failed", "unfinished") and e["step"] in open_steps:
            dur = (e["mono_ns"] - open_steps.pop(e["step"])) / 1e9
            steps[e["step"]] = round(steps.get(e["step"], 0.0) + dur, 4)
            if e.get("in_rto", True):
                last_end = e["mono_ns"]
            else:
                outside_rto.add(e["step"])
    if last_end is None:
        return None
    verdict = next((e for e in entries if e["event"] == "verdict" and
                    e.get("plan") == plan_id), None)
    first_failure = verdict.get("first_failure_ns") if verdict else None
    begin = first_failure or first_rto_start or started["mono_ns"]
    detect = (verdict["mono_ns"] - first_failure) / 1e9 if verdict and first_failure else 0.0
    total = (last_end - begin) / 1e9
    in_rto = {k: v for k, v in steps.items() if k not in outside_rto}
    after = {k: v for k, v in steps.items() if k in outside_rto}
    other = total - detect - sum(in_rto.values())
    return {
        "plan": started.get("name"),
        "plan_id": plan_id,
        "to": started.get("target"),
        "from": started.get("source"),
        "rto_s": round(total, 4),
        "steps": {"detect": round(detect, 4), **in_rto},
        "other_s": round(other, 4),
        "after_rto": after,
        "attempts": {k: n for k, n in attempts.items() if k in steps},
    }
