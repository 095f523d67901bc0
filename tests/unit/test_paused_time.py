"""The emulator's own work stands world time still, for every process (clock.PausedTime).

A modelled figure must not move with the time factor: while the emulator serves a call, or a
guard function does its own work, no process's world clock advances; a wait (a sleep, a
request the proxy holds for a caller) lifts the pause; a process killed while it held one
leaves the world running again once it is released.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from regionguard.clock import CLOCK_ENV, ScaledClock

pytestmark = pytest.mark.unit

FACTOR = 0.01  # one world second is 10 real milliseconds

HOLDER = """
import sys, time
from regionguard.clock import clock_from_env
clock = clock_from_env()
with clock.pause():
    print("paused", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@pytest.fixture
def clock(tmp_path: Path) -> ScaledClock:
    return ScaledClock.starting_now(FACTOR, str(tmp_path / "paused-time"))


def advance_over(clock: ScaledClock, real_s: float) -> float:
    before = clock.monotonic()
    time.sleep(real_s)
    return clock.monotonic() - before


def holder(clock: ScaledClock) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True,
                            env={CLOCK_ENV: clock.to_env(), "PATH": "/usr/bin:/bin",
                                 "PYTHONPATH": ":".join(sys.path)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "paused"
    return proc


def test_world_time_stands_still_while_another_process_holds_a_pause(
        clock: ScaledClock) -> None:
    assert advance_over(clock, 0.05) >= 4.0  # 5 world seconds, less a scheduler's jitter
    proc = holder(clock)
    try:
        assert advance_over(clock, 0.2) < 0.5  # 20 world seconds unpaused
        with clock.lifted_for(proc.pid):  # a wait modelled for it: the world runs
            assert advance_over(clock, 0.05) >= 4.0
        assert advance_over(clock, 0.1) < 0.5  # its pause is back
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=10)
    assert advance_over(clock, 0.05) >= 4.0


def test_a_killed_process_no_longer_holds_the_world(clock: ScaledClock) -> None:
    proc = holder(clock)
    proc.kill()
    proc.wait(timeout=10)
    assert advance_over(clock, 0.1) < 0.5  # dead, but its pause is still on record
    clock.release_pauses(proc.pid)
    assert advance_over(clock, 0.05) >= 4.0


def test_a_paused_thread_that_sleeps_lifts_its_pause(clock: ScaledClock) -> None:
    """Sleeping on world time with the world paused would never end; and the sleep itself is
    world time, seen by every other thread."""
    seen: list[float] = []

    def work() -> None:
        with clock.pause():
            before = clock.monotonic()
            clock.sleep(10.0)
            seen.append(clock.monotonic() - before)

    thread = threading.Thread(target=work)
    started = time.monotonic()
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive() and seen and seen[0] >= 10.0
    assert time.monotonic() - started < 2.0


def test_overlapping_pauses_are_one(clock: ScaledClock) -> None:
    with clock.pause():
        inner = threading.Event()

        def other() -> None:
            with clock.pause():
                inner.wait(5)

        thread = threading.Thread(target=other)
        thread.start()
        assert advance_over(clock, 0.05) < 0.5
    assert advance_over(clock, 0.05) < 0.5  # the other thread still holds one
    inner.set()
    thread.join(timeout=5)
    assert advance_over(clock, 0.05) >= 4.0


def test_a_clock_from_the_environment_shares_the_pauses(clock: ScaledClock) -> None:
    same = ScaledClock.from_env(clock.to_env())
    assert same == clock
    with clock.pause():
        before = same.monotonic()
        time.sleep(0.1)
        assert same.monotonic() - before < 0.5


def test_a_pause_lifted_for_a_process_and_by_it_comes_back_once(clock: ScaledClock) -> None:
    """The proxy lifts a caller's pause while it models a wait for it; the caller (another of
    its threads) may lift its own meanwhile and end it after the proxy's. That ends with the
    caller's one pause, and the world runs while either lift is in force. (Clipped at zero,
    the counts once froze a drill for good.)"""
    me = os.getpid()
    with clock.pause():
        proxy_lift = clock.lifted_for(me)
        proxy_lift.__enter__()
        with clock.lifted():  # the caller sleeps while the proxy still models its call
            proxy_lift.__exit__(None, None, None)
            assert advance_over(clock, 0.05) >= 4.0
        assert advance_over(clock, 0.05) < 0.5  # its pause is back, once
    assert advance_over(clock, 0.05) >= 4.0


def test_a_process_killed_while_a_wait_was_modelled_for_it_stays_released(
        clock: ScaledClock) -> None:
    """The proxy lifts a worker's pause for a held request; the worker's Region dies meanwhile
    (its environment killed and released). The proxy's restore must not bring back a pause
    that no live process holds: the world would stand still for good."""
    proc = holder(clock)
    lift = clock.lifted_for(proc.pid)
    lift.__enter__()
    proc.kill()
    proc.wait(timeout=10)
    clock.release_pauses(proc.pid)
    lift.__exit__(None, None, None)
    assert advance_over(clock, 0.05) >= 4.0
