"""A randomized fault campaign: N drills, each a scenario drawn from its own seed, each checked
by the history checker, each healed before the next.

Drill i of a campaign seeded S has seed S + i, so `drill --campaign 1 --seed S+i` replays it.
A drill: a client load on the front door, a short warmup, the scenario's actions at their
moments, a settle phase (no plan running and a write acknowledged after the last action, within
a deadline: missing it is a liveness failure, reported as "unavailable"), the drill's own undo
(thaw, lift the partition), the heal back home (proven by a canary write), and the check of the
whole client history against the rows left on the primary and the journal's fences. The
campaign stops early only when a drill cannot be healed, or the sandbox acknowledged no write
before the fault (the next drill would start from a broken sandbox, or prove nothing); its
report says so.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from regionguard.config import Replication
from regionguard.drill import history
from regionguard.drill.actions import ActionRunner, JournalTail
from regionguard.drill.load import LoadGenerator, LoadResult, Request, client_rto_s
from regionguard.drill.measures import fences_in
from regionguard.drill.report import percentile
from regionguard.drill.runner import heal_to_home, health_problems
from regionguard.drill.scenario import Act, Scenario, Shape, draw
from regionguard.drill.target import DrillTarget
from regionguard.errors import NotAvailable, ProviderError
from regionguard.orchestrator.events import Event
from regionguard.orchestrator.journal import FileSink, Journal

Report = Callable[[str], None]
FAULTS = frozenset({Act.KILL_REGION, Act.KILL_DB, Act.KILL_APP, Act.FREEZE, Act.PARTITION,
                    Act.KILL_HELD_CONTROLLER, Act.KILL_CONTROLLER, Act.KILL_SWITCHOVER})

WARMUP_S = 1.0
WARMUP_DEADLINE_S = 15.0  # a healthy sandbox acknowledges its first write in well under this
SETTLE_DEADLINE_S = 40.0  # from the fault: the slowest scenario (a controller held and
# killed, restarted with backoff, resuming) settles in well under this
TAIL_S = 1.0  # load kept running after settling, so recovery shows in the history


@dataclass
class CampaignSettings:
    drills: int
    seed: int
    out_dir: Path
    config: Path
    rate: float = 60.0
    workers: int = 3
    settle_deadline_s: float = SETTLE_DEADLINE_S  # liveness: writes back within this of the fault


@dataclass
class DrillOutcome:
    index: int
    scenario: Scenario
    verdict: history.Verdict
    done: list[str]
    skipped: list[str]
    plans: list[dict[str, Any]]
    rto_s: float | None
    requests: int
    healed: bool
    heal_problems: list[str] = field(default_factory=list)
    history_file: str = ""
    # liveness: None when a write was acknowledged after the last action, in time; else why not
    unavailable: str | None = None

    @property
    def failover(self) -> bool:
        return any(p["kind"] == "failover" for p in self.plans)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "seed": self.scenario.seed, "kind": self.scenario.kind,
            "description": self.scenario.describe(), "notes": list(self.scenario.notes),
            "done": self.done, "skipped": self.skipped, "plans": self.plans,
            "failover": self.failover, "rto_s": self.rto_s, "requests": self.requests,
            "acked_writes": self.verdict.acked_writes, "reads_checked": self.verdict.reads_checked,
            "lost_acked": len(self.verdict.lost_acked),
            "split_brain": self.verdict.split_brain,
            "anomalies": [a.kind.value for a in self.verdict.anomalies],
            "unavailable": self.unavailable,
            "healed": self.healed, "heal_problems": self.heal_problems,
            "history": self.history_file,
        }


@dataclass
class CampaignResult:
    settings: CampaignSettings
    strategy: str
    replication: str
    outcomes: list[DrillOutcome]
    started_at: str
    duration_s: float
    stopped_early: str | None = None


def shape_of(target: DrillTarget) -> Shape:
    topo = target.topology
    primary = target.ports.state.load().primary
    h = topo.health
    try:
        target.check_partition()
        can_partition = True
    except NotAvailable:
        can_partition = False
    return Shape(primary, topo.other_region(primary),
                 round(h.interval_s * h.failure_threshold + h.timeout_s, 3), can_partition)


def run_campaign(target: DrillTarget, settings: CampaignSettings,
                 report: Report) -> CampaignResult:
    target.status()  # nothing up: the usual one line (exit 4)
    problems = health_problems(target, target.topology.home_primary)
    if problems:
        raise NotAvailable("a campaign starts from a healthy sandbox with its writer home: "
                           + "; ".join(problems) + " (run `regionguard up`, or `failback`)")
    report(f"campaign: {settings.drills} drills from seed {settings.seed} (replay one: "
           "--campaign 1 --seed <its seed>)")
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.monotonic()
    outcomes: list[DrillOutcome] = []
    stopped = None
    for i in range(settings.drills):
        seed = settings.seed + i
        try:
            outcome = run_one(target, settings, i, seed, report)
        except NotAvailable as exc:
            stopped = str(exc)
            break
        outcomes.append(outcome)
        found = ", ".join(a.kind.value for a in outcome.verdict.anomalies) or "no anomaly"
        if outcome.unavailable:
            found += f"; UNAVAILABLE: {outcome.unavailable}"
        report(f"drill {i + 1}/{settings.drills} (seed {seed}): {found}; "
               f"{outcome.verdict.acked_writes} acked, {len(outcome.verdict.lost_acked)} lost"
               + (f", RTO {outcome.rto_s:.2f} s" if outcome.failover and outcome.rto_s else ""))
        if not outcome.healed:
            stopped = (f"drill {i + 1} (seed {seed}) did not heal: "
                       + "; ".join(outcome.heal_problems))
            break
    return CampaignResult(settings, target.topology.strategy.value,
                          target.topology.replication.value, outcomes, started,
                          round(time.monotonic() - t0, 1), stopped)


def run_one(target: DrillTarget, settings: CampaignSettings, index: int, seed: int,
            report: Report) -> DrillOutcome:
    scenario = draw(seed, shape_of(target))
    report(f"drill {index + 1}/{settings.drills} (seed {seed}) {scenario.describe()}")
    journal = Journal(FileSink(target.journal_path))
    tail = JournalTail(target.journal_path)
    home = target.ports.state.load().primary
    url = target.front_door_url()
    load = LoadGenerator(url, rate=settings.rate, workers=settings.workers,
                         duration_s=settings.settle_deadline_s + 30).start()
    if not _until(lambda: bool(load.result.acked_writes), WARMUP_DEADLINE_S):
        load.stop()
        raise NotAvailable(f"drill {index + 1} (seed {seed}): no write was acknowledged in "
                           f"{WARMUP_DEADLINE_S:.0f} s before the fault; the sandbox does not "
                           "serve writes, so a history would prove nothing")
    time.sleep(WARMUP_S)
    fault_ns = time.monotonic_ns()
    journal.record(Event.CAMPAIGN, outcome="drill", index=index, seed=seed,
                   scenario=scenario.describe())
    runner = ActionRunner(target, settings.config, tail, fault_ns,
                          settings.out_dir / f"drill-{index + 1:03d}",
                          lambda m: report(f"  {m}"))
    try:
        for action in scenario.actions:
            runner.run(action)
        last_action_ns = time.monotonic_ns()
        settled = _until(lambda: _settled(target, load.result, last_action_ns, runner),
                         settings.settle_deadline_s - (time.monotonic_ns() - fault_ns) / 1e9)
        unavailable = None if settled else _why_unsettled(target, load.result, last_action_ns,
                                                          runner, settings.settle_deadline_s)
        time.sleep(TAIL_S)
    finally:
        result = load.stop()
        undone = runner.undo()
    plans = _plans(tail.poll(), fault_ns)
    problems = heal_to_home(target, home, lambda m: report(f"  {m}"),
                            reason=f"campaign drill {index + 1} (seed {seed}) heal")
    try:
        rows: list[history.Row] | None = [
            history.Row(*row) for row in target.orders(
                target.ports.state.load().primary, f"load-{load.run_id}-",
                timeout_s=5 if problems else 30)]
    except ProviderError as exc:
        if not problems:
            raise
        rows = None
        problems.append(f"rows not checked: {exc}")
    async_sources = sorted({p["source"] for p in plans if p["kind"] == "failover"}) \
        if target.topology.replication is Replication.ASYNC else []
    survivor = target.ports.state.load().primary
    found = target.timelines(survivor) if rows is not None else None
    drill_history = DrillHistory(
        result.requests, rows, fences_in(tail.poll(), fault_ns), async_sources,
        None if found is None else history.Timelines(*found, region=survivor),
        target.topology.replication is Replication.SYNC)
    verdict = drill_history.check()
    history_file = settings.out_dir / "histories" / f"drill-{index + 1:03d}-seed-{seed}.jsonl"
    write_history(history_file, drill_history)
    return DrillOutcome(index, scenario, verdict, runner.done + undone, runner.skipped, plans,
                        client_rto_s(result, fault_ns), len(result.requests), not problems,
                        problems, str(history_file.relative_to(settings.out_dir)),
                        unavailable)


def _until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + max(0.0, timeout_s)
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _settled(target: DrillTarget, load: LoadResult, since_ns: int,
             runner: ActionRunner) -> bool:
    """No plan running, the switchover child gone, and a write acknowledged after `since_ns`."""
    plan = target.ports.state.read_plan()
    if plan is not None and plan.running:
        return False
    return runner.settled() and any(
        r.kind == "write" and r.ok and r.t_ns > since_ns for r in list(load.requests))


def _why_unsettled(target: DrillTarget, load: LoadResult, since_ns: int,
                   runner: ActionRunner, deadline_s: float) -> str:
    plan = target.ports.state.read_plan()
    running = plan is not None and plan.running
    acked = any(r.kind == "write" and r.ok and r.t_ns > since_ns for r in list(load.requests))
    return (f"not settled {deadline_s:g} s after the fault: "
            + ", ".join(why for why, bad in (
                (f"plan {plan.id if plan else ''} still running", running),
                ("the switchover child still running", not runner.settled()),
                ("no write acknowledged since the last action", not acked)) if bad))


def _plans(entries: list[dict[str, Any]], since_ns: int) -> list[dict[str, Any]]:
    """Each plan started since `since_ns`: kind, source, target and how it ended."""
    plans: dict[str, dict[str, Any]] = {}
    for e in entries:
        if e.get("event") != "plan" or int(e["mono_ns"]) < since_ns:
            continue
        pid = str(e.get("plan"))
        if e.get("outcome") == "started":
            plans[pid] = {"id": pid, "kind": e.get("name"), "source": e.get("source"),
                          "target": e.get("target"), "outcome": "started"}
        elif pid in plans:
            plans[pid]["outcome"] = e.get("outcome")
    return list(plans.values())


@dataclass
class DrillHistory:
    """Everything the checker reads for one drill; a history file holds exactly this."""

    requests: list[Request]
    rows: list[history.Row] | None  # None: the database could not be read
    fences: list[history.Fence]
    loss_allowed_from: list[str]
    timelines: history.Timelines | None = None  # the surviving primary's (property 6)
    sync: bool = False
    discarded: list[str] = field(default_factory=list)  # an old primary's, before its rewind

    def check(self) -> history.Verdict:
        return history.check(self.requests, self.rows, self.fences, self.loss_allowed_from,
                             self.timelines, self.sync, self.discarded)


def write_history(path: Path, h: DrillHistory) -> None:
    """One JSON object per line: the drill's whole client history, the rows it left, the
    journal's fences: what an anomaly's excerpt came from, and enough to re-check it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        f.write(json.dumps({"type": "meta", "loss_allowed_from": h.loss_allowed_from,
                            "rows_read": h.rows is not None, "sync": h.sync,
                            "discarded": h.discarded}) + "\n")
        if h.timelines is not None:
            f.write(json.dumps({"type": "timelines", **asdict(h.timelines)}) + "\n")
        for fence in h.fences:
            f.write(json.dumps({"type": "fence", **asdict(fence)}) + "\n")
        for r in h.requests:
            f.write(json.dumps({"type": "request", **history.entry(r)}) + "\n")
        for row in h.rows or []:
            f.write(json.dumps({"type": "row", **asdict(row)}) + "\n")


def read_history(path: Path) -> DrillHistory:
    """A history file back (to re-check it, or to inject an anomaly into it)."""
    h = DrillHistory([], [], [], [])
    rows: list[history.Row] = []
    rows_read = True
    for line in path.read_text().splitlines():
        item = json.loads(line)
        kind = item.pop("type")
        if kind == "meta":
            h.loss_allowed_from = list(item["loss_allowed_from"])
            rows_read = bool(item.get("rows_read", True))
            h.sync = bool(item.get("sync", False))
            h.discarded = list(item.get("discarded", []))
        elif kind == "timelines":
            h.timelines = history.Timelines(
                int(item["current"]), {int(k): v for k, v in item["switched_at"].items()},
                item.get("region"))
        elif kind == "fence":
            h.fences.append(history.Fence(**item))
        elif kind == "row":
            rows.append(history.Row(**item))
        else:
            item.pop("end_ns", None)
            h.requests.append(Request(**item))
    h.rows = rows if rows_read else None
    return h


def summary(result: CampaignResult) -> dict[str, Any]:
    """campaign-report.json."""
    outcomes = result.outcomes
    faults: Counter[str] = Counter()
    for o in outcomes:
        faults.update(a.act.value for a in o.scenario.actions if a.act in FAULTS)
    anomalies = [{"drill": o.index + 1, "seed": o.scenario.seed, "scenario": o.scenario.kind,
                  **a.to_dict()} for o in outcomes for a in o.verdict.anomalies]
    rtos = sorted(o.rto_s for o in outcomes if o.failover and o.rto_s is not None)
    return {
        "campaign": {"seed": result.settings.seed, "requested": result.settings.drills,
                     "strategy": result.strategy, "replication": result.replication,
                     "started_at": result.started_at, "duration_s": result.duration_s,
                     "stopped_early": result.stopped_early,
                     "replay": "regionguard drill --campaign 1 --seed <a drill's seed>"},
        "drills": len(outcomes),
        "faults": dict(sorted(faults.items())),
        "scenarios": dict(sorted(Counter(o.scenario.kind for o in outcomes).items())),
        "failovers": sum(1 for o in outcomes if o.failover),
        "acked_writes": sum(o.verdict.acked_writes for o in outcomes),
        "lost_acked": sum(len(o.verdict.lost_acked) for o in outcomes),
        "split_brain": sum(o.verdict.split_brain for o in outcomes),
        "anomalies": anomalies,
        "unavailable": [{"drill": o.index + 1, "seed": o.scenario.seed,
                         "scenario": o.scenario.kind, "detail": o.unavailable}
                        for o in outcomes if o.unavailable],
        "rto_s": _percentiles(rtos),
        "per_drill": [o.to_dict() for o in outcomes],
    }


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    return {"n": len(values), **{name: round(percentile(values, pct), 3)
                                 for name, pct in (("p50", 50), ("p95", 95), ("max", 100))}}
