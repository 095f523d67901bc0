"""us-east-1: an extra, faster signal, never a required one. The HTTP health check on the home
primary's `/health/deep`, the alarm on its `HealthCheckStatus` metric (Route 53 publishes these
only in us-east-1), the SNS topic, and the subscription that wakes the guard in the backup
region. All of it lives in us-east-1 and dies with it, which is why failing over never waits
for it: the guards' own probes from the standby and witness Regions decide."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_sns as sns
from constructs import Construct

from regionguard.infra.stacks.common import cmk
from regionguard.infra.stacks.monitoring import build_dashboard
from regionguard.infra.view import AwsView


class TriggerStack(Stack):
    def __init__(self, scope: Construct, id: str, *, view: AwsView, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        n = view.names
        self.health_check = route53.CfnHealthCheck(
            self, "PrimaryHttp", health_check_config=route53.CfnHealthCheck
            .HealthCheckConfigProperty(
                type="HTTPS", fully_qualified_domain_name=n.region_host(view.primary.aws_region),
                resource_path="/health/deep", port=443, request_interval=10,
                failure_threshold=3, measure_latency=True),
            health_check_tags=[route53.CfnHealthCheck.HealthCheckTagProperty(
                key="Name", value=f"{n.app}-primary-deep")])
        key = cmk(self, "AlarmKey", "regionguard alarm notifications")
        key.grant_encrypt_decrypt(iam.ServicePrincipal("cloudwatch.amazonaws.com"))
        self.topic = sns.Topic(self, "Alarms", topic_name=n.alarm_topic(), master_key=key,
                               enforce_ssl=True)
        self.topic.grant_publish(iam.ServicePrincipal("cloudwatch.amazonaws.com"))
        metric = cw.Metric(namespace="AWS/Route53", metric_name="HealthCheckStatus",
                           dimensions_map={"HealthCheckId": self.health_check.attr_health_check_id},
                           statistic="Minimum", period=Duration.minutes(1))
        self.alarm = cw.Alarm(
            self, "PrimaryUnhealthy", metric=metric, threshold=1, evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.BREACHING,
            alarm_description=f"{n.app}: primary region's /health/deep failing; "
                              "wakes the guard, whose vantage points decide")
        self.alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        self.dashboard = build_dashboard(self, view, self.health_check.attr_health_check_id)
        self.alarm.add_ok_action(cw_actions.SnsAction(self.topic))
        if view.replica:  # backup & restore has no failover Lambda: the alarm informs people
            failover_arn = n.arn("lambda", view.standby.aws_region,
                                 f"function:{n.failover_function()}")
            sns.CfnSubscription(self, "ToFailoverLambda", topic_arn=self.topic.topic_arn,
                                protocol="lambda", endpoint=failover_arn)
