"""Per region: alarms on what matters for failover (replica lag, 5xx, Lambda errors, failover
runs) with SNS notifications; in the primary region, one dashboard across both regions."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from regionguard.config import Role
from regionguard.infra.stacks.compute import ComputeStack
from regionguard.infra.view import AwsRegion, AwsView


def _metric(namespace: str, name: str, dims: dict[str, str], region: str,
            stat: str = "Sum") -> cw.Metric:
    return cw.Metric(namespace=namespace, metric_name=name, dimensions_map=dims, region=region,
                     statistic=stat, period=Duration.minutes(1))


class MonitoringStack(Stack):
    def __init__(self, scope: Construct, id: str, *, view: AwsView, region: AwsRegion,
                 compute: ComputeStack, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        n = view.names
        r = region.aws_region
        topic: sns.ITopic = compute.ops_topic
        if view.settings.alarm_email:
            sns.Subscription(self, "Email", topic=topic, endpoint=view.settings.alarm_email,
                             protocol=sns.SubscriptionProtocol.EMAIL)
        alarms: list[cw.Alarm] = []
        if region.home_role is Role.STANDBY and view.replica and view.settings.database == "rds":
            lag = _metric("AWS/RDS", "ReplicaLag",
                          {"DBInstanceIdentifier": n.db_instance(r)}, r, "Maximum")
            alarms.append(cw.Alarm(
                self, "ReplicaLag", metric=lag, evaluation_periods=3,
                threshold=max(1.0, view.topology.failover.rpo_target_s),
                alarm_description="replica lag above the RPO target: a failover would lose "
                                  "more than the target allows"))
        if view.serverless:
            errors = _metric("AWS/Lambda", "Errors", {"FunctionName": n.app_function(r)}, r)
            alarms.append(cw.Alarm(self, "AppErrors", metric=errors, threshold=5,
                                   evaluation_periods=2))
        else:
            five = _metric("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count",
                           {"LoadBalancer": compute.alb.load_balancer_full_name}, r)
            alarms.append(cw.Alarm(self, "Alb5xx", metric=five, threshold=10,
                                   evaluation_periods=2,
                                   treat_missing_data=cw.TreatMissingData.NOT_BREACHING))
        if view.replica:  # the guard runs in every app region (and the witness)
            failures = _metric("AWS/Lambda", "Errors", {"FunctionName": n.failover_function()}, r)
            alarms.append(cw.Alarm(self, "GuardErrors", metric=failures, threshold=1,
                                   evaluation_periods=1,
                                   treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                                   alarm_description="the guard Lambda failed"))
        for alarm in alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))


def build_dashboard(scope: Construct, view: AwsView, health_check_id: str) -> cw.Dashboard:
    """One dashboard across both regions (metrics carry their region); built in us-east-1,
    where the Route 53 health check and its metric live."""
    n = view.names
    p, s = view.primary.aws_region, view.standby.aws_region
    board = cw.Dashboard(scope, "Dashboard", dashboard_name=f"{n.app}-regionguard")
    health = cw.Metric(namespace="AWS/Route53", metric_name="HealthCheckStatus",
                       region="us-east-1", statistic="Minimum", period=Duration.minutes(1),
                       dimensions_map={"HealthCheckId": health_check_id})
    widgets: list[cw.IWidget] = [
        cw.GraphWidget(title="Primary /health/deep (Route 53)", left=[health]),
        cw.GraphWidget(title="Guard Lambda runs", left=[
            _metric("AWS/Lambda", m, {"FunctionName": n.failover_function()}, r)
            for m in ("Invocations", "Errors") for r in view.sites]),
        cw.GraphWidget(title="RTO per failover (s)", left=[
            cw.Metric(namespace="RegionGuard", metric_name="RTO", region=s,
                      dimensions_map={"App": n.app}, statistic="Maximum")]),
    ]
    if view.settings.database == "rds" and view.replica:
        widgets.append(cw.GraphWidget(title="Replica lag (s)", left=[
            _metric("AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": n.db_instance(s)},
                    s, "Maximum")]))
    if view.serverless:
        widgets.append(cw.GraphWidget(title="App Lambda errors", left=[
            _metric("AWS/Lambda", "Errors", {"FunctionName": n.app_function(r)}, r)
            for r in (p, s)]))
    else:
        widgets.append(cw.GraphWidget(title="ALB 5xx", left=[
            _metric("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", {}, r) for r in (p, s)]))
    board.add_widgets(*widgets)
    return board
