"""A recorded process stays ours across a step of the wall clock, and only ours."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest
from psutil import _pslinux

from regionguard.providers.local.proctrack import ProcessRef

pytestmark = pytest.mark.unit


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_process_stays_alive_when_the_boot_time_moves_by_a_second(
        child: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc/stat's btime is recomputed from the wall clock; a slewed clock moves it by 1 s.
    With the wall-clock start in the record, the controller looked stopped and `down` left it."""
    ref = ProcessRef.of(child.pid)
    wall = psutil.Process(child.pid).create_time()
    btime = _pslinux.boot_time()
    monkeypatch.setattr(_pslinux, "boot_time", lambda: btime + 1.0)
    assert psutil.Process(child.pid).create_time() == pytest.approx(wall + 1.0)  # the step
    assert ref.alive()
    assert ref.process() is not None and ref.process().pid == child.pid  # type: ignore[union-attr]


def test_another_process_on_the_same_pid_is_not_ours(child: subprocess.Popen[bytes]) -> None:
    ref = ProcessRef.of(child.pid)
    assert not ProcessRef(child.pid, ref.started_at + 0.5).alive()
    assert not ProcessRef(child.pid, ref.started_at - 0.5).alive()


def test_a_record_from_an_older_version_with_a_wall_clock_start_is_still_recognised(
        child: subprocess.Popen[bytes]) -> None:
    """Processes started before an upgrade are still found (and stopped by `down`)."""
    wall = psutil.Process(child.pid).create_time()
    assert ProcessRef(child.pid, wall).alive()
    assert not ProcessRef(child.pid, wall - 30).alive()


def test_a_dead_process_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    ref = ProcessRef.of(proc.pid)
    proc.wait()
    assert not ref.alive()
    assert ProcessRef.of(os.getpid()).alive()
