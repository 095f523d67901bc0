"""One game day: load, fault, recovery, measures, report, and healing back to the start.

The drill needs a running world with its controller (the thing under test), reached through its
`DrillTarget` (the sandbox, or any world that implements it). It heals itself at the end — the
fault's own healing, then a failback when the writer moved — so `make run` and repeated drills
leave a healthy sandbox.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from regionguard.drill.faults import CATALOG, Fault, FaultContext, make_fault
from regionguard.drill.history import Fence
from regionguard.drill.load import LoadGenerator, LoadResult, outage
from regionguard.drill.measures import DrillMeasures, measure
from regionguard.drill.report import markers_from, write_html
from regionguard.drill.target import DrillTarget
from regionguard.errors import NotAvailable, ProviderError, RegionGuardError
from regionguard.orchestrator import engine, plans
from regionguard.orchestrator.events import Event
from regionguard.orchestrator.journal import rto_breakdown
from regionguard.orchestrator.ports import Ports
from regionguard.orchestrator.records import PlanStatus
from regionguard.reporting.waterfall import spans_from_journal

Report = Callable[[str], None]


@dataclass
class DrillSettings:
    fault: str = "kill-region"
    duration_s: float = 20.0
    rate: float = 100.0
    workers: int = 4
    freeze_s: float = 5.0
    out_dir: Path = Path(".")


@dataclass
class DrillRun:
    measures: DrillMeasures
    load: LoadResult
    html: Path


def _wait(predicate: Callable[[], bool], deadline: float, step_s: float = 0.05) -> bool:
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def run_drill(target: DrillTarget, settings: DrillSettings, report: Report, index: int = 0,
              faults: Mapping[str, Callable[[], Fault]] = CATALOG) -> DrillRun:
    """`faults`: the world's catalog, which `settings.fault` names."""
    fault = make_fault(settings.fault, faults)
    fault.check_possible(target)
    status = target.status()
    if not status["controller"]["running"]:
        raise NotAvailable("the controller is not running; start it with `regionguard up`")
    if not status["front_door"]["running"]:
        raise NotAvailable("the front door is not running; repair it with `regionguard up`")
    journal = target.ports.journal
    primary = target.ports.state.load().primary
    url = target.front_door_url()
    ctx = FaultContext(target, journal, settings.freeze_s)

    load = LoadGenerator(url, rate=settings.rate, workers=settings.workers,
                         duration_s=settings.duration_s).start()
    warmup = min(3.0, settings.duration_s * 0.2)
    _wait(lambda: len(load.result.acked_writes) > 0, time.monotonic() + warmup + 10)
    time.sleep(max(0.0, warmup - (time.monotonic_ns() - load.result.started_ns) / 1e9))
    fault_ns = time.monotonic_ns()
    detail = fault.inject(ctx, primary)
    journal.record(Event.FAULT, outcome="injected", fault=fault.name, region=primary, detail=detail)
    report(f"fault injected: {detail}")

    end = load.result.started_ns / 1e9 + settings.duration_s + 5
    recovered = _wait(lambda: _recovered(load, fault_ns, target, fault, primary),
                      time.monotonic() + max(5.0, end - time.monotonic_ns() / 1e9))
    report("recovered" if recovered else "NOT recovered before the drill's end")
    result = load.run_until_end()
    fault.heal(ctx, primary)

    new_primary = target.ports.state.load().primary
    entries = journal.entries()
    plan_id = _plan_after(entries, fault_ns)
    engine = rto_breakdown(entries, plan_id) if plan_id else None
    fences = [Fence(primary, e["mono_ns"]) for e in entries
              if e["mono_ns"] >= fault_ns and e["event"] == "step"
              and e.get("step") == "fence" and e.get("outcome") == "done"]
    rows = {rid: oid for rid, oid, _ in target.orders(new_primary, f"load-{load.run_id}-",
                                                       timeout_s=30)}
    m = measure(
        fault=fault.name, region=primary, strategy=target.topology.strategy.value,
        replication=target.topology.replication.value, load=result, fault_ns=fault_ns,
        rows=rows, run_prefix=f"load-{load.run_id}-", fences=fences, engine=engine,
        new_primary=new_primary, fault_detail=detail,
    )
    if not recovered:
        m.notes.append("the client saw no successful write after the fault before the end")
    recovery_ns = _first_ok_write_after_failure(result, fault_ns)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    suffix = f"-{index + 1}" if index else ""
    html_path = settings.out_dir / f"drill-report{suffix}.html"
    spans = spans_from_journal(entries, plan_id) if plan_id else []
    write_html(html_path, m, result, markers_from(entries, fault_ns, recovery_ns), spans)
    journal.record(Event.DRILL, outcome="measured", fault=fault.name, rto_s=m.rto_s,
                   availability=round(m.availability, 4), rpo=m.rpo_count,
                   split_brain=len(m.split_brain))
    heal_sandbox(target, fault, primary, report)
    return DrillRun(m, result, html_path)


def _recovered(load: LoadGenerator, fault_ns: int, target: DrillTarget, fault: Fault,
               primary: str) -> bool:
    if fault.causes_failover:
        plan = target.ports.state.read_plan()
        if plan is None or plan.status is not PlanStatus.DONE \
                or target.ports.state.load().primary == primary:
            return False
    return _first_ok_write_after_failure(load.result, fault_ns) is not None


def _first_ok_write_after_failure(result: LoadResult, fault_ns: int) -> int | None:
    window = outage(result, fault_ns)
    return None if window is None else window[1]


def _plan_after(entries: list[dict[str, object]], fault_ns: int) -> str | None:
    for e in entries:
        if (e["event"] == "plan" and e.get("outcome") == "started"
                and int(e["mono_ns"]) >= fault_ns):  # type: ignore[call-overload]
            return str(e["plan"])
    return None


def heal_sandbox(target: DrillTarget, fault: Fault, home: str, report: Report) -> None:
    """Back to where the drill started: writer in `home`, every piece up, controller idle."""
    problems = heal_to_home(target, home, report, reason=f"drill heal after {fault.name}")
    if problems:
        raise ProviderError("the sandbox did not heal after the drill: " + "; ".join(problems))


HEAL_DEADLINE_S = 150.0


def heal_to_home(target: DrillTarget, home: str, report: Report, reason: str,
                 deadline_s: float = HEAL_DEADLINE_S) -> list[str]:
    """Wait for the engine to finish, restart what is dead, fail back to `home`, repair, and
    wait until healthy. Returns what is still wrong (empty: healthy)."""
    deadline = time.monotonic() + deadline_s
    ports = target.ports
    if not _wait(lambda: ports.state.load().plan is None, time.monotonic() + 90, 0.2):
        return ["a plan is still running 90 s after the drill"]
    while time.monotonic() < deadline:
        try:
            current = ports.state.load().primary
            if not target.database(current).up:
                target.repair()  # the live primary's database died too: restart it first
                report(f"healed: restarted {current}'s database")
            if current != home and not _failback(ports, reason, report, f"failback to {home}"):
                continue
            target.repair()
            other = target.topology.other_region(home)
            standby = target.database(other)
            if not (standby.up and standby.in_recovery) and not _failback(  # demoted: rebuild
                    ports, reason, report, f"{other} rebuilt as standby"):
                continue
            break
        except RegionGuardError as exc:
            report(f"heal: {exc}; retrying")
            time.sleep(1.0)
    problems = health_problems(target, home)
    while problems and time.monotonic() < deadline:
        time.sleep(0.25)
        problems = health_problems(target, home)
    if not problems:
        report("healed: both regions up, writer home, controller idle")
    return problems


def _failback(ports: Ports, reason: str, report: Report, what: str) -> bool:
    """One failback (or standby rebuild); False when another plan holds the lock."""
    outcome = engine.drive(ports, engine.Request(plans.PlanKind.FAILBACK, reason=reason))
    if outcome.result is engine.Result.BUSY:
        time.sleep(0.5)
        return False
    report(f"healed: {what} (RTO {outcome.summary.get('rto_s')} s)")
    return True


def health_problems(target: DrillTarget, home: str) -> list[str]:
    """What keeps the world from being where a drill starts; empty when healthy."""
    try:
        st = target.status()
    except RegionGuardError as exc:
        return [f"status: {exc}"]
    problems = []
    if not st["front_door"]["running"]:
        problems.append("front door not running")
    if not st["controller"]["running"]:
        problems.append("controller not running")
    plan = target.ports.state.read_plan()
    if plan is not None and plan.running:
        problems.append("a plan is running")
    for r in st["regions"]:
        db, name = r["db"], r["name"]
        if not db["up"]:
            problems.append(f"{name}: database down")
        elif r["role"] == "primary" and db["in_recovery"]:
            problems.append(f"{name}: primary in recovery")
        elif r["role"] == "standby" and (not db["in_recovery"] or db["lag_bytes"] is None):
            problems.append(f"{name}: standby not replicating")
        if r["compute"]["ready"] < r["compute"]["desired"]:
            problems.append(f"{name}: {r['compute']['ready']}/{r['compute']['desired']} apps")
        if r["role"] == "primary" and name != home:
            problems.append(f"writer is {name}, not {home}")
    if not problems:  # healthy means writable: a canary write through the front door
        canary = target.ports.traffic.verify(3.0)
        epoch = target.ports.state.load().epoch
        if not canary.ok or canary.region != home or canary.epoch != epoch:
            problems.append(f"canary write through the front door: ok={canary.ok} in "
                            f"{canary.region} at epoch {canary.epoch} (want {home} at {epoch})"
                            + (f": {canary.detail}" if canary.detail else ""))
    return problems
