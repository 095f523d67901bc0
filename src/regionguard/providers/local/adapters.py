"""The engine's ports over the sandbox's pieces: each adapter only translates a port call to
the sandbox (its PostgreSQL clusters, its app processes, its HAProxy front door); policy stays in
the engine. Every public method goes through the provider boundary, so a backend error reaches
the engine as a one-line ProviderError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regionguard.errors import ProviderError
from regionguard.orchestrator.ports import (
    ComputeStatus,
    DbStatus,
    FenceResult,
    RouteTable,
    VerifyResult,
)
from regionguard.providers.local.boundary import provider_boundary
from regionguard.providers.local.sandbox import Sandbox


@provider_boundary
class LocalDatabase:
    """The Database port over each region's PostgreSQL cluster."""

    zero_loss_switchover = True
    stopped_writes_are_final = True  # a fast shutdown

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox

    def _state(self) -> Mapping[str, Any]:
        return self.sb.store.read()

    def status(self, region: str) -> DbStatus:
        state = self._state()
        primary = self.sb.primary(state)
        other = self.sb.cluster(state, primary) if region != primary else None
        return self.sb.cluster(state, region).status(other)

    def fence(self, region: str) -> FenceResult:
        cluster = self.sb.cluster(self._state(), region)
        try:
            return FenceResult(region, True, tuple(cluster.fence()))
        except ProviderError as exc:
            return FenceResult(region, False, (), (str(exc),))

    def promote(self, region: str, epoch: int, timeout_s: float, planned: bool = False) -> None:
        self.sb.cluster(self._state(), region).promote(epoch, timeout_s)

    def stop_writes(self, region: str, timeout_s: float) -> int:
        return self.sb.cluster(self._state(), region).stop_writes(timeout_s)

    def wait_replayed(self, region: str, lsn: int, timeout_s: float) -> int:
        return self.sb.cluster(self._state(), region).wait_replayed(lsn, timeout_s)

    def rebuild_as_standby(self, region: str, of: str, timeout_s: float) -> str:
        state = self._state()
        return self.sb.cluster(state, region).rebuild_as_standby(
            self.sb.cluster(state, of), timeout_s)

    def set_sync_standby(self, primary: str, standby: str | None) -> bool:
        return self.sb.cluster(self._state(), primary).set_sync_standby(standby)

    def confirm_sync(self, primary: str, standby: str, timeout_s: float) -> int:
        return self.sb.cluster(self._state(), primary).confirm_sync(standby, timeout_s)

    def stamp_epoch(self, region: str, epoch: int) -> None:
        self.sb.cluster(self._state(), region).write_epoch(epoch)


@provider_boundary
class LocalCompute:
    """The Compute port over the sandbox's app processes."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox

    def scale(self, region: str, count: int) -> ComputeStatus:
        self.sb.scale(region, count)
        return ComputeStatus(region, desired=count, ready=0)

    def status(self, region: str) -> ComputeStatus:
        state = self.sb.store.read()
        desired = self.sb.topology.desired_processes(region, self.sb.roles(state)[region])
        return self.sb.apps(state).status(state, region, desired)

    def wait_ready(self, region: str, at_least: int, timeout_s: float) -> ComputeStatus:
        state = self.sb.store.read()
        ready = self.sb.apps(state).wait_ready(self.sb.store.read, region, at_least, timeout_s)
        return ComputeStatus(region, desired=at_least, ready=len(ready))


@provider_boundary
class HAProxyTraffic:
    """The Traffic port over the HAProxy front door."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox

    def cut(self, region: str) -> None:
        with self.sb.store.update() as state:
            self.sb.frontdoor.cut(state, region)

    def route(self, table: RouteTable) -> None:
        self.sb.route(table)

    def shares(self) -> dict[str, float]:
        return self.sb.frontdoor.shares(self.sb.store.read())

    def verify(self, timeout_s: float) -> VerifyResult:
        return self.sb.frontdoor.verify(self.sb.store.read(), timeout_s)
