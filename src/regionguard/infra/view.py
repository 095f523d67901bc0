"""The topology as the AWS world sees it, validated: one-line errors naming the field."""

from __future__ import annotations

from dataclasses import dataclass

from regionguard.aws_naming import AwsNames, names_for
from regionguard.config import AwsSettings, Role, Strategy, Topology
from regionguard.errors import ConfigError


@dataclass(frozen=True, slots=True)
class AwsRegion:
    name: str  # the topology's region name (east)
    aws_region: str  # us-east-1
    account: str
    home_role: Role
    capacity: int
    standby_capacity: int


@dataclass(frozen=True, slots=True)
class AwsView:
    topology: Topology
    settings: AwsSettings
    primary: AwsRegion
    standby: AwsRegion
    names: AwsNames

    @property
    def regions(self) -> tuple[AwsRegion, AwsRegion]:
        return (self.primary, self.standby)

    @property
    def serverless(self) -> bool:
        return self.settings.compute == "lambda"

    @property
    def routing(self) -> str:
        if self.settings.routing:
            return self.settings.routing
        return "latency" if self.topology.strategy is Strategy.ACTIVE_ACTIVE else "failover"

    @property
    def witness_region(self) -> str:
        """The arbiter's third site: it votes in the MRSC quorum and hosts a prober."""
        return self.settings.witness_region or default_witness(
            self.primary.aws_region, self.standby.aws_region) or ""

    @property
    def replica_regions(self) -> tuple[str, str]:
        """Where the arbiter table has readable, writable replicas: the two app regions."""
        return (self.primary.aws_region, self.standby.aws_region)

    @property
    def sites(self) -> tuple[str, str, str]:
        """The three Regions of the arbiter; any two of them decide."""
        return (*self.replica_regions, self.witness_region)

    @property
    def vantages(self) -> tuple[str, ...]:
        """Every prober that reports: one guard per site, and in each app region a second
        one (`second_prober`). Outside any one primary there are then three: the standby's
        two and the witness, so a quorum of two survives the loss of the witness's guard."""
        return (*self.sites, *(second_prober(r) for r in self.replica_regions))

    def desired_capacity(self, region: AwsRegion) -> int:
        """Instances a region runs as deployed (home roles): the backup region of pilot light
        and backup & restore runs none."""
        if region.home_role is Role.PRIMARY:
            return region.capacity
        if self.topology.strategy in (Strategy.PILOT_LIGHT, Strategy.BACKUP_RESTORE):
            return 0
        return region.standby_capacity

    def region_by_aws(self, aws_region: str) -> AwsRegion | None:
        return next((r for r in self.regions if r.aws_region == aws_region), None)

    @property
    def replica(self) -> bool:
        """Backup & restore keeps no standing replica: it restores from copied snapshots."""
        return self.topology.strategy is not Strategy.BACKUP_RESTORE


SECOND_PROBER = "b"  # the `prober` of the second scheduled guard run in an app region


def second_prober(aws_region: str) -> str:
    """The vantage name of an app region's second prober: `<region>/b`. It runs the same guard
    function on its own schedule and only reports (the first one acts); its Region is the
    part before the slash, so it never judges its own region."""
    return f"{aws_region}/{SECOND_PROBER}"


# DynamoDB multi-Region strong consistency: "MRSC global tables are available in the following
# Region sets ... MRSC global tables can't span Region sets" (DynamoDB developer guide, global
# table design best practices).
MRSC_REGION_SETS: tuple[frozenset[str], ...] = (
    frozenset({"us-east-1", "us-east-2", "us-west-2"}),
    frozenset({"eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"}),
    frozenset({"ap-northeast-1", "ap-northeast-2", "ap-northeast-3"}),
)


def mrsc_set(region: str) -> frozenset[str] | None:
    return next((s for s in MRSC_REGION_SETS if region in s), None)


def default_witness(a: str, b: str) -> str | None:
    """The first Region of a and b's MRSC set that is neither (us-east-2 for the US pair)."""
    region_set = mrsc_set(a)
    if region_set is None or b not in region_set:
        return None
    rest = sorted(region_set - {a, b})
    return rest[0] if rest else None


SUPPORTED_COMPUTE = {
    Strategy.BACKUP_RESTORE: {"ec2"},
    Strategy.PILOT_LIGHT: {"ec2"},
    Strategy.WARM_STANDBY: {"ec2", "lambda"},
    Strategy.ACTIVE_ACTIVE: {"lambda"},
}


def aws_view(topology: Topology, source: str = "topology") -> AwsView:
    """Validate the AWS parts of a topology; raise one-line ConfigError naming the field."""
    if topology.aws is None:
        raise ConfigError(f"{source}: aws: section missing; add [aws] with domain and "
                          "hosted_zone_id (see regionguard.toml)")
    settings = topology.aws
    seen: dict[str, str] = {}
    regions = []
    for name, spec in topology.regions.items():
        if spec.aws is None:
            raise ConfigError(f"{source}: regions.{name}.aws: required for the aws world; add "
                              'aws = { region = "us-east-1", account = "123456789012" }')
        if spec.aws.region in seen:
            raise ConfigError(
                f"{source}: regions.{name}.aws.region: {spec.aws.region} is already used by "
                f"region {seen[spec.aws.region]}; each region needs its own AWS region")
        seen[spec.aws.region] = name
        regions.append(AwsRegion(name, spec.aws.region, spec.aws.account, spec.home_role,
                                 spec.capacity, topology.standby_capacity(name)))
    allowed = SUPPORTED_COMPUTE[topology.strategy]
    if settings.compute not in allowed:
        raise ConfigError(
            f"{source}: aws.compute: {settings.compute!r} is not supported with strategy "
            f"{topology.strategy.value!r}; use {' or '.join(sorted(repr(a) for a in allowed))}")
    if settings.database == "aurora-global" and topology.strategy is Strategy.BACKUP_RESTORE:
        raise ConfigError(f"{source}: aws.database: backup-restore keeps no standing "
                          'secondary; use database = "rds"')
    if settings.rds_proxy and not (settings.compute == "lambda" and settings.database == "rds"):
        raise ConfigError(f"{source}: aws.rds_proxy: RDS Proxy is built for compute = "
                          '"lambda" with database = "rds"')
    if settings.cors_origins and settings.compute != "lambda":
        raise ConfigError(f"{source}: aws.cors_origins: CORS is answered by API Gateway, "
                          "which compute = \"ec2\" does not use; answer it in the app, or "
                          "remove cors_origins")
    if settings.routing == "latency" and topology.strategy is not Strategy.ACTIVE_ACTIVE:
        raise ConfigError(f"{source}: aws.routing: latency routing sends traffic to both "
                          "regions; it needs strategy = \"active-active\" (use failover)")
    primary = next(r for r in regions if r.home_role is Role.PRIMARY)
    standby = next(r for r in regions if r.home_role is Role.STANDBY)
    _check_arbiter_sites(settings, primary.aws_region, standby.aws_region, source)
    # replication across Regions is asynchronous: the AWS world plans with aws.rpo_target_s
    return AwsView(topology.for_aws(), settings, primary, standby, names_for(topology))


def _check_arbiter_sites(settings: AwsSettings, a: str, b: str, source: str) -> None:
    """Both app regions and the witness must form one MRSC Region set."""
    region_set = mrsc_set(a)
    sets = "; ".join(", ".join(sorted(s)) for s in MRSC_REGION_SETS)
    if region_set is None or b not in region_set:
        raise ConfigError(
            f"{source}: regions: {a} and {b} are not in one DynamoDB multi-Region strong "
            f"consistency Region set ({sets}); the arbiter needs both app regions in one set")
    witness = settings.witness_region
    if witness is None:
        if default_witness(a, b) is None:
            raise ConfigError(f"{source}: aws.witness_region: required: no third Region "
                              f"is left in the set of {a} and {b}")
        return
    if witness in (a, b):
        raise ConfigError(f"{source}: aws.witness_region: {witness} is an app region; the "
                          "witness must be a third Region so that any two sites decide")
    if witness not in region_set:
        raise ConfigError(
            f"{source}: aws.witness_region: {witness} is not in the Region set of {a} and {b} "
            f"({', '.join(sorted(region_set - {a, b}))}); MRSC tables cannot span Region sets")
