"""A region-outage drill on the emulated AWS: steady state, a fault, the outcome, measured.

The drill brings the emulated AWS up for the topology, waits for the steady state (DNS answers
the primary, its app holds the write lease, every vantage point has reported), starts its own
client, injects the fault, and waits for the outcome: `failed_over` (a new epoch, the write
lease and DNS on the standby, the plan done), `no_failover` (nothing moved for `quiet_s` after
the fault), or `stuck` (a plan began and did not finish by the deadline). It measures from the
outside: the resolver's answers, the client's own history of acknowledged writes, the proxy's
request log, the journal in the arbiter. Then it heals and tears everything down.

Also: hooks for the Lambda killed mid-plan, schedules firing at once, and a duplicate SNS
delivery, each of which must still end in one promote and one epoch increment.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from regionguard.config import Topology
from regionguard.drill import history
from regionguard.drill.load import Request
from regionguard.emulated.bypass import BypassClient
from regionguard.emulated.domains import INTERNET, FailMode, FaultKind
from regionguard.emulated.global_tables import GlobalTables
from regionguard.emulated.models import LatencyModel
from regionguard.emulated.session_load import SessionLoad, replicas_converged
from regionguard.emulated.session_load import summary as sessions_summary
from regionguard.emulated.world import EmulatedAws
from regionguard.errors import NotAvailable, UsageError
from regionguard.infra.view import AwsView, aws_view
from regionguard.orchestrator.journal import rto_breakdown
from regionguard.providers.aws.readiness_facts import DRILL_KEY, drill_item_age_s

log = logging.getLogger("regionguard.emulated.drill")

PROMOTE_OPERATIONS = {"PromoteReadReplica", "FailoverGlobalCluster", "SwitchoverGlobalCluster"}


@dataclass(frozen=True)
class EmulatedDrillSettings:
    fault: FaultKind
    region: str  # the AWS Region (or topology region name) the fault hits
    out_dir: Path
    mode: FailMode | None = None  # refused | timeout; default: refused (timeout: partition)
    factor: float = 0.02
    deadline_s: float = 1800.0  # world seconds after the fault before a plan counts as stuck
    quiet_s: float = 300.0  # world seconds of nothing moving that mean `no_failover`
    write_every_s: float = 2.0
    kill_at_step: str | None = None  # kill the function running the plan when this step starts
    concurrent_runs: int = 0  # extra guard runs in the standby's Region, all at once
    duplicate_alarm: bool = False  # deliver one SNS alarm message twice to the standby's guard
    heal_after: bool = False  # then bring the Region back and watch it (it must stay fenced)
    model: LatencyModel = field(default_factory=LatencyModel)
    # the apps hold their write lease this long, whatever the topology's lease_s (which the
    # guard waits out): only for showing that the drill catches the split brain a wait
    # shorter than the apps' lease causes
    app_lease_s: float | None = None
    # sites whose guard function fails before the fault (its reports go stale), while their
    # arbiter replica serves: the witness's, to show that the standby's two probers decide
    guards_out: tuple[str, ...] = ()
    # the apps are the workload app itself over a real PostgreSQL per Region (emulated/
    # real_app.py), not the stub that models its database
    real_app: bool = False


@dataclass
class ClientOp:
    t: float
    target: str | None  # the region the request went to
    via: str  # "dns" (the resolver's answer) or "direct" (a client with a stale cache)
    status: int | None
    region: str | None = None  # the region that acknowledged it
    epoch: int | None = None
    detail: str = ""  # why it was not acknowledged
    request_id: str | None = None


class DrillClient:
    """The drill's own client: writes through whatever DNS answers, and straight to each
    region as a client with a stale cache would, remembering every acknowledgement."""

    def __init__(self, world: EmulatedAws, every_s: float) -> None:
        self.world = world
        self.every_s = every_s
        assert world.proxy is not None
        self.urls = {r.name: world.proxy.endpoints_for(INTERNET, "app")[r.aws_region]
                     for r in world.view.regions}
        self.ops: list[ClientOp] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="drill-client")
        # 5 world seconds, as a real client's timeout; but never under 2 wall seconds: a stall of
        # the emulator itself (its own CPU time, a busy machine) is not an outage of AWS, and a
        # shorter floor counted one as a refused write (47 of 48 with only the witness out)
        self._http = httpx.Client(timeout=max(2.0, 5.0 * world.clock.factor))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._http.close()

    def _loop(self) -> None:
        clock = self.world.clock
        while not self._stop.wait(self.every_s * clock.factor):
            assert self.world.route53 is not None
            answer = self.world.route53.resolve()
            self.ops.append(self._write(answer, "dns"))
            for region in self.urls:
                self.ops.append(self._write(region, "direct"))

    def _write(self, region: str | None, via: str) -> ClientOp:
        t = self.world.clock.time()
        if region is None:
            return ClientOp(t, None, via, None)
        rid = f"{via}-{uuid.uuid4().hex[:10]}"
        try:
            r = self._http.post(f"{self.urls[region]}/orders",
                                json={"request_id": rid, "customer": "drill", "item": via})
        except httpx.HTTPError as exc:
            return ClientOp(t, region, via, None, detail=type(exc).__name__)
        if r.status_code in (200, 201):
            body = r.json()
            return ClientOp(t, region, via, r.status_code, body.get("region"),
                            body.get("epoch"), request_id=rid)
        return ClientOp(t, region, via, r.status_code, detail=r.text[:200], request_id=rid)


def split_brain(ops: list[ClientOp]) -> list[str]:
    """The history checker's split-brain findings (`drill/history.py`) over the client's
    acknowledged writes, one line each. There are no fence records here (fencing is the apps'
    lease), so two regions acknowledging in one epoch and a write acknowledged in an older
    epoch than an earlier one are what it finds. The client writes one request at a time on
    the world's clock, so each write is taken as instantaneous at its send time."""
    acked = [Request(t_ns=int(op.t * 1e9), latency_s=0.0, kind="write", ok=True,
                     status=op.status or 0, request_id=op.request_id, region=op.region,
                     epoch=op.epoch)
             for op in ops if op.region is not None and op.epoch is not None]
    return [a.detail for a in history.split_brain(acked)]


def resolve_region(view: AwsView, region: str) -> str:
    """The AWS Region a fault names: an AWS Region of the three sites, or a topology region."""
    if region in view.sites:
        return region
    for r in view.regions:
        if r.name == region:
            return r.aws_region
    raise UsageError(f"--region: {region!r} is neither a region of the topology "
                     f"({', '.join(r.name for r in view.regions)}) nor one of the "
                     f"arbiter's sites ({', '.join(view.sites)})")


def _wait(cond: Callable[[], bool], world: EmulatedAws, timeout_s: float, what: str) -> None:
    deadline = world.clock.monotonic() + timeout_s
    while not cond():
        if world.clock.monotonic() > deadline:
            raise NotAvailable(f"emulated AWS: {what} not reached within {timeout_s:g} world s")
        world.clock.sleep(1.0)


def run_emulated_drill(topology: Topology, settings: EmulatedDrillSettings,
                       report: Callable[[str], None] = print) -> dict[str, Any]:
    """Run one drill end to end; returns the report (also written as JSON and HTML)."""
    started_real = time.monotonic()
    region = resolve_region(aws_view(topology), settings.region)
    world = EmulatedAws(topology, settings.out_dir / "emulated-aws", settings.factor,
                        settings.model, settings.app_lease_s, settings.real_app)
    with world:
        report(f"emulated AWS up ({len(world.view.sites)} sites, factor {settings.factor:g})")
        primary = world.view.primary
        standby = world.view.standby
        _wait(lambda: _steady(world), world, 600, "the steady state")
        for site in settings.guards_out:
            world.stop_guard(site)
            report(f"the guard in {site} fails; waiting for its reports to go stale")
        if settings.guards_out:
            _wait(lambda: not _fresh_reports_from(world, settings.guards_out), world, 600,
                  "the stopped guards' reports to go stale")
        client = DrillClient(world, settings.write_every_s)
        client.start()
        bypass = (BypassClient(world.databases, world.clock, settings.write_every_s)
                  if world.databases is not None else None)
        if bypass is not None:
            bypass.start()
        sessions = _session_load(world, settings.write_every_s)
        world.clock.sleep(3 * settings.write_every_s)
        epoch_before = world.arbiter()["epoch"]
        mode = settings.mode or (FailMode.TIMEOUT if settings.fault is FaultKind.PARTITION
                                 else FailMode.REFUSED)
        fault = world.inject(settings.fault, region, mode)
        tables = world.global_tables
        # what the faulted Region's replica took and had not replicated when it was cut off
        stuck = tables.pending(source=region) if tables is not None else []
        report(f"fault: {settings.fault.value} of {region} ({mode.value})")
        hooks = _Hooks(world, settings, standby.aws_region)
        hooks.start()
        outcome = _await_outcome(world, settings, epoch_before, fault.at, report)
        hooks.stop()
        # a last look after the old region's lease has surely run out
        world.clock.sleep(world.view.settings.lease_s * 1.2 + 10)
        client.stop()
        if bypass is not None:
            bypass.stop()
        if sessions is not None:
            sessions.stop()
        result = _measure(world, settings, fault.at, epoch_before, outcome, client.ops,
                          primary.aws_region, region, hooks)
        if bypass is not None:  # straight to each database: the old one's own fence
            result["bypass"] = bypass.summary(fault.at)
        result["rpo"] = _relational_rpo(world, client.ops, fault.at)
        result["drill_recorded"] = _record_drill(world, result)
        conflicts_before_heal = tables.stats.conflicts if tables is not None else 0
        world.heal()
        if sessions is not None and tables is not None:
            drained = _drain(world, tables)
            result["sessions"] = sessions_summary(
                sessions, tables, region, fault.at, stuck, replicas_converged(tables),
                drained, conflicts_before_heal)
        if settings.heal_after:
            result["after_heal"] = _after_heal(world)
    result["real_seconds"] = round(time.monotonic() - started_real, 2)
    from regionguard.emulated.report import write_reports

    write_reports(settings.out_dir, result)
    report(f"outcome: {result['outcome']}, rto_modeled_s {result['rto_modeled_s']}, "
           f"split brain: {result['split_brain']}")
    return result


def _relational_rpo(world: EmulatedAws, ops: list[ClientOp], t_fault: float
                    ) -> dict[str, Any] | None:
    """The orders sent before the fault and acknowledged that the writer's database (after
    the drill) does not hold, and how long before the fault the oldest of them was sent: the
    relational tier's RPO (`acknowledged_before_fault` counts by send time, as the client
    records it). Only the real app's databases can be asked."""
    if world.databases is None:
        return None
    writer = world.arbiter()["writer"]
    acked = {o.request_id: o.t for o in ops
             if o.region is not None and o.request_id and o.t < t_fault}
    if not acked:
        return {"acknowledged_before_fault": 0, "lost": 0, "rpo_s": 0.0, "checked_in": writer}
    with psycopg.connect(world.databases.dsn(writer), connect_timeout=5) as conn:
        held = {row[0] for row in conn.execute(
            "SELECT request_id FROM orders WHERE request_id = ANY(%s)", (list(acked),))}
    lost = {rid: t for rid, t in acked.items() if rid not in held}
    return {"acknowledged_before_fault": len(acked), "lost": len(lost),
            "rpo_s": round(t_fault - min(lost.values()), 2) if lost else 0.0,
            "checked_in": writer}


def _session_load(world: EmulatedAws, every_s: float) -> SessionLoad | None:
    """With the real app: sessions written in every app Region through its entry point."""
    if world.databases is None or world.proxy is None:
        return None  # the stub app serves no sessions
    urls = {r.aws_region: world.proxy.endpoints_for(INTERNET, "app")[r.aws_region]
            for r in world.view.regions}
    load = SessionLoad(urls, world.clock, every_s)
    load.start()
    return load


def _drain(world: EmulatedAws, tables: GlobalTables, timeout_s: float = 60.0) -> bool:
    """Once healed, the global table delivers what it queued; False if it did not within
    `timeout_s` world seconds."""
    try:
        _wait(lambda: not tables.pending(), world, timeout_s, "the global table's queue drained")
    except NotAvailable:
        return False
    return True


def _record_drill(world: EmulatedAws, result: dict[str, Any]) -> bool:
    """A drill that ended without a split brain is recorded in the arbiter's `drill` item,
    which readiness's `last_drill` reads (providers/aws/readiness_facts); read back here
    through readiness's own rule. Written from outside every failure domain, as an operator
    running the drill would, into a replica that survived."""
    if result["split_brain"] or result["outcome"] == "stuck":
        return False
    survivor = next(r.aws_region for r in world.view.regions
                    if not world.domains.is_down(r.aws_region))
    client = world.moto_client("dynamodb", survivor)
    stamp = datetime.now(UTC).isoformat()
    client.put_item(TableName=world.view.names.state_table(), Item={
        "pk": {"S": DRILL_KEY}, "ts": {"S": stamp}, "outcome": {"S": result["outcome"]},
        "fault": {"S": f"{result['fault']['kind']} of {result['fault']['region']}"}})
    item = client.get_item(TableName=world.view.names.state_table(),
                           Key={"pk": {"S": DRILL_KEY}}, ConsistentRead=True).get("Item")
    return drill_item_age_s(item, datetime.now(UTC)) is not None


def _fresh_reports_from(world: EmulatedAws, sites: tuple[str, ...]) -> bool:
    """Whether any of these sites' reports on the primary would still vote (the guard's own
    staleness rule: three probes or a minute and two probes)."""
    s = world.view.settings
    stale_after = max(3 * s.probe_interval_s, 60.0 + 2 * s.probe_interval_s)
    now = world.clock.time()
    return any(r["vantage"] in sites and now - float(r["observed_at"]) <= stale_after
               for r in world.reports() if r["target"] == world.view.primary.name)


def _steady(world: EmulatedAws) -> bool:
    """DNS answers the primary because its check is healthy (not because every check failed),
    its app holds the write lease, and both vantage points outside it report it healthy."""
    assert world.route53 is not None
    primary = world.view.primary
    healthy_checks = {c.region for c in world.route53.checks.values() if c.healthy}
    reporters = {r["vantage"] for r in world.reports()
                 if r["target"] == primary.name and int(r["successes"]) > 0}
    return (world.route53.resolve() == primary.name
            and primary.aws_region in healthy_checks
            and world.apps[primary.name].lease.holds() is not None
            and reporters >= {world.view.standby.aws_region, world.view.witness_region})


def _await_outcome(world: EmulatedAws, settings: EmulatedDrillSettings, epoch_before: int,
                   t_fault: float, report: Callable[[str], None]) -> str:
    assert world.route53 is not None
    standby = world.view.standby.name
    seen_plan = False
    while True:
        now = world.clock.time()
        state = world.arbiter()
        plan = state["plan"] or {}
        moved = state["epoch"] > epoch_before
        if moved and not seen_plan:
            seen_plan = True
            report(f"plan {plan.get('id')} claimed epoch {state['epoch']}")
        done = moved and plan.get("status") == "done"
        if done and state["writer"] == standby and world.route53.resolve() == standby:
            return "failed_over"
        if not moved and now - t_fault >= settings.quiet_s:
            return "no_failover"
        if now - t_fault >= settings.deadline_s:
            return "stuck" if moved else "no_failover"
        world.clock.sleep(1.0)


class _Hooks:
    """The invocation faults a drill can add: a kill mid-plan, concurrent runs, a duplicate
    SNS delivery. Each is recorded with its world time."""

    def __init__(self, world: EmulatedAws, settings: EmulatedDrillSettings, site: str) -> None:
        self.world = world
        self.settings = settings
        self.site = site
        self.events: list[dict[str, Any]] = []
        self.alarm_results: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="drill-hooks")

    def start(self) -> None:
        s, w = self.settings, self.world
        for _ in range(s.concurrent_runs):
            w.runtime.invoke(w.function, self.site, {"regionguard": "guard"}, "concurrent")
        if s.concurrent_runs:
            self.events.append({"t": w.clock.time(), "event": "concurrent_runs",
                                "count": s.concurrent_runs})
        if s.kill_at_step or s.duplicate_alarm:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        w, s = self.world, self.settings
        killed = alarmed = False
        while not self._stop.wait(1.0 * w.clock.factor):
            state = w.arbiter()
            if s.duplicate_alarm and not alarmed and state["epoch"] == 1 and _down_reported(w):
                alarmed = True
                self._duplicate_alarm()
            if s.kill_at_step and not killed:
                started = [e for e in w.journal() if e.get("event") == "step"
                           and e.get("step") == s.kill_at_step and e.get("outcome") == "started"]
                if started:
                    n = w.runtime.kill(w.function, self.site)
                    killed = True
                    self.events.append({"t": w.clock.time(), "event": "killed_runner",
                                        "step": s.kill_at_step, "environments": n})
            if (not s.duplicate_alarm or alarmed) and (not s.kill_at_step or killed):
                return

    def _duplicate_alarm(self) -> None:
        """One SNS message delivered twice at once, and once more after both ended: the
        concurrent copy finds it in progress, the late one replays the stored result."""
        from regionguard.emulated.events import alarm_sns_event

        w = self.world
        event = alarm_sns_event(w.view, message_id=f"dup-{uuid.uuid4().hex[:8]}")
        together = [w.runtime.invoke(w.function, self.site, event, "sns") for _ in range(2)]
        first, second = (f.result() for f in together)
        late = w.runtime.invoke(w.function, self.site, event, "sns").result()
        self.alarm_results = [first.result, second.result, late.result]
        handled = [r for r in (first.result, second.result)
                   if isinstance(r, dict) and r.get("action") == "alarm"]
        # the second copy either found the first in progress, or (the first already done)
        # got its stored result: either way one execution, one execution id
        executions = {r.get("execution") for r in handled}
        self.events.append({"t": w.clock.time(), "event": "duplicate_sns",
                            "handled_once": len(executions) == 1,
                            "same_result": bool(handled) and late.result == handled[0]})


def _down_reported(world: EmulatedAws) -> bool:
    threshold = world.topology.health.failure_threshold
    failing = [r for r in world.reports() if r["target"] == world.view.primary.name
               and int(r["failures"]) >= threshold]
    return len(failing) >= world.topology.health.quorum


def _measure(world: EmulatedAws, settings: EmulatedDrillSettings, t_fault: float,
             epoch_before: int, outcome: str, ops: list[ClientOp], old_primary: str,
             fault_region: str, hooks: _Hooks) -> dict[str, Any]:
    assert world.proxy is not None and world.route53 is not None
    state = world.arbiter()
    journal = world.journal()
    standby = world.view.standby
    new_primary = next((r.aws_region for r in world.view.regions
                        if r.name == state["writer"]), None)
    flip = world.route53.first_answer_after(t_fault, standby.name)
    plan = state["plan"] or {}
    breakdown = rto_breakdown(journal, plan["id"]) if plan.get("id") else None
    rto = round(flip - t_fault, 1) if flip is not None and outcome == "failed_over" else None
    # a client that asked just before the answer changed keeps the old one for the TTL; and
    # DNS may move before the new primary takes writes (the lease is handed over while its
    # database promotes): a client is served once both hold
    ttl = world.route53.ttl_s(standby.name)
    written = next((o.t for o in ops if o.via == "dns" and o.t >= t_fault
                    and o.region == state["writer"]), None)
    rto_writes = None if rto is None or written is None else round(written - t_fault, 1)
    steps = _critical_path(journal, plan.get("id"), t_fault, flip) \
        if breakdown is not None and rto is not None and flip is not None else {}
    calls = world.proxy.calls_since(world.proxy.faults_injected)
    promotes = [e for e in world.proxy.records if e["operation"] in PROMOTE_OPERATIONS]
    writable_after = [r.aws_region for r in world.view.regions
                      if not world.domains.is_down(r.aws_region)
                      and world.apps[r.name].write("/_regionguard/canary",
                                                   {"token": "final-check"})[0] == 200]
    dns_ops = [o for o in ops if o.via == "dns" and o.t >= t_fault]
    anomalies = split_brain(ops)
    return {
        "world": "aws-emulated",
        "topology": {"app": world.topology.app, "strategy": world.topology.strategy.value,
                     "compute": world.view.settings.compute,
                     "database": world.view.settings.database,
                     "engine": world.view.settings.engine},
        "fault": {"kind": settings.fault.value, "region": fault_region,
                  "mode": (settings.mode.value if settings.mode else None), "at": t_fault},
        "outcome": outcome,
        "old_primary_region": old_primary,
        "new_primary_region": new_primary,
        "epoch_before": epoch_before,
        "epoch_after": state["epoch"],
        "rto_modeled_s": rto,  # the resolver's: fault -> it answers the standby
        # fault -> the first write through DNS the new primary acknowledged
        "rto_writes_s": rto_writes,
        # the later of: the resolver + the record's TTL, and writes through DNS acknowledged
        "rto_client_s": None if rto is None else round(max(rto + ttl, rto_writes or 0.0), 1),
        "dns_before_promoted": None if rto is None or rto_writes is None else rto < rto_writes,
        "rto_breakdown_s": steps,
        "dns_ttl_s": ttl,
        "calls": calls,
        # succeeded: RDS accepted it (a resumed plan's repeat is refused, 400, as the first
        # one is still promoting: that is the idempotent path, not a second promote)
        "promote_calls": {"attempted": len(promotes),
                          "succeeded": sum(1 for e in promotes if e["outcome"] == "ok"
                                           and (e.get("status") or 0) < 400),
                          "from": sorted({e["caller"] for e in promotes}),
                          "calls": promotes},
        "plan_resumed": any(e.get("event") == "plan" and e.get("outcome") == "resumed"
                            for e in journal),
        "compute_after": _compute(world),
        "writable_regions_after": writable_after,
        "old_primary_lease_held": world.apps[world.view.primary.name].lease.holds() is not None,
        "split_brain": bool(anomalies),
        "anomalies": anomalies[:20],
        "availability": {"writes": len(dns_ops),
                         "acknowledged": sum(1 for o in dns_ops if o.region is not None),
                         # the first refusals, with why (a timeout, a 503's reason)
                         "refused": [{"t": round(o.t - t_fault, 1), "target": o.target,
                                      "status": o.status, "detail": o.detail}
                                     for o in dns_ops if o.region is None][:10],
                         # how the new writer refused writes DNS sent it (503 + Retry-After
                         # while its database promoted; never a timeout, never a 5xx else)
                         "refused_by_new_primary": dict(Counter(
                             str(o.status or o.detail) for o in dns_ops
                             if o.target == state["writer"] and o.region is None))},
        "acknowledged_writes": sum(1 for o in ops if o.region is not None),
        "invocations": _invocations(world),
        "hooks": hooks.events,
        "alarm_results": hooks.alarm_results,
        "dns": world.route53.as_dict(),
        "journal": [e for e in journal if e.get("event") in
                    ("plan", "step", "verdict", "lease_wait", "handover", "unfenced",
                     "alert")],
        "time_factor": settings.factor,
        "models": {"rds_promote_s": settings.model.rds_promote_s,
                   "aurora_failover_s": settings.model.aurora_failover_s,
                   "ec2_boot_s": settings.model.ec2_boot_s,
                   "alb_check_interval_s": settings.model.alb_check_interval_s,
                   "dynamodb_call_s": settings.model.dynamodb_call_s,
                   "mrsc_rtt_s": settings.model.mrsc_rtt_s,
                   "api_call_s": settings.model.api_call_s,
                   "route53_checkers": settings.model.route53_checkers,
                   "dns_check_interval_s": world.view.settings.dns_check_interval_s,
                   "dns_failure_threshold": world.view.settings.dns_failure_threshold,
                   "probe_interval_s": world.view.settings.probe_interval_s,
                   "lease_s": world.view.settings.lease_s,
                   "lease_clock_skew_s": world.view.settings.lease_clock_skew_s},
        "request_log": str(world.proxy.log_path),
    }


def _after_heal(world: EmulatedAws, timeout_s: float = 300.0) -> dict[str, Any]:
    """The Region is back: wait (up to `timeout_s`) until the last plan's unfinished steps are
    done there, then look at who would take writes. The returning region stays fenced (the
    arbiter names the other writer) until a failback."""
    healed_at = world.clock.time()

    def caught_up() -> bool:
        plan = world.arbiter()["plan"] or {}
        return not plan.get("unfinished")

    with contextlib.suppress(NotAvailable):
        _wait(caught_up, world, timeout_s, "the returning region's catch-up")
    world.clock.sleep(2 * world.view.settings.probe_interval_s)
    for app in world.apps.values():
        app.refresh()
    plan = world.arbiter()["plan"] or {}
    return {
        "seconds": round(world.clock.time() - healed_at, 1),
        "unfinished": [u["step"] for u in plan.get("unfinished", [])],
        "compute": _compute(world),
        "writable_regions": [r.aws_region for r in world.view.regions
                             if world.apps[r.name].write("/_regionguard/canary",
                                                         {"token": "after-heal"})[0] == 200],
        "old_primary_lease_held": world.apps[world.view.primary.name].lease.current()
        is not None,
    }


def _critical_path(journal: list[dict[str, Any]], plan_id: str | None, t_fault: float,
                   flip: float) -> dict[str, float]:
    """Where the resolver's RTO went: detection (fault -> verdict), each plan step up to the
    lease handed over, then DNS (the handover -> the resolver answers the standby); what is
    left is `other`. The lease is handed over either by `route`, after the promotion, or
    beside it (`handover`, once the old lease ended): then the path runs detect, fence, the
    handover's wait, DNS, and the promotion is shown beside it, not added. `verify` runs while
    DNS follows: shown, not added."""
    at = {(e.get("step"), e.get("outcome")): e["mono_ns"] / 1e9 for e in journal
          if e.get("plan") == plan_id and e.get("event") == "step"}
    verdict = next((e["mono_ns"] / 1e9 for e in journal
                    if e.get("event") == "verdict" and e.get("plan") == plan_id), None)
    handover = next((e for e in journal if e.get("event") == "handover"
                     and e.get("plan") == plan_id and e.get("outcome") == "done"), None)
    handed_at = None if handover is None else handover["mono_ns"] / 1e9
    out: dict[str, float] = {}
    if verdict is not None:
        out["detect"] = round(verdict - t_fault, 1)
    beside: dict[str, float] = {}
    for step in ("scale", "fence", "promote", "await_ready", "route"):
        if (step, "started") in at and (step, "done") in at:
            took = round(at[(step, "done")] - at[(step, "started")], 1)
            # steps that ended after DNS had moved were not on its path
            if handed_at is not None and at[(step, "done")] > flip:
                beside[f"{step} (beside dns)"] = took
            else:
                out[step] = took
    if handed_at is not None and ("promote", "started") in at and handed_at < flip:
        out["handover"] = round(handed_at - at[("promote", "started")], 1)
        out.pop("promote", None)
        out["dns"] = round(flip - handed_at, 1)
    elif (route_done := at.get(("route", "done"))) is not None:
        out["dns"] = round(flip - route_done, 1)
    out["other"] = round(flip - t_fault - sum(out.values()), 1)
    out.update(beside)
    if ("verify", "done") in at and ("verify", "started") in at:
        out["verify (beside dns)"] = round(at[("verify", "done")] - at[("verify", "started")], 1)
    return out


def _compute(world: EmulatedAws) -> dict[str, dict[str, Any]]:
    """Each region's capacity as the end of the drill left it (read from inside moto)."""
    out: dict[str, dict[str, Any]] = {}
    for r in world.view.regions:
        if world.view.serverless:
            out[r.aws_region] = {"kind": "lambda (on demand)"}
            continue
        group = world.moto_client("autoscaling", r.aws_region).describe_auto_scaling_groups(
            AutoScalingGroupNames=[world.view.names.asg(r.aws_region)])["AutoScalingGroups"][0]
        out[r.aws_region] = {"kind": "asg", "desired": group["DesiredCapacity"],
                             "min": group["MinSize"], "max": group["MaxSize"],
                             "healthy": world.apps[r.name].capacity}
    return out


def _invocations(world: EmulatedAws) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for inv in world.runtime.invocations:
        per = out.setdefault(inv.region, {})
        per[inv.outcome] = per.get(inv.outcome, 0) + 1
    return out
