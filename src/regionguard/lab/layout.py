"""What the lab builds, derived from the user's topology: its sites, namespaces, addresses and
the topology the lab's agents run with (the user's policy, the lab's hosts and etcd).

Sites: each region of the topology, the witness, and a client site that holds the edge (the
part DNS failover records or a VIP play on real hosts) and from where the tests' load comes.
Addresses are 10.77.0.0/24, which exists only inside the lab's namespaces; a loopback lab (any
user, no namespaces) puts the same sites on 127.77.0.0/24 instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regionguard.config import Topology, parse_topology

PREFIX = "rglab"  # every namespace of the lab starts with this (leftovers are found by it)
SWITCH = f"{PREFIX}-switch"
BRIDGE = "rgbr0"
SUBNET = "10.77.0"
LOOPBACK_SUBNET = "127.77.0"
NETMASK = 24
WITNESS = "witness"
CLIENT = "client"
EDGE_PORT = 8080
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380


@dataclass(frozen=True)
class LabSite:
    name: str
    kind: str  # "region", "witness" or "client"
    address: str

    @property
    def namespace(self) -> str:
        return f"{PREFIX}-{self.name}"

    @property
    def switch_port(self) -> str:
        return f"p-{self.name}"[:15]  # an interface name has at most 15 characters


@dataclass(frozen=True)
class LabLayout:
    """One lab: its directory, the user's topology and the sites built from it."""

    root: Path
    regions: tuple[str, ...]
    loopback: bool = False  # the sites side by side on loopback, not in namespaces
    app_slots: int = 1  # the most app processes a region runs (each on a port of its own)
    agent_port: int = 8008  # every site's agent endpoint (the topology's arbiter.agent_port)

    @classmethod
    def of(cls, root: Path, topology: Topology, loopback: bool = False) -> LabLayout:
        slots = max((r.capacity for r in topology.regions.values()), default=1)
        return cls(root.absolute(), tuple(topology.regions), loopback, slots,
                   topology.arbiter.agent_port)

    @classmethod
    def of_lab(cls, root: Path, topology: Topology) -> LabLayout:
        """The layout of a lab that exists (its topology written by `lab up`): a loopback lab
        is known by its sites' addresses."""
        loopback = topology.witness is not None and topology.witness.host.startswith(
            LOOPBACK_SUBNET + ".")
        return cls.of(root, topology, loopback)

    @property
    def subnet(self) -> str:
        return LOOPBACK_SUBNET if self.loopback else SUBNET

    @property
    def sites(self) -> tuple[LabSite, ...]:
        net = self.subnet
        found = [LabSite(r, "region", f"{net}.{11 + i}") for i, r in enumerate(self.regions)]
        found.append(LabSite(WITNESS, "witness", f"{net}.{11 + len(self.regions)}"))
        found.append(LabSite(CLIENT, "client", f"{net}.100"))
        return tuple(found)

    def listen_addresses(self) -> list[tuple[str, int]]:
        """Every (address, port) the lab's sites listen on (the topology's default ports)."""
        from regionguard.config import SitePorts

        ports = SitePorts()
        found = []
        for site in self.sites:
            if site.kind == "region":
                found += [(site.address, p) for p in (
                    ports.db, ports.front_door, *range(ports.apps, ports.apps + self.app_slots))]
            if site.kind != "client":
                found += [(site.address, ETCD_CLIENT_PORT), (site.address, ETCD_PEER_PORT),
                          (site.address, self.agent_port)]
            else:
                found.append((site.address, EDGE_PORT))
        return found

    def site(self, name: str) -> LabSite:
        for site in self.sites:
            if site.name == name:
                return site
        raise KeyError(name)

    @property
    def arbiter_sites(self) -> tuple[LabSite, ...]:
        return tuple(s for s in self.sites if s.kind != "client")

    @property
    def config(self) -> Path:
        return self.root / "regionguard.toml"

    @property
    def record(self) -> Path:
        return self.root / "lab.json"

    @property
    def edge_url(self) -> str:
        return f"http://{self.site(CLIENT).address}:{EDGE_PORT}"

    def site_dir(self, name: str) -> Path:
        return self.root / "sites" / name

    @property
    def tls_dir(self) -> Path:
        """The lab's CA and its sites' certificates (`lab/pki.py`)."""
        return self.root / "tls"

    def etcd_url(self, site: LabSite, port: int = ETCD_CLIENT_PORT) -> str:
        return f"https://{site.address}:{port}"  # client and peer traffic: TLS, as on hosts


def lab_topology(user: Topology, layout: LabLayout) -> Topology:
    """The user's application and policy, on the lab's hosts with etcd as the arbiter and TLS
    between the sites (each site's certificate by its name: `{site}`)."""
    data: dict[str, Any] = json.loads(user.model_dump_json(exclude_none=True))
    data.pop("aws", None)
    data["state_dir"] = str(layout.root / "state")
    for site in layout.sites:
        if site.kind == "region":
            region = data["regions"][site.name]
            region["host"] = site.address
            region.pop("ports", None)  # the defaults: each site has its own address
            region.pop("aws", None)
    witness = layout.site(WITNESS)
    data["witness"] = {"name": WITNESS, "host": witness.address}
    arbiter = {k: v for k, v in data.get("arbiter", {}).items()
               if k not in ("ca_file", "cert_file", "key_file")}  # the lab's own PKI instead
    arbiter.update(kind="etcd",
                   members={s.name: layout.etcd_url(s) for s in layout.arbiter_sites})
    data["arbiter"] = arbiter
    data["tls"] = {"ca_file": str(layout.tls_dir / "ca.pem"),  # lab/pki.py's names
                   "cert_file": str(layout.tls_dir / "{site}.pem"),
                   "key_file": str(layout.tls_dir / "{site}-key.pem")}
    return parse_topology(data, "the lab's topology")


def toml_text(topology: Topology) -> str:
    """The topology as a TOML file the agents read (`-c`): scalars, then one table each."""
    data = json.loads(topology.model_dump_json(exclude_none=True))
    lines = ["# written by `regionguard lab up`: the user's topology on the lab's sites", ""]
    _table(lines, [], data)
    return "\n".join(lines) + "\n"


def _table(lines: list[str], path: list[str], table: dict[str, Any]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if path and scalars:
        lines.append(f"[{'.'.join(path)}]")
    for key, value in scalars.items():
        lines.append(f"{key} = {json.dumps(value)}")
    if scalars:
        lines.append("")
    for key, value in tables.items():
        if value:
            _table(lines, [*path, key], value)


SAMPLE_TOPOLOGY = """# the lab's tests and benchmark: warm standby, 2 app processes (1 on standby)
app = "orders"
strategy = "warm-standby"
replication = "{replication}"
[health]
interval_s = 0.25
timeout_s = 0.2
failure_threshold = 3
quorum = 2
[failover]
mode = "automatic"
sync_standby_lost = "degrade"
rto_target_s = 10
rpo_target_s = {rpo}
[regions.east]
home_role = "primary"
capacity = 2
standby_capacity = 1
[regions.west]
home_role = "standby"
capacity = 2
standby_capacity = 1
[arbiter]
lease_ttl_s = 4
fence_margin_s = 1.0
"""


def sample_topology(replication: str = "sync") -> str:
    """A topology to run the lab with (its hosts and etcd come from the lab): sync, or async
    with an RPO target of 5 s."""
    return SAMPLE_TOPOLOGY.format(replication=replication,
                                  rpo=0 if replication == "sync" else 5)
