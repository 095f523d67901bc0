"""What a self-managed site's standby needs to start, for readiness's `standby_capacity`
(agent/site_readiness.py): the PostgreSQL and HAProxy binaries, disk on the state dir's file
system."""

from __future__ import annotations

import shutil
from pathlib import Path

from regionguard.config import Topology
from regionguard.errors import RegionGuardError
from regionguard.providers.local import pgbin
from regionguard.providers.local.haproxy import haproxy_binary

PG_TOOLS = ("postgres", "pg_ctl", "pg_rewind", "pg_basebackup")


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
