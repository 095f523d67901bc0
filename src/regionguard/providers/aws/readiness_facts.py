"""The AWS world's readiness facts: the standby's database (RDS replica or Aurora
secondary), what its capacity starts from (its Auto Scaling group and what it launches, or the
app function; instance quotas are not looked at yet), the live configuration against the
topology (each Region's desired capacity for its live role), the last drill in the arbiter's
journal, the sessions' global table (`sessions_table.py`), and whether the failover role may
run every action of the plans (IAM policy simulation of this function's own role).

Evaluated by the standby's guard on its quiet scheduled runs; never on the failover path.
IAM is a global service homed in us-east-1: when it does not answer, the permissions check
says it could not look.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from regionguard.config import Role
from regionguard.orchestrator.ports import Ports
from regionguard.orchestrator.readiness import Check, Facts, last_drill_age_s
from regionguard.orchestrator.readiness_monitor import observe_pair
from regionguard.providers.aws import iam_actions, sessions_table
from regionguard.providers.aws.arbiter import ArbiterClient
from regionguard.providers.aws.boundary import best_effort
from regionguard.providers.aws.context import AwsContext
from regionguard.providers.aws.state import DynamoDBStateStore

ASSUMED_ROLE = re.compile(r"^arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([^/]+)/")


def gather(ports: Ports, ctx: AwsContext, now: datetime | None = None) -> Facts:
    live, standby, standby_db = observe_pair(ports)
    capacity, drift = _compute(ports, ctx, dict(live.roles), standby)
    permission = _permissions(ctx)
    return Facts(
        primary=live.primary, standby=standby, standby_db=standby_db,
        capacity_problems=capacity, drift=drift,
        last_drill_age_s=_last_drill_age_s(ports, now or datetime.now(UTC)),
        extra=(permission, sessions_table.check(ctx)),
    )


DRILL_KEY = "drill"  # the arbiter item a drill of this deployment records its end in
READINESS_KEY = "readiness"  # the last evaluation's statuses, per check


class ArbiterReadinessMemory:
    """What the last run saw, in one arbiter item: each guard run is a new process, and a
    scan of the journal every minute would cost more than the checks."""

    def __init__(self, arbiter: ArbiterClient) -> None:
        self.arbiter = arbiter

    def last_statuses(self) -> Mapping[str, str]:
        seen = self.arbiter.get(READINESS_KEY)
        return dict(json.loads(seen["statuses"]["S"])) if seen else {}

    def remember(self, statuses: Mapping[str, str]) -> None:
        self.arbiter.put(READINESS_KEY, {"statuses": {"S": json.dumps(dict(statuses))}})


def _last_drill_age_s(ports: Ports, now: datetime) -> float | None:
    """From one item, not a scan of the journal: readiness runs every scheduled minute, and
    a scan of a growing journal each time is load the arbiter does not need."""
    store = ports.state
    assert isinstance(store, DynamoDBStateStore), "AWS readiness reads the arbiter"
    return drill_item_age_s(store.arbiter.get(DRILL_KEY), now)


def drill_item_age_s(item: Mapping[str, Any] | None, now: datetime) -> float | None:
    """The age readiness's `last_drill` gives the arbiter's `drill` item (None: none)."""
    if item is None:
        return None
    return last_drill_age_s([{"event": "drill", "outcome": "measured",
                              "ts": item["ts"]["S"]}], now)


def _compute(ports: Ports, ctx: AwsContext, roles: dict[str, Role],
             standby: str) -> tuple[list[str], list[str]]:
    topology, names = ports.topology, ctx.names
    capacity: list[str] = []
    drift: list[str] = []
    if ctx.view.serverless:
        r = ctx.aws_region(standby)
        with best_effort() as failed:
            ctx.clients.get("lambda", r).get_function(FunctionName=names.app_function(r))
        if failed:
            capacity.append(f"{standby}'s app function {names.app_function(r)}: "
                            f"{failed.detail}")
        return capacity, drift
    for region, role in roles.items():
        r = ctx.aws_region(region)
        with best_effort() as failed:
            groups = ctx.clients.get("autoscaling", r).describe_auto_scaling_groups(
                AutoScalingGroupNames=[names.asg(r)])["AutoScalingGroups"]
        if failed:
            (capacity if region == standby else drift).append(
                f"{region}'s Auto Scaling group: {failed.detail}")
            continue
        if not groups:
            (capacity if region == standby else drift).append(
                f"{region} has no Auto Scaling group {names.asg(r)}")
            continue
        group = groups[0]
        want = topology.desired_processes(region, role)
        if region == standby and not (group.get("LaunchTemplate")
                                      or group.get("MixedInstancesPolicy")
                                      or group.get("LaunchConfigurationName")):
            capacity.append(f"{region}'s Auto Scaling group has nothing to launch")
        if int(group["DesiredCapacity"]) != want:
            drift.append(f"{region} ({role}) wants {group['DesiredCapacity']} instances in "
                         f"its Auto Scaling group, the topology {want}")
    return capacity, drift


def plan_grants(ctx: AwsContext) -> tuple[iam_actions.Grant, ...]:
    """What this deployment's failover role is granted for its plans (the registry)."""
    s = ctx.view.settings
    have = iam_actions.features(s.database, s.compute, s.provisioned_concurrency)
    if not ctx.view.replica:
        have.add("backup-restore")
    return iam_actions.grants_for(have)


def _permissions(ctx: AwsContext) -> Check:
    """Simulates each grant's actions on the grant's own resources, as the policy scopes them
    (an action allowed on one table only is not asked about `*`)."""
    name = "failover_permissions"
    with best_effort() as failed:
        arn = ctx.clients.get("sts", ctx.runs_in or "us-east-1").get_caller_identity()["Arn"]
    if failed:
        return Check(name, "warn", f"could not ask who this role is: {failed.detail}")
    m = ASSUMED_ROLE.match(str(arn))
    if m is None:
        return Check(name, "warn", f"not running as a role ({arn}): nothing to simulate",
                     "run it from the guard function, or with the failover role assumed")
    role_arn = f"arn:{m.group(1)}:iam::{m.group(2)}:role/{m.group(3)}"
    view = ctx.view
    sites = (view.primary.aws_region, view.standby.aws_region, view.witness_region)
    denied: set[str] = set()
    asked = 0
    with best_effort() as failed:
        iam = ctx.clients.get("iam", "us-east-1")
        for grant in plan_grants(ctx):
            resources = grant.resources(ctx.names, sites) or ["*"]
            asked += len(grant.actions)
            out: dict[str, Any] = iam.simulate_principal_policy(
                PolicySourceArn=role_arn, ActionNames=list(grant.actions),
                ResourceArns=resources[:1000])
            denied |= {r["EvalActionName"] for r in out.get("EvaluationResults", [])
                       if r.get("EvalDecision") != "allowed"}
    if failed:
        return Check(name, "warn", f"IAM policy simulation did not answer: {failed.detail}",
                     "IAM is homed in us-east-1; look again when it answers")
    if denied:
        return Check(name, "fail", f"{m.group(3)} may not {', '.join(sorted(denied))}",
                     "grant the failover role these actions (see `regionguard synth`)")
    return Check(name, "pass", f"{m.group(3)} may run all {asked} actions of the plans")
