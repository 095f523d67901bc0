"""The watchdog beside PostgreSQL: it stops the database when the agent that holds the write
lease hangs or dies (the part Patroni gives the kernel's watchdog).

The agent publishes its fence deadline in a heartbeat file after every renewal: a time on the
host's monotonic clock (CLOCK_MONOTONIC is one clock for every process of a host, and never
jumps with NTP). The watchdog, a process of its own, reads it every `poll_s`: while a deadline
stands and has passed, the agent did not renew in time (it is frozen, dead, or stuck), so the
watchdog fences the database itself. The agent's own monitor fences at the same deadline when
it is alive; whichever comes first does it, and fencing twice is harmless.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from regionguard.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("regionguard.agent.watchdog")


class Heartbeat:
    """The agent's side: write the current fence deadline (None: holds no lease)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def publish(self, deadline: float | None, pid: int | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"deadline": deadline, "pid": pid or os.getpid()}))
        os.replace(tmp, self.path)  # a reader sees the old deadline or the new, never half


def read_deadline(path: Path) -> float | None:
    """The deadline the agent last published; None when it holds nothing. An unreadable or
    missing file while a deadline was once seen is treated by the caller (see `Watchdog`)."""
    try:
        value = json.loads(path.read_text()).get("deadline")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError):
        raise ValueError(f"{path}: unreadable heartbeat") from None
    return None if value is None else float(value)


class Watchdog:
    """Fence (once) when the published deadline has passed."""

    def __init__(self, heartbeat: Path, fence: Callable[[str], object], *,
                 poll_s: float = 0.05, clock: Clock = SYSTEM_CLOCK) -> None:
        self.heartbeat = heartbeat
        self.clock = clock  # the agent's: its deadlines are on this clock's monotonic time
        self._fence = fence
        self.poll_s = poll_s
        self.fired: str | None = None
        self._last: float | None = None

    def check(self, now: float | None = None) -> bool:
        """One look; True when it fenced (now or before)."""
        if self.fired is not None:
            return True
        now = self.clock.monotonic() if now is None else now
        try:
            deadline = read_deadline(self.heartbeat)
        except ValueError:
            deadline = self._last  # a torn or corrupt file never clears a standing deadline
        self._last = deadline
        if deadline is not None and now >= deadline:
            self.fired = (f"the agent did not renew the write lease by its deadline "
                          f"({now - deadline:.2f} s ago): it is frozen, stuck or dead")
            log.error("watchdog fences the database: %s", self.fired)
            self._fence(self.fired)
            return True
        return False

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.check():
                return
            stop.wait(self.poll_s * self.clock.factor)


def watch_until_stopped(heartbeat: Path, fence: Callable[[str], object],
                        stop: threading.Event, *, poll_s: float = 0.05) -> None:
    """The watchdog process's life: fence when the deadline passes, then stay quiet until the
    agent publishes a new heartbeat (it holds the lease again after a restart), and re-arm."""
    while not stop.is_set():
        Watchdog(heartbeat, fence, poll_s=poll_s).run(stop)
        fired = _stamp(heartbeat)
        while not stop.is_set() and _stamp(heartbeat) == fired:
            stop.wait(poll_s)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_ino
