"""Files a cluster owns that hold secrets or come from the machine: the sandbox's pgpass, files
written 0600 as the PostgreSQL user (never through a symlink), and the per-machine initdb
template a new data directory is copied from (initdb is slow)."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from regionguard.errors import ProviderError
from regionguard.providers.local import pgbin


def ensure_passfile(path: Path) -> str:
    """The password in `path` (pgpass format), generated once; the file is 0600 and owned by
    the PostgreSQL user (root, the CLI's user, reads it anyway)."""
    if path.exists():
        found = password_in(path, "postgres")
        if not found:
            raise ProviderError(f"{path}: not a pgpass line for postgres "
                                "(host:port:db:user:password); restore it, or remove it with "
                                "the site's data dirs (the sandbox: `regionguard down`)")
        return found
    password = secrets.token_urlsafe(24)  # no ':' or '\\' to escape in pgpass
    write_as_pg(path, f"*:*:*:postgres:{password}\n")
    return password


def password_in(pgpass: Path, user: str) -> str | None:
    """`user`'s password in a pgpass file (`host:port:db:user:password` lines)."""
    try:
        lines = pgpass.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":")
        if len(parts) == 5 and parts[3] == user and parts[4]:
            return parts[4]
    return None


def write_as_pg(path: Path, text: str) -> None:
    """Written 0600 and owned by the PostgreSQL user before the first byte (passwords live
    here), never through a symlink."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:  # ELOOP: a symlink planted where our file goes
        raise ProviderError(f"cannot write {path}: {exc.strerror}; remove it and run "
                            "`regionguard up` again") from None
    with os.fdopen(fd, "w") as f:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        user = pgbin.pg_user()
        if user.name is not None:
            os.fchown(fd, user.uid, user.gid)
        f.write(text)


def copy_template(target: Path) -> None:
    """A fresh data directory copied from a per-machine initdb template (initdb is slow)."""
    user = pgbin.pg_user()
    template = pgbin.VAR_ROOT / f"template-{pgbin.bin_dir().parent.name}-{user.uid}"
    if user.name is None:
        template = Path.home() / ".cache" / "regionguard" / template.name
    if not (template / "PG_VERSION").exists():
        staging = template.with_name(template.name + f".{os.getpid()}")
        pgbin.make_pg_dir(staging.parent)
        if staging.exists():
            shutil.rmtree(staging)
        pgbin.make_pg_dir(staging)
        pgbin.run(
            "initdb", "-D", str(staging), "-U", "postgres", "--auth=trust",
            "--locale=C.UTF-8", "-E", "UTF8", "--no-sync", timeout_s=120,
        )
        try:
            staging.rename(template)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another process won the race
    shutil.copytree(template, target, symlinks=True)
    if user.name is not None:
        for dirpath, _dirs, files in os.walk(target):
            os.chown(dirpath, user.uid, user.gid)
            for f in files:
                os.chown(os.path.join(dirpath, f), user.uid, user.gid)
    os.chmod(target, 0o700)
