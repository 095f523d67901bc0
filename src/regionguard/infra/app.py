"""The CDK app: every stack for every region, from one topology; `synth` writes CloudFormation.

Stacks by concern, per region where the concern is regional: network, database, compute (with
the /health-check API and the region's DNS records), static site (serverless), backup,
monitoring; per site (both app regions and the witness): the guard function on its schedule;
once: state (the MRSC arbiter table and the app's MREC sessions table, from the primary
region), trigger and edge (us-east-1).
Resources that one region's stack refers to in another region are addressed by
deterministic names (aws_naming), never by cross-region stack references.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from regionguard.config import Strategy, Topology
from regionguard.infra.artifacts import CONTEXT_KEY
from regionguard.infra.deploy_order import declare as declare_order
from regionguard.infra.deploy_order import waves
from regionguard.infra.model import BuiltApp, Edge, RegionalStacks
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
from regionguard.infra.view import aws_view

CIDRS = ("10.10.0.0/16", "10.20.0.0/16")


def build_app(topology: Topology, outdir: Path | None = None, nag: bool = True,
              source: str = "topology", deployable: bool = False) -> BuiltApp:
    """`deployable`: the code assets must be the built artifacts (infra/artifacts.py); without
    it the app is synthesized for review (the tests, `synth --check-only`)."""
    view = aws_view(topology, source)
    app = cdk.App(outdir=str(outdir) if outdir else None,
                  context={CONTEXT_KEY: "required" if deployable else "review"})
    built = BuiltApp(app, view)
    n = view.names
    prefix = "".join(p.capitalize() for p in n.app.split("-"))

    def env(region: str) -> cdk.Environment:
        return cdk.Environment(account=n.account, region=region)

    built.state = StateStack(app, f"{prefix}-State", view=view, env=env(view.primary.aws_region))
    for cidr, region in zip(CIDRS, view.regions, strict=True):
        tag = f"{prefix}-{region.name.capitalize()}"
        e = env(region.aws_region)
        network = NetworkStack(app, f"{tag}-Network", view=view, region=region, cidr=cidr, env=e)
        database = DatabaseStack(app, f"{tag}-Database", view=view, region=region,
                                 vpc=network.vpc, env=e)
        home = region.aws_region == built.state.region
        compute = ComputeStack(app, f"{tag}-Compute", view=view, region=region,
                               vpc=network.vpc, database=database,
                               state_table_name=n.state_table(), env=e,
                               admin_key=built.state.admin_key if home else None)
        backup = BackupStack(app, f"{tag}-Backup", view=view, region=region, env=e)
        monitoring = MonitoringStack(app, f"{tag}-Monitoring", view=view, region=region,
                                     compute=compute, env=e)
        static = (StaticSiteStack(app, f"{tag}-Static", view=view, region=region, env=e)
                  if view.serverless else None)
        built.regions[region.name] = RegionalStacks(network, database, compute, backup,
                                                    monitoring, static)
    if topology.strategy is not Strategy.BACKUP_RESTORE:
        names = {view.primary.aws_region: view.primary.name.capitalize(),
                 view.standby.aws_region: view.standby.name.capitalize(),
                 view.witness_region: "Witness"}
        for site in view.sites:
            built.guards[site] = GuardStack(
                app, f"{prefix}-{names[site]}-Guard", view=view, site=site, env=env(site),
                admin_key=built.state.admin_key if site == built.state.region else None)
    built.trigger = TriggerStack(app, f"{prefix}-Trigger", view=view, env=env("us-east-1"))
    if view.serverless:
        built.edge = EdgeStack(app, f"{prefix}-Edge", view=view, env=env("us-east-1"))
    built.order = declare_order(built)
    if nag:
        cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return built


@dataclass(frozen=True)
class SynthResult:
    templates: list[Path]
    nag_errors: list[str]  # "stack path: rule message" of unsuppressed AwsSolutions errors
    nag_warnings: list[str]
    waves: list[list[str]]  # the deploy order: stack names, wave by wave
    order: list[Edge]
    regions: dict[str, str] = field(default_factory=dict)  # stack name -> its AWS Region


def nag_findings(assembly: cdk.cx_api.CloudAssembly) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    warnings: list[str] = []
    for stack in assembly.stacks:
        for msg in stack.messages:
            text = str(msg.entry.data)
            if not text.startswith("AwsSolutions-"):
                continue
            line = f"{msg.id}: {text.splitlines()[0]}"
            is_error = msg.level == cdk.cx_api.SynthesisMessageLevel.ERROR
            (errors if is_error else warnings).append(line)
    return errors, warnings


def synth(topology: Topology, outdir: Path, source: str = "topology",
          deployable: bool = True) -> SynthResult:
    """Write every stack's template to `outdir` and report cdk-nag's findings."""
    built = build_app(topology, outdir, source=source, deployable=deployable)
    assembly = built.app.synth()
    errors, warnings = nag_findings(assembly)
    return SynthResult([Path(outdir) / s.template_file for s in assembly.stacks],
                       errors, warnings, waves(assembly), built.order,
                       {s.stack_name: s.environment.region for s in assembly.stacks})
