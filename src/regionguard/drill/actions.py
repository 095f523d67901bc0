"""Carry out a scenario's actions on a live world, and undo what can be undone afterwards.

Each action waits for its moment (an offset from the fault time, or from the first plan the
engine starts after it), then acts on the world's own processes only, through its
`DrillTarget`. An action whose anchor
never comes (no plan started) is skipped and says so. `undo` thaws, lifts the partition, disarms
the fault point and reaps the switchover child: whatever the drill did that the engine is not
expected to repair.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from regionguard.drill.scenario import Act, Action, Anchor
from regionguard.drill.target import DrillTarget

PLAN_ANCHOR_WAIT_S = 15.0  # detection takes ~1 s; a plan that has not started by then won't
HOLD_WAIT_S = 20.0  # how long to wait for the controller to reach the armed step


class JournalTail:
    """New journal entries since the last read (the journal grows over a campaign: re-reading
    it whole at every poll would cost more each drill)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.entries: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.entries
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        self.offset += len(complete)
        for line in complete.splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                self.entries.append(json.loads(line))
        return self.entries


class ActionRunner:
    def __init__(self, target: DrillTarget, config: Path, tail: JournalTail, fault_ns: int,
                 log_dir: Path, report: Callable[[str], None]) -> None:
        self.target = target
        self.config = config
        self.tail = tail
        self.fault_ns = fault_ns
        self.log_dir = log_dir
        self.report = report
        self.done: list[str] = []  # what was done, as journaled
        self.skipped: list[str] = []
        self._frozen: list[int] = []
        self._partitioned = False
        self._switchover: subprocess.Popen[bytes] | None = None
        self._armed = False

    # -- timing -----------------------------------------------------------------------------

    def plan_started_ns(self) -> int | None:
        for e in self.tail.poll():
            if (e.get("event") == "plan" and e.get("outcome") == "started"
                    and int(e["mono_ns"]) >= self.fault_ns):
                return int(e["mono_ns"])
        return None

    def _moment_ns(self, action: Action) -> int | None:
        if action.anchor is Anchor.FAULT:
            return self.fault_ns + int(action.at_s * 1e9)
        deadline = time.monotonic() + PLAN_ANCHOR_WAIT_S
        while time.monotonic() < deadline:
            started = self.plan_started_ns()
            if started is not None:
                return started + int(action.at_s * 1e9)
            time.sleep(0.02)
        return None

    def run(self, action: Action) -> None:
        at = self._moment_ns(action)
        if at is None:
            self.skipped.append(f"{action.describe()}: no plan started")
            return
        delay = (at - time.monotonic_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        detail = self._do(action)
        self.done.append(detail)
        self.report(detail)

    # -- the actions ------------------------------------------------------------------------

    def _do(self, a: Action) -> str:
        region = a.region or ""
        match a.act:
            case Act.KILL_REGION | Act.KILL_DB | Act.KILL_APP:
                db, apps = a.act in (Act.KILL_REGION, Act.KILL_DB), a.act is not Act.KILL_DB
                hit = self.target.signal_region(region, signal.SIGKILL, db=db, apps=apps)
                return f"{a.act.value} {region}: SIGKILL {len(hit)} processes"
            case Act.FREEZE:
                hit = self.target.signal_region(region, signal.SIGSTOP, db=True, apps=True)
                self._frozen += hit
                return f"freeze {region}: SIGSTOP {len(hit)} processes"
            case Act.THAW:
                return f"thaw: SIGCONT {len(self._thaw())} processes"
            case Act.PARTITION:
                self._partitioned = True
                return self.target.partition(region)
            case Act.UNPARTITION:
                return self._unpartition() or "no partition to lift"
            case Act.ARM_CONTROLLER_KILL:
                self.target.hold_controller(a.step or "promote", hold_s=30.0)
                self._armed = True
                return f"armed: the controller holds after {a.step}"
            case Act.KILL_HELD_CONTROLLER:
                return self._kill_held_controller()
            case Act.KILL_CONTROLLER:
                pid = self.target.kill_controller()
                return f"kill-controller: SIGKILL pid {pid if pid is not None else '-'} " + (
                    "sent" if pid is not None else "not running")
            case Act.SWITCHOVER:
                return self._start_switchover(region)
            case Act.KILL_SWITCHOVER:
                child = self._switchover
                if child is None or child.poll() is not None:
                    return "kill-switchover: the switchover had already exited"
                child.send_signal(signal.SIGKILL)
                return f"kill-switchover: SIGKILL pid {child.pid}"

    def _kill_held_controller(self) -> str:
        deadline = time.monotonic() + HOLD_WAIT_S
        while time.monotonic() < deadline:
            held = [e for e in self.tail.poll()
                    if e.get("event") == "paused" and int(e["mono_ns"]) >= self.fault_ns]
            if held:
                pid = self.target.kill_controller()
                return (f"kill-held-controller: SIGKILL pid {pid if pid is not None else '-'} "
                        f"while it held after {held[0].get('step')}"
                        + ("" if pid is not None else " (not running)"))
            time.sleep(0.02)
        self._disarm()
        return "kill-held-controller: the controller never reached the armed step"

    def _start_switchover(self, target: str) -> str:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / "switchover.log").open("ab") as log:
            self._switchover = subprocess.Popen(
                [sys.executable, "-m", "regionguard", "-c", str(self.config.absolute()),
                 "switchover", "--to", target, "--yes"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        return f"switchover to {target}: pid {self._switchover.pid}"

    # -- undo -------------------------------------------------------------------------------

    def _thaw(self) -> list[int]:
        thawed = self.target.signal_pids(self._frozen, signal.SIGCONT)
        self._frozen = []
        return thawed

    def _unpartition(self) -> str | None:
        partitioned, self._partitioned = self._partitioned, False
        return self.target.unpartition() if partitioned else None

    def _disarm(self) -> None:
        if self._armed:
            self.target.release_controller()
            self._armed = False

    def settled(self) -> bool:
        """The switchover child (if any) has exited."""
        return self._switchover is None or self._switchover.poll() is not None

    def undo(self) -> list[str]:
        undone = []
        if self._frozen:
            undone.append(f"thawed {len(self._thaw())} processes")
        if (lifted := self._unpartition()) is not None:
            undone.append(lifted)
        self._disarm()
        child = self._switchover
        if child is not None:
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                child.wait(timeout=10)
                undone.append("killed the switchover child (still running after 60 s)")
        # a controller the drill SIGKILLed is restarted by the supervisor: nothing to undo
        return undone
