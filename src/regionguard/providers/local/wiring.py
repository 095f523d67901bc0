"""The local world's one wiring function: every port over one sandbox, as the CLI, the
controller and the drills use them."""

from __future__ import annotations

from pathlib import Path

from regionguard.config import Topology
from regionguard.orchestrator.journal import FileSink, Journal
from regionguard.orchestrator.ports import Ports
from regionguard.providers.local.adapters import HAProxyTraffic, LocalCompute, LocalDatabase
from regionguard.providers.local.fault_point import FileFaultPoint
from regionguard.providers.local.notify import LocalNotifier
from regionguard.providers.local.probes import HttpProber, PostgresProber, ReplicationProber
from regionguard.providers.local.sandbox import Sandbox


def build_ports(topology: Topology, state_dir: Path | None = None) -> Ports:
    sandbox = Sandbox(topology, state_dir)

    def dsn_of(region: str) -> str:
        return sandbox.cluster(sandbox.store.read(), region).dsn()

    def front_door_url() -> str:
        return sandbox.frontdoor.url(sandbox.store.read())

    def primary_dsn() -> tuple[str, str]:
        state = sandbox.store.read()
        primary = sandbox.primary(state)
        return primary, sandbox.cluster(state, primary).dsn()

    journal = Journal(FileSink(sandbox.state_dir / "journal.jsonl"))

    def report(plan_id: str) -> None:
        from regionguard.ops.report import write_report

        write_report(sandbox.state_dir / "reports", journal.entries(), plan_id)

    return Ports(
        topology=topology,
        database=LocalDatabase(sandbox),
        compute=LocalCompute(sandbox),
        traffic=HAProxyTraffic(sandbox),
        probers=[PostgresProber(dsn_of), HttpProber(front_door_url),
                 ReplicationProber(primary_dsn)],
        notifier=LocalNotifier(topology.failover.webhook_url),
        state=sandbox.store,
        journal=journal,
        fault_point=FileFaultPoint(sandbox.state_dir),
        reports=report,
    )
