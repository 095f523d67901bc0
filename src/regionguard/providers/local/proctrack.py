"""Process identity and signalling that never hits a reused pid.

A process is identified by (pid, start time): after a crash and a reboot of the sandbox, a pid in
state.json may belong to an unrelated program; checking the start time first means regionguard
only ever signals processes it started. Zombies count as dead.

The start time is the kernel's own (/proc/PID/stat's `starttime`, clock ticks after boot), not
wall-clock time: psutil's `create_time()` is those ticks plus /proc/stat's `btime`, which the
kernel derives from the wall clock at every read and which moves by a whole second when the
clock is slewed or stepped. A process recorded before such a step then looked dead: `status`
reported a running process as stopped and `down` left it running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_TICK_S = 0.05  # the start is in clock ticks (1/100 s): equal, give or take rounding
_WALL_CLOCK_START = 1e9  # seconds: no uptime is 31 years, every epoch time since 2001 is more
_BTIME_STEP_S = 1.05  # an old wall-clock record may be off by one step of btime


@dataclass(frozen=True, slots=True)
class ProcessRef:
    pid: int
    started_at: float  # seconds after boot (the kernel's start ticks), see the module's doc

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        return cls(pid, started_after_boot(pid))

    def as_dict(self) -> dict[str, float | int]:
        return {"pid": self.pid, "started_at": self.started_at}

    @classmethod
    def from_dict(cls, data: dict[str, float | int]) -> ProcessRef:
        return cls(int(data["pid"]), float(data["started_at"]))

    def process(self) -> psutil.Process | None:
        """The live process this ref names, or None when it is gone, a zombie, or a reused pid."""
        try:
            proc = psutil.Process(self.pid)
            if not self._started_as(proc):
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                _reap(self.pid)
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def alive(self) -> bool:
        return self.process() is not None

    def _started_as(self, proc: psutil.Process) -> bool:
        if self.started_at > _WALL_CLOCK_START:  # recorded by an older regionguard
            return abs(proc.create_time() - self.started_at) <= _BTIME_STEP_S
        return abs(started_after_boot(proc.pid) - self.started_at) <= _TICK_S

    def signal(self, sig: signal.Signals) -> bool:
        """Send `sig` if this is still our process; True when it was sent."""
        proc = self.process()
        if proc is None:
            return False
        try:
            proc.send_signal(sig)
            return True
        except psutil.NoSuchProcess:
            return False


def started_after_boot(pid: int) -> float:
    """Seconds after boot at which `pid` started: /proc/PID/stat's field 22, which no clock
    change moves. psutil.NoSuchProcess when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError) as gone:
        raise psutil.NoSuchProcess(pid) from gone
    after_name = stat.rsplit(")", 1)[1].split()  # the name may hold spaces and parentheses
    return int(after_name[19]) / _CLOCK_TICKS


def _reap(pid: int) -> None:
    """Collect a zombie child of ours so it leaves the process table."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def is_dead(proc: psutil.Process) -> bool:
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            _reap(proc.pid)
            return True
        return False
    except psutil.NoSuchProcess:
        return True


def wait_dead(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Poll until every process is dead or a zombie; return the survivors."""
    deadline = time.monotonic() + timeout_s
    alive = list(procs)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if not is_dead(p)]
        if alive:
            time.sleep(0.02)
    return [p for p in alive if not is_dead(p)]


def terminate(procs: list[psutil.Process], grace_s: float = 3.0) -> list[int]:
    """SIGTERM, wait up to `grace_s`, then SIGKILL; also SIGCONT so a frozen process can exit.

    Returns the pids still alive at the end (should be none).
    """
    for sig in (signal.SIGTERM, signal.SIGCONT):
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(sig)
    survivors = wait_dead(procs, grace_s)
    return kill(survivors)


def kill(procs: list[psutil.Process], timeout_s: float = 3.0) -> list[int]:
    """SIGKILL every process (SIGKILL works on stopped processes too); return survivors' pids."""
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    return [p.pid for p in wait_dead(procs, timeout_s)]
