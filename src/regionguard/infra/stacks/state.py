"""The engine's StateStore and the region-health rows: a DynamoDB global table (TableV2) in the
arbiter region with a replica in the other region. Compare-and-set writes go to the arbiter's
replica only (global tables replicate last-writer-wins)."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from regionguard.infra.view import AwsView


class StateStack(Stack):
    def __init__(self, scope: Construct, id: str, *, view: AwsView, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        others = [r.aws_region for r in view.regions if r.aws_region != view.arbiter_region]
        self.table = dynamodb.TableV2(
            self, "State", table_name=view.names.state_table(),
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            deletion_protection=True,
            time_to_live_attribute="expires_at",
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            replicas=[dynamodb.ReplicaTableProps(region=r) for r in others],
            removal_policy=RemovalPolicy.RETAIN,
        )
