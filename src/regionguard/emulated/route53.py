"""Route 53's data plane, emulated: health checkers and the authoritative answer for `<domain>`.

moto stores health checks and records (the control plane); nothing in it evaluates them. Route
53's data plane is "globally distributed" and keeps answering "during Regional service
impairment", so this runs outside every failure domain (as the internet):

- Health checkers: each check is evaluated every `RequestInterval` (10 or 30 s). An HTTPS check
  of `<aws region>.<domain><path>` asks that region's entry point; an answer other than 2xx/3xx,
  or none within 4 s (Route 53: connect within 4 s, respond within 2 s), is a failure. Status
  changes after `FailureThreshold` consecutive results the other way. One logical checker stands
  for Route 53's fleet (whose 18% rule makes a region that answers every checker healthy, and
  one that answers none unhealthy; partial reachability is not modelled).
- Resolver: failover records answer PRIMARY while its check is healthy, else SECONDARY while
  its check is healthy, else PRIMARY ("If Route 53 considers both the primary and secondary
  records unhealthy, Route 53 returns the primary record"). Latency records answer the caller's
  own region while healthy, else a healthy one, else the caller's.
Every change of a check's status and of the answer is recorded with its world time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx

from regionguard.clock import Clock
from regionguard.infra.view import AwsView

CHECK_TIMEOUT_S = 4.0
TICK_S = 1.0  # world seconds between looks at what is due (and at the answer)


@dataclass
class HealthCheck:
    id: str
    region: str  # the AWS Region whose endpoint it checks
    path: str
    interval_s: float
    threshold: int
    healthy: bool = True  # "healthy until there's enough data" for a new check
    streak: int = 0  # consecutive results that disagree with `healthy`
    next_at: float = 0.0


@dataclass
class Record:
    set_id: str  # the topology region name
    aws_region: str
    failover: str | None
    check: str | None


@dataclass
class Route53DataPlane:
    view: AwsView
    moto_url: str
    app_endpoints: dict[str, str]  # AWS region -> the internet's URL for its entry point
    clock: Clock
    checks: dict[str, HealthCheck] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    check_events: list[tuple[float, str, bool]] = field(default_factory=list)
    answers: list[tuple[float, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._http = httpx.Client(timeout=max(0.5, CHECK_TIMEOUT_S * self.clock.factor))

    def load(self, zone_id: str) -> None:
        """Read the checks and records the IaC created (they never change during a drill)."""
        r53 = boto3.client("route53", region_name="us-east-1", endpoint_url=self.moto_url,
                           aws_access_key_id="emulated", aws_secret_access_key="emulated")
        hosts = {self.view.names.region_host(r.aws_region): r.aws_region
                 for r in self.view.regions}
        for hc in r53.list_health_checks()["HealthChecks"]:
            cfg = hc["HealthCheckConfig"]
            fqdn = cfg.get("FullyQualifiedDomainName", "")
            if fqdn in hosts:
                self.checks[hc["Id"]] = HealthCheck(
                    hc["Id"], hosts[fqdn], cfg.get("ResourcePath", "/"),
                    float(cfg.get("RequestInterval", 30)), int(cfg.get("FailureThreshold", 3)))
        domain = self.view.settings.domain.rstrip(".") + "."
        sets = r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        by_name = {r.name: r.aws_region for r in self.view.regions}
        for rec in sets:
            if rec["Name"] == domain and "SetIdentifier" in rec:
                set_id = rec["SetIdentifier"]
                self.records.append(Record(set_id, by_name.get(set_id, ""), rec.get("Failover"),
                                           rec.get("HealthCheckId")))

    def start(self) -> None:
        now = self.clock.time()
        for check in self.checks.values():
            self._evaluate(check, now)  # a first look, so the steady state starts known
        self.answers.append((now, self.resolve()))
        self._thread = threading.Thread(target=self._loop, daemon=True, name="route53")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._http.close()

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S * self.clock.factor):
            now = self.clock.time()
            due = [c for c in self.checks.values() if c.next_at <= now]
            for check in due:
                self._evaluate(check, now)
            answer = self.resolve()
            if not self.answers or self.answers[-1][1] != answer:
                self.answers.append((now, answer))

    def _evaluate(self, check: HealthCheck, now: float) -> None:
        check.next_at = now + check.interval_s
        url = self.app_endpoints.get(check.region)
        try:
            ok = url is not None and self._http.get(f"{url}{check.path}").status_code < 400
        except httpx.HTTPError:
            ok = False
        if ok == check.healthy:
            check.streak = 0
            return
        check.streak += 1
        if check.streak >= check.threshold:
            check.healthy, check.streak = ok, 0
            self.check_events.append((now, check.region, ok))

    def healthy(self, record: Record) -> bool:
        return record.check is None or self.checks.get(record.check, HealthCheck(
            "", "", "", 0, 0)).healthy

    def resolve(self, client_region: str | None = None) -> str | None:
        """The record set `<domain>` answers with now: a region name, or None."""
        if not self.records:
            return None
        if all(r.failover for r in self.records):
            primary = next(r for r in self.records if r.failover == "PRIMARY")
            secondary = next(r for r in self.records if r.failover == "SECONDARY")
            if self.healthy(primary):
                return primary.set_id
            return secondary.set_id if self.healthy(secondary) else primary.set_id
        healthy = [r for r in self.records if self.healthy(r)] or self.records
        near = [r for r in healthy if r.aws_region == client_region]
        return (near or healthy)[0].set_id

    def first_answer_after(self, t: float, answer: str) -> float | None:
        for at, value in self.answers:
            if at >= t and value == answer:
                return at
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"checks": {c.region: c.healthy for c in self.checks.values()},
                "answers": [{"t": t, "answer": a} for t, a in self.answers],
                "check_events": [{"t": t, "region": r, "healthy": h}
                                 for t, r, h in self.check_events]}
