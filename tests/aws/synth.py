"""The four strategies' CDK apps, synthesized once per test session (a synth takes seconds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from regionguard.infra.app import build_app, nag_findings
from regionguard.infra.model import BuiltApp

from .topologies import topology

# the four strategies, and the MySQL variant of the pilot light (seed 000)
SYNTHESIZED = ("pilot-light", "warm-standby", "active-active", "backup-restore",
               "pilot-light-mysql")


class Synth:
    def __init__(self, name: str, outdir: Path) -> None:
        self.built: BuiltApp = build_app(topology(name), outdir)
        self.assembly = self.built.app.synth()
        self.outdir = outdir
        self.errors, self.warnings = nag_findings(self.assembly)

    def raw(self, stack_name: str) -> dict[str, Any]:
        """The template as deployed (JSON), for tests that read it as CloudFormation would."""
        names = [s.stack_name for s in self.built.stacks()]
        if stack_name not in names:
            raise KeyError(f"{stack_name} not in {names}")
        data: dict[str, Any] = json.loads(
            (self.outdir / f"{stack_name}.template.json").read_text())
        return data

    def template(self, stack_name: str) -> Template:
        return Template.from_json(self.raw(stack_name))

    def stack(self, stack_name: str) -> cdk.Stack:
        return next(s for s in self.built.stacks() if s.stack_name == stack_name)
