"""Per region: a VPC with public (ALB), private (app, Lambda) and isolated (database) subnets."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from regionguard.infra.view import AwsRegion, AwsView


class NetworkStack(Stack):
    def __init__(self, scope: Construct, id: str, *, view: AwsView, region: AwsRegion,
                 cidr: str, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        r = region.aws_region
        self.vpc = ec2.Vpc(
            self, "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            availability_zones=[f"{r}a", f"{r}b"],  # explicit: no context lookup in synth
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC,
                                        cidr_mask=24),
                ec2.SubnetConfiguration(name="private",
                                        subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                                        cidr_mask=22),
                ec2.SubnetConfiguration(name="isolated",
                                        subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                                        cidr_mask=24),
            ],
            flow_logs={"all": ec2.FlowLogOptions(
                destination=ec2.FlowLogDestination.to_cloud_watch_logs())},
        )
