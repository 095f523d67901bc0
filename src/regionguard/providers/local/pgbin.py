"""Finding PostgreSQL's tools and running them as a user PostgreSQL accepts.

PostgreSQL refuses to run as root. When regionguard runs as root (CI, these machines), every tool
runs as Debian's `postgres` user, and data directories live below `/var/tmp/regionguard/...`
because that user cannot enter a directory below a 0700 parent such as `/root` or pytest's
`tmp_path`. All tools come from one bin dir: `pg_rewind` is not on PATH, and Debian's
`pg_basebackup` on PATH is a wrapper that picks a cluster by itself.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from regionguard.errors import NotAvailable, ProviderError
from regionguard.providers.local.private import checked_dir

INSTALL_HINT = "install it with `apt-get install postgresql` (or run `make run`, which does)"
VAR_ROOT = Path("/var/tmp/regionguard")


@dataclass(frozen=True, slots=True)
class PgUser:
    """Who PostgreSQL's processes run as (None: the current user)."""

    name: str | None
    uid: int
    gid: int


@cache
def bin_dir() -> Path:
    """The highest-version PostgreSQL bin dir that has every tool regionguard uses."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for cand in candidates:
        if all((cand / tool).exists() for tool in ("initdb", "pg_ctl", "postgres", "pg_rewind")):
            return cand
    raise NotAvailable(f"PostgreSQL server binaries not found; {INSTALL_HINT}")


def tool(name: str) -> str:
    return str(bin_dir() / name)


@cache
def pg_user() -> PgUser:
    if os.geteuid() != 0:
        return PgUser(None, os.getuid(), os.getgid())
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise NotAvailable(
            f"running as root needs the 'postgres' system user; {INSTALL_HINT}"
        ) from None
    return PgUser("postgres", entry.pw_uid, entry.pw_gid)


def data_root(state_dir: Path) -> Path:
    """Where a sandbox's PostgreSQL files live: the state dir, or a reachable dir when root.

    Below /var/tmp (writable by everyone) nothing is trusted: the root and this sandbox's dir
    must be real directories owned by root (or, for the sandbox's, the postgres user)."""
    user = pg_user()
    if user.name is None:
        return state_dir.resolve()
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    root = VAR_ROOT / digest
    if VAR_ROOT.exists() or VAR_ROOT.is_symlink():
        checked_dir(VAR_ROOT, [0])
    if root.exists() or root.is_symlink():
        checked_dir(root, [0, user.uid])
    return root


def make_pg_dir(path: Path, mode: int | None = None) -> Path:
    """Create `path` (and parents below VAR_ROOT) owned by the PostgreSQL user; `mode`, when
    given, is set on `path` itself (0700 for the unix-socket dir: the socket is trusted)."""
    user = pg_user()
    if user.name is not None:
        VAR_ROOT.mkdir(mode=0o755, exist_ok=True)
        # /var/tmp is world-writable: another user may have planted the root (or a symlink)
        # first; everything below is chowned as root, so check before following it
        checked_dir(VAR_ROOT, [0])
        os.chmod(VAR_ROOT, 0o755, follow_symlinks=False)
    path.mkdir(parents=True, exist_ok=True)
    if user.name is not None:
        for part in [path, *path.parents]:
            if part == VAR_ROOT or VAR_ROOT not in part.parents:
                break
            os.chown(part, user.uid, user.gid, follow_symlinks=False)
    if mode is not None:
        os.chmod(path, mode)
    return path


def run(
    name: str, *args: str, timeout_s: float = 30.0, check: bool = True, log: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool as the PostgreSQL user, bounded by `timeout_s`.

    Output goes to `log` when given (a process that outlives the tool, like the postmaster
    started by pg_ctl, must not hold our pipes), else it is captured for the error message.
    """
    user = pg_user()
    cmd = [tool(name), *args]
    kwargs: dict[str, object] = {}
    if user.name is not None:
        # its own home too: libpq (pg_basebackup, pg_rewind, the postmaster's WAL receiver,
        # which inherits this) looks for a client certificate in ~/.postgresql, and root's
        # home is not the PostgreSQL user's to read ("permission denied" under TLS)
        home = pwd.getpwnam(user.name).pw_dir
        kwargs = {"user": user.uid, "group": user.gid, "extra_groups": [],
                  "env": {**os.environ, "HOME": home, "USER": user.name, "LOGNAME": user.name}}
    try:
        if log is not None:
            with open(log, "ab") as out:
                proc = subprocess.run(
                    cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    timeout=timeout_s, text=True, cwd="/", start_new_session=True, **kwargs,  # type: ignore[call-overload]
                )
        else:
            proc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s,
                text=True, cwd="/", start_new_session=True, **kwargs,  # type: ignore[call-overload]
            )
    except subprocess.TimeoutExpired:
        raise ProviderError(f"{name} did not finish within {timeout_s:g} s") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip().splitlines()
        tail = detail[-1] if detail else (f"see {log}" if log else "no output")
        raise ProviderError(f"{name} failed (exit {proc.returncode}): {tail}")
    return proc  # type: ignore[no-any-return]
