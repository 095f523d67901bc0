"""The guard Lambda (the regionguard engine with AWS providers), one stack per site.

The same function runs in both app regions and in the witness Region, each on its own
EventBridge Scheduler schedule (`rate(1 minute)`): a vantage point outside whichever region is
primary, and, in the failover target's Region, the executor of the plan. Nothing here depends on
another site: when one Region dies the two others still probe, decide and act.

Its IAM policy is built from `providers/aws/iam_actions.GRANTS`, the same registry a test checks
against the providers' boto3 calls, limited to what this deployment has (no Aurora grant for
RDS); it may also use the key of its own CMK-encrypted topic.
Reserved concurrency 3: one run executing a plan, the next scheduled run, and an alarm.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

from regionguard.infra.stacks import common
from regionguard.infra.stacks.nag import justify
from regionguard.infra.view import SECOND_PROBER, AwsView
from regionguard.providers.aws.iam_actions import features, grants_for

GUARD_TIMEOUT = Duration.minutes(15)  # Lambda's maximum; a longer plan is resumed, not lost
GUARD_CONCURRENCY = 5  # a plan's run, the next minute's, two of the second prober's, an alarm's


class GuardStack(Stack):
    def __init__(self, scope: Construct, id: str, *, view: AwsView, site: str,
                 admin_key: kms.IKey | None = None, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        n = view.names
        sites = (view.primary.aws_region, view.standby.aws_region, view.witness_region)
        role = common.lambda_role(self, "GuardRole", vpc=False, role_name=n.guard_role(site))
        wildcards = []
        have = features(view.settings.database, view.settings.compute,
                        view.settings.provisioned_concurrency)
        for grant in grants_for(have):
            resources = grant.resources(n, sites)
            role.add_to_policy(iam.PolicyStatement(
                actions=list(grant.actions), resources=resources,
                conditions=grant.condition))
            if grant.why_wildcard or any("*" in r for r in resources):
                wildcards.append(grant.why_wildcard or
                                 f"{', '.join(grant.actions)}: ARN pattern (ASG ids)")
        justify(role, {"AwsSolutions-IAM5": "; ".join(wildcards)})
        key = common.cmk(self, "EventsKey", f"regionguard notifications in {site}")
        self.events_topic = sns.Topic(self, "Events", topic_name=n.notify_topic(),
                                      master_key=key, enforce_ssl=True)
        key.grant(role, "kms:GenerateDataKey*", "kms:Decrypt")  # to publish to the topic
        if admin_key is not None:  # the canary credential's primary copy is in this Region
            role.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt"],
                                                   resources=[admin_key.key_arn]))
        topology_json = view.topology.model_dump_json(exclude={"state_dir"})
        self.function = lambda_.Function(
            self, "Guard", function_name=n.failover_function(), runtime=common.LAMBDA_RUNTIME,
            handler="regionguard.providers.aws.lambda_entry.handler",
            code=common.lambda_code(self),
            role=role, timeout=GUARD_TIMEOUT, memory_size=512,
            reserved_concurrent_executions=GUARD_CONCURRENCY,
            environment={
                "RG_TOPOLOGY": topology_json,
                "RG_STATE_TABLE": n.state_table(),
                "RG_ADMIN_TOKEN_SECRET": n.admin_secret(),  # `verify`'s canary credential
                "POWERTOOLS_SERVICE_NAME": "regionguard-guard",
                "RG_NAMES": json.dumps({"app": n.app, "account": n.account}),
            },
            log_group=common.log_group(self, "GuardLogs"),
        )
        justify(self.function, common.RUNTIME_NAG)
        invoke = iam.Role(self, "ScheduleRole",
                          assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"))
        invoke.add_to_policy(iam.PolicyStatement(  # the function itself, no version wildcard
            actions=["lambda:InvokeFunction"], resources=[self.function.function_arn]))
        self.schedule = self._every_minute("EveryMinute", invoke, {"regionguard": "guard"},
                                           f"{n.app}: the regionguard guard run in {site}")
        if site in view.replica_regions:
            # the region's second prober: outside either primary there are then three (this
            # one, the other region's first, the witness), and losing the witness's guard
            # leaves a quorum of two
            self._every_minute(
                "SecondProber", invoke, {"regionguard": "guard", "prober": SECOND_PROBER},
                f"{n.app}: the regionguard second prober in {site} (reports only)")
        if site == view.standby.aws_region:
            # the extra, faster signal: the Route 53 alarm of the primary (us-east-1)
            self.function.add_permission(
                "FromAlarmTopic", principal=iam.ServicePrincipal("sns.amazonaws.com"),
                source_arn=n.arn("sns", "us-east-1", n.alarm_topic()))

    def _every_minute(self, id: str, invoke: iam.Role, payload: dict[str, str],
                      description: str) -> scheduler.CfnSchedule:
        return scheduler.CfnSchedule(
            self, id, schedule_expression="rate(1 minute)",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.function.function_arn, role_arn=invoke.role_arn,
                input=json.dumps(payload),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=0)),  # the next minute's run is the retry
            description=description)
