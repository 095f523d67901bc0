"""Per region: the database. RDS Multi-AZ (PostgreSQL, or MySQL for seed 000) in the primary
region with a cross-region read replica in the standby region, or an Aurora PostgreSQL Global
Database (primary + secondary cluster); each region's storage encrypted with a customer-managed
key of that region. Also the key of this region's replica of the app's sessions table (the
table itself is created once, from the primary's region, by the state stack)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from regionguard.config import Role
from regionguard.infra.stacks.common import cmk, sessions_key_alias
from regionguard.infra.stacks.nag import justify
from regionguard.infra.view import AwsRegion, AwsView

PG_VERSION = rds.PostgresEngineVersion.VER_16_9
MYSQL_VERSION = rds.MysqlEngineVersion.VER_8_4_6  # the 8.4 long-term support line
AURORA_VERSION = rds.AuroraPostgresEngineVersion.VER_16_9


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """What differs between the RDS engines: the port, the logs, and how TLS is enforced."""

    label: str
    engine: rds.IInstanceEngine
    port: int
    logs: tuple[str, ...]
    parameters: dict[str, str]


def engine_spec(name: str) -> EngineSpec:
    if name == "mysql":
        return EngineSpec("MySQL", rds.DatabaseInstanceEngine.mysql(version=MYSQL_VERSION), 3306,
                          ("error", "slowquery"), {"require_secure_transport": "1"})
    return EngineSpec("PostgreSQL", rds.DatabaseInstanceEngine.postgres(version=PG_VERSION),
                      5432, ("postgresql",), {"rds.force_ssl": "1", "wal_log_hints": "1"})


class DatabaseStack(Stack):
    """Exposes `key`, `sessions_key`, `security_group`, `secret` (primary), `endpoint_host`,
    `endpoint_port`."""

    def __init__(self, scope: Construct, id: str, *, view: AwsView, region: AwsRegion,
                 vpc: ec2.IVpc, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.view = view
        self.region_spec = region
        self.key = cmk(self, "DbKey", f"{view.names.app} database storage in {region.name}")
        # the app's data in this Region, the other half: its replica of the sessions table.
        # The state stack creates the global table from the primary's Region and names this
        # key by its alias (the same in both Regions), so it needs this stack deployed first
        # (deploy_order.py) but no value from it; the app's role here names the key itself
        self.sessions_key = cmk(self, "SessionsKey", f"{view.names.app} sessions table "
                                f"(its replica in {region.name})")
        kms.Alias(self, "SessionsKeyAlias", alias_name=sessions_key_alias(view.names),
                  target_key=self.sessions_key)
        self.spec = spec = engine_spec(view.settings.engine)
        # named: a restore (backup & restore) puts the new instance into them by name
        r = region.aws_region
        self.security_group = ec2.SecurityGroup(
            self, "DbSg", vpc=vpc, description=f"{spec.label} from inside the VPC only",
            allow_all_outbound=False, security_group_name=view.names.db_security_group(r))
        self.security_group.add_ingress_rule(ec2.Peer.ipv4(vpc.vpc_cidr_block),
                                             ec2.Port.tcp(spec.port), f"{spec.label} from the VPC")
        self.subnet_group = rds.SubnetGroup(
            self, "DbSubnets", vpc=vpc, description="isolated subnets",
            subnet_group_name=view.names.db_subnet_group(r),
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED))
        self.secret: sm.ISecret | None = None
        self.instance: rds.DatabaseInstance | None = None
        self.proxy: rds.DatabaseProxy | None = None
        primary = region.home_role is Role.PRIMARY
        if view.settings.database == "aurora-global":
            self._aurora(vpc, primary)
        elif primary:
            self._rds_primary(vpc)
        elif view.replica:
            self._rds_replica()
        else:  # backup & restore: nothing stands here until a restore; the app finds it
            self.endpoint_host = ""  # by its identifier (RG_DB_INSTANCE)
            self.endpoint_port = str(spec.port)
            self.restore_into = view.names.db_instance(r)

    def _secret(self) -> sm.Secret:
        secret = sm.Secret(
            self, "DbSecret", secret_name=self.view.names.db_secret(),
            encryption_key=self.key,
            generate_secret_string=sm.SecretStringGenerator(
                secret_string_template='{"username": "regionguard"}',
                generate_string_key="password", exclude_punctuation=True),
            replica_regions=[sm.ReplicaRegion(region=self.view.standby.aws_region)],
        )
        justify(secret, {"AwsSolutions-SMG4": "rotation is deliberately manual: a rotated "
                         "password must reach the cross-region replica and every app at once; "
                         "rotate with the runbook during a switchover window"})
        return secret

    def _rds_primary(self, vpc: ec2.IVpc) -> None:
        v = self.view
        secret = self._secret()
        self.secret = secret
        self.instance = rds.DatabaseInstance(
            self, "Primary",
            engine=self.spec.engine,
            instance_type=ec2.InstanceType(v.settings.db_instance_class.removeprefix("db.")),
            instance_identifier=v.names.db_instance(self.region_spec.aws_region),
            vpc=vpc, subnet_group=self.subnet_group, security_groups=[self.security_group],
            multi_az=True, storage_encrypted=True, storage_encryption_key=self.key,
            credentials=rds.Credentials.from_secret(secret),
            database_name=v.topology.app,
            backup_retention=Duration.days(v.settings.backup_retention_days),
            deletion_protection=True, iam_authentication=True,
            cloudwatch_logs_exports=list(self.spec.logs),
            parameter_group=rds.ParameterGroup(
                self, "Params", engine=self.spec.engine, parameters=self.spec.parameters),
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        port = self.spec.port
        justify(self.instance, {"AwsSolutions-RDS11": f"{port} is kept: only the VPC's own "
                                "security group reaches it; a non-default port adds no control"})
        self.endpoint_host = self.instance.db_instance_endpoint_address
        self.endpoint_port = self.instance.db_instance_endpoint_port
        if v.settings.rds_proxy:
            # the proxy's own group: clients from the VPC in, and out only to the database (the
            # database's group allows no egress, so sharing it would leave the proxy mute)
            label = self.spec.label
            proxy_sg = ec2.SecurityGroup(
                self, "ProxySg", vpc=vpc, allow_all_outbound=False,
                description=f"RDS Proxy: {label} from the VPC, to the database only")
            proxy_sg.add_ingress_rule(ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(port),
                                      f"{label} from the VPC")
            proxy_sg.add_egress_rule(self.security_group, ec2.Port.tcp(port),
                                     "to the database")
            # the app signs in with the secret's password (it has no IAM token path), over TLS
            self.proxy = rds.DatabaseProxy(
                self, "Proxy", proxy_target=rds.ProxyTarget.from_instance(self.instance),
                secrets=[secret], vpc=vpc, security_groups=[proxy_sg],
                require_tls=True, iam_auth=False,
                vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED))
            self.endpoint_host = self.proxy.endpoint
            self.endpoint_port = str(port)  # a proxy listens on the engine's default port

    def _rds_replica(self) -> None:
        v = self.view
        source = v.names.arn("rds", v.primary.aws_region,
                             f"db:{v.names.db_instance(v.primary.aws_region)}")
        # the primary's parameters here too: promoted, the replica is the primary, and must
        # refuse plain-text clients as its source did
        params = rds.ParameterGroup(self, "Params", engine=self.spec.engine,
                                    parameters=self.spec.parameters)
        replica = rds.CfnDBInstance(
            self, "Replica",
            db_parameter_group_name=params.bind_to_instance().parameter_group_name,
            db_instance_identifier=v.names.db_instance(self.region_spec.aws_region),
            source_db_instance_identifier=source,
            source_region=v.primary.aws_region,
            db_instance_class=v.settings.db_instance_class,
            kms_key_id=self.key.key_arn,  # the replica region's own CMK (encrypts it)
            db_subnet_group_name=self.subnet_group.subnet_group_name,
            vpc_security_groups=[self.security_group.security_group_id],
            publicly_accessible=False, multi_az=True, deletion_protection=True,
            enable_iam_database_authentication=True,
            enable_cloudwatch_logs_exports=list(self.spec.logs),
            auto_minor_version_upgrade=True,
            # backups on the replica before any promotion, where the engine allows it (MySQL:
            # the engine's supportsReadReplicaBackups): PromoteReadReplica then takes no
            # backup while it promotes, as AWS advises (API reference, PromoteReadReplica)
            backup_retention_period=(v.settings.backup_retention_days
                                     if self.spec.engine.supports_read_replica_backups
                                     else None),
        )
        replica.apply_removal_policy(RemovalPolicy.SNAPSHOT)
        reasons = {
            "AwsSolutions-RDS2": "encrypted: a replica of an encrypted source is encrypted with "
                                 "KmsKeyId (this region's CMK); CloudFormation rejects "
                                 "StorageEncrypted together with SourceDBInstanceIdentifier",
            "AwsSolutions-RDS11": f"{self.spec.port} is reached only from this VPC's "
                                  "security group",
        }
        if not self.spec.engine.supports_read_replica_backups:
            reasons["AwsSolutions-RDS13"] = (
                "RDS for PostgreSQL read replicas take no automated backups (RDS User Guide, "
                "Differences between read replicas for DB engines); the engine sets the "
                "retention on promotion")
        justify(replica, reasons)
        self.replica = replica
        self.endpoint_host = replica.attr_endpoint_address
        self.endpoint_port = replica.attr_endpoint_port

    def _aurora(self, vpc: ec2.IVpc, primary: bool) -> None:
        v = self.view
        engine = rds.DatabaseClusterEngine.aurora_postgres(version=AURORA_VERSION)
        ident = v.names.db_cluster(self.region_spec.aws_region)
        if primary:
            secret = self._secret()
            self.secret = secret
            cluster = rds.DatabaseCluster(
                self, "Cluster", engine=engine, cluster_identifier=ident,
                credentials=rds.Credentials.from_secret(secret),
                writer=rds.ClusterInstance.provisioned(
                    "Writer", instance_type=ec2.InstanceType(
                        v.settings.db_instance_class.removeprefix("db."))),
                readers=[rds.ClusterInstance.provisioned(
                    "Reader", instance_type=ec2.InstanceType(
                        v.settings.db_instance_class.removeprefix("db.")))],
                vpc=vpc, subnet_group=self.subnet_group, security_groups=[self.security_group],
                storage_encrypted=True, storage_encryption_key=self.key,
                default_database_name=v.topology.app,
                backup=rds.BackupProps(
                    retention=Duration.days(v.settings.backup_retention_days)),
                deletion_protection=True, iam_authentication=True,
                cloudwatch_logs_exports=["postgresql"],
                removal_policy=RemovalPolicy.SNAPSHOT,
            )
            justify(cluster, {"AwsSolutions-RDS11": "5432 is reached only from this VPC"})
            glob = rds.CfnGlobalCluster(
                self, "Global", global_cluster_identifier=v.names.global_cluster(),
                source_db_cluster_identifier=cluster.cluster_arn, deletion_protection=True)
            glob.add_dependency(cluster.node.default_child)  # type: ignore[arg-type]
            self.cluster = cluster
            self.endpoint_host = cluster.cluster_endpoint.hostname
            self.endpoint_port = Token.as_string(cluster.cluster_endpoint.port)
            return
        secondary = rds.CfnDBCluster(
            self, "Secondary", engine="aurora-postgresql",
            engine_version=AURORA_VERSION.aurora_postgres_full_version,
            db_cluster_identifier=ident, global_cluster_identifier=v.names.global_cluster(),
            kms_key_id=self.key.key_arn, storage_encrypted=True,
            db_subnet_group_name=self.subnet_group.subnet_group_name,
            vpc_security_group_ids=[self.security_group.security_group_id],
            deletion_protection=True, enable_iam_database_authentication=True,
            enable_cloudwatch_logs_exports=["postgresql"],
            backup_retention_period=v.settings.backup_retention_days,
        )
        secondary.apply_removal_policy(RemovalPolicy.SNAPSHOT)
        instance = rds.CfnDBInstance(
            self, "SecondaryInstance", db_cluster_identifier=ident, engine="aurora-postgresql",
            db_instance_class=v.settings.db_instance_class, publicly_accessible=False)
        instance.add_dependency(secondary)
        justify(secondary, {"AwsSolutions-RDS11": "5432 is reached only from this VPC"})
        self.cluster_cfn = secondary
        self.endpoint_host = secondary.attr_endpoint_address
        self.endpoint_port = secondary.attr_endpoint_port
