"""The lab's certificates: a CA of its own and one certificate per site, made with the
`openssl` command line, the way an operator makes them for real hosts (docs/sites.md,
"Deploy on your own hosts").

Each site's certificate names its address (an IP SAN, which `verify-full` and etcd's clients
check) and serves as server and client: etcd's client and peer traffic, and PostgreSQL's
replication and probes. ECDSA P-256 keys (fast handshakes), 0600, valid for 30 days: a lab
lives for hours. The CA's key never leaves the lab's directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from regionguard.errors import NotAvailable, ProviderError

DAYS = "30"
CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise NotAvailable("openssl not found (the lab makes its sites' certificates with it); "
                           "install it with `apt-get install openssl`")
    return found


def _run(*args: str) -> None:
    proc = subprocess.run([openssl(), *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise ProviderError(f"openssl {args[0]} failed: {proc.stderr.strip()[-300:]}")


def ca_file(directory: Path) -> Path:
    return directory / "ca.pem"


def site_files(directory: Path, site: str) -> tuple[Path, Path]:
    """(certificate, key) of `site`."""
    return directory / f"{site}.pem", directory / f"{site}-key.pem"


def make_site_pki(directory: Path, sites: Mapping[str, str], also: tuple[str, ...] = ()) -> None:
    """A CA and a certificate for each of `sites` (name -> address) in `directory`; `also`:
    addresses every certificate names besides its site's (on loopback, 127.0.0.1, the source
    address of every connection between sites, which etcd checks against a peer's
    certificate)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca, ca_key = ca_file(directory), directory / "ca-key.pem"
    old_umask = os.umask(0o077)  # every key 0600 from its first byte
    try:
        _run("req", "-x509", "-new", *CURVE, "-keyout", str(ca_key), "-out", str(ca),
             "-days", DAYS, "-subj", "/CN=regionguard lab CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        for name, address in sites.items():
            cert, key = site_files(directory, name)
            request = directory / f"{name}.csr"
            extensions = directory / f"{name}.ext"
            extensions.write_text(
                "subjectAltName = " + ", ".join(f"IP:{a}" for a in (address, *also)) + "\n"
                "basicConstraints = critical, CA:FALSE\n"
                "keyUsage = critical, digitalSignature, keyAgreement\n"
                "extendedKeyUsage = serverAuth, clientAuth\n")
            _run("req", "-new", *CURVE, "-keyout", str(key), "-out", str(request),
                 "-subj", f"/CN={name}")
            _run("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key),
                 "-CAcreateserial", "-out", str(cert), "-days", DAYS, "-sha256",
                 "-extfile", str(extensions))
            request.unlink()
            extensions.unlink()
    finally:
        os.umask(old_umask)
    ca.chmod(0o644)
