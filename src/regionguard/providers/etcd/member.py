"""One etcd member as a process this host starts and stops: the loopback sandbox's and the
lab's arbiter members, and the tests' clusters. On real hosts systemd runs etcd instead
(docs/sites.md, "Deploy on your own hosts").

Debian's `etcd-server` 3.4. Pre-vote is turned on: a member cut off by a partition then does
not disrupt the majority's leader with a higher term when it rejoins (etcd 3.4 ships it off;
a peer saw Patroni's new primary step down for 2-2.5 s on exactly that heal).
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from regionguard.errors import NotAvailable, ProviderError

INSTALL_HINT = "install it with `apt-get install etcd-server` (or run `make setup`, which does)"


def etcd_binary() -> str:
    found = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if found is None:
        raise NotAvailable(f"etcd not found; {INSTALL_HINT}")
    return found


@dataclass(frozen=True, slots=True)
class MemberTls:
    """The member's TLS: its certificate and key, and the CA whose client certificates it
    accepts (then only those: `--client-cert-auth`). `peers`: the members talk to each other
    over TLS too, with the same certificate both ways (the sites' certificates serve as
    server and client), each peer's checked against the CA."""

    cert_file: str
    key_file: str
    client_ca_file: str
    peers: bool = False


@dataclass(frozen=True, slots=True)
class MemberSpec:
    """Where one member listens: `client_url` for regionguard, `peer_url` for the others."""

    name: str
    client_url: str
    peer_url: str
    tls: MemberTls | None = None


def initial_cluster(members: list[MemberSpec]) -> str:
    return ",".join(f"{m.name}={m.peer_url}" for m in members)


def member_command(spec: MemberSpec, data_dir: Path, cluster: list[MemberSpec],
                   token: str) -> list[str]:
    return [etcd_binary(), "--name", spec.name, "--data-dir", str(data_dir),
            "--listen-client-urls", spec.client_url, "--advertise-client-urls", spec.client_url,
            "--listen-peer-urls", spec.peer_url, "--initial-advertise-peer-urls", spec.peer_url,
            "--initial-cluster", initial_cluster(cluster), "--initial-cluster-token", token,
            "--initial-cluster-state", "new", "--pre-vote",
            "--logger", "zap", "--log-level", "warn",
            *(_tls_flags(spec.tls) if spec.tls is not None else [])]


def _tls_flags(tls: MemberTls) -> list[str]:
    flags = ["--cert-file", tls.cert_file, "--key-file", tls.key_file,
             "--trusted-ca-file", tls.client_ca_file, "--client-cert-auth"]
    if tls.peers:
        flags += ["--peer-cert-file", tls.cert_file, "--peer-key-file", tls.key_file,
                  "--peer-trusted-ca-file", tls.client_ca_file, "--peer-client-cert-auth"]
    return flags


def start_member(spec: MemberSpec, data_dir: Path, cluster: list[MemberSpec], token: str,
                 log_path: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start one member in the background; its log goes to `log_path`. The environment is
    clean of ETCD_* variables (etcd reads its flags from them too) and of proxies."""
    data_dir.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in (env if env is not None else os.environ).items()
             if not k.startswith("ETCD") and "proxy" not in k.lower()}
    with open(log_path, "ab") as log:
        return subprocess.Popen(member_command(spec, data_dir, cluster, token), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=clean,
                                start_new_session=True)


def wait_healthy(client_urls: list[str], timeout_s: float,
                 tls: tuple[str, str, str] | None = None) -> None:
    """Poll each member's /health until all say so (a leader is elected); NotAvailable with
    the ones that did not at the deadline. `tls`: (CA, client certificate, key) files."""
    deadline = time.monotonic() + timeout_s
    pending = list(client_urls)
    verify: ssl.SSLContext | bool = True
    if tls is not None:
        verify = ssl.create_default_context(cafile=tls[0])
        verify.load_cert_chain(tls[1], tls[2])
    with httpx.Client(timeout=1.0, trust_env=False, verify=verify) as http:
        while pending:
            for url in list(pending):
                try:
                    if http.get(f"{url}/health").json().get("health") == "true":
                        pending.remove(url)
                except (httpx.HTTPError, ValueError):
                    pass
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise NotAvailable(f"etcd members not healthy within {timeout_s:g} s: "
                                   f"{', '.join(pending)}; see their logs")
            time.sleep(0.05)


def stop_member(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            raise ProviderError(f"etcd member pid {proc.pid} did not stop") from None
