"""Time, as the engine and the AWS providers see it: the system clock, or a scaled one.

An AWS failover waits minutes (RDS promotion, instance boot, Route 53 health checks). The
emulated AWS world runs the same code with every duration scaled by a time factor, so that a
drill of several emulated minutes takes seconds. Everything on the failover path that waits or
measures takes its time from a `Clock`, never from `time` directly, so the same deadlines mean
the same thing in both worlds.

A `ScaledClock` is shared across processes (the emulator, its Lambda workers): its origin and
factor travel in the `RG_CLOCK` environment variable, and CLOCK_MONOTONIC and the wall clock are
the same for every process on the machine.

The emulator's own work is not AWS's. Scaled naively, every real millisecond moto spends
answering a call would count 1/factor world milliseconds (50 at factor 0.02), and a modelled
RTO would move with the factor. So a scaled clock may carry a `PausedTime`: a small file
shared by every process, in which the fault proxy marks while moto serves a call, and a guard
function (emulated/worker.py) marks its own work. World time stands still meanwhile, for every
process alike; what a call costs in AWS is then modelled apart (`emulated/models.py`), never
taken from the emulator's speed.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
import threading
import time
from collections.abc import Iterator
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


class PausedTime:
    """Real time during which world time stood still, shared by every process through a file.

    The header holds four little-endian int64: a sequence number, how many processes pause
    world time, the nanoseconds it stood still before the current pause, and the
    CLOCK_MONOTONIC nanosecond the current pause began. Then one slot (pid, pauses) per writing
    process, so the pauses of a process that was killed mid-call (a Lambda environment dying)
    can be released for it: its slot is marked released (pid negated), and a late change for
    it (a wait the proxy was modelling for it) is ignored. Writers change it under an
    exclusive `flock`; readers use the sequence number as a sequence lock (odd while written;
    a writer killed mid-write leaves it odd, and the next writer makes it even again), so none
    sees a pause half written. World time stands still while any process holds a pause:
    overlapping pauses, in any processes, are one."""

    _SEQ = struct.Struct("<q")
    _FIELDS = struct.Struct("<qqq")  # at offset 8: pausing processes, total, since
    _SLOT = struct.Struct("<qq")
    _HEADER_SIZE = 32
    SLOTS = 64

    def __init__(self, path: str, create: bool = False) -> None:
        self.path = path
        size = self._HEADER_SIZE + self.SLOTS * self._SLOT.size
        if create:
            with open(path, "wb") as f:
                f.write(bytes(size))
        self._file = open(path, "r+b")  # noqa: SIM115 - mapped for the process's lifetime
        self._map = mmap.mmap(self._file.fileno(), size)
        self._lock = threading.Lock()
        self._mine = threading.local()  # this thread's pauses in force

    def paused_ns(self, now_ns: int) -> int:
        """Nanoseconds world time has stood still up to `now_ns` (CLOCK_MONOTONIC)."""
        for _ in range(10_000):
            seq = self._SEQ.unpack_from(self._map)[0]
            if seq % 2:
                continue  # being written
            pausing, total, since = self._FIELDS.unpack_from(self._map, 8)
            if self._SEQ.unpack_from(self._map)[0] == seq:
                return self._since_origin(now_ns, pausing, total, since)
        # a writer killed mid-write left the sequence odd: read under the writers' lock
        # (the kernel released the dead writer's), where no write is half done
        with self._lock:
            fcntl.flock(self._file, fcntl.LOCK_SH)
            try:
                return self._since_origin(now_ns, *self._FIELDS.unpack_from(self._map, 8))
            finally:
                fcntl.flock(self._file, fcntl.LOCK_UN)

    @staticmethod
    def _since_origin(now_ns: int, pausing: int, total: int, since: int) -> int:
        return int(total) + (max(0, now_ns - int(since)) if pausing > 0 else 0)

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        """World time stands still from here until the last overlapping pause ends."""
        self._mine.depth = getattr(self._mine, "depth", 0) + 1
        self._change(os.getpid(), +1)
        try:
            yield
        finally:
            self._mine.depth -= 1
            self._change(os.getpid(), -1)

    @contextlib.contextmanager
    def lifted(self) -> Iterator[None]:
        """This thread's pauses lifted while it waits (a sleep, a network call): a wait is
        world time, and a thread that sleeps on world time with the world paused would wait
        for ever."""
        held = getattr(self._mine, "depth", 0)
        if held:
            self._change(os.getpid(), -held)
        try:
            yield
        finally:
            if held:
                self._change(os.getpid(), +held)

    def release(self, pid: int) -> None:
        """Drop every pause a process that is gone still held."""
        self._change(pid, None)

    @contextlib.contextmanager
    def lifted_for(self, pid: int) -> Iterator[None]:
        """Another process's pauses lifted while it waits on what this one models for it (a
        request held as a timeout, a modelled call latency)."""
        with self._lock:
            fcntl.flock(self._file, fcntl.LOCK_EX)
            try:
                held = max(0, self._held(pid))
                if held:
                    self._apply(pid, -held)
            finally:
                fcntl.flock(self._file, fcntl.LOCK_UN)
        try:
            yield
        finally:
            if held:
                self._change(pid, +held)

    def _slots(self) -> list[tuple[int, int]]:
        return [self._SLOT.unpack_from(self._map, self._HEADER_SIZE + i * self._SLOT.size)
                for i in range(self.SLOTS)]

    def _held(self, pid: int) -> int:
        return next((int(n) for p, n in self._slots() if p == pid), 0)

    def _change(self, pid: int, delta: int | None) -> None:
        with self._lock:
            fcntl.flock(self._file, fcntl.LOCK_EX)
            try:
                self._apply(pid, delta)
            finally:
                fcntl.flock(self._file, fcntl.LOCK_UN)

    def _apply(self, pid: int, delta: int | None) -> None:
        """One process's count changes by `delta` (None: released for good). Counts are
        signed: a pause lifted for a process (`lifted_for`) while that process lifts it itself
        (a sleep) goes below zero and comes back, in either order. World time stands still
        while any process's count is above zero."""
        slots = self._slots()
        index = next((i for i, (p, _) in enumerate(slots) if p == pid), None)
        if index is None:
            if delta is None or any(p == -pid for p, _ in slots):
                return  # nothing held, or released: a dead process's late change is ignored
            free = [i for i, (p, _) in enumerate(slots) if p == 0] or \
                [i for i, (p, n) in enumerate(slots) if p > 0 and n == 0] or \
                [i for i, (p, _) in enumerate(slots) if p < 0]
            index = free[0]
        pausing_before = sum(1 for p, n in slots if p > 0 and n > 0)
        slots[index] = (-pid, 0) if delta is None else (pid, slots[index][1] + delta)
        pausing = sum(1 for p, n in slots if p > 0 and n > 0)
        seq = self._SEQ.unpack_from(self._map)[0]
        writing = seq | 1  # odd; already odd if a writer was killed mid-write
        self._SEQ.pack_into(self._map, 0, writing)
        _, total, since = self._FIELDS.unpack_from(self._map, 8)
        now = time.monotonic_ns()
        if pausing_before == 0 < pausing:
            since = now
        elif pausing == 0 < pausing_before:
            total, since = total + now - since, 0
        self._SLOT.pack_into(self._map, self._HEADER_SIZE + index * self._SLOT.size,
                             *slots[index])
        self._FIELDS.pack_into(self._map, 8, pausing, total, since)
        self._SEQ.pack_into(self._map, 0, writing + 1)

    def holds(self) -> bool:
        """Whether this process holds a pause: then a request it sends names it, so that the
        proxy lifts its pauses while modelling a wait for it (whichever of its threads
        sent it: a handler may wait on another thread's call)."""
        return self._held(os.getpid()) > 0


_PAUSED: dict[str, PausedTime] = {}  # one mapping per file and process
_PAUSED_LOCK = threading.Lock()


def _paused_time(path: str) -> PausedTime:
    paused = _PAUSED.get(path)
    if paused is None:
        with _PAUSED_LOCK:
            paused = _PAUSED.get(path)
            if paused is None:
                paused = _PAUSED[path] = PausedTime(path)
    return paused


@dataclass(frozen=True, slots=True)
class ScaledClock:
    """World time runs 1/factor times faster than real time from a shared origin.

    With factor 0.02 one emulated minute lasts 1.2 real seconds. The origin is the same real
    instant for every process (`origin_wall`, `origin_mono`), so two processes agree on the
    emulated time to within the real clocks' resolution. With `paused` (a `PausedTime` file),
    world time stands still while the emulator serves a call."""

    factor: float
    origin_wall: float
    origin_mono: float
    paused: str = ""  # a PausedTime file, or "" for none

    @classmethod
    def starting_now(cls, factor: float, paused: str = "") -> ScaledClock:
        if not 0 < factor <= 1:
            raise ValueError(f"time factor must be in (0, 1], got {factor}")
        if paused:
            with _PAUSED_LOCK:
                _PAUSED[paused] = PausedTime(paused, create=True)
        return cls(factor, time.time(), time.monotonic(), paused)

    def _elapsed_world(self) -> float:
        now_ns = time.monotonic_ns()
        if self.paused:
            now_ns -= _paused_time(self.paused).paused_ns(now_ns)
        return (now_ns / 1e9 - self.origin_mono) / self.factor

    def monotonic(self) -> float:
        return self.origin_mono + self._elapsed_world()

    def monotonic_ns(self) -> int:
        return int(self.monotonic() * 1e9)

    def time(self) -> float:
        return self.origin_wall + self._elapsed_world()

    def sleep(self, seconds: float) -> None:
        if not self.paused:
            if seconds > 0:
                time.sleep(seconds * self.factor)
            return
        with _paused_time(self.paused).lifted():
            until = self.monotonic() + seconds
            while (left := until - self.monotonic()) > 0:
                time.sleep(left * self.factor)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """`event.wait` for `seconds` of world time: True as soon as the event is set."""
        with self.lifted():
            until = self.monotonic() + seconds
            while (left := until - self.monotonic()) > 0:
                if event.wait(left * self.factor):
                    return True
            return event.is_set()

    def _pauses(self) -> PausedTime | None:
        return _paused_time(self.paused) if self.paused else None

    def pause(self) -> contextlib.AbstractContextManager[None]:
        """Keep what runs inside out of world time (the emulator serving a call)."""
        pauses = self._pauses()
        return pauses.pause() if pauses else contextlib.nullcontext()

    def lifted(self) -> contextlib.AbstractContextManager[None]:
        """This thread's pauses lifted while it waits on the network or on time."""
        pauses = self._pauses()
        return pauses.lifted() if pauses else contextlib.nullcontext()

    def lifted_for(self, pid: int | None) -> contextlib.AbstractContextManager[None]:
        """Process `pid`'s pauses lifted while this process models a wait for it."""
        pauses = self._pauses()
        return pauses.lifted_for(pid) if pauses and pid is not None \
            else contextlib.nullcontext()

    def holds_pause(self) -> bool:
        """Whether this process holds a pause."""
        return bool(self.paused) and _paused_time(self.paused).holds()

    def release_pauses(self, pid: int) -> None:
        """A process that was killed (a Lambda environment dying) holds no pause any more."""
        if self.paused:
            _paused_time(self.paused).release(pid)

    def real_seconds(self, world_seconds: float) -> float:
        """The least real time `world_seconds` can take (more while the world is paused)."""
        return world_seconds * self.factor

    def to_env(self) -> str:
        return f"{self.factor!r},{self.origin_wall!r},{self.origin_mono!r},{self.paused}"

    @classmethod
    def from_env(cls, value: str) -> ScaledClock:
        factor, wall, mono, *rest = value.split(",", 3)
        return cls(float(factor), float(wall), float(mono), rest[0] if rest else "")


def wait_event(clock: Clock, event: threading.Event, seconds: float) -> bool:
    """Wait on `event` for `seconds` of the clock's world time (True once it is set)."""
    if isinstance(clock, ScaledClock):
        return clock.wait(event, seconds)
    return event.wait(max(0.0, seconds))


SYSTEM_CLOCK: Clock = SystemClock()


def clock_from_env(env: dict[str, str] | None = None) -> Clock:
    """The clock a process was started with: scaled when `RG_CLOCK` is set (emulated worlds),
    the system clock otherwise (AWS, the local world)."""
    value = (os.environ if env is None else env).get(CLOCK_ENV)
    return ScaledClock.from_env(value) if value else SYSTEM_CLOCK
