"""A clock whose world time moves only when a test says: expiry without waiting, and two
writes in one instant (as the emulator's paused world time makes them)."""

from __future__ import annotations

import contextlib
import time


class ManualClock:
    factor = 0.01  # real seconds per world second, for whoever converts

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def pause(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def real_seconds(self, world_seconds: float) -> float:
        return world_seconds * self.factor
