"""A real three-member etcd cluster on loopback (one 127.0.0.x address per site), for tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from regionguard.config import Role
from regionguard.providers.etcd.client import EtcdArbiter
from regionguard.providers.etcd.member import (
    MemberSpec,
    MemberTls,
    start_member,
    stop_member,
    wait_healthy,
)
from regionguard.providers.etcd.state import EtcdStateStore
from regionguard.providers.local.netutil import free_port

SITES = {"east": "127.0.0.21", "west": "127.0.0.22", "witness": "127.0.0.23"}
HOME_ROLES = {"east": Role.PRIMARY, "west": Role.STANDBY}


@dataclass
class EtcdCluster:
    root: Path
    specs: dict[str, MemberSpec]
    token: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def client_urls(self) -> dict[str, str]:
        return {site: spec.client_url for site, spec in self.specs.items()}

    def start(self, site: str) -> None:
        self.procs[site] = start_member(self.specs[site], self.root / site,
                                        list(self.specs.values()), self.token,
                                        self.root / f"{site}.log")

    def stop(self, site: str) -> None:
        stop_member(self.procs[site])

    def arbiter(self, nearest: str, timeout_s: float = 0.5) -> EtcdArbiter:
        return EtcdArbiter(self.client_urls, timeout_s=timeout_s, nearest=nearest)

    def store(self, site: str, app: str = "orders", timeout_s: float = 0.5,
              plan_lock_ttl_s: int = 3) -> EtcdStateStore:
        return EtcdStateStore(self.arbiter(site, timeout_s), app=app, home_roles=HOME_ROLES,
                              sites=tuple(SITES), plan_lock_ttl_s=plan_lock_ttl_s)


@contextlib.contextmanager
def etcd_cluster(root: Path, tls: MemberTls | None = None,
                 client_tls: tuple[str, str, str] | None = None) -> Iterator[EtcdCluster]:
    """Three members, healthy, stopped (every process) on the way out. With `tls`, clients
    reach them over https only, with a certificate (`client_tls`: CA, cert, key)."""
    scheme = "https" if tls is not None else "http"
    specs = {site: MemberSpec(site, f"{scheme}://{addr}:{free_port(addr)}",
                              f"http://{addr}:{free_port(addr)}", tls)
             for site, addr in SITES.items()}
    cluster = EtcdCluster(root, specs, f"rg-test-{uuid.uuid4().hex[:8]}")
    try:
        for site in specs:
            cluster.start(site)
        wait_healthy(list(cluster.client_urls.values()), timeout_s=20, tls=client_tls)
        yield cluster
    finally:
        for proc in cluster.procs.values():
            stop_member(proc)


class CuttableProxy:
    """A TCP relay to one etcd member that a test can cut like a partition: once cut, nothing
    more is relayed either way and new connections are accepted but never answered, so the
    client sees timeouts (not refusals, which a real partition does not give)."""

    def __init__(self, target_url: str) -> None:
        host, port = target_url.split("://", 1)[1].rsplit(":", 1)
        self.target = (host, int(port))
        self.cut_off = threading.Event()
        self.closed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self.cut_off.set()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        for sock in self._held:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self._held.append(client)
            if self.cut_off.is_set():
                continue  # accepted, never answered
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            self._held.append(upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while not self.closed.is_set():
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            if self.cut_off.is_set():
                continue  # dropped on the floor, as a partition drops it
            try:
                dst.sendall(data)
            except OSError:
                return
