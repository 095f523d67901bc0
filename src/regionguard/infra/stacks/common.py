"""Small shared pieces: the Lambda code asset, a CMK, encrypted log groups, an SSL-only bucket."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from regionguard.aws_naming import AwsNames
from regionguard.infra.artifacts import lambda_code_path
from regionguard.infra.stacks.nag import justify

LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_13  # `make lambda-bundle` builds wheels for it
# cdk-nag's AwsSolutions-L1 wants the newest runtime; each function says why it runs this one
RUNTIME_NAG = {"AwsSolutions-L1": "python3.13, not the newest: the one Lambda bundle also "
               "deploys through the Terraform modules, whose AWS provider 5.x (the version "
               "validated offline) accepts runtimes up to python3.13"}


def lambda_code(scope: Construct) -> lambda_.Code:
    """The Lambda bundle `make lambda-bundle` builds (infra/artifacts.py); the source tree
    only in a review synth."""
    return lambda_.Code.from_asset(str(lambda_code_path(scope)),
                                   exclude=["**/__pycache__", "*.egg-info"])


def cmk(scope: Construct, id: str, purpose: str) -> kms.Key:
    return kms.Key(scope, id, description=f"regionguard: {purpose}", enable_key_rotation=True,
                   removal_policy=RemovalPolicy.RETAIN)


def sessions_key_alias(names: AwsNames) -> str:
    """The alias of each app Region's key of the sessions table: one name in both Regions, so
    the stack that creates the global table (in the primary's Region) names the standby's key
    without a cross-region reference (the Terraform module gives its keys the same alias)."""
    return f"alias/{names.sessions_table()}"


def log_group(scope: Construct, id: str, key: kms.IKey | None = None,
              name: str | None = None) -> logs.LogGroup:
    return logs.LogGroup(scope, id, log_group_name=name, retention=logs.RetentionDays.ONE_MONTH,
                         encryption_key=key, removal_policy=RemovalPolicy.DESTROY)


def allow_logs_to_use(key: kms.Key, region: str) -> None:
    key.add_to_resource_policy(iam.PolicyStatement(
        actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                 "kms:Describe*"],
        principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
        resources=["*"],
    ))


def secure_bucket(scope: Construct, id: str, *, name: str | None = None,
                  versioned: bool = False, access_logs: s3.IBucket | None = None,
                  for_logs: bool = False) -> s3.Bucket:
    bucket = s3.Bucket(
        scope, id, bucket_name=name, versioned=versioned, enforce_ssl=True,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=(s3.ObjectOwnership.OBJECT_WRITER if for_logs
                          else s3.ObjectOwnership.BUCKET_OWNER_ENFORCED),
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{id.lower()}/" if access_logs else None,
        removal_policy=RemovalPolicy.RETAIN,
        lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))] if for_logs else None,
    )
    if for_logs:
        justify(bucket, {"AwsSolutions-S1": "this is the access-log bucket itself; logging it "
                         "into itself would loop"})
    return bucket


def lambda_role(scope: Construct, id: str, vpc: bool, role_name: str | None = None) -> iam.Role:
    managed = ("service-role/AWSLambdaVPCAccessExecutionRole" if vpc
               else "service-role/AWSLambdaBasicExecutionRole")
    role = iam.Role(scope, id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                    role_name=role_name,
                    managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(managed)])
    justify(role, {"AwsSolutions-IAM4": f"AWS managed {managed.split('/')[-1]}: only log "
                   "streams (and VPC ENIs) of this function, maintained by AWS"})
    return role
