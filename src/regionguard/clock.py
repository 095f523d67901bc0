"""Time, as the engine and the AWS providers see it: the system clock, or a scaled one.

An AWS failover waits minutes (RDS promotion, instance boot, Route 53 health checks). The
emulated AWS world runs the same code with every duration scaled by a time factor, so that a
drill of several emulated minutes takes seconds. Everything on the failover path that waits or
measures takes its time from a `Clock`, never from `time` directly, so the same deadlines mean
the same thing in both worlds.

A `ScaledClock` is shared across processes (the emulator, its Lambda workers): its origin and
factor travel in the `RG_CLOCK` environment variable, and CLOCK_MONOTONIC and the wall clock are
the same for every process on the machine.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Protocol

CLOCK_ENV = "RG_CLOCK"


class Clock(Protocol):
    """Seconds, in the world's time."""

    @property
    def factor(self) -> float:
        """Real seconds per world second (1.0 for the system clock)."""
        ...

    def monotonic(self) -> float:
        """For durations and deadlines: never goes backwards."""
        ...

    def monotonic_ns(self) -> int:
        ...

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch, for times that cross processes and hosts."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for `seconds` of world time."""
        ...


class SystemClock:
    factor = 1.0

    def monotonic(self) -> float:
        return time.monotonic()

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass(frozen=True, slots=True)
class ScaledClock:
    """World time runs 1/factor times faster than real time from a shared origin.

    With factor 0.02 one emulated minute lasts 1.2 real seconds. The origin is the same real
    instant for every process (`origin_wall`, `origin_mono`), so two processes agree on the
    emulated time to within the real clocks' resolution."""

    factor: float
    origin_wall: float
    origin_mono: float

    @classmethod
    def starting_now(cls, factor: float) -> ScaledClock:
        if not 0 < factor <= 1:
            raise ValueError(f"time factor must be in (0, 1], got {factor}")
        return cls(factor, time.time(), time.monotonic())

    def monotonic(self) -> float:
        return self.origin_mono + (time.monotonic() - self.origin_mono) / self.factor

    def monotonic_ns(self) -> int:
        return int(self.monotonic() * 1e9)

    def time(self) -> float:
        return self.origin_wall + (time.monotonic() - self.origin_mono) / self.factor

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds * self.factor)

    def real_seconds(self, world_seconds: float) -> float:
        return world_seconds * self.factor

    def to_env(self) -> str:
        return f"{self.factor!r},{self.origin_wall!r},{self.origin_mono!r}"

    @classmethod
    def from_env(cls, value: str) -> ScaledClock:
        factor, wall, mono = (float(p) for p in value.split(","))
        return cls(factor, wall, mono)


SYSTEM_CLOCK: Clock = SystemClock()


def clock_from_env(env: dict[str, str] | None = None) -> Clock:
    """The clock a process was started with: scaled when `RG_CLOCK` is set (emulated worlds),
    the system clock otherwise (AWS, the local world)."""
    value = (os.environ if env is None else env).get(CLOCK_ENV)
    return ScaledClock.from_env(value) if value else SYSTEM_CLOCK
