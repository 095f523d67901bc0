"""A region's compute: N uvicorn processes of the workload app on pre-assigned loopback ports.

Slot n of a region always listens on the port recorded for it in state.json (the front door has
one server per slot). Processes are started in their own session with cwd and log under
`<state>/<region>/app-<n>/` and identified by (pid, start time), so a restart of the CLI finds
them and a reused pid is never signalled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from regionguard.app import admin
from regionguard.errors import ProviderError
from regionguard.orchestrator.ports import ComputeStatus
from regionguard.providers.local.netutil import free_port, port_is_free
from regionguard.providers.local.proctrack import ProcessRef, terminate
from regionguard.providers.local.state_model import ports_of, processes_of


class AppProcesses:
    """Start, stop and check one sandbox's app processes."""

    def __init__(self, state_dir: Path, dsns: Mapping[str, str],
                 addresses: Mapping[str, str]) -> None:
        self.state_dir = state_dir
        self.dsns = dict(dsns)
        self.addresses = dict(addresses)

    def slot_dir(self, region: str, slot: int) -> Path:
        return self.state_dir / region / f"app-{slot}"

    def running(self, state: Mapping[str, Any], region: str) -> dict[int, ProcessRef]:
        """Slots whose recorded process is still ours and alive."""
        recorded = processes_of(state).apps.get(region, {})
        alive = {}
        for slot, entry in recorded.items():
            proc = ProcessRef(entry.pid, entry.started_at)
            if proc.alive():
                alive[int(slot)] = proc
        return alive

    def scale(self, state: dict[str, Any], region: str, count: int,
              on_port_moved: Callable[[str, int, int], None] | None = None) -> list[int]:
        """Make exactly slots 1..count run (restarting dead ones); stop slots above `count`.

        Returns the slots started. Idempotent; does not wait for readiness."""
        slots = state["ports"]["regions"][region]["slots"]  # the dict: written when a port moves
        if count > len(slots):
            raise ProviderError(f"{region}: {count} processes asked, only {len(slots)} slots")
        alive = self.running(state, region)
        apps = state.setdefault("processes", {}).setdefault("apps", {})
        recorded = apps.setdefault(region, {})
        for slot in list(recorded):
            if int(slot) not in alive:
                del recorded[slot]  # stale: the process died or the pid was reused
        extra = [alive[s].process() for s in alive if s > count]
        terminate([p for p in extra if p is not None], grace_s=3)
        for s in [s for s in alive if s > count]:
            recorded.pop(str(s), None)
        started = []
        for slot in range(1, count + 1):
            if slot in alive:
                continue
            port = slots[slot - 1]
            addr = self.addresses[region]
            if not port_is_free(addr, port):
                new_port = free_port(addr)
                slots[slot - 1] = new_port
                if on_port_moved:
                    on_port_moved(region, slot, new_port)
                port = new_port
            recorded[str(slot)] = self._start(region, slot, port).as_dict()
            started.append(slot)
        return started

    def _start(self, region: str, slot: int, port: int) -> ProcessRef:
        workdir = self.slot_dir(region, slot)
        workdir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "RG_REGION": region,
            "RG_DSNS": json.dumps(self.dsns),
            "RG_STATE_FILE": str(self.state_dir / "state.json"),  # the route, for tokenless writes
            "RG_ADMIN_TOKEN_FILE": str(self.state_dir / "secrets" / admin.TOKEN_FILE),
            "PYTHONUNBUFFERED": "1",
        }
        cmd = [
            sys.executable, "-m", "uvicorn", "regionguard.app.main:create_app", "--factory",
            "--host", self.addresses[region], "--port", str(port),
            "--log-level", "warning", "--no-access-log", "--timeout-graceful-shutdown", "2",
        ]
        with open(workdir / "app.log", "ab") as log:
            proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        return ProcessRef.of(proc.pid)

    def stop_all(self, state: dict[str, Any], region: str) -> list[int]:
        """Stop every app process of `region`; returns pids that survived (should be none)."""
        alive = self.running(state, region)
        procs = [p for p in (ref.process() for ref in alive.values()) if p is not None]
        survivors = terminate(procs, grace_s=3)
        state.setdefault("processes", {}).setdefault("apps", {})[region] = {}
        return survivors

    def urls(self, state: Mapping[str, Any], region: str,
             alive: Mapping[int, ProcessRef] | None = None) -> dict[int, str]:
        """Each live slot's URL (of `alive`, when the caller looked already: a process that
        dies between two looks must not make one answer disagree with the other)."""
        slots = ports_of(state).regions[region].slots
        return {s: f"http://{self.addresses[region]}:{slots[s - 1]}"
                for s in (alive if alive is not None else self.running(state, region))}

    def ready_slots(self, state: Mapping[str, Any], region: str,
                    timeout_s: float = 0.5) -> list[int]:
        """Slots whose process answers /health/deep with 200 (the local database reachable)."""
        urls = self.urls(state, region)

        def check(item: tuple[int, str]) -> int | None:
            slot, url = item
            try:
                ok = httpx.get(f"{url}/health/deep", timeout=timeout_s).status_code == 200
            except httpx.HTTPError:
                return None
            return slot if ok else None

        if not urls:
            return []
        with ThreadPoolExecutor(max_workers=len(urls)) as pool:
            return sorted(s for s in pool.map(check, urls.items()) if s is not None)

    def status(self, state: Mapping[str, Any], region: str, desired: int) -> ComputeStatus:
        alive = self.running(state, region)
        ready = self.ready_slots(state, region)
        urls = self.urls(state, region, alive)
        return ComputeStatus(
            region, desired=desired, ready=len(ready),
            pids=tuple(sorted(ref.pid for ref in alive.values())),
            urls=tuple(urls[s] for s in sorted(alive)),
        )

    def wait_ready(self, state_reader: Callable[[], Mapping[str, Any]], region: str,
                   at_least: int, timeout_s: float) -> list[int]:
        """Poll until `at_least` processes of `region` are ready; ProviderError at timeout."""
        deadline = time.monotonic() + timeout_s
        ready: list[int] = []
        while time.monotonic() < deadline:
            ready = self.ready_slots(state_reader(), region, timeout_s=0.3)
            if len(ready) >= at_least:
                return ready
            time.sleep(0.03)
        raise ProviderError(
            f"{region}: {len(ready)} of {at_least} app processes ready after {timeout_s:g} s; "
            f"see {self.state_dir / region}/app-*/app.log"
        )

