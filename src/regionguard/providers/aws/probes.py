"""The AWS prober: one vantage point's HTTP probe of a region's regional endpoint.

It runs in the guard function of the standby and witness Regions, outside the region it judges,
and asks the region's own entry point (`https://<aws region>.<domain>/health/deep`: ALB or API
Gateway, then an app process and its database) whether it serves. A region that is down, cut
off, or serving errors fails it; a slow answer (beyond the timeout) fails it too.
"""

from __future__ import annotations

import time

import httpx

from regionguard.orchestrator.ports import ProbeResult
from regionguard.providers.aws.context import AwsContext


class EndpointProber:
    name = "endpoint"

    def __init__(self, ctx: AwsContext) -> None:
        self.ctx = ctx

    def probe(self, region: str, timeout_s: float) -> ProbeResult:
        url = f"{self.ctx.app_url(region)}/health/deep"
        # a loaded emulator needs real time to answer: a floor, never a longer world wait for
        # a dead region (its endpoint fails at once or after the scaled connect timeout)
        factor = self.ctx.clock.factor
        real_timeout = max(0.5, timeout_s * factor) if factor < 1 else timeout_s
        started = time.monotonic()
        try:
            r = httpx.get(url, timeout=real_timeout)
        except httpx.HTTPError as exc:
            return ProbeResult(self.name, region, False, timeout_s,
                               f"{type(exc).__name__} from {self.ctx.runs_in or 'here'}")
        latency = (time.monotonic() - started) / self.ctx.clock.factor
        ok = r.status_code == 200
        return ProbeResult(self.name, region, ok, latency, f"HTTP {r.status_code}")
