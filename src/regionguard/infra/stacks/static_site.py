"""Per region: the static-content bucket. The primary's bucket replicates every object to the
standby's (S3 cross-region replication); CloudFront (edge stack) reads them through OAC."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from regionguard.config import Role
from regionguard.infra.stacks.common import secure_bucket
from regionguard.infra.stacks.nag import justify
from regionguard.infra.view import AwsRegion, AwsView


class StaticSiteStack(Stack):
    def __init__(self, scope: Construct, id: str, *, view: AwsView, region: AwsRegion,
                 **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        n = view.names
        logs = secure_bucket(self, "AccessLogs", for_logs=True)
        self.bucket = secure_bucket(self, "Static", name=n.static_bucket(region.aws_region),
                                    versioned=True, access_logs=logs)
        self.bucket.add_to_resource_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects("*")],
            principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
            conditions={"StringLike": {
                "AWS:SourceArn": f"arn:aws:cloudfront::{n.account}:distribution/*"}}))
        if region.home_role is not Role.PRIMARY:
            return
        dest = f"arn:aws:s3:::{n.static_bucket(view.standby.aws_region)}"
        role = iam.Role(self, "ReplicationRole",
                        assumed_by=iam.ServicePrincipal("s3.amazonaws.com"))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetReplicationConfiguration", "s3:ListBucket"],
            resources=[self.bucket.bucket_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl",
                     "s3:GetObjectVersionTagging"],
            resources=[self.bucket.arn_for_objects("*")]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
            resources=[f"{dest}/*"]))
        justify(role, {"AwsSolutions-IAM5": "object-level replication actions apply to every "
                       "object (/*) of exactly the source and destination buckets"})
        cfn = self.bucket.node.default_child
        cfn.replication_configuration = s3.CfnBucket.ReplicationConfigurationProperty(  # type: ignore[union-attr]
            role=role.role_arn,
            rules=[s3.CfnBucket.ReplicationRuleProperty(
                id="to-standby", status="Enabled", priority=1,
                filter=s3.CfnBucket.ReplicationRuleFilterProperty(prefix=""),
                delete_marker_replication=s3.CfnBucket.DeleteMarkerReplicationProperty(
                    status="Enabled"),
                destination=s3.CfnBucket.ReplicationDestinationProperty(bucket=dest))])
