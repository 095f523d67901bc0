"""The fault catalog: real faults on the sandbox's own processes, each with its healing.

Faults only touch processes the sandbox recorded or identified as its own (PostgreSQL cluster
processes by binary + data directory, app processes by (pid, start time)); `partition-region`
drops the region's TCP ports on loopback with an nftables table of its own (root only).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from regionguard.errors import NotAvailable, ProviderError
from regionguard.orchestrator.journal import Journal
from regionguard.providers.local import fault_point
from regionguard.providers.local.sandbox import Sandbox


@dataclass
class FaultContext:
    sandbox: Sandbox
    journal: Journal
    freeze_s: float = 5.0


def signal_all(pids: list[int], sig: signal.Signals) -> list[int]:
    hit = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            hit.append(pid)
    return hit


def region_pids(sandbox: Sandbox, region: str, db: bool, apps: bool) -> list[int]:
    """The region's PostgreSQL processes and/or app processes, found directly (not through
    `status`, which waits on dead databases: a fault must land when the drill says)."""
    state = sandbox.store.read()
    pids = [p.pid for p in sandbox.cluster(state, region).processes()] if db else []
    if apps:
        pids += [ref.pid for ref in sandbox.apps(state).running(state, region).values()]
    return pids


class Fault:
    name = ""
    description = ""
    causes_failover = True

    def inject(self, ctx: FaultContext, region: str) -> str:
        raise NotImplementedError

    def heal(self, ctx: FaultContext, region: str) -> str | None:
        """Undo what can be undone (the engine repairs the rest); idempotent."""
        return None

    def check_possible(self) -> None:
        """Raise NotAvailable (with the reason) when this fault cannot run here."""


class KillProcesses(Fault):
    """SIGKILL the region's database processes, app processes, or both."""

    def __init__(self, name: str, description: str, db: bool, apps: bool) -> None:
        self.name, self.description = name, description
        self.db, self.apps = db, apps
        self.causes_failover = db  # app-only death is repaired in place

    def inject(self, ctx: FaultContext, region: str) -> str:
        pids = signal_all(region_pids(ctx.sandbox, region, db=self.db, apps=self.apps),
                           signal.SIGKILL)
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
        self._frozen = signal_all(region_pids(ctx.sandbox, region, db=True, apps=True),
                                  signal.SIGSTOP)
        self._timer = threading.Timer(ctx.freeze_s, self._thaw)
        self._timer.daemon = True
        self._timer.start()
        return f"SIGSTOP {len(self._frozen)} processes of {region} for {ctx.freeze_s:g} s"

    def _thaw(self) -> None:
        signal_all(self._frozen, signal.SIGCONT)

    def heal(self, ctx: FaultContext, region: str) -> str | None:
        if self._timer is not None:
            self._timer.cancel()
        self._thaw()
        return f"SIGCONT {len(self._frozen)} processes"


class PartitionRegion(Fault):
    name = "partition-region"
    description = ("drop every packet to and from the region's ports (database and app slots) "
                   "with nftables: cut off from the front door, the controller and the other "
                   "region (root only)")

    def __init__(self) -> None:
        self.table = f"regionguard_{os.getpid()}"

    def check_possible(self) -> None:
        if os.geteuid() != 0:
            raise NotAvailable("partition-region needs root (nftables); run as root or skip it")
        if not shutil.which("nft"):
            raise NotAvailable("partition-region needs nftables: `apt-get install nftables`")

    def _nft(self, script: str) -> None:
        proc = subprocess.run(["nft", "-f", "-"], input=script, text=True,
                              capture_output=True, timeout=10)
        if proc.returncode != 0:
            raise ProviderError(f"nft failed: {proc.stderr.strip()}")

    def inject(self, ctx: FaultContext, region: str) -> str:
        return self.cut(ctx.sandbox, region)

    def cut(self, sandbox: Sandbox, region: str) -> str:
        state = sandbox.store.read()
        info = state["ports"]["regions"][region]
        ports = ", ".join(str(p) for p in [info["db"], *info["slots"]])
        self._nft(
            f"table inet {self.table} {{\n"
            "  chain output { type filter hook output priority -10; policy accept;\n"
            f"    tcp dport {{ {ports} }} drop\n"
            f"    tcp sport {{ {ports} }} drop\n"
            "  }\n}\n"
        )
        return f"nftables table {self.table} drops tcp ports {{{ports}}} of {region}"

    def heal(self, ctx: FaultContext, region: str) -> str | None:
        return self.heal_table()

    def heal_table(self) -> str | None:
        with contextlib.suppress(ProviderError):
            self._nft(f"delete table inet {self.table}\n")
            return f"deleted nftables table {self.table}"
        return None


class KillController(Fault):
    name = "kill-controller"
    description = ("kill the primary region, then SIGKILL the controller after `promote` "
                   "(the supervisor restarts it and it resumes the plan)")

    def inject(self, ctx: FaultContext, region: str) -> str:
        seen = len(ctx.journal.entries())
        fault_point.arm(ctx.sandbox.state_dir, "promote")
        killed = kill_region().inject(ctx, region)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(e["event"] == "paused" for e in ctx.journal.entries()[seen:]):
                ref = ctx.sandbox.controller_ref()
                if ref is None or not ref.signal(signal.SIGKILL):
                    raise ProviderError("controller not running; cannot kill it")
                return f"{killed}; SIGKILL controller pid {ref.pid} after promote"
            time.sleep(0.02)
        fault_point.disarm(ctx.sandbox.state_dir)
        raise ProviderError("the controller never reached `promote`; is it running?")

    def heal(self, ctx: FaultContext, region: str) -> str | None:
        fault_point.disarm(ctx.sandbox.state_dir)
        return None


CATALOG: Mapping[str, Callable[[], Fault]] = {
    factory().name: factory
    for factory in (kill_region, kill_db, kill_app, FreezeRegion, PartitionRegion,
                    KillController)
}


def make_fault(name: str) -> Fault:
    try:
        factory = CATALOG[name]
    except KeyError:
        from regionguard.errors import UsageError

        raise UsageError(
            f"unknown fault {name!r}; choose one of: {', '.join(CATALOG)}"
        ) from None
    return factory()


def describe_catalog() -> list[dict[str, Any]]:
    return [{"name": n, "description": f().description} for n, f in CATALOG.items()]
