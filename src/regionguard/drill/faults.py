"""The fault catalog: real faults on a world's own processes, each with its healing.

Faults act through the world's `DrillTarget` (drill/target.py), which only touches processes it
recorded or identified as its own (in the sandbox: PostgreSQL cluster processes by binary +
data directory, app processes by (pid, start time)); `partition-region` is the world's own way
to cut a region off (in the sandbox: an nftables table dropping the region's loopback ports,
root only).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from regionguard.drill.target import DrillTarget
from regionguard.errors import ProviderError, UsageError
from regionguard.orchestrator.journal import Journal


@dataclass
class FaultContext:
    target: DrillTarget
    journal: Journal
    freeze_s: float = 5.0


class Fault:
    name = ""
    description = ""
    causes_failover = True

    def inject(self, ctx: FaultContext, region: str) -> str:
        raise NotImplementedError

    def heal(self, ctx: FaultContext, region: str) -> str | None:
        """Undo what can be undone (the engine repairs the rest); idempotent."""
        return None

    def check_possible(self, target: DrillTarget) -> None:
        """Raise NotAvailable (with the reason) when this fault cannot run in `target`."""


class KillProcesses(Fault):
    """SIGKILL the region's database processes, app processes, or both."""

    def __init__(self, name: str, description: str, db: bool, apps: bool) -> None:
        self.name, self.description = name, description
        self.db, self.apps = db, apps
        self.causes_failover = db  # app-only death is repaired in place

    def inject(self, ctx: FaultContext, region: str) -> str:
        pids = ctx.target.signal_region(region, signal.SIGKILL, db=self.db, apps=self.apps)
        what = "PostgreSQL and app" if self.db and self.apps else "PostgreSQL" if self.db \
            else "app"
        return f"SIGKILL {len(pids)} {what} processes of {region}"


def kill_region() -> KillProcesses:
    return KillProcesses("kill-region", "SIGKILL the region's PostgreSQL and app processes",
                         db=True, apps=True)


def kill_db() -> KillProcesses:
    return KillProcesses("kill-db", "SIGKILL the region's PostgreSQL cluster (postmaster and "
                         "children)", db=True, apps=False)


def kill_app() -> KillProcesses:
    return KillProcesses("kill-app", "SIGKILL the region's app processes (repaired in place, "
                         "no failover)", db=False, apps=True)


class FreezeRegion(Fault):
    name = "freeze-region"
    description = "SIGSTOP the region's processes for N seconds, then SIGCONT (slow, not dead)"

    def __init__(self) -> None:
        self._frozen: list[int] = []
        self._timer: threading.Timer | None = None

    def inject(self, ctx: FaultContext, region: str) -> str:
        self._frozen = ctx.target.signal_region(region, signal.SIGSTOP, db=True, apps=True)
        self._timer = threading.Timer(ctx.freeze_s, self._thaw, args=(ctx.target,))
        self._timer.daemon = True
        self._timer.start()
        return f"SIGSTOP {len(self._frozen)} processes of {region} for {ctx.freeze_s:g} s"

    def _thaw(self, target: DrillTarget) -> None:
        target.signal_pids(self._frozen, signal.SIGCONT)

    def heal(self, ctx: FaultContext, region: str) -> str | None:
        if self._timer is not None:
            self._timer.cancel()
        self._thaw(ctx.target)
        return f"SIGCONT {len(self._frozen)} processes"


class PartitionRegion(Fault):
    name = "partition-region"
    description = ("drop every packet to and from the region's ports (database and app slots) "
                   "with nftables: cut off from the front door, the controller and the other "
                   "region (root only)")

    def check_possible(self, target: DrillTarget) -> None:
        target.check_partition()

    def inject(self, ctx: FaultContext, region: str) -> str:
        return ctx.target.partition(region)

    def heal(self, ctx: FaultContext, region: str) -> str | None:
        return ctx.target.unpartition()


class KillController(Fault):
    name = "kill-controller"
    description = ("kill the primary region, then SIGKILL the controller after `promote` "
                   "(the supervisor restarts it and it resumes the plan)")

    def inject(self, ctx: FaultContext, region: str) -> str:
        seen = len(ctx.journal.entries())
        ctx.target.hold_controller("promote", hold_s=30.0)
        killed = kill_region().inject(ctx, region)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(e["event"] == "paused" for e in ctx.journal.entries()[seen:]):
                pid = ctx.target.kill_controller()
                if pid is None:
                    raise ProviderError("controller not running; cannot kill it")
                return f"{killed}; SIGKILL controller pid {pid} after promote"
            time.sleep(0.02)
        ctx.target.release_controller()
        raise ProviderError("the controller never reached `promote`; is it running?")

    def heal(self, ctx: FaultContext, region: str) -> str | None:
        ctx.target.release_controller()
        return None


# the faults of a world whose regions are processes on hosts it controls (the sandbox; a lab of
# network-namespace sites): each world's registry entry says which catalog it offers
CATALOG: Mapping[str, Callable[[], Fault]] = {
    factory().name: factory
    for factory in (kill_region, kill_db, kill_app, FreezeRegion, PartitionRegion,
                    KillController)
}


def make_fault(name: str, catalog: Mapping[str, Callable[[], Fault]] = CATALOG) -> Fault:
    try:
        factory = catalog[name]
    except KeyError:
        raise UsageError(
            f"unknown fault {name!r}; choose one of: {', '.join(catalog)}"
        ) from None
    return factory()


def describe_catalog(catalog: Mapping[str, Callable[[], Fault]] = CATALOG
                     ) -> list[dict[str, Any]]:
    return [{"name": n, "description": f().description} for n, f in catalog.items()]
