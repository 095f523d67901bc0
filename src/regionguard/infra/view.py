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
    def arbiter_region(self) -> str:
        return self.settings.arbiter_region or self.primary.aws_region

    @property
    def replica(self) -> bool:
        """Backup & restore keeps no standing replica: it restores from copied snapshots."""
        return self.topology.strategy is not Strategy.BACKUP_RESTORE


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
    if settings.routing == "latency" and topology.strategy is not Strategy.ACTIVE_ACTIVE:
        raise ConfigError(f"{source}: aws.routing: latency routing sends traffic to both "
                          "regions; it needs strategy = \"active-active\" (use failover)")
    if settings.arbiter_region and settings.arbiter_region not in seen:
        raise ConfigError(f"{source}: aws.arbiter_region: {settings.arbiter_region} is not one "
                          f"of the regions' AWS regions ({', '.join(seen)})")
    primary = next(r for r in regions if r.home_role is Role.PRIMARY)
    standby = next(r for r in regions if r.home_role is Role.STANDBY)
    return AwsView(topology, settings, primary, standby, names_for(topology))
