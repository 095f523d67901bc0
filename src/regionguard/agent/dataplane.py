"""A region site's data plane as its own agent runs it: N app processes on fixed ports and a
front door (HAProxy) for them, nothing of any other site.

The apps take writes only under the write lease they read from etcd themselves (the writer key
lives only while this region's agent renews it), so the front door needs no routing state at
all: its config is static (every slot, each health-checked on `/health/deep`), and what clients
reach is decided by the edge, which asks each region's `/health/route`. Processes are recorded
by (pid, start time) in `dataplane.json` so a restarted agent finds them and a reused pid is
never signalled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from regionguard.agent.front_door_stats import FrontDoorCounts, read_counts, socket_usable
from regionguard.agent.site import Site
from regionguard.app import admin
from regionguard.errors import ProviderError
from regionguard.orchestrator.ports import ComputeStatus
from regionguard.providers.local.haproxy import haproxy_binary
from regionguard.providers.local.netutil import port_is_free
from regionguard.providers.local.proctrack import ProcessRef, terminate

FRONT_DOOR = "front_door"
FRONTEND = "front_door"  # the HAProxy frontend's name, whose totals the live page plots


class SiteDataPlane:
    """Start, stop and check one region site's apps and front door."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.region = site.region
        self.dir = site.root / "dataplane"
        self._lock = threading.Lock()  # the agent's loop and a plan's steps both scale

    # -- the record ------------------------------------------------------------------------

    @property
    def record_path(self) -> Path:
        return self.dir / "dataplane.json"

    @property
    def token_file(self) -> Path:
        return self.site.root / "secrets" / admin.TOKEN_FILE

    def _read(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.record_path.read_text())
            return data
        except (FileNotFoundError, ValueError):
            return {}

    def _write(self, record: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, self.record_path)

    def _alive(self, record: dict[str, Any], key: str) -> ProcessRef | None:
        raw = record.get(key)
        ref = ProcessRef.from_dict(raw) if raw else None
        return ref if ref is not None and ref.alive() else None

    def running_apps(self) -> dict[int, ProcessRef]:
        record = self._read()
        return {int(k.split("-")[1]): ref for k in record if k.startswith("app-")
                if (ref := self._alive(record, k)) is not None}

    def pids(self) -> dict[str, list[int]]:
        record = self._read()
        front = self._alive(record, FRONT_DOOR)
        return {"apps": sorted(r.pid for r in self.running_apps().values()),
                "front_door": [front.pid] if front else []}

    # -- the apps --------------------------------------------------------------------------

    def app_url(self, slot: int) -> str:
        return f"http://{self.site.host}:{self.site.app_port(self.region, slot)}"

    def scale(self, count: int) -> list[int]:
        """Exactly slots 1..count run (dead ones restarted); slots above stop. Returns the
        slots started; does not wait for readiness."""
        slots = self.site.topology.slots(self.region)
        if count > slots:
            raise ProviderError(f"{self.region}: {count} processes asked, only {slots} slots")
        with self._lock:
            record = self._read()
            alive = self.running_apps()
            extra = [p for s, ref in alive.items() if s > count if (p := ref.process())]
            terminate(extra, grace_s=3)
            started = []
            for slot in range(1, slots + 1):
                key = f"app-{slot}"
                if slot > count:
                    record.pop(key, None)
                elif slot not in alive:
                    record[key] = self._start_app(slot).as_dict()
                    started.append(slot)
                    self._write(record)  # at once: a later slot's failure orphans nothing
            self._write(record)
            return started

    def _start_app(self, slot: int) -> ProcessRef:
        port = self.site.app_port(self.region, slot)
        if not port_is_free(self.site.host, port):
            raise ProviderError(f"{self.region}: app slot {slot}'s port {self.site.host}:{port} "
                                "is taken by another program; free it or change "
                                f"regions.{self.region}.ports.apps")
        workdir = self.dir / f"app-{slot}"
        workdir.mkdir(parents=True, exist_ok=True)
        arbiter = self.site.topology.arbiter
        members = {self.site.name: arbiter.members[self.site.name],
                   **{k: v for k, v in arbiter.members.items() if k != self.site.name}}
        env = {
            **{k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
            "RG_REGION": self.region,
            "RG_APP": self.site.topology.app,
            "RG_DSNS": json.dumps({self.region: self.site.database(self.region).dsn()}),
            "RG_ARBITER_ETCD": ",".join(f"{k}={v}" for k, v in members.items()),
            # a confirmation lasts TTL - margin from the read that made it; what bounds the
            # writes of a primary that lost its lease is its database's own fence (the agent
            # or the watchdog, at the holder's deadline), which the apps' writes go through
            "RG_LEASE_S": str(arbiter.lease_ttl_s - arbiter.fence_margin_s),
            # a linearizable read of etcd per app every probe interval: a new writer's apps
            # confirm its lease within one interval of its agent taking the key
            "RG_LEASE_REFRESH_S": str(self.site.topology.health.interval_s),
            "RG_ADMIN_TOKEN_FILE": str(self.token_file),
            **self._etcd_tls_env(),
            "PYTHONUNBUFFERED": "1",
        }
        cmd = [sys.executable, "-m", "uvicorn", "regionguard.app.main:create_app", "--factory",
               "--host", self.site.host, "--port", str(port), "--log-level", "warning",
               "--no-access-log", "--timeout-graceful-shutdown", "2"]
        with open(workdir / "app.log", "ab") as log:
            proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        return ProcessRef.of(proc.pid)

    def _etcd_tls_env(self) -> dict[str, str]:
        """The apps read the writer key with their site's own etcd TLS files."""
        tls = self.site.etcd_tls
        if tls is None:
            return {}
        return {f"RG_ARBITER_ETCD_{name}": path for name, path in (
            ("CA", tls.ca_file), ("CERT", tls.cert_file), ("KEY", tls.key_file))
            if path is not None}

    def ready_slots(self, timeout_s: float = 0.5) -> list[int]:
        """Slots whose process answers /health/deep with 200 (its database reachable)."""
        def check(slot: int) -> int | None:
            try:
                ok = httpx.get(f"{self.app_url(slot)}/health/deep", timeout=timeout_s,
                               trust_env=False).status_code == 200
            except httpx.HTTPError:
                return None
            return slot if ok else None

        slots = sorted(self.running_apps())
        if not slots:
            return []
        with ThreadPoolExecutor(max_workers=len(slots)) as pool:
            return sorted(s for s in pool.map(check, slots) if s is not None)

    def status(self, desired: int) -> ComputeStatus:
        alive = self.running_apps()
        return ComputeStatus(self.region, desired=desired, ready=len(self.ready_slots()),
                             pids=tuple(sorted(r.pid for r in alive.values())),
                             urls=tuple(self.app_url(s) for s in sorted(alive)))

    def wait_ready(self, at_least: int, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        ready: list[int] = []
        while time.monotonic() < deadline:
            ready = self.ready_slots(timeout_s=0.3)
            if len(ready) >= at_least:
                return len(ready)
            time.sleep(0.05)
        raise ProviderError(f"{self.region}: {len(ready)} of {at_least} app processes ready "
                            f"after {timeout_s:g} s; see {self.dir}/app-*/app.log")

    # -- the front door ----------------------------------------------------------------------

    @property
    def stats_socket(self) -> Path:
        return self.dir.absolute() / "haproxy.sock"

    def front_door_counts(self) -> FrontDoorCounts | None:
        """The front door's totals of requests and 5xx answers; None when it does not say."""
        return read_counts(self.stats_socket, FRONTEND)

    def render_front_door(self) -> str:
        """Static: every slot, health-checked; a stopped app is simply down. A stats socket
        (read-only level) beside it gives the agent the request and error totals."""
        site, region = self.site, self.region
        port = site.topology.regions[region].ports.front_door
        stats = ([f"    stats socket {self.stats_socket} mode 600 level user"]
                 if socket_usable(self.stats_socket) else [])
        lines = [
            "# generated by regionguard's agent; static (the apps check the lease themselves)",
            "global", "    maxconn 4096", *stats, "",
            "defaults", "    mode http", "    timeout connect 500ms", "    timeout client 30s",
            "    timeout server 15s", "    timeout queue 2s", "    retries 2",
            "    option redispatch 1", "",
            f"frontend {FRONTEND}", f"    bind {site.host}:{port}", "    default_backend apps",
            "",
            "backend apps", "    balance roundrobin", "    option httpchk GET /health/deep",
            "    default-server inter 500ms fall 2 rise 1",
        ]
        for slot in range(1, site.topology.slots(region) + 1):
            lines.append(f"    server {region}-{slot} {site.host}:"
                         f"{site.app_port(region, slot)} check")
        return "\n".join(lines) + "\n"

    def ensure_front_door(self) -> bool:
        """Start HAProxy unless it runs; True when it was started now."""
        with self._lock:
            record = self._read()
            if self._alive(record, FRONT_DOOR) is not None:
                return False
            self.dir.mkdir(parents=True, exist_ok=True)
            config = self.dir / "haproxy.cfg"
            config.write_text(self.render_front_door())
            port = self.site.topology.regions[self.region].ports.front_door
            if not port_is_free(self.site.host, port):
                raise ProviderError(f"{self.region}: the front door's port {self.site.host}:"
                                    f"{port} is taken by another program; free it or change "
                                    f"regions.{self.region}.ports.front_door")
            with open(self.dir / "haproxy.log", "ab") as log:
                proc = subprocess.Popen([haproxy_binary(), "-db", "-f", str(config)],
                                        stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            record[FRONT_DOOR] = ProcessRef.of(proc.pid).as_dict()
            self._write(record)
            return True

    def stop(self) -> list[int]:
        """Stop every process of this data plane; returns pids that survived (none)."""
        with self._lock:
            record = self._read()
            procs = [p for k in record if (ref := self._alive(record, k)) is not None
                     if (p := ref.process()) is not None]
            survivors = terminate(procs, grace_s=3)
            self._write({})
            return survivors
