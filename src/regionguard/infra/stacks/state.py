"""The arbiter: one DynamoDB global table with multi-Region strong consistency (MRSC), with
replicas in both app regions and a witness in a third Region of the same Region set.

Any two of the three sites decide: a conditional write or a strongly consistent read on either
replica succeeds while that replica reaches one more site, so the epoch, the plan lease and its
progress, the write lease and the vantage points' reports survive the loss of any one Region.
MRSC tables support neither TTL nor transactions, and the engine uses neither.

Also once per app, from the same Region: the app's sessions table (app/sessions), a second
global table with a replica in each app Region and nothing in the witness's. It is multi-Region
eventually consistent (MREC), not MRSC: each Region's app reads and writes its own replica,
DynamoDB replicates every write to the other within about a second and the last writer wins.
Nothing fails over for it: a session written before a Region's loss is already in the other
replica, or it is delivered when that Region's replica is healthy again (lost only with the
Region itself). Each replica is encrypted with its own Region's customer managed key, which
that Region's database stack creates (database.py); this stack names both by their alias (one
name in both Regions), never by a cross-region reference, and deploy_order.py deploys those
stacks first.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from regionguard.infra.stacks.common import cmk, sessions_key_alias
from regionguard.infra.stacks.nag import justify
from regionguard.infra.view import AwsView

EDGE_REGION = "us-east-1"  # CloudFront's configuration, and the edge stack, live there


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
        self.sessions = self._sessions_table(view)
        # the credential of the canary (`verify`): the apps check it, the guards present it;
        # replicated to every site so that no Region's loss takes it away
        # its CMK encrypts the primary's copy; each replica uses its own Region's Secrets
        # Manager key, so no Region's reader needs another Region's key
        self.admin_key = cmk(self, "AdminKey", "regionguard's credentials (the canary's token, "
                             "the edge's origin secret)")
        self.admin_secret = sm.Secret(
            self, "AdminToken", secret_name=view.names.admin_secret(),
            encryption_key=self.admin_key,
            generate_secret_string=sm.SecretStringGenerator(
                password_length=48, exclude_punctuation=True),
            replica_regions=[sm.ReplicaRegion(region=r) for r in view.sites
                             if r != view.primary.aws_region])
        justify(self.admin_secret, {"AwsSolutions-SMG4": "rotation would have to reach every "
                                    "app and guard at once; rotate it by hand (the apps read "
                                    "it at start) during a quiet window"})
        self.origin_secret: sm.Secret | None = None
        if view.serverless:
            # CloudFront's origin header (the edge stack resolves it in us-east-1, the apps in
            # their own Region): an API request without it did not pass the edge's web ACL
            self.origin_secret = sm.Secret(
                self, "OriginSecret", secret_name=view.names.origin_secret(),
                encryption_key=self.admin_key,
                generate_secret_string=sm.SecretStringGenerator(
                    password_length=48, exclude_punctuation=True),
                replica_regions=[sm.ReplicaRegion(region=r) for r in
                                 sorted({*view.sites, EDGE_REGION})
                                 if r != view.primary.aws_region])
            justify(self.origin_secret, {"AwsSolutions-SMG4": "rotation must reach CloudFront "
                                         "and every app together: redeploy the edge stack and "
                                         "restart the apps after rotating it by hand"})

    def _sessions_table(self, view: AwsView) -> dynamodb.TableV2:
        """The app's sessions: `id` (string) keys a session, `expires_at` (epoch seconds) is
        its TTL: DynamoDB deletes expired sessions in each Region in the background (the app
        filters them on read until then)."""
        n = view.names
        alias = sessions_key_alias(n)
        standby = view.standby.aws_region
        return dynamodb.TableV2(
            self, "Sessions", table_name=n.sessions_table(),
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            time_to_live_attribute="expires_at",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),  # on every replica
            deletion_protection=True,
            # each replica under its own Region's key; both named by alias (database.py)
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(
                kms.Alias.from_alias_name(self, "SessionsKey", alias),
                replica_key_arns={standby: n.arn("kms", standby, alias)}),
            # MREC (the default): writes never wait for the other Region, and a Region's app
            # keeps its sessions while the other Region is gone
            multi_region_consistency=dynamodb.MultiRegionConsistency.EVENTUAL,
            replicas=[dynamodb.ReplicaTableProps(region=standby)],
            removal_policy=RemovalPolicy.RETAIN,
        )
