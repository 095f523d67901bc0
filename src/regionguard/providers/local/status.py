"""The `status --json` contract of a local sandbox (see the README): read from the live state,
the databases, the app processes, HAProxy and the journal; changes nothing.

Kept apart from `Sandbox` (which brings the pieces up and down) because it is a published
contract: its shape changes only on purpose, with the README.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from regionguard.errors import NotAvailable, ProviderError
from regionguard.orchestrator.journal import FileSink, Journal, rto_breakdown
from regionguard.orchestrator.lsn import format_lsn
from regionguard.orchestrator.ports import DbStatus
from regionguard.providers.local.approvals import FileApprovals
from regionguard.providers.local.ops_file import read_ops
from regionguard.providers.local.proctrack import ProcessRef
from regionguard.providers.local.sandbox import Sandbox
from regionguard.providers.local.state_model import processes_of


def journal_entries(sandbox: Sandbox) -> list[dict[str, Any]]:
    return Journal(FileSink(sandbox.state_dir / "journal.jsonl")).entries()


def last_plan_summary(sandbox: Sandbox, plan_id: str | None,
                      entries: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The last plan's RTO breakdown, computed from the journal (`entries`, when the caller
    has read it already)."""
    if not plan_id:
        return None
    return rto_breakdown(entries if entries is not None else journal_entries(sandbox), plan_id)


def sandbox_status(sb: Sandbox, entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`entries`: the journal, when the caller has read it already (the status page)."""
    if not sb.store.exists():
        raise NotAvailable(f"no sandbox in {sb.state_dir}; start one with `regionguard up`")
    state = sb.store.read()
    clusters = sb.clusters(state)
    primary = sb.primary(state)
    apps = sb.apps(state)
    roles = sb.roles(state)
    topology = sb.topology

    def db(region: str) -> DbStatus:
        other = clusters[primary] if region != primary else None
        return clusters[region].status(other)

    with ThreadPoolExecutor(max_workers=4) as pool:
        dbs = dict(zip(roles, pool.map(db, roles), strict=True))
        computes = dict(zip(roles, pool.map(
            lambda r: apps.status(state, r, topology.desired_processes(r, roles[r])),
            roles), strict=True))
    try:
        shares: dict[str, float] | None = sb.frontdoor.shares(state)
    except ProviderError:
        shares = None
    haproxy = processes_of(state).haproxy
    controller = sb.controller_ref()
    controller_alive = bool(controller and controller.alive())
    return {
        "front_door": {
            "url": sb.frontdoor.url(state),
            "running": bool(haproxy and ProcessRef(haproxy.pid, haproxy.started_at).alive()),
        },
        "epoch": int(state["epoch"]),
        "controller": {
            "running": controller_alive,
            "pid": controller.pid if controller_alive and controller else None,
            "mode": topology.failover.mode,
        },
        "regions": [
            {
                "name": r,
                "home_role": topology.regions[r].home_role.value,
                "role": roles[r].value,
                "db": {
                    "up": dbs[r].up,
                    "in_recovery": dbs[r].in_recovery,
                    "port": dbs[r].port,
                    "dsn": clusters[r].dsn(),
                    "pids": list(dbs[r].pids),
                    "lsn": format_lsn(dbs[r].lsn),
                    "lag_bytes": dbs[r].lag_bytes,
                    "lag_s": dbs[r].lag_s,
                    "timeline": dbs[r].timeline,
                    "epoch": dbs[r].epoch,
                },
                "compute": {
                    "ready": computes[r].ready,
                    "desired": computes[r].desired,
                    "pids": list(computes[r].pids),
                    "urls": list(computes[r].urls),
                },
                "traffic_share": None if shares is None else round(shares.get(r, 0.0), 4),
            }
            for r in roles
        ],
        "last_failover": last_plan_summary(sb, state.get("last_plan"), entries),
        # the controller's ops endpoint: metrics_url (Prometheus), status_url (the live page)
        "ops": read_ops(sb.state_dir) if controller_alive else None,
        # failover.approval = "manual": the automatic failover waiting for a person, or null
        "awaiting_approval": FileApprovals(sb.state_dir).pending(),
    }
