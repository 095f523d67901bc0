"""The AWS prober: one vantage point's HTTP probe of the primary's regional endpoint.

It runs in the guard function of the standby and witness Regions, outside the region it judges,
and asks the region's own entry point (`https://<aws region>.<domain>/health/route`: ALB or API
Gateway, then an app process) whether it can take writes: it holds the write lease from the
arbiter and its database is a writable primary. That is the question Route 53's health check
of the failover record asks too, so a primary that is down, cut off from the arbiter (its
lease lapsed: it refuses writes), or without its database is judged DOWN, and one that is
merely slow to answer its control plane is not. A slow answer (beyond the timeout) fails.

Route 53 also sends traffic to a lease holder whose database still promotes (its 200 says
`"writable": false`, and DNS moves while the failover's target promotes). The prober asks more
of the live primary: a 200 that says it cannot write is a failure, so a primary whose database
stopped taking writes (demoted, read-only) is still judged DOWN.
"""

from __future__ import annotations

import time

import httpx

from regionguard.orchestrator.ports import ProbeKind, ProbeResult
from regionguard.providers.aws.context import AwsContext


class EndpointProber:
    name = "endpoint"
    kind = ProbeKind.APPLICATION  # /health/route: lease held and database writable

    def __init__(self, ctx: AwsContext) -> None:
        self.ctx = ctx

    def probe(self, region: str, timeout_s: float) -> ProbeResult:
        url = f"{self.ctx.app_url(region)}/health/route"
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
        if r.status_code != 200:
            return ProbeResult(self.name, region, False, latency, f"HTTP {r.status_code}")
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "writable" not in body:
            # not the app's answer: whatever answers there cannot be trusted
            return ProbeResult(self.name, region, False, latency, "HTTP 200, not the app's")
        writable = body["writable"] is True
        return ProbeResult(self.name, region, writable, latency,
                           "HTTP 200" if writable else "HTTP 200, its database takes no writes")
