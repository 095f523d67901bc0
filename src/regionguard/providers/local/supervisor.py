"""A small supervisor that keeps the controller running (restarts it when it dies).

`up` starts it; `down` stops it first (SIGTERM), and it stops its controller before exiting.
The controller's (pid, start time) goes to `controller/controller.json` for `status` and faults.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from regionguard.orchestrator.events import Event
from regionguard.orchestrator.journal import FileSink, Journal
from regionguard.providers.local.proctrack import ProcessRef, terminate
from regionguard.providers.local.state import write_json_atomic

RESTART_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)


def supervise(config: Path, state_dir: Path) -> int:
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    journal = Journal(FileSink(state_dir / "journal.jsonl"))
    logdir = state_dir / "controller"
    logdir.mkdir(parents=True, exist_ok=True)
    crashes = 0
    while not stopping:
        started = time.monotonic()
        with open(logdir / "controller.log", "ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "regionguard", "-c", str(config), "_controller"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        write_json_atomic(logdir / "controller.json", ProcessRef.of(child.pid).as_dict())
        code = child.wait()
        if stopping:
            break
        crashes = crashes + 1 if time.monotonic() - started < 10 else 0
        backoff = RESTART_BACKOFF_S[min(crashes, len(RESTART_BACKOFF_S) - 1)]
        journal.record(Event.CONTROLLER, outcome="exited", code=code, restart_in_s=backoff)
        time.sleep(backoff)
    if child is not None and child.poll() is None:
        proc = ProcessRef.of(child.pid).process()
        if proc:
            terminate([proc], grace_s=5)
    journal.record(Event.CONTROLLER, outcome="stopped")
    return 0

