"""What the CDK app builds, as values: every stack by Region and concern, and the orderings
between Regions that no shared value tells CloudFormation. `app.py` builds it, `deploy_order.py`
orders it, the tests read it; none of them needs the others' code to know its shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aws_cdk as cdk

from regionguard.infra.stacks.backup import BackupStack
from regionguard.infra.stacks.compute import ComputeStack
from regionguard.infra.stacks.database import DatabaseStack
from regionguard.infra.stacks.edge import EdgeStack
from regionguard.infra.stacks.guard import GuardStack
from regionguard.infra.stacks.monitoring import MonitoringStack
from regionguard.infra.stacks.network import NetworkStack
from regionguard.infra.stacks.state import StateStack
from regionguard.infra.stacks.static_site import StaticSiteStack
from regionguard.infra.stacks.trigger import TriggerStack
from regionguard.infra.view import AwsView


@dataclass(frozen=True, slots=True)
class Edge:
    before: cdk.Stack
    after: cdk.Stack
    why: str


@dataclass
class RegionalStacks:
    network: NetworkStack
    database: DatabaseStack
    compute: ComputeStack
    backup: BackupStack
    monitoring: MonitoringStack
    static: StaticSiteStack | None = None


@dataclass
class BuiltApp:
    app: cdk.App
    view: AwsView
    regions: dict[str, RegionalStacks] = field(default_factory=dict)
    state: StateStack | None = None
    guards: dict[str, GuardStack] = field(default_factory=dict)  # AWS Region -> its guard
    trigger: TriggerStack | None = None
    edge: EdgeStack | None = None
    order: list[Edge] = field(default_factory=list)  # the cross-Region orderings, with reasons

    def stacks(self) -> list[cdk.Stack]:
        return [s for s in self.app.node.children if isinstance(s, cdk.Stack)]
