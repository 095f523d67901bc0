"""The topology file (`regionguard.toml`): pydantic models, loading and one-line errors.

The file holds *home* roles and policy; it is never rewritten. Live roles (after a failover)
live in the StateStore. Every validation failure becomes one `ConfigError` line naming the
file, the field path and what is expected, so `regionguard validate` never shows a traceback.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from regionguard.durations import parse_duration
from regionguard.errors import ConfigError

DEFAULT_CONFIG_FILE = Path("regionguard.toml")

RegionName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}$")]


class Role(StrEnum):
    PRIMARY = "primary"
    STANDBY = "standby"


class Strategy(StrEnum):
    BACKUP_RESTORE = "backup-restore"
    PILOT_LIGHT = "pilot-light"
    WARM_STANDBY = "warm-standby"
    ACTIVE_ACTIVE = "active-active"


class Replication(StrEnum):
    SYNC = "sync"
    ASYNC = "async"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthPolicy(_Strict):
    """How often regions are probed and how many probes make a verdict.

    The defaults are what make the RTO goal reachable: 3 failures x 0.25 s = 0.75 s to DOWN.
    """

    interval_s: float = Field(0.25, gt=0, le=60)
    timeout_s: float = Field(0.2, gt=0, le=60)
    failure_threshold: int = Field(3, ge=1, le=100)
    # accepted in older files, no longer read: the retired single controller's hysteresis
    # (a vantage point's report is fresh or stale, and a DOWN verdict needs a quorum anew)
    recovery_threshold: int = Field(5, ge=1, le=1000)
    quorum: int = Field(2, ge=1, le=2)
    # observations cross hosts and Regions, each stamped with its writer's wall clock: one
    # stamped further ahead of the reader's clock than this is rejected (and journaled), so a
    # fast clock cannot keep a stale "DOWN" fresh. NTP keeps real hosts within milliseconds.
    max_clock_skew_s: float = Field(2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> HealthPolicy:
        if self.timeout_s >= self.interval_s:
            raise ValueError(
                f"timeout_s ({self.timeout_s}) must be below interval_s ({self.interval_s}), "
                "so a slow probe never overlaps the next one"
            )
        return self


class FailoverPolicy(_Strict):
    mode: Literal["automatic", "manual"] = "automatic"
    sync_standby_lost: Literal["degrade", "block"] = "degrade"
    rto_target_s: float = Field(5.0, gt=0)
    rpo_target_s: float = Field(0.0, ge=0)
    webhook_url: str | None = Field(
        None, pattern=r"^http://(127\.\d+\.\d+\.\d+|localhost)(:\d+)?(/.*)?$"
    )
    # a person in the loop (as ARC's manual approval step): with "manual", an automatic plan
    # stops after the verdict and waits for `regionguard approve|reject PLAN_ID` up to
    # approval_timeout_s, then does approval_default
    approval: Literal["none", "manual"] = "none"
    approval_timeout_s: float = Field(300.0, gt=0, le=86_400)
    approval_default: Literal["reject", "approve"] = "reject"
    # anti-flap (as ARC's minimum delay between executions): a verdict within this long of
    # the last automatic plan's end is held back (journaled and alerted), not acted on
    min_interval_s: float = Field(0.0, ge=0, le=86_400)


class ReadinessPolicy(_Strict):
    """Readiness (as ARC's plan evaluation): the AWS guard evaluates every `interval_s`;
    `regionguard readiness` on demand, in every world."""

    interval_s: float = Field(60.0, ge=1, le=86_400)
    max_drill_age: float = Field(7 * 86_400, gt=0)  # seconds, or "7d", "12h", "30m"
    max_lag_bytes: int = Field(16 << 20, ge=0)  # beyond this the standby's lag is a warning
    min_free_disk_bytes: int = Field(1 << 30, ge=0)  # on the state dir's file system

    @field_validator("max_drill_age", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_duration(value)  # its ValueError: one line, the field named by pydantic
        return value


class LocalPlacement(_Strict):
    address: str = Field("127.0.0.1", pattern=r"^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$")


AWS_REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"


class AwsPlacement(_Strict):
    region: str = Field(pattern=AWS_REGION_PATTERN)
    account: str = Field(pattern=r"^\d{12}$")


IPV4_PATTERN = r"^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$"


class SitePorts(_Strict):
    """Where a self-managed site's pieces listen on its host (the agents' world: fixed, so every
    site knows every other's without asking). Slot n of the apps listens on `apps + n - 1`."""

    db: int = Field(5432, ge=1024, le=65535)
    front_door: int = Field(8080, ge=1024, le=65535)
    apps: int = Field(8100, ge=1024, le=65519)


class RegionSpec(_Strict):
    home_role: Role
    capacity: int = Field(2, ge=1, le=16)
    standby_capacity: int | None = Field(None, ge=0, le=16)
    local: LocalPlacement = LocalPlacement()
    aws: AwsPlacement | None = None
    # the site's host address (self-managed sites): its agent, PostgreSQL, front door and
    # etcd member listen there. Default: local.address (the loopback sandbox)
    host: str | None = Field(None, pattern=IPV4_PATTERN)
    ports: SitePorts = SitePorts()  # the agents' world only (arbiter.kind = "etcd")

    @property
    def site_host(self) -> str:
        return self.host or self.local.address


class WitnessSpec(_Strict):
    """The third site of the self-managed world: an etcd member and an agent that probes; no
    database, no apps. It breaks the tie when the two regions cannot reach each other."""

    name: RegionName = "witness"
    host: str = Field(pattern=IPV4_PATTERN)


class ArbiterSpec(_Strict):
    """Where the self-managed world keeps the epoch, the plan, the observations and the write
    lease. "file" (the default): nothing yet, `regionguard up` makes the sandbox's sites (with
    their own etcd) from the file; "etcd": an etcd v3 cluster
    of one member per site, the regions' and the witness's (issue 21)."""

    kind: Literal["file", "etcd"] = "file"
    # each site's member, by site name: its client URL, on the site's own host
    members: dict[RegionName, Annotated[str, StringConstraints(
        pattern=r"^https?://[0-9.]+:\d{1,5}$")]] = Field(default_factory=dict)
    # the primary holds the writer key on an etcd lease this long (etcd counts whole seconds)
    lease_ttl_s: int = Field(4, ge=2, le=60)
    renew_every_s: float | None = Field(None, gt=0, le=30)  # default: lease_ttl_s / 4
    request_timeout_s: float = Field(0.25, gt=0, le=10)  # one etcd call to one member (LAN)
    # the primary fences itself this long before its lease could end in etcd
    fence_margin_s: float = Field(1.0, gt=0, le=30)
    # every site's agent serves /metrics, /api/status and /health on its host at this port
    # (the part Patroni's REST API plays; read-only)
    agent_port: int = Field(8008, ge=1024, le=65535)
    # TLS to https:// members (each host's own files): the CA that signed the members'
    # certificates, and this host's client certificate and key when etcd asks for one
    # (--client-cert-auth); without ca_file the system's trust store is used
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _tls(self) -> ArbiterSpec:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("arbiter.cert_file and arbiter.key_file: give both (this host's "
                             "client certificate and its key) or neither")
        plain = [site for site, url in self.members.items() if url.startswith("http://")]
        if (self.ca_file or self.cert_file) and plain:
            raise ValueError(f"arbiter.members.{plain[0]}: {self.members[plain[0]]} is plain "
                             "http while TLS files are set; use https:// for every member")
        return self

    @property
    def renew_interval_s(self) -> float:
        return self.renew_every_s if self.renew_every_s is not None else self.lease_ttl_s / 4

    def shortest_ttl_s(self) -> float:
        """The TTL that leaves two renewals (each may try every member before it answers) to
        land before the self-fence at TTL less the margin."""
        worst_call = self.request_timeout_s * max(1, len(self.members))
        return self.renew_interval_s + 2 * worst_call + self.fence_margin_s


class SiteTlsSpec(_Strict):
    """TLS between self-managed sites: PostgreSQL (replication, probes, the apps' connections
    over the network) and etcd (client and peer traffic). Every site's certificate is signed by
    `ca_file`, names its site's host address (an IP SAN: clients verify it, `verify-full`)
    and serves as server and client. `{site}` in a path is the site's name, so one topology
    serves sites that share a file system (the lab); real hosts use one path, their own file.
    Over the network a database then accepts TLS only; loopback stays plain."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def files(self, site: str) -> tuple[Path, Path, Path]:
        """(CA, certificate, key) of `site`."""
        def of(path: Path) -> Path:
            return Path(str(path).replace("{site}", site))

        return of(self.ca_file), of(self.cert_file), of(self.key_file)


class AwsSettings(_Strict):
    """The AWS world. Detection, fencing and routing settings are sized for a real network:
    probes every few seconds from outside the primary, a write lease of tens of seconds, and
    Route 53 health checks every 10 or 30 s (the only intervals Route 53 offers)."""

    domain: str = Field(pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")
    hosted_zone_id: str = Field(pattern=r"^[A-Z0-9]{4,32}$")
    compute: Literal["ec2", "lambda"] = "ec2"
    database: Literal["rds", "aurora-global"] = "rds"
    # the RDS engine (seed 000 migrates a MySQL database to RDS MySQL); the local world's
    # sandbox is PostgreSQL whatever this says
    engine: Literal["postgres", "mysql"] = "postgres"
    rds_proxy: bool = False  # serverless + rds: Lambda connects through RDS Proxy
    routing: Literal["failover", "latency"] | None = None  # default: latency for active-active
    # The third site of the arbiter (a DynamoDB multi-Region strongly consistent table): a
    # witness in the same MRSC Region set as the two app regions. Default: the set's remaining
    # Region (us-east-2 for us-east-1 + us-west-2).
    witness_region: str | None = Field(None, pattern=AWS_REGION_PATTERN)
    probe_interval_s: float = Field(5.0, ge=1, le=60)  # each vantage point probes this often
    probe_timeout_s: float = Field(2.0, gt=0, le=30)
    lease_s: float = Field(30.0, ge=5, le=600)  # an app refuses writes it cannot confirm this long
    # A failover waits for the old Region's own last lease, which its apps record in the
    # arbiter before each confirmation (`lease#<region>`), when that ends before a whole lease
    # from the revoke. An app predating the record confirms without recording: turn this off
    # while any such app may run (an upgrade from before it), on again once all are replaced.
    lease_record: bool = True
    # how far an app host's wall clock may lag the guard's (the record is on the app's clock):
    # a failover waits this much longer than the record says. Our default; NTP and Amazon Time
    # Sync keep hosts within milliseconds, so it covers a host whose time source failed for a while
    lease_clock_skew_s: float = Field(2.0, ge=0, le=60)
    dns_check_interval_s: Literal[10, 30] = 10  # Route 53 RequestInterval
    dns_failure_threshold: int = Field(2, ge=1, le=10)  # Route 53 FailureThreshold
    # the hosted zone's own name, when `domain` is below its apex (example.com for
    # app.example.com); default: `domain` is the zone's apex
    hosted_zone_name: str | None = Field(None, pattern=r"^[a-z0-9.-]+\.[a-z]{2,}$")
    # `<domain>`'s failover (or latency) records: an alias (free queries; it answers with its
    # target's TTL, an ALB's 60 s, which a client may keep the old answer for after a
    # failover) or a CNAME to each region's entry point with its own TTL (Route 53 bills its
    # queries; not possible at a zone's apex)
    dns_record: Literal["alias", "cname"] = "alias"
    dns_ttl_s: int = Field(15, ge=1, le=86_400)  # the CNAME's TTL (unused by an alias)
    # RDS cross-Region read replicas and Aurora Global Database replicate asynchronously, so
    # the AWS world's replication is "async" whatever the sites' top-level `replication`
    # says, and an unplanned failover may lose what the standby had not received: at most
    # this many seconds of it (the replica's data age when its source was lost), or it is
    # refused without --force. Our default; Aurora Global Database's lag is typically under
    # a second (Aurora User Guide), an RDS replica's depends on the write load.
    replication: Literal["async"] = "async"
    rpo_target_s: float = Field(5.0, gt=0, le=86_400)
    # the sessions' global table replicates "typically within a second" (DynamoDB developer
    # guide): readiness warns when its ReplicationLatency averaged above this (our default)
    sessions_replication_warn_s: float = Field(5.0, gt=0, le=3_600)
    instance_type: str = "t3.small"
    # default per engine: db.t4g.medium for RDS, db.r6g.large for Aurora Global Database
    db_instance_class: str = Field("db.t4g.medium", pattern=r"^db\.[a-z0-9-]+\.[a-z0-9]+$")
    backup_retention_days: int = Field(7, ge=1, le=35)
    provisioned_concurrency: int = Field(0, ge=0, le=100)
    alarm_email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
    # the edge (seed 002): API Gateway stage throttling, CORS origins allowed to call the API
    # from a browser (none: no CORS), and AWS WAF's rate limit per client IP per 5 minutes
    api_rate_limit: float = Field(100.0, gt=0, le=10_000)  # requests per second, steady
    api_burst_limit: int = Field(200, ge=1, le=5_000)
    cors_origins: list[Annotated[str, StringConstraints(
        pattern=r"^(\*|https?://[a-z0-9.-]+(:[0-9]{1,5})?)$")]] = Field(default_factory=list)
    waf_rate_limit: int = Field(2000, ge=10, le=2_000_000_000)

    @model_validator(mode="before")
    @classmethod
    def _replication_is_async(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("replication") == "sync":
            raise ValueError(
                'replication: "sync" is not possible across AWS Regions (RDS read replicas and '
                'Aurora Global Database replicate asynchronously); remove it, and bound the '
                "loss with aws.rpo_target_s")
        return data

    @model_validator(mode="before")
    @classmethod
    def _default_db_class(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("db_instance_class"):
            aurora = data.get("database") == "aurora-global"
            data = {**data, "db_instance_class": "db.r6g.large" if aurora else "db.t4g.medium"}
        return data

    @model_validator(mode="after")
    def _dns_record_fits_the_zone(self) -> AwsSettings:
        zone = self.hosted_zone_name or self.domain
        if zone != self.domain and not self.domain.endswith(f".{zone}"):
            raise ValueError(f"hosted_zone_name: {zone} is not a parent of aws.domain "
                             f"{self.domain}; name the zone the domain's record lives in")
        if self.dns_record == "cname" and zone == self.domain:
            raise ValueError(
                f"dns_record: a CNAME cannot sit at a zone's apex, and {self.domain} is the "
                "zone's own name; set aws.hosted_zone_name to its parent zone (e.g. "
                f"{self.domain.split('.', 1)[1]}), or use dns_record = \"alias\"")
        return self

    @model_validator(mode="after")
    def _db_class_for_engine(self) -> AwsSettings:
        """Aurora Global Database runs only on memory-optimized classes (db.r*, db.x2g): AWS
        refuses a burstable one when the secondary cluster is created, an hour into a deploy
        (Aurora User Guide, "Configuration requirements of an Amazon Aurora global
        database")."""
        aurora = self.database == "aurora-global"
        if aurora and self.engine == "mysql":
            raise ValueError("engine \"mysql\" runs on RDS MySQL with a cross-region read "
                             "replica: set database = \"rds\" (Aurora Global is built for "
                             "PostgreSQL only)")
        family = self.db_instance_class.split(".")[1]
        if aurora and not family.startswith(("r", "x")):
            raise ValueError(
                f"db_instance_class {self.db_instance_class} cannot run Aurora Global Database, "
                "which needs a memory-optimized class: use db.r6g.large (or another db.r*/"
                "db.x2g class), or database = \"rds\"")
        return self


def _default_standby_capacity(strategy: Strategy, capacity: int) -> int:
    match strategy:
        case Strategy.ACTIVE_ACTIVE:
            return capacity
        case Strategy.WARM_STANDBY:
            return max(1, capacity // 2)
        case _:
            return 0


class Topology(_Strict):
    """One application's regions and failover policy."""

    app: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,40}$")]
    strategy: Strategy = Strategy.PILOT_LIGHT
    replication: Replication = Replication.SYNC
    state_dir: Path = Path(".regionguard")
    health: HealthPolicy = HealthPolicy()
    failover: FailoverPolicy = FailoverPolicy()
    readiness: ReadinessPolicy = ReadinessPolicy()
    regions: dict[RegionName, RegionSpec]
    aws: AwsSettings | None = None
    arbiter: ArbiterSpec = ArbiterSpec()
    witness: WitnessSpec | None = None
    tls: SiteTlsSpec | None = None  # between self-managed sites (arbiter.kind = "etcd")

    @model_validator(mode="before")
    @classmethod
    def _removed_keys(cls, data: object) -> object:
        aws = data.get("aws") if isinstance(data, dict) else None
        if isinstance(aws, dict) and "arbiter_region" in aws:
            raise ValueError(
                "aws.arbiter_region: removed: the arbiter is now a multi-Region strongly "
                "consistent table over both app regions and a witness, so no single region "
                "decides; delete the key (and set aws.witness_region if the default witness "
                "does not suit you)")
        return data

    @model_validator(mode="after")
    def _check_roles_and_capacity(self) -> Topology:
        if len(self.regions) != 2:
            raise ValueError(
                "regions: need exactly two regions (one primary, one standby), "
                f"found {len(self.regions)}"
            )
        primaries = [n for n, r in self.regions.items() if r.home_role is Role.PRIMARY]
        if len(primaries) != 1:
            raise ValueError(
                f"regions: exactly one region must have home_role = \"primary\", "
                f"found {len(primaries)} ({', '.join(primaries) or 'none'})"
            )
        if not any(r.home_role is Role.STANDBY for r in self.regions.values()):
            raise ValueError('regions: at least one region must have home_role = "standby"')
        for name, spec in self.regions.items():
            expected = _default_standby_capacity(self.strategy, spec.capacity)
            given = spec.standby_capacity
            if given is None:
                continue
            ok = {
                Strategy.PILOT_LIGHT: given == 0,
                Strategy.BACKUP_RESTORE: given == 0,
                Strategy.WARM_STANDBY: 0 < given < spec.capacity,
                Strategy.ACTIVE_ACTIVE: given == spec.capacity,
            }[self.strategy]
            if not ok:
                raise ValueError(
                    f"regions.{name}.standby_capacity: {given} does not fit strategy "
                    f"{self.strategy.value!r} (expected e.g. {expected}; pilot-light 0, "
                    "warm-standby between 1 and capacity-1, active-active = capacity)"
                )
        if self.aws is not None and self.aws.probe_timeout_s >= self.aws.probe_interval_s:
            raise ValueError(
                f"aws.probe_timeout_s: {self.aws.probe_timeout_s} must be below "
                f"aws.probe_interval_s ({self.aws.probe_interval_s})")
        self._check_sites()
        if self.replication is Replication.ASYNC and self.failover.rpo_target_s == 0:
            raise ValueError(
                "failover.rpo_target_s: 0 (no lost writes) needs replication = \"sync\"; "
                "set rpo_target_s > 0 for async replication"
            )
        return self

    def for_aws(self) -> Topology:
        """The topology as the AWS world runs it: replication between Regions is asynchronous
        (whatever the sites' `replication` says), with `aws.rpo_target_s` as its RPO target."""
        if self.aws is None:
            return self
        failover = self.failover.model_copy(update={"rpo_target_s": self.aws.rpo_target_s})
        return self.model_copy(update={"replication": Replication.ASYNC, "failover": failover})

    def _check_sites(self) -> None:
        """The self-managed sites and their etcd: each refusal says why in one line."""
        if self.witness is not None and self.witness.name in self.regions:
            raise ValueError(
                f"witness.name: {self.witness.name!r} is also a region; the witness must be a "
                "third site (it holds only an etcd member and a prober), e.g. name = \"witness\"")
        if self.arbiter.kind != "etcd":
            if self.tls is not None:
                raise ValueError('tls: TLS between sites needs the sites\' world: set '
                                 'arbiter.kind = "etcd" (`regionguard up` gives the sandbox '
                                 'its own) or remove [tls]')
            return
        if self.witness is None:
            raise ValueError(
                "witness: missing; an etcd arbiter needs a third site so that either region "
                "can fail over with the witness's vote: add [witness] with its host")
        members, sites = self.arbiter.members, self.sites
        if len(members) < 3:
            raise ValueError(
                f"arbiter.members: {len(members)} member(s); etcd needs a majority, so with "
                f"{len(members)} losing {'either' if len(members) == 2 else 'the'} member stops "
                "every write and no site can fail over: list 3, one per site "
                f"({', '.join(sites)})")
        if set(members) != set(sites):
            raise ValueError(
                f"arbiter.members: one member per site, named after it: expected "
                f"{', '.join(sites)}, got {', '.join(members)}")
        if self.tls is not None:
            plain = [name for name, url in members.items() if url.startswith("http://")]
            if plain:
                raise ValueError(
                    f"arbiter.members.{plain[0]}: {members[plain[0]]} is plain http while [tls] "
                    "is set; use https:// for every member (the sites' certificates serve etcd)")
        hosts = {name: self.site_host(name) for name in sites}
        for name in sites:
            member_host = members[name].split("://", 1)[1].rsplit(":", 1)[0]
            if member_host != hosts[name]:
                raise ValueError(
                    f"arbiter.members.{name}: {members[name]} is not on {name}'s host "
                    f"{hosts[name]}; each site's member runs on that site")
        seen: dict[str, str] = {}
        for name, host in hosts.items():
            if host in seen and not host.startswith("127."):
                field = "witness.host" if name == self.witness.name else f"regions.{name}.host"
                raise ValueError(
                    f"{field}: {host} is also {seen[host]}'s host; each site needs a host of its "
                    "own (only the loopback sandbox puts sites on one machine)")
            seen[host] = name
        for name, url in members.items():
            if url.rsplit(":", 1)[1] == str(self.arbiter.agent_port):
                raise ValueError(
                    f"arbiter.agent_port: {self.arbiter.agent_port} is also arbiter.members."
                    f"{name}'s port; choose another port for the agents' endpoint")
        for name, spec in self.regions.items():
            taken = {"db": spec.ports.db, "front_door": spec.ports.front_door}
            apps = range(spec.ports.apps, spec.ports.apps + spec.capacity)
            clash = next((k for k, v in taken.items() if v == self.arbiter.agent_port), None)
            if clash or self.arbiter.agent_port in apps:
                raise ValueError(
                    f"arbiter.agent_port: {self.arbiter.agent_port} is also "
                    f"regions.{name}.ports.{clash or 'apps'} on {name}'s host; choose another "
                    "port for the agents' endpoint")
        shortest = self.arbiter.shortest_ttl_s()
        if self.arbiter.lease_ttl_s < shortest:
            raise ValueError(
                f"arbiter.lease_ttl_s: {self.arbiter.lease_ttl_s} s cannot be honoured: a renewal "
                f"every {self.arbiter.renew_interval_s:g} s, two tries at "
                f"{self.arbiter.request_timeout_s:g} s per member x {len(members)} members and "
                f"the self-fence margin of {self.arbiter.fence_margin_s:g} s need "
                f"{shortest:.2f} s; raise lease_ttl_s or lower request_timeout_s / "
                "fence_margin_s")

    # -- derived views (the file stays the single source; these never change it) --

    @property
    def sites(self) -> tuple[str, ...]:
        """Every site: the regions, then the witness (if any)."""
        return (*self.regions, *((self.witness.name,) if self.witness else ()))

    def site_host(self, site: str) -> str:
        if self.witness is not None and site == self.witness.name:
            return self.witness.host
        return self.regions[site].site_host

    @property
    def home_primary(self) -> str:
        return next(n for n, r in self.regions.items() if r.home_role is Role.PRIMARY)

    def standby_capacity(self, region: str) -> int:
        spec = self.regions[region]
        if spec.standby_capacity is not None:
            return spec.standby_capacity
        return _default_standby_capacity(self.strategy, spec.capacity)

    def desired_processes(self, region: str, role: Role) -> int:
        """App processes a region runs in a role: full capacity as primary, reduced as standby."""
        if role is Role.PRIMARY:
            return self.regions[region].capacity
        return self.standby_capacity(region)

    def slots(self, region: str) -> int:
        """Front-door server slots a region needs: the most processes it can ever run."""
        return max(self.regions[region].capacity, self.standby_capacity(region))

    def other_region(self, region: str) -> str:
        return next(n for n in self.regions if n != region)


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _describe(error: dict[str, object]) -> str:
    raw_loc = error.get("loc", ())
    loc: tuple[int | str, ...] = (tuple(p if isinstance(p, int) else str(p) for p in raw_loc)
                                  if isinstance(raw_loc, list | tuple) else ())
    kind = error.get("type")
    msg = str(error.get("msg", "invalid"))
    if kind == "extra_forbidden":
        return f"{_field_path(loc)}: unknown key; remove it or check its spelling"
    if kind == "missing":
        return f"{_field_path(loc)}: required key is missing"
    msg = msg.removeprefix("Value error, ")
    if kind == "value_error" and not loc:
        return msg  # model validators name their own field path
    if kind == "value_error" and isinstance(error.get("input"), dict):
        return f"{_field_path(loc)}.{msg}"  # a section's validator names the key it checked
    return f"{_field_path(loc)}: {msg} (got {error.get('input')!r})"


def parse_topology(data: dict[str, object], source: str = "<config>") -> Topology:
    """Validate already-parsed TOML; raise one-line `ConfigError` naming source and field."""
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(_describe(e) for e in exc.errors())  # type: ignore[arg-type]
        raise ConfigError(f"{source}: {details}") from None


def load_topology(path: Path | str = DEFAULT_CONFIG_FILE) -> Topology:
    """Read and validate a topology file. Relative `state_dir` is resolved from the cwd."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found; pass -c FILE or copy regionguard.toml from the repo root"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_topology(data, str(path))
