"""The Lambda service, emulated: functions deployed per Region, run in warm worker processes,
invoked by schedules (EventBridge Scheduler) or directly, with Lambda's limits.

Each function has a timeout (world seconds) and a reserved concurrency: an invocation takes an
idle execution environment or starts one, up to the concurrency, else it is throttled. An
invocation that outruns the timeout has its environment killed, as Lambda does; a Region that
goes out loses its environments mid-run. Invocations are logged with world times.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regionguard.clock import ScaledClock

log = logging.getLogger("regionguard.emulated.lambdas")


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    region: str
    handler: str  # module:attribute
    env: dict[str, str]
    timeout_s: float = 900.0  # world seconds (Lambda's maximum is 15 minutes)
    concurrency: int = 2


@dataclass
class _Environment:
    proc: subprocess.Popen[str]
    busy: bool = False
    request_id: str | None = None


@dataclass
class Invocation:
    function: str
    region: str
    request_id: str
    started: float
    event_kind: str
    ended: float | None = None
    outcome: str = "running"  # ok | error | timeout | killed | throttled
    result: Any = None


@dataclass
class LambdaRuntime:
    clock: ScaledClock
    log_dir: Path
    invocations: list[Invocation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._specs: dict[tuple[str, str], FunctionSpec] = {}
        self._envs: dict[tuple[str, str], list[_Environment]] = {}
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._starting: list[tuple[tuple[str, str], _Environment]] = []

    def deploy(self, specs: list[FunctionSpec], warm: int = 1) -> None:
        """Deploy functions with `warm` execution environments each, started in parallel;
        `await_deployed` waits for them (so callers can do other work meanwhile)."""
        for spec in specs:
            key = (spec.name, spec.region)
            self._specs[key] = spec
            self._envs[key] = []
            self._starting += [(key, self._launch(spec)) for _ in range(warm)]

    def await_deployed(self) -> None:
        starting, self._starting = self._starting, []
        for key, environment in starting:
            self._await_ready(environment)
            self._envs[key].append(environment)

    def _spawn(self, spec: FunctionSpec) -> _Environment:
        environment = self._launch(spec)
        self._await_ready(environment)
        return environment

    def _await_ready(self, environment: _Environment) -> None:
        proc = environment.proc
        ready = proc.stdout.readline() if proc.stdout else ""  # the handler module imported
        if not ready:
            raise RuntimeError(f"a Lambda worker did not start; see {self.log_dir}")

    def _launch(self, spec: FunctionSpec) -> _Environment:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stream = f"{spec.region}-{next(self._seq)}"
        logfile = (self.log_dir / f"{spec.name}-{spec.region}.log").open("a")
        env = {**os.environ, **spec.env, "AWS_LAMBDA_FUNCTION_NAME": spec.name,
               "AWS_LAMBDA_LOG_STREAM_NAME": stream, "AWS_REGION": spec.region,
               "AWS_DEFAULT_REGION": spec.region}
        proc = subprocess.Popen(
            [sys.executable, "-m", "regionguard.emulated.worker", spec.handler], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logfile, text=True,
            bufsize=1)
        logfile.close()
        return _Environment(proc)

    def invoke(self, name: str, region: str, event: dict[str, Any],
               event_kind: str = "direct") -> Future[Invocation]:
        """Start an invocation; the future completes with its record (never raises)."""
        spec = self._specs[(name, region)]
        record = Invocation(name, region, uuid.uuid4().hex[:12], self.clock.time(), event_kind)
        with self._lock:
            self.invocations.append(record)
        future: Future[Invocation] = Future()
        environment = self._acquire(spec)
        if environment is None:
            record.outcome, record.ended = "throttled", self.clock.time()
            future.set_result(record)
            return future
        threading.Thread(target=self._run, args=(spec, environment, event, record, future),
                         daemon=True, name=f"invoke-{name}-{region}").start()
        return future

    def _acquire(self, spec: FunctionSpec) -> _Environment | None:
        key = (spec.name, spec.region)
        with self._lock:
            envs = self._envs[key]
            envs[:] = [e for e in envs if e.proc.poll() is None]
            idle = next((e for e in envs if not e.busy), None)
            if idle is None and len(envs) >= spec.concurrency:
                return None
            if idle is not None:
                idle.busy = True
                return idle
        fresh = self._spawn(spec)  # a cold start, outside the lock
        fresh.busy = True
        with self._lock:
            self._envs[key].append(fresh)
        return fresh

    def _run(self, spec: FunctionSpec, environment: _Environment, event: dict[str, Any],
             record: Invocation, future: Future[Invocation]) -> None:
        proc = environment.proc
        deadline_wall = time.time() + spec.timeout_s * self.clock.factor
        environment.request_id = record.request_id
        # the timeout counts world time (which stands still while the emulator works)
        finished = threading.Event()

        def timeout() -> None:
            if not self.clock.wait(finished, spec.timeout_s):
                self._timeout(environment, record)

        threading.Thread(target=timeout, daemon=True, name="lambda-timeout").start()
        line = ""
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps({"event": event, "request_id": record.request_id,
                                         "deadline_wall": deadline_wall}) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except (OSError, ValueError):
            line = ""
        finally:
            finished.set()
        record.ended = self.clock.time()
        if line:
            answer = json.loads(line)
            record.outcome = "ok" if answer.get("ok") else "error"
            record.result = answer.get("result") if answer.get("ok") else answer.get("error")
            environment.busy = False
            environment.request_id = None
        else:  # the environment died: what it held of paused world time goes with it
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            self.clock.release_pauses(proc.pid)
            if record.outcome == "running":
                record.outcome = "killed"
        future.set_result(record)

    def _timeout(self, environment: _Environment, record: Invocation) -> None:
        record.outcome = "timeout"
        with contextlib.suppress(ProcessLookupError):
            environment.proc.kill()

    def kill(self, name: str, region: str, busy_only: bool = True) -> int:
        """Kill execution environments (a Region's loss, or a test killing a run mid-plan)."""
        killed = 0
        with self._lock:
            for environment in self._envs.get((name, region), []):
                if environment.proc.poll() is None and (environment.busy or not busy_only):
                    environment.proc.kill()
                    killed += 1
        return killed

    def kill_region(self, region: str) -> None:
        for name, r in list(self._envs):
            if r == region:
                self.kill(name, r, busy_only=False)

    def stop(self) -> None:
        with self._lock:
            envs = [e for group in self._envs.values() for e in group]
            self._envs = {k: [] for k in self._envs}
        for environment in envs:
            if environment.proc.poll() is None and environment.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    environment.proc.stdin.close()
        for environment in envs:
            try:
                environment.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                environment.proc.kill()
                environment.proc.wait(timeout=5)


@dataclass
class Schedule:
    """EventBridge Scheduler, `rate(1 minute)`: invoke a function with a fixed input on time,
    unless its Region is out (its scheduler and Lambda service went with it)."""

    runtime: LambdaRuntime
    function: str
    region: str
    input: dict[str, Any]
    rate_s: float = 60.0
    offset_s: float = 0.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.region_down: Any = lambda _region: False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"schedule-{self.function}-{self.region}")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        clock = self.runtime.clock
        first = clock.monotonic() + self.offset_s
        n = 0
        while True:
            if clock.wait(self._stop, first + n * self.rate_s - clock.monotonic()):
                return
            n += 1
            if not self.region_down(self.region):
                self.runtime.invoke(self.function, self.region, self.input, "schedule")
