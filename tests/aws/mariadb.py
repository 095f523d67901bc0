"""A real MariaDB server for the MySQL engine's tests, set up as RDS MySQL runs one for us.

Debian's `mariadb-server` (installed by `make test` when missing), on a free loopback port, with
TLS and `require_secure_transport` (RDS's parameter), and a master user without SUPER (as on
RDS, so `read_only` binds it). When root, the server runs as Debian's `mysql` user, its files
in a private directory below /var/tmp that user can reach. Stopped and removed at the end.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql

from regionguard.providers.local.netutil import free_port

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
MASTER_USER = "regionguard"


def available() -> str | None:
    """None when a server can run here; otherwise why not (a skip reason)."""
    if not (Path(MARIADBD).exists() and Path(INSTALL_DB).exists()):
        return "MariaDB is not installed: `make test` installs mariadb-server (Debian)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("mysql")
        except KeyError:
            return "running as root needs Debian's 'mysql' user (package mariadb-server)"
    return None


class MariaDbServer:
    def __init__(self, password: str, cert: Path, key: Path) -> None:
        self.password = password
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="rg-mariadb-", dir="/var/tmp"))
        self.data = self.root / "data"
        self.user = "mysql" if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        self.cert, self.key = self.root / "server.crt", self.root / "server.key"
        shutil.copy(cert, self.cert)
        shutil.copy(key, self.key)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("mysql")
            for path in (self.root, self.cert, self.key):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> str:
        return str(self.root / "mysqld.sock")

    def start(self, deadline_s: float = 60) -> None:
        subprocess.run([INSTALL_DB, "--no-defaults", f"--datadir={self.data}",
                        f"--user={self.user}", "--auth-root-authentication-method=normal",
                        "--skip-test-db"], check=True, capture_output=True, timeout=120)
        self.process = subprocess.Popen(
            [MARIADBD, "--no-defaults", f"--datadir={self.data}", f"--user={self.user}",
             "--bind-address=127.0.0.1", f"--port={self.port}", f"--socket={self.socket}",
             f"--pid-file={self.root / 'mysqld.pid'}", f"--log-error={self.root / 'error.log'}",
             "--skip-name-resolve", "--skip-log-bin", f"--ssl-cert={self.cert}",
             f"--ssl-key={self.key}", "--require-secure-transport=ON",
             "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=8M"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + deadline_s
        while True:
            try:
                with self.admin():
                    break
            except pymysql.err.OperationalError:
                if self.process.poll() is not None or time.monotonic() > end:
                    log = (self.root / "error.log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"MariaDB did not start:\n{log}") from None
                time.sleep(0.1)
        with self.admin() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE USER '{MASTER_USER}'@'%%' IDENTIFIED BY %s REQUIRE SSL",
                        (self.password,))
            # RDS's master user: everything on the app's schemas, replication status, no SUPER
            cur.execute(f"GRANT ALL PRIVILEGES ON `orders%`.* TO '{MASTER_USER}'@'%'")
            cur.execute(f"GRANT SLAVE MONITOR ON *.* TO '{MASTER_USER}'@'%'")

    def admin(self) -> pymysql.Connection:  # type: ignore[type-arg]
        """root over the unix socket (the server's own administrator, not the app's user)."""
        return pymysql.connect(unix_socket=self.socket, user="root", autocommit=True,
                               connect_timeout=2)

    def sql(self, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self.admin() as conn, conn.cursor() as cur:
            cur.execute(statement, params or None)
            return list(cur.fetchall())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
