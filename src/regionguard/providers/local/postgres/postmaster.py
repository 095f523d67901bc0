"""The postmaster's lifecycle: finding every process of the cluster (by what it is: a
`postgres` binary whose cwd is this data directory, so orphaned children are found and no
other program's pid is signalled), starting, stopping, and fencing by stop + SIGKILL."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from regionguard.errors import NotAvailable, ProviderError
from regionguard.providers.local import pgbin
from regionguard.providers.local.proctrack import kill, wait_dead

if TYPE_CHECKING:
    from regionguard.providers.local.postgres import PostgresCluster


def processes(c: PostgresCluster) -> list[psutil.Process]:
    """Every live process of this cluster: the postmaster and all its children."""
    target = str(c.data_dir.resolve()) if c.data_dir.exists() else None
    if target is None:
        return []
    postgres_bin = str(Path(pgbin.tool("postgres")).resolve())
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["exe", "cwd", "status"]):
        try:
            if proc.info["exe"] != postgres_bin or proc.info["cwd"] != target:
                continue
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def pids(c: PostgresCluster) -> tuple[int, ...]:
    return tuple(sorted(p.pid for p in c.processes()))


def postmaster_pid(c: PostgresCluster) -> int | None:
    pidfile = c.data_dir / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    return pid if pid in c.pids() else None


def is_running(c: PostgresCluster) -> bool:
    return c.postmaster_pid() is not None


def start(c: PostgresCluster, timeout_s: float = 30.0) -> None:
    """Start and wait until it accepts connections. Idempotent."""
    if c.is_running():
        return
    if not c.exists():
        raise NotAvailable(f"{c.name}: no database at {c.data_dir}; run `regionguard up`")
    pgbin.make_pg_dir(c.socket_dir, 0o700)
    stale = c.data_dir / "postmaster.pid"
    if stale.exists() and not c.processes():
        stale.unlink()  # a SIGKILLed postmaster leaves its pid file behind
    c.write_config()
    pgbin.run(
        "pg_ctl", "start", "-w", "-t", str(int(timeout_s)), "-D", str(c.data_dir),
        "-l", str(c.log_file), timeout_s=timeout_s + 5, log=None,
    )


def stop(c: PostgresCluster, mode: str = "fast", timeout_s: float = 10.0) -> None:
    """Stop; escalate to SIGKILL of every process when the stop does not finish in time."""
    if c.is_running():
        with contextlib.suppress(ProviderError):
            pgbin.run(
                "pg_ctl", "stop", "-m", mode, "-w", "-t", str(max(1, int(timeout_s))),
                "-D", str(c.data_dir), timeout_s=timeout_s + 3,
            )
    leftover = c.processes()
    if leftover:
        for p in leftover:  # a frozen postmaster cannot act on a signal until continued
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(signal.SIGCONT)
        survivors = wait_dead(leftover, 1.0)
        if survivors and kill(survivors):
            raise ProviderError(f"{c.name}: PostgreSQL processes survived SIGKILL")


def fence(c: PostgresCluster) -> list[str]:
    """Stop this database accepting writes, whatever state it is in. Idempotent.

    `pg_ctl stop -m immediate -t 2`, then SIGKILL of every process of the cluster: a frozen
    postmaster ignores a fast stop, and read-only settings can be overridden by a session."""
    actions: list[str] = []
    procs = c.processes()
    if not procs:
        return ["already stopped"]
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGCONT)
    try:
        pgbin.run("pg_ctl", "stop", "-m", "immediate", "-w", "-t", "2",
                  "-D", str(c.data_dir), timeout_s=4)
        actions.append("pg_ctl stop -m immediate")
    except ProviderError as exc:
        actions.append(f"pg_ctl stop failed: {exc}")
    leftover = c.processes()
    if leftover:
        kill(leftover)
        actions.append(f"SIGKILL {len(leftover)} processes")
    if c.processes():
        raise ProviderError(f"{c.name}: PostgreSQL processes survived SIGKILL")
    return actions
