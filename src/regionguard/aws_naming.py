"""Deterministic AWS resource names, shared by the CDK app and the boto3 providers.

Naming resources (rather than letting CloudFormation generate names) is what lets the failover
Lambda in one region address resources in the other without cross-region stack references, and
lets the IAM policy name exactly the resources the engine may touch.
"""

from __future__ import annotations

from dataclasses import dataclass

from regionguard.config import Topology


@dataclass(frozen=True, slots=True)
class AwsNames:
    app: str
    account: str
    domain: str
    hosted_zone_id: str = ""

    def db_instance(self, region: str) -> str:
        return f"{self.app}-db-{region}"

    def db_cluster(self, region: str) -> str:
        return f"{self.app}-aurora-{region}"

    def global_cluster(self) -> str:
        return f"{self.app}-global"

    def asg(self, region: str) -> str:
        return f"{self.app}-asg-{region}"

    def app_function(self, region: str) -> str:
        return f"{self.app}-app-{region}"

    def failover_function(self) -> str:
        return f"{self.app}-regionguard-failover"

    def health_function(self, region: str) -> str:
        return f"{self.app}-health-writer-{region}"

    def db_subnet_group(self, region: str) -> str:
        return f"{self.app}-db-{region}"

    def db_security_group(self, region: str) -> str:
        return f"{self.app}-db-{region}"

    def db_secret(self) -> str:
        """One name in every Region: the primary's secret and its replicas."""
        return f"{self.app}/regionguard/db"

    def db_secret_arn_pattern(self, region: str) -> str:
        """A secret's ARN ends in six random characters; its replica keeps them."""
        return self.arn("secretsmanager", region, f"secret:{self.db_secret()}-??????")

    def admin_secret(self) -> str:
        """The canary's credential (the app's admin token), in every site."""
        return f"{self.app}/regionguard/admin-token"

    def admin_secret_arn_pattern(self, region: str) -> str:
        return self.arn("secretsmanager", region, f"secret:{self.admin_secret()}-??????")

    def origin_secret(self) -> str:
        """The header value CloudFront adds to API requests (serverless): the app refuses API
        calls without it, so none bypasses the edge's web ACL."""
        return f"{self.app}/regionguard/origin-secret"

    def origin_secret_arn_pattern(self, region: str) -> str:
        return self.arn("secretsmanager", region, f"secret:{self.origin_secret()}-??????")

    def state_table(self) -> str:
        return f"{self.app}-regionguard-state"

    def sessions_table(self) -> str:
        """The app's own state (sessions, preferences): a DynamoDB global table with a replica
        in each app Region, written locally in every Region (MREC, last writer wins)."""
        return f"{self.app}-sessions"

    def alarm_topic(self) -> str:
        return f"{self.app}-regionguard-alarms"

    def notify_topic(self) -> str:
        return f"{self.app}-regionguard-events"

    def region_host(self, region: str) -> str:
        return f"{region}.{self.domain}"

    def guard_role(self, region: str) -> str:
        """The guard function's role in `region` (named: readiness simulates its policy)."""
        return f"{self.app}-regionguard-guard-{region}"

    def health_host(self) -> str:
        """The `/health-check` API's name (seed 004): latency-routed to every Region's API."""
        return f"health.{self.domain}"

    def static_bucket(self, region: str) -> str:
        return f"{self.app}-static-{self.account}-{region}"

    def backup_vault(self, region: str) -> str:
        return f"{self.app}-vault-{region}"

    def arn(self, service: str, region: str, resource: str) -> str:
        return f"arn:aws:{service}:{region}:{self.account}:{resource}"


def names_for(topology: Topology) -> AwsNames:
    assert topology.aws is not None
    first = next(iter(topology.regions.values()))
    assert first.aws is not None
    return AwsNames(topology.app.replace("_", "-"), first.aws.account, topology.aws.domain,
                    topology.aws.hosted_zone_id)


LEASE_RECORD_ATTRIBUTE = "until_s"  # the record's one attribute besides its key


def lease_record_key(region: str) -> str:
    """The arbiter item in which the apps of `region` (a topology Region's name) record, before
    each confirmation, when the write lease it grants may end at the latest. A failover waits
    for that instant rather than for a whole lease from its revoke; the app's IAM policy lets
    it write this one item and no other."""
    return f"lease#{region}"
