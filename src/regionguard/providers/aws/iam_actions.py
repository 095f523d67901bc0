"""Every AWS API action the AWS providers call, with the resources it may touch: one registry.

The CDK app grants the failover Lambda exactly these statements, and a test parses the
providers' source for boto3 calls and fails if any call is not covered here, so the policy is
derived from the code rather than written by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from regionguard.aws_naming import AwsNames


@dataclass(frozen=True, slots=True)
class Grant:
    actions: tuple[str, ...]
    resources: Callable[[AwsNames, str, str], list[str]]  # (names, primary, standby) -> ARNs
    condition: dict[str, dict[str, str]] | None = None
    why_wildcard: str | None = None  # set when AWS allows no resource scoping


def _db_instances(n: AwsNames, p: str, s: str) -> list[str]:
    return [n.arn("rds", r, f"db:{n.db_instance(r)}") for r in (p, s)]


def _aurora(n: AwsNames, p: str, s: str) -> list[str]:
    return [f"arn:aws:rds::{n.account}:global-cluster:{n.global_cluster()}",
            *(n.arn("rds", r, f"cluster:{n.db_cluster(r)}") for r in (p, s))]


def _asgs(n: AwsNames, p: str, s: str) -> list[str]:
    return [n.arn("autoscaling", r, f"autoScalingGroup:*:autoScalingGroupName/{n.asg(r)}")
            for r in (p, s)]


def _zone(n: AwsNames, p: str, s: str) -> list[str]:
    return [f"arn:aws:route53:::hostedzone/{n.hosted_zone_id}"]


def _table(n: AwsNames, p: str, s: str) -> list[str]:
    return [n.arn("dynamodb", r, f"table/{n.state_table()}") for r in (p, s)]


def _topic(n: AwsNames, p: str, s: str) -> list[str]:
    return [n.arn("sns", r, n.notify_topic()) for r in (p, s)]


def _app_functions(n: AwsNames, p: str, s: str) -> list[str]:
    return [n.arn("lambda", r, f"function:{n.app_function(r)}:live") for r in (p, s)]


def _any(n: AwsNames, p: str, s: str) -> list[str]:
    return ["*"]


GRANTS: tuple[Grant, ...] = (
    Grant(("rds:DescribeDBInstances", "rds:PromoteReadReplica", "rds:RebootDBInstance"),
          _db_instances),
    Grant(("rds:DescribeGlobalClusters", "rds:DescribeDBClusters",
           "rds:FailoverGlobalCluster", "rds:SwitchoverGlobalCluster"), _aurora),
    Grant(("autoscaling:UpdateAutoScalingGroup",), _asgs),
    Grant(("autoscaling:DescribeAutoScalingGroups",
           "elasticloadbalancing:DescribeTargetHealth"), _any,
          why_wildcard="Describe* calls of Auto Scaling and ELB support no resource scoping"),
    Grant(("route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"), _zone),
    Grant(("route53:GetChange",), lambda n, p, s: ["arn:aws:route53:::change/*"]),
    # also exactly what Powertools idempotency needs on the same table
    Grant(("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
           "dynamodb:DeleteItem"), _table),
    Grant(("sns:Publish",), _topic),
    Grant(("cloudwatch:PutMetricData",), _any,
          condition={"StringLike": {"cloudwatch:namespace": "RegionGuard*"}},
          why_wildcard="PutMetricData has no resource type; limited to RegionGuard namespaces"),
    Grant(("cloudwatch:GetMetricStatistics",), _any,
          why_wildcard="CloudWatch metric reads (replica lag) support no resource scoping"),
    Grant(("lambda:PutProvisionedConcurrencyConfig",
           "lambda:GetProvisionedConcurrencyConfig"), _app_functions),
)


def all_actions() -> set[str]:
    return {a for g in GRANTS for a in g.actions}
