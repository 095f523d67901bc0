"""The estate the IaC would have deployed, built in moto from the topology and the shared names.

moto's CloudFormation cannot deploy the CDK templates, so the emulator creates the same
resources with the same names (`aws_naming`) the CDK app gives them: per app region a VPC, an
ALB with a target group and an Auto Scaling group (EC2), the database (RDS primary and its
cross-region read replica, or an Aurora global cluster), the regional record and its half of
the failover (or latency) record with a Route 53 health check of `/health/route`; once, the
arbiter table (MRSC across the app regions); per site, the notification topic. It talks to
moto directly: deployment happened before the drill, not through its failure domains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3

from regionguard.config import Role
from regionguard.emulated.models import MRSC_TAG
from regionguard.infra.view import AwsView

EMULATED_AMI = "ami-0123456789abcdef0"  # moto runs without its AMI catalogue (slow to load)


@dataclass
class Estate:
    view: AwsView
    zone_id: str
    health_checks: dict[str, str] = field(default_factory=dict)  # AWS region -> health check id
    albs: dict[str, str] = field(default_factory=dict)  # AWS region -> DNS name


class EstateBuilder:
    def __init__(self, moto_url: str, view: AwsView) -> None:
        self.url = moto_url
        self.view = view
        self.names = view.names
        self.session = boto3.session.Session(aws_access_key_id="emulated",
                                             aws_secret_access_key="emulated")

    def client(self, service: str, region: str) -> Any:
        return self.session.client(service, region_name=region, endpoint_url=self.url)

    def build(self) -> Estate:
        r53 = self.client("route53", "us-east-1")
        zone = r53.create_hosted_zone(Name=self.view.settings.hosted_zone_name
                                      or self.view.settings.domain,
                                      CallerReference=f"rg-{self.names.app}")
        estate = Estate(self.view, zone["HostedZone"]["Id"].split("/")[-1])
        for region in self.view.regions:
            self._region(estate, region.aws_region, region.name, region.home_role)
        self._database()
        self._arbiter()
        self._sessions()
        for site in self.view.sites:
            self.client("sns", site).create_topic(Name=self.names.notify_topic())
        return estate

    def _region(self, estate: Estate, r: str, name: str, role: Role) -> None:
        v = self.view
        ec2 = self.client("ec2", r)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                     AvailabilityZone=f"{r}{az}")["Subnet"]["SubnetId"]
                   for i, az in enumerate("ab")]
        target: dict[str, Any]
        if not v.serverless:
            elb = self.client("elbv2", r)
            lb = elb.create_load_balancer(Name=f"{self.names.app}-{name}",
                                          Subnets=subnets)["LoadBalancers"][0]
            estate.albs[r] = lb["DNSName"]
            tg = elb.create_target_group(
                Name=f"{self.names.app}-{name}-app", Protocol="HTTP", Port=8000, VpcId=vpc,
                HealthCheckPath="/health/deep")["TargetGroups"][0]["TargetGroupArn"]
            template = ec2.create_launch_template(
                LaunchTemplateName=f"{self.names.app}-{name}",
                LaunchTemplateData={"ImageId": EMULATED_AMI,
                                    "InstanceType": v.settings.instance_type}
            )["LaunchTemplate"]["LaunchTemplateId"]
            spec = v.region_by_aws(r)
            assert spec is not None
            desired = v.desired_capacity(spec)
            self.client("autoscaling", r).create_auto_scaling_group(
                AutoScalingGroupName=self.names.asg(r), MinSize=desired,
                MaxSize=max(desired, spec.capacity if desired else 0), DesiredCapacity=desired,
                LaunchTemplate={"LaunchTemplateId": template},
                VPCZoneIdentifier=",".join(subnets), TargetGroupARNs=[tg])
            target = {"AliasTarget": {"HostedZoneId": lb["CanonicalHostedZoneId"],
                                      "DNSName": lb["DNSName"], "EvaluateTargetHealth": True}}
        else:  # API Gateway's regional domain: an address record stands in for its alias
            target = {"TTL": 60, "ResourceRecords": [{"Value": "192.0.2.10"}]}
        r53 = self.client("route53", "us-east-1")
        host = self.names.region_host(r)
        path = "/health/deep" if v.routing == "latency" else "/health/route"
        check = r53.create_health_check(
            CallerReference=f"rg-{name}", HealthCheckConfig={
                "Type": "HTTPS", "FullyQualifiedDomainName": host, "ResourcePath": path,
                "Port": 443, "RequestInterval": v.settings.dns_check_interval_s,
                "FailureThreshold": v.settings.dns_failure_threshold})["HealthCheck"]["Id"]
        estate.health_checks[r] = check
        record: dict[str, Any] = {"Name": v.settings.domain, "Type": "A",
                                  "SetIdentifier": name, "HealthCheckId": check, **target}
        if v.settings.dns_record == "cname":  # type and TTL as the CDK app and Terraform
            # make it (their target is the entry point's own name; the resolver here answers
            # by set identifier, so the region's host stands in for it)
            record.update(Type="CNAME", TTL=v.settings.dns_ttl_s,
                          ResourceRecords=[{"Value": host}])
            record.pop("AliasTarget", None)
        if v.routing == "latency":
            record["Region"] = r
        else:
            record["Failover"] = "PRIMARY" if role is Role.PRIMARY else "SECONDARY"
        r53.change_resource_record_sets(HostedZoneId=estate.zone_id, ChangeBatch={"Changes": [
            {"Action": "CREATE", "ResourceRecordSet": {"Name": host, "Type": "A", **target}},
            {"Action": "CREATE", "ResourceRecordSet": record}]})

    def _database(self) -> None:
        v, n = self.view, self.names
        p, s = v.primary.aws_region, v.standby.aws_region
        if v.settings.database == "aurora-global":
            rds = self.client("rds", p)
            rds.create_global_cluster(GlobalClusterIdentifier=n.global_cluster(),
                                      Engine="aurora-postgresql", StorageEncrypted=True)
            for r in (p, s):
                self.client("rds", r).create_db_cluster(
                    DBClusterIdentifier=n.db_cluster(r), Engine="aurora-postgresql",
                    GlobalClusterIdentifier=n.global_cluster(), StorageEncrypted=True,
                    **({"MasterUsername": "regionguard", "MasterUserPassword": "emulated-1"}
                       if r == p else {}))
            return
        self.client("rds", p).create_db_instance(
            DBInstanceIdentifier=n.db_instance(p), Engine=v.settings.engine,
            DBInstanceClass=v.settings.db_instance_class, MasterUsername="regionguard",
            MasterUserPassword="emulated-1", AllocatedStorage=20, MultiAZ=True,
            StorageEncrypted=True)
        self.client("rds", s).create_db_instance_read_replica(
            DBInstanceIdentifier=n.db_instance(s),
            SourceDBInstanceIdentifier=n.arn("rds", p, f"db:{n.db_instance(p)}"),
            DBInstanceClass=v.settings.db_instance_class, SourceRegion=p)

    def _sessions(self) -> None:
        """The app's sessions table: one replica per app Region (moto's tables are per Region;
        emulated/global_tables.py replicates between them), TTL on `expires_at`."""
        for region in self.view.replica_regions:
            dynamodb = self.client("dynamodb", region)
            dynamodb.create_table(
                TableName=self.names.sessions_table(), BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
            dynamodb.update_time_to_live(
                TableName=self.names.sessions_table(),
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})

    def _arbiter(self) -> None:
        replicas = ",".join(self.view.replica_regions)
        self.client("dynamodb", self.view.primary.aws_region).create_table(
            TableName=self.names.state_table(), BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            Tags=[{"Key": MRSC_TAG, "Value": replicas}])
