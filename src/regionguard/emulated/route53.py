"""Route 53's data plane, emulated: health checkers and the authoritative answer for `<domain>`.

moto stores health checks and records (the control plane); nothing in it evaluates them. Route
53's data plane is "globally distributed" and keeps answering "during Regional service
impairment", so this runs outside every failure domain (as the internet):

- Health checkers: a fleet of `checkers` per check (Route 53 "has health checkers in locations
  around the world" that "don't coordinate with one another": their phases are spread evenly
  over the interval), each asking every `RequestInterval` (10 or 30 s). An HTTPS check of
  `<aws region>.<domain><path>` asks that region's entry point; an answer other than 2xx/3xx,
  or none within 4 s (Route 53: connect within 4 s, respond within 2 s), is a failure. Each
  checker changes its own view after `FailureThreshold` consecutive results the other way, and
  the check is healthy while more than 18% of the checkers report it healthy ("If more than
  18% of health checkers report that an endpoint is healthy, Route 53 considers it healthy").
- Resolver: failover records answer PRIMARY while its check is healthy, else SECONDARY while
  its check is healthy, else PRIMARY ("If Route 53 considers both the primary and secondary
  records unhealthy, Route 53 returns the primary record"). Latency records answer the caller's
  own region while healthy, else a healthy one, else the caller's.
Every change of a check's status and of the answer is recorded with its world time.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx

from regionguard.clock import Clock
from regionguard.infra.view import AwsView

CHECK_TIMEOUT_S = 4.0
TICK_S = 1.0  # world seconds between looks at what is due (and at the answer)
HEALTHY_SHARE = 0.18  # healthy while more than this share of the checkers say so


@dataclass
class Checker:
    """One health checker's own view of an endpoint."""

    next_at: float
    healthy: bool = True  # "healthy until there's enough data" for a new check
    streak: int = 0  # consecutive results that disagree with `healthy`


@dataclass
class HealthCheck:
    id: str
    region: str  # the AWS Region whose endpoint it checks
    path: str
    interval_s: float
    threshold: int
    checkers: list[Checker] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        if not self.checkers:
            return True
        return sum(c.healthy for c in self.checkers) / len(self.checkers) > HEALTHY_SHARE


ALIAS_TTL_S = 60  # an alias record answers with its target's TTL: an ALB's is 60 s (ELB)


@dataclass
class Record:
    set_id: str  # the topology region name
    aws_region: str
    failover: str | None
    check: str | None
    ttl_s: int = ALIAS_TTL_S  # how long a resolver may keep the answer


@dataclass
class Route53DataPlane:
    view: AwsView
    moto_url: str
    app_endpoints: dict[str, str]  # AWS region -> the internet's URL for its entry point
    clock: Clock
    checkers: int = 8  # one per Region Route 53 checks from by default
    checks: dict[str, HealthCheck] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    check_events: list[tuple[float, str, bool]] = field(default_factory=list)
    answers: list[tuple[float, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4 * self.checkers,
                                        thread_name_prefix="route53-checker")
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
                ttl = int(rec["TTL"]) if "TTL" in rec else ALIAS_TTL_S
                self.records.append(Record(set_id, by_name.get(set_id, ""), rec.get("Failover"),
                                           rec.get("HealthCheckId"), ttl))

    def start(self) -> None:
        now = self.clock.time()
        for check in self.checks.values():
            # uncoordinated checkers: phases spread over the interval, after a first look each
            # so the steady state starts known
            check.checkers = [Checker(now) for _ in range(self.checkers)]
            for i, checker in enumerate(check.checkers):
                self._evaluate(check, checker, now)
                checker.next_at = now + check.interval_s * (1 + i / self.checkers)
        self.answers.append((now, self.resolve()))
        self._thread = threading.Thread(target=self._loop, daemon=True, name="route53")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S * self.clock.factor):
            now = self.clock.time()
            due = [(check, checker, now) for check in self.checks.values()
                   for checker in check.checkers if checker.next_at <= now]
            # the checkers are uncoordinated: those due together ask at once, so one waiting
            # on a silent endpoint does not delay the others due with it (the tick itself
            # waits for the slowest before the next look)
            list(self._pool.map(lambda args: self._evaluate(*args), due))
            answer = self.resolve()
            if not self.answers or self.answers[-1][1] != answer:
                # stamped when it changed, after this tick's checks (which take world time)
                self.answers.append((self.clock.time(), answer))

    def _evaluate(self, check: HealthCheck, checker: Checker, now: float) -> None:
        checker.next_at = max(checker.next_at + check.interval_s, now)
        url = self.app_endpoints.get(check.region)
        try:
            ok = url is not None and self._http.get(f"{url}{check.path}").status_code < 400
        except httpx.HTTPError:
            ok = False
        with self._lock:
            if ok == checker.healthy:
                checker.streak = 0
                return
            checker.streak += 1
            if checker.streak >= check.threshold:
                before = check.healthy
                checker.healthy, checker.streak = ok, 0
                if check.healthy != before:
                    self.check_events.append((self.clock.time(), check.region, check.healthy))

    def healthy(self, record: Record) -> bool:
        check = self.checks.get(record.check) if record.check else None
        return check is None or check.healthy

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

    def ttl_s(self, answer: str) -> int:
        """The TTL of the record set that answers `answer`: how long clients may keep the
        previous answer after it changed."""
        return next((r.ttl_s for r in self.records if r.set_id == answer), ALIAS_TTL_S)

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
