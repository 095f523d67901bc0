"""What every AWS provider needs: the validated view (regions, names) and the clients."""

from __future__ import annotations

from dataclasses import dataclass

from regionguard.aws_naming import AwsNames
from regionguard.infra.view import AwsRegion, AwsView
from regionguard.providers.aws.clients import AwsClients


@dataclass(frozen=True)
class AwsContext:
    view: AwsView
    clients: AwsClients

    @property
    def names(self) -> AwsNames:
        return self.view.names

    def region(self, name: str) -> AwsRegion:
        return next(r for r in self.view.regions if r.name == name)

    def aws_region(self, name: str) -> str:
        return self.region(name).aws_region
