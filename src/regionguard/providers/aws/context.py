"""What every AWS provider needs: the validated view (regions, names), the clients, the clock,
the Region this code runs in, and how to reach each region's app endpoint."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from regionguard.aws_naming import AwsNames
from regionguard.clock import SYSTEM_CLOCK, Clock
from regionguard.infra.view import AwsRegion, AwsView
from regionguard.providers.aws.clients import AwsClients

APP_ENDPOINTS_ENV = "RG_APP_ENDPOINTS"


def app_endpoints_from_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    raw = (os.environ if env is None else env).get(APP_ENDPOINTS_ENV, "")
    return {str(k): str(v) for k, v in json.loads(raw).items()} if raw else {}


@dataclass(frozen=True)
class AwsContext:
    view: AwsView
    clients: AwsClients
    clock: Clock = SYSTEM_CLOCK
    runs_in: str = ""  # the AWS Region of this process (a Lambda's AWS_REGION); "" = elsewhere
    app_endpoints: Mapping[str, str] = field(default_factory=dict)  # AWS region -> base URL

    @property
    def names(self) -> AwsNames:
        return self.view.names

    def region(self, name: str) -> AwsRegion:
        return next(r for r in self.view.regions if r.name == name)

    def aws_region(self, name: str) -> str:
        return self.region(name).aws_region

    def app_url(self, name: str) -> str:
        """Base URL of a region's app (its regional record, `https://<aws region>.<domain>`),
        unless this world maps it elsewhere (the emulated AWS)."""
        r = self.aws_region(name)
        return self.app_endpoints.get(r) or f"https://{self.names.region_host(r)}"

    def replica_order(self) -> list[str]:
        """Arbiter replicas to try, nearest first: this Region's own replica when it has one.
        Elsewhere (the witness Region, which holds no replica) the primary's replica comes
        last: a failover is needed exactly when the primary's Region is lost, and its
        replica's timeouts (4 tries of 2 s connect and 10 s read) would then delay every
        witness run's vote. MRSC makes every replica linearizable, so the order only matters
        for latency and for surviving the loss of one of them."""
        replicas = list(self.view.replica_regions)
        if self.runs_in in replicas:
            replicas.remove(self.runs_in)
            replicas.insert(0, self.runs_in)
        elif self.view.primary.aws_region in replicas:
            replicas.remove(self.view.primary.aws_region)
            replicas.append(self.view.primary.aws_region)
        return replicas
