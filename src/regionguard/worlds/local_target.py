"""The sandbox as a drill's target (`SandboxTarget`, the `DrillTarget` the drill runner and
campaign use)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from regionguard.config import Topology
from regionguard.errors import NotAvailable, ProviderError
from regionguard.orchestrator.ports import DbStatus, Ports
from regionguard.providers.local import fault_point
from regionguard.providers.local.postgres.queries import timeline_history
from regionguard.providers.local.sandbox import Sandbox
from regionguard.providers.local.status import sandbox_status
from regionguard.providers.local.wiring import build_ports


class SandboxTarget:
    """The sandbox as a drill sees it. Only its own processes are ever signalled: PostgreSQL's
    by binary and data directory, the apps' and the controller's by (pid, start time)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._ports = build_ports(sandbox.topology, sandbox.state_dir)
        self._nft_table = f"regionguard_{os.getpid()}"

    @classmethod
    def of(cls, topology: Topology) -> SandboxTarget:
        from regionguard.worlds.local import refuse_sites

        refuse_sites(topology, "drill (without --lab)")
        return cls(Sandbox(topology))

    @property
    def topology(self) -> Topology:
        return self.sandbox.topology

    @property
    def ports(self) -> Ports:
        return self._ports

    @property
    def journal_path(self) -> Path:
        return self.sandbox.state_dir / "journal.jsonl"

    # -- reading it ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return sandbox_status(self.sandbox)

    def front_door_url(self) -> str:
        return self.sandbox.frontdoor.url(self.sandbox.store.read())

    def database(self, region: str) -> DbStatus:
        return self.sandbox.cluster(self.sandbox.store.read(), region).status()

    def orders(self, region: str, prefix: str, timeout_s: float) -> list[tuple[str, int, int]]:
        cluster = self.sandbox.cluster(self.sandbox.store.read(), region)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with cluster.connect(statement_timeout_ms=30000) as conn:
                    rows = conn.execute(
                        "SELECT request_id, id::bigint, quantity::bigint FROM orders"
                        " WHERE request_id LIKE %s", (prefix + "%",)).fetchall()
                    return [(str(rid), _int(oid), _int(qty)) for rid, oid, qty in rows]
            except psycopg.Error as exc:
                if time.monotonic() > deadline:
                    raise ProviderError(f"cannot read the drill's orders on {region}: "
                                        f"{exc}") from exc
                time.sleep(0.2)

    def timelines(self, region: str) -> tuple[int, dict[int, str]] | None:
        cluster = self.sandbox.cluster(self.sandbox.store.read(), region)
        try:
            with cluster.connect(statement_timeout_ms=10000) as conn:
                return timeline_history(conn)
        except psycopg.Error:
            return None  # property 6 then goes unchecked for this drill

    def repair(self) -> None:
        self.sandbox.up()

    # -- hurting it ---------------------------------------------------------------------------

    def signal_region(self, region: str, sig: signal.Signals, *, db: bool,
                      apps: bool) -> list[int]:
        state = self.sandbox.store.read()
        pids = [p.pid for p in self.sandbox.cluster(state, region).processes()] if db else []
        if apps:
            pids += [ref.pid for ref in self.sandbox.apps(state).running(state, region).values()]
        return self.signal_pids(pids, sig)

    def signal_pids(self, pids: list[int], sig: signal.Signals) -> list[int]:
        hit = []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                hit.append(pid)
        return hit

    def kill_controller(self) -> int | None:
        ref = self.sandbox.controller_ref()
        return ref.pid if ref is not None and ref.signal(signal.SIGKILL) else None

    def check_partition(self) -> None:
        if os.geteuid() != 0:
            raise NotAvailable("partition-region needs root (nftables); run as root or skip it")
        if not shutil.which("nft"):
            raise NotAvailable("partition-region needs nftables: `apt-get install nftables`")

    def partition(self, region: str) -> str:
        """An nftables table of this process's own drops the region's loopback ports (its
        database and every app slot) in both directions."""
        info = self.sandbox.store.read()["ports"]["regions"][region]
        ports = ", ".join(str(p) for p in [info["db"], *info["slots"]])
        self._nft(
            f"table inet {self._nft_table} {{\n"
            "  chain output { type filter hook output priority -10; policy accept;\n"
            f"    tcp dport {{ {ports} }} drop\n"
            f"    tcp sport {{ {ports} }} drop\n"
            "  }\n}\n"
        )
        return f"nftables table {self._nft_table} drops tcp ports {{{ports}}} of {region}"

    def unpartition(self) -> str | None:
        with contextlib.suppress(ProviderError):
            self._nft(f"delete table inet {self._nft_table}\n")
            return f"deleted nftables table {self._nft_table}"
        return None

    def _nft(self, script: str) -> None:
        proc = subprocess.run(["nft", "-f", "-"], input=script, text=True,
                              capture_output=True, timeout=10)
        if proc.returncode != 0:
            raise ProviderError(f"nft failed: {proc.stderr.strip()}")

    def hold_controller(self, after_step: str, hold_s: float) -> None:
        fault_point.arm(self.sandbox.state_dir, after_step, hold_s=hold_s)

    def release_controller(self) -> None:
        fault_point.disarm(self.sandbox.state_dir)


def _int(value: object) -> int:
    """An integer column as psycopg returns it (untyped rows)."""
    if not isinstance(value, int):
        raise TypeError(f"expected an integer column, got {type(value).__name__}")
    return value
