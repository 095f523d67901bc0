"""A fault-injection point for drills and tests: hold the controller right after one step.

`kill-controller` needs the controller stopped between `promote` and `route` to prove that a
restarted controller resumes the plan. A drill arms the point (`arm`); the executor, after the
named step, asks `hold_after` and holds for the returned seconds (journaled as `paused`), once.
It cannot outlive the drill that armed it: the point names its owner (pid and start time) and
an expiry; a point whose owner has exited or that has expired is deleted and ignored, and no
hold is longer than MAX_HOLD_S. The file is `<state>/controller/fault-point.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from regionguard.providers.local.proctrack import ProcessRef
from regionguard.providers.local.state import write_json_atomic

MAX_HOLD_S = 60.0
FILE = "fault-point.json"


def path_in(state_dir: Path) -> Path:
    return state_dir / "controller" / FILE


def arm(state_dir: Path, after_step: str, hold_s: float = 30.0, ttl_s: float = 120.0) -> Path:
    """Arm the point for the calling process (the drill); it lapses when this process exits."""
    path = path_in(state_dir)
    write_json_atomic(path, {"after_step": after_step, "hold_s": min(hold_s, MAX_HOLD_S),
                             "expires_at": time.time() + ttl_s,
                             "owner": ProcessRef.of(os.getpid()).as_dict()})
    return path


def disarm(state_dir: Path) -> None:
    path_in(state_dir).unlink(missing_ok=True)


class FileFaultPoint:
    """The FaultPoint port of the local world."""

    def __init__(self, state_dir: Path) -> None:
        self.path = path_in(state_dir)

    def hold_after(self, step: str) -> float | None:
        try:
            point = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        try:
            valid = (time.time() < float(point["expires_at"])
                     and ProcessRef.from_dict(point["owner"]).alive())
            matches = point["after_step"] == step
            hold = min(float(point["hold_s"]), MAX_HOLD_S)
        except (KeyError, TypeError, ValueError):
            valid, matches, hold = False, False, 0.0
        if not valid:
            with contextlib.suppress(OSError):
                self.path.unlink()  # its drill is gone: nothing may hold a plan for it
            return None
        if not matches:
            return None
        with contextlib.suppress(OSError):
            self.path.unlink()  # once
        return hold
