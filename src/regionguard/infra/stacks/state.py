"""The arbiter: one DynamoDB global table with multi-Region strong consistency (MRSC), with
replicas in both app regions and a witness in a third Region of the same Region set.

Any two of the three sites decide: a conditional write or a strongly consistent read on either
replica succeeds while that replica reaches one more site, so the epoch, the plan lease and its
progress, the write lease and the vantage points' reports survive the loss of any one Region.
MRSC tables support neither TTL nor transactions, and the engine uses neither.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from regionguard.infra.view import AwsView


class StateStack(Stack):
    def __init__(self, scope: Construct, id: str, *, view: AwsView, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.table = dynamodb.TableV2(
            self, "State", table_name=view.names.state_table(),
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            deletion_protection=True,
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            multi_region_consistency=dynamodb.MultiRegionConsistency.STRONG,
            replicas=[dynamodb.ReplicaTableProps(region=view.standby.aws_region)],
            witness_region=view.witness_region,
            removal_policy=RemovalPolicy.RETAIN,
        )
