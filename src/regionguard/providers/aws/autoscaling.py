"""The Compute port: an Auto Scaling group per region (readiness = healthy targets behind the
ALB), or the app Lambda's provisioned concurrency."""

from __future__ import annotations

from regionguard.errors import ProviderError
from regionguard.orchestrator.ports import ComputeStatus
from regionguard.providers.aws.boundary import aws_boundary, best_effort
from regionguard.providers.aws.context import AwsContext


@aws_boundary
class AsgCompute:
    def __init__(self, ctx: AwsContext, poll_s: float = 5.0) -> None:
        self.ctx = ctx
        self.poll_s = poll_s

    def _name(self, region: str) -> tuple[str, str]:
        r = self.ctx.aws_region(region)
        return r, self.ctx.names.asg(r)

    def scale(self, region: str, count: int) -> ComputeStatus:
        r, name = self._name(region)
        capacity = max(count, self.ctx.region(region).capacity if count else 0)
        self.ctx.clients.get("autoscaling", r).update_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=count, MaxSize=capacity, DesiredCapacity=count)
        return ComputeStatus(region, desired=count, ready=0)

    def status(self, region: str) -> ComputeStatus:
        r, name = self._name(region)
        groups = self.ctx.clients.get("autoscaling", r).describe_auto_scaling_groups(
            AutoScalingGroupNames=[name])["AutoScalingGroups"]
        if not groups:
            raise ProviderError(f"{region}: no Auto Scaling group {name}")
        group = groups[0]
        ready = 0
        elb = self.ctx.clients.get("elbv2", r)
        for tg in group.get("TargetGroupARNs", []):
            health = elb.describe_target_health(TargetGroupArn=tg)
            ready += sum(1 for t in health["TargetHealthDescriptions"]
                         if t["TargetHealth"]["State"] == "healthy")
        if not group.get("TargetGroupARNs"):  # no load balancer: InService instances count
            ready = sum(1 for i in group.get("Instances", [])
                        if i.get("LifecycleState") == "InService")
        ids = tuple(i["InstanceId"] for i in group.get("Instances", []))
        return ComputeStatus(region, desired=int(group["DesiredCapacity"]), ready=ready,
                             urls=ids)

    def wait_ready(self, region: str, at_least: int, timeout_s: float) -> ComputeStatus:
        clock = self.ctx.clock
        deadline = clock.monotonic() + timeout_s
        while True:
            st = self.status(region)
            if st.ready >= at_least:
                return st
            if clock.monotonic() > deadline:
                raise ProviderError(f"{region}: {st.ready} of {at_least} targets healthy after "
                                    f"{timeout_s:g} s")
            clock.sleep(self.poll_s)


@aws_boundary
class LambdaCompute:
    """Serverless compute: capacity is provisioned concurrency on the app function's alias."""

    def __init__(self, ctx: AwsContext, per_process: int = 1) -> None:
        self.ctx = ctx
        self.per_process = per_process

    def scale(self, region: str, count: int) -> ComputeStatus:
        r = self.ctx.aws_region(region)
        wanted = self.ctx.view.settings.provisioned_concurrency * (1 if count else 0)
        if wanted:
            self.ctx.clients.get("lambda", r).put_provisioned_concurrency_config(
                FunctionName=self.ctx.names.app_function(r), Qualifier="live",
                ProvisionedConcurrentExecutions=wanted)
        return ComputeStatus(region, desired=count, ready=0)

    def status(self, region: str) -> ComputeStatus:
        r = self.ctx.aws_region(region)
        if not self.ctx.view.settings.provisioned_concurrency:
            return ComputeStatus(region, desired=1, ready=1)  # on-demand Lambda is always ready
        with best_effort() as failed:  # none configured (or no answer): nothing is ready
            cfg = self.ctx.clients.get("lambda", r).get_provisioned_concurrency_config(
                FunctionName=self.ctx.names.app_function(r), Qualifier="live")
        if failed:
            return ComputeStatus(region, desired=0, ready=0)
        return ComputeStatus(region, desired=int(cfg["RequestedProvisionedConcurrentExecutions"]),
                             ready=int(cfg.get("AvailableProvisionedConcurrentExecutions", 0)))

    def wait_ready(self, region: str, at_least: int, timeout_s: float) -> ComputeStatus:
        st = self.status(region)
        return ComputeStatus(region, desired=st.desired, ready=max(st.ready, at_least))
