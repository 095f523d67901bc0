"""TLS between sites for PostgreSQL: the server's settings, who must use it (`pg_hba.conf`),
and what a client asks for.

Over the network (another site's replication, probes, pg_basebackup, pg_rewind) a database
accepts TLS only, and every client verifies the server's certificate against the sites' CA and
its host address (`sslmode=verify-full`: a man in the middle with any other certificate is
refused). Loopback stays plain. The passwords stay scram-sha-256: TLS hides the traffic, the
password proves the client. Without TLS (the loopback sandbox, the tests' sites) the lines
are `host` and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CA, CERT, KEY = "ca.pem", "server.pem", "server-key.pem"


@dataclass(frozen=True, slots=True)
class PgTls:
    """Where the site's copies live (owned by the PostgreSQL user, which must read the key,
    0600, and which runs the WAL receiver and the tools that verify the others)."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / CA

    @property
    def cert_file(self) -> Path:
        return self.directory / CERT

    @property
    def key_file(self) -> Path:
        return self.directory / KEY

    def server_settings(self) -> dict[str, str]:
        return {"ssl": "on", "ssl_cert_file": f"'{self.cert_file}'",
                "ssl_key_file": f"'{self.key_file}'", "ssl_ca_file": f"'{self.ca_file}'",
                "ssl_min_protocol_version": "'TLSv1.2'"}

    def client_params(self) -> dict[str, str]:
        return {"sslmode": "verify-full", "sslrootcert": str(self.ca_file)}


def hba(tls: PgTls | None, peers: tuple[str, ...] = ()) -> str:
    """pg_hba.conf: loopback plain; the subnets this host is on, and every site's host of the
    topology (`peers`: sites in other data centres are on no subnet of this one), by TLS
    when the sites use it."""
    remote = "hostssl" if tls is not None else "host   "
    sources = ["samenet", *(f"{p}/32" for p in peers if not p.startswith("127."))]
    lines = "".join(f"{remote} {db:<12} all   {source:<17} scram-sha-256\n"
                    for source in dict.fromkeys(sources) for db in ("all", "replication"))
    return f"""# written by regionguard (regenerated on every start): over TCP, the sites' shared
# password (scram-sha-256), from loopback, from the subnets this host is directly on and from
# every site's host in the topology, over TLS only when the topology has [tls]; the unix
# socket lives in a 0700 directory of the PostgreSQL user and is trusted
local   all          all                     trust
host    all          all   127.0.0.0/8       scram-sha-256
host    replication  all   127.0.0.0/8       scram-sha-256
{lines}"""
