"""The local world's readiness facts: the standby's database, what its capacity needs to
start (the PostgreSQL and HAProxy binaries, disk on the state dir's file system), the live
configuration against the topology (app processes per region and role, the regions the state
knows), and the last successful drill in the journal."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from regionguard.config import Topology
from regionguard.errors import RegionGuardError
from regionguard.orchestrator.ports import Ports
from regionguard.orchestrator.readiness import Facts, last_drill_age_s
from regionguard.orchestrator.readiness_monitor import observe_pair
from regionguard.providers.local import pgbin
from regionguard.providers.local.haproxy import haproxy_binary

PG_TOOLS = ("postgres", "pg_ctl", "pg_rewind", "pg_basebackup")


def gather(ports: Ports, now: datetime) -> Facts:
    live, standby, standby_db = observe_pair(ports)
    return Facts(
        primary=live.primary, standby=standby, standby_db=standby_db,
        sync_degraded=live.sync_degraded_lsn is not None,
        capacity_problems=capacity_problems(ports.topology),
        drift=_drift(ports, dict(live.roles)),
        last_drill_age_s=last_drill_age_s(ports.journal.entries(), now),
    )


def capacity_problems(topology: Topology) -> list[str]:
    """What would keep this host's standby from starting: PostgreSQL's and HAProxy's binaries,
    and disk on the state dir's file system."""
    problems: list[str] = []
    try:
        missing = [name for name in PG_TOOLS if not Path(pgbin.tool(name)).exists()]
        if missing:
            problems.append(f"PostgreSQL's {', '.join(missing)} missing from {pgbin.bin_dir()}")
    except RegionGuardError as exc:
        problems.append(f"PostgreSQL is missing ({exc})")
    try:
        haproxy_binary()
    except RegionGuardError as exc:
        problems.append(f"HAProxy is missing ({exc})")
    state_dir = topology.state_dir
    folder = state_dir if state_dir.exists() else state_dir.parent
    free = shutil.disk_usage(folder.absolute()).free
    need = topology.readiness.min_free_disk_bytes
    if free < need:
        problems.append(f"{free >> 20} MiB free on {folder}, under the {need >> 20} MiB "
                        "readiness.min_free_disk_bytes")
    return problems


def _drift(ports: Ports, roles: dict[str, Any]) -> list[str]:
    topology = ports.topology
    drift: list[str] = []
    if set(roles) != set(topology.regions):
        drift.append(f"the sandbox has regions {sorted(roles)}, the topology "
                     f"{sorted(topology.regions)}")
        return drift
    for region, role in roles.items():
        want = topology.desired_processes(region, role)
        try:
            running = len(ports.compute.status(region).pids)
        except RegionGuardError as exc:
            drift.append(f"{region}: app processes unknown ({exc})")
            continue
        if running != want:
            drift.append(f"{region} ({role}) runs {running} app processes, the topology "
                         f"wants {want}")
    return drift
