"""moto's server in a process of its own, with the latency models installed.

Its own process gives it its own interpreter lock (the proxy, the apps and the health checkers
run beside it) and keeps its backends apart from tests that use moto in-process. It prints
`{"port": N}` once it listens, and stops when its stdin closes (so it never outlives the
emulator that started it) or on SIGTERM.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from types import FrameType

from regionguard.clock import CLOCK_ENV, ScaledClock
from regionguard.emulated.models import CONTROL_ENV, MODELS_ENV, LatencyModel
from regionguard.errors import NotAvailable, ProviderError


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    from regionguard.emulated.models import install

    install(LatencyModel.from_env())
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    sys.stdout.write(json.dumps({"port": port}) + "\n")
    sys.stdout.flush()
    done = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    def stdin_closed() -> None:  # the parent went away: stop with it
        sys.stdin.read()
        done.set()

    threading.Thread(target=stdin_closed, daemon=True).start()
    done.wait()
    server.stop()


class MotoProcess:
    """The parent's handle on moto's server process."""

    def __init__(self, clock: ScaledClock, model: LatencyModel, control: Path) -> None:
        self.clock = clock
        self.model = model
        self.control = control  # the models' control file (see models.CONTROL_ENV)
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self, timeout_s: float = 60.0) -> int:
        env = {**os.environ, CLOCK_ENV: self.clock.to_env(), MODELS_ENV: self.model.to_env(),
               CONTROL_ENV: str(self.control), "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
               "AWS_ACCESS_KEY_ID": "emulated", "AWS_SECRET_ACCESS_KEY": "emulated"}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "regionguard.emulated.motoserver"], env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True)
        except OSError as exc:
            raise NotAvailable(f"cannot start moto's server: {exc}") from exc
        assert self.proc.stdout is not None
        line = _read_line(self.proc, timeout_s)
        if not line:
            self.stop()
            raise NotAvailable("moto's server did not start; is the aws extra installed "
                               "(pip install 'regionguard[aws]')?")
        self.port = int(json.loads(line)["port"])
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mark_booted(self) -> None:
        """Every instance launched so far counts as long booted (the deployed estate)."""
        import time

        self.control.write_text(json.dumps({"booted_before": time.time() + 0.001}))

    def reset(self) -> None:
        """Forget every resource (between drills); the models stay installed."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        try:
            urllib.request.urlopen(req, timeout=30).read()
        except OSError as exc:
            raise ProviderError(f"moto reset failed: {exc}") from exc

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()  # type: ignore[union-attr]
                                                           ), daemon=True)
    reader.start()
    reader.join(timeout_s)
    return result[0] if result else ""


if __name__ == "__main__":
    main()
