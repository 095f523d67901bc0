"""Every AWS API action the AWS providers call, with the resources it may touch: one registry.

The CDK app grants the guard Lambda (in each of the three sites) exactly these statements, and a
test parses the providers' source for boto3 calls and fails if any call is not covered here (or
any grant is never called), so the policy is derived from the code rather than written by hand.
No Route 53 action is here: the failover path never calls Route 53's control plane.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from regionguard.aws_naming import LEASE_RECORD_ATTRIBUTE, AwsNames, lease_record_key

Sites = tuple[str, str, str]  # (primary, standby, witness) AWS Regions


@dataclass(frozen=True, slots=True)
class Grant:
    actions: tuple[str, ...]
    resources: Callable[[AwsNames, Sites], list[str]]
    condition: dict[str, dict[str, str]] | None = None
    why_wildcard: str | None = None  # set when AWS allows no resource scoping
    # the deployment feature the grant serves (None: every deployment); a deployment without
    # it is not granted it, so no policy names a resource that does not exist
    needs: str | None = None


def features(database: str, compute: str, provisioned_concurrency: int) -> set[str]:
    """What a deployment has, in the terms of `Grant.needs`."""
    out = {database, compute}  # + "backup-restore" by the caller when nothing stands by
    if compute == "lambda" and provisioned_concurrency:
        out.add("provisioned-concurrency")
    return out


def grants_for(have: set[str]) -> tuple[Grant, ...]:
    return tuple(g for g in GRANTS if g.needs is None or g.needs in have)


def _db_instances(n: AwsNames, sites: Sites) -> list[str]:
    return [n.arn("rds", r, f"db:{n.db_instance(r)}") for r in sites[:2]]


def _aurora(n: AwsNames, sites: Sites) -> list[str]:
    return [f"arn:aws:rds::{n.account}:global-cluster:{n.global_cluster()}",
            *(n.arn("rds", r, f"cluster:{n.db_cluster(r)}") for r in sites[:2])]


def _asgs(n: AwsNames, sites: Sites) -> list[str]:
    return [n.arn("autoscaling", r, f"autoScalingGroup:*:autoScalingGroupName/{n.asg(r)}")
            for r in sites[:2]]


def _arbiter(n: AwsNames, sites: Sites) -> list[str]:
    """The arbiter's replicas (the app regions; the witness has none to call)."""
    return [n.arn("dynamodb", r, f"table/{n.state_table()}") for r in sites[:2]]


def _sessions_tables(n: AwsNames, sites: Sites) -> list[str]:
    """The app's sessions table, each app Region's replica."""
    return [n.arn("dynamodb", r, f"table/{n.sessions_table()}") for r in sites[:2]]


def _topics(n: AwsNames, sites: Sites) -> list[str]:
    return [n.arn("sns", r, n.notify_topic()) for r in sites]


def _admin_secret(n: AwsNames, sites: Sites) -> list[str]:
    """The canary's credential, read in the guard's own site (its replica there)."""
    return [n.admin_secret_arn_pattern(r) for r in sites]


def _app_functions(n: AwsNames, sites: Sites) -> list[str]:
    return [n.arn("lambda", r, f"function:{n.app_function(r)}:live") for r in sites[:2]]


def _restore(n: AwsNames, sites: Sites) -> list[str]:
    backup = sites[1]
    return [n.arn("rds", backup, f"db:{n.db_instance(backup)}"),
            n.arn("rds", backup, "snapshot:*"),
            n.arn("rds", backup, f"subgrp:{n.db_subnet_group(backup)}")]


def _app_function_names(n: AwsNames, sites: Sites) -> list[str]:
    return [n.arn("lambda", r, f"function:{n.app_function(r)}") for r in sites[:2]]


def _guard_roles(n: AwsNames, sites: Sites) -> list[str]:
    """The guard functions' own roles (named, one per site)."""
    return [f"arn:aws:iam::{n.account}:role/{n.guard_role(r)}" for r in sites]


def _any(n: AwsNames, sites: Sites) -> list[str]:
    return ["*"]


GRANTS: tuple[Grant, ...] = (
    Grant(("rds:DescribeDBInstances", "rds:PromoteReadReplica", "rds:RebootDBInstance"),
          _db_instances, needs="rds"),
    Grant(("rds:DescribeGlobalClusters", "rds:DescribeDBClusters",
           "rds:FailoverGlobalCluster", "rds:SwitchoverGlobalCluster"), _aurora,
          needs="aurora-global"),
    # backup & restore: find the newest copy and restore it, in the backup Region only
    Grant(("rds:DescribeDBSnapshots", "rds:RestoreDBInstanceFromDBSnapshot"), _restore,
          why_wildcard="snapshot copies have generated names (AWS Backup's copy jobs)",
          needs="backup-restore"),
    Grant(("ec2:DescribeSecurityGroups",), _any, needs="backup-restore",
          why_wildcard="Describe* calls of EC2 support no resource scoping"),
    Grant(("autoscaling:UpdateAutoScalingGroup",), _asgs, needs="ec2"),
    Grant(("autoscaling:DescribeAutoScalingGroups",
           "elasticloadbalancing:DescribeTargetHealth"), _any,
          why_wildcard="Describe* calls of Auto Scaling and ELB support no resource scoping",
          needs="ec2"),
    # the arbiter: epoch, plan lease and progress, reports, journal; also exactly what
    # Powertools idempotency needs on the same table
    Grant(("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
           "dynamodb:DeleteItem", "dynamodb:BatchGetItem", "dynamodb:Scan"), _arbiter),
    Grant(("sns:Publish",), _topics),
    Grant(("secretsmanager:GetSecretValue",), _admin_secret),
    Grant(("cloudwatch:GetMetricStatistics",), _any,
          why_wildcard="CloudWatch metric reads (replica lag) support no resource scoping"),
    # readiness (quiet scheduled runs, never the failover path): the standby's app function
    # exists, and the guard's own role may run every action above (IAM policy simulation)
    Grant(("lambda:GetFunction",), _app_function_names, needs="lambda"),
    # ... and both replicas of the app's sessions table are ACTIVE
    Grant(("dynamodb:DescribeTable",), _sessions_tables),
    Grant(("iam:SimulatePrincipalPolicy",), _guard_roles),
    Grant(("sts:GetCallerIdentity",), _any,
          why_wildcard="GetCallerIdentity has no resource (and needs no permission)"),
    Grant(("lambda:PutProvisionedConcurrencyConfig",
           "lambda:GetProvisionedConcurrencyConfig"), _app_functions,
          needs="provisioned-concurrency"),
)


# The app's own calls on its sessions table (app/sessions/dynamodb.py), on its own Region's
# replica only: a session is written and read where it is served, never in another Region.
APP_SESSION_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")


def app_session_resources(n: AwsNames, region: str) -> list[str]:
    return [n.arn("dynamodb", region, f"table/{n.sessions_table()}")]


# The app's own calls on the arbiter (app/lease.py), on either replica: it reads the `state`
# item, and records how long its lease may run in its Region's `lease#<region>` item, the one
# item it may write (an app that could write `state` could name its own Region the writer).
APP_LEASE_READ_ACTIONS = ("dynamodb:GetItem",)
APP_LEASE_RECORD_ACTIONS = ("dynamodb:UpdateItem",)


def app_lease_record_condition(region_name: str) -> dict[str, dict[str, list[str]]]:
    """DynamoDB's fine-grained access: only the item keyed `lease#<region_name>`, and only its
    key and its one attribute (Terraform's modules/compute writes the same condition; the
    drift test compares them, and a test checks the app's own request against this)."""
    return {"ForAllValues:StringEquals": {
        "dynamodb:LeadingKeys": [lease_record_key(region_name)],
        "dynamodb:Attributes": ["pk", LEASE_RECORD_ATTRIBUTE]}}


def all_actions() -> set[str]:
    return {a for g in GRANTS for a in g.actions}
