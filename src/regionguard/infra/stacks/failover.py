"""The failover Lambda (the regionguard engine with AWS providers) in the backup region.

Its IAM policy is built from `providers/aws/iam_actions.GRANTS`, the same registry a test checks
against the providers' boto3 calls. One concurrent execution: one plan at a time, on top of the
state table's compare-and-set.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from regionguard.infra.stacks.common import LAMBDA_RUNTIME, cmk, lambda_code, lambda_role, log_group
from regionguard.infra.stacks.nag import justify
from regionguard.infra.view import AwsView
from regionguard.providers.aws.iam_actions import GRANTS


class FailoverStack(Stack):
    def __init__(self, scope: Construct, id: str, *, view: AwsView, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        n = view.names
        p, s = view.primary.aws_region, view.standby.aws_region
        role = lambda_role(self, "FailoverRole", vpc=False)
        wildcards = []
        for grant in GRANTS:
            resources = grant.resources(n, p, s)
            role.add_to_policy(iam.PolicyStatement(
                actions=list(grant.actions), resources=resources,
                conditions=grant.condition))  # type: ignore[arg-type]
            if grant.why_wildcard or any("*" in r for r in resources):
                wildcards.append(grant.why_wildcard or
                                 f"{', '.join(grant.actions)}: ARN pattern (ASG ids, changes)")
        justify(role, {"AwsSolutions-IAM5": "; ".join(wildcards)})
        key = cmk(self, "EventsKey", "regionguard failover notifications")
        self.events_topic = sns.Topic(self, "Events", topic_name=n.notify_topic(),
                                      master_key=key, enforce_ssl=True)
        topology_json = view.topology.model_dump_json(exclude={"state_dir"})
        self.function = lambda_.Function(
            self, "Failover", function_name=n.failover_function(), runtime=LAMBDA_RUNTIME,
            handler="regionguard.providers.aws.lambda_entry.handler", code=lambda_code(),
            role=role, timeout=Duration.minutes(10), memory_size=512,
            reserved_concurrent_executions=1,
            environment={
                "RG_TOPOLOGY": topology_json,
                "RG_STATE_TABLE": n.state_table(),
                "RG_ARBITER_REGION": view.arbiter_region,
                "POWERTOOLS_SERVICE_NAME": "regionguard-failover",
                "RG_NAMES": json.dumps({"app": n.app, "account": n.account}),
            },
            log_group=log_group(self, "FailoverLogs"),
        )
        # the alarm topic lives in us-east-1 (Route 53 health-check metrics exist only there)
        alarm_topic_arn = n.arn("sns", "us-east-1", n.alarm_topic())
        self.function.add_permission(
            "FromAlarmTopic", principal=iam.ServicePrincipal("sns.amazonaws.com"),
            source_arn=alarm_topic_arn)
