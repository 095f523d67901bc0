"""The controller: probe every region each interval, decide from one snapshot, act.

`decide` is a pure function of the snapshot (live roles, region health, the standby's database
status); only `Controller` calls ports. One plan at a time: the controller runs a plan only while
holding the plan lock, resumes a plan it finds running with nobody holding the lock (a crashed
controller), and does nothing while another process (a manual command) runs one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from enum import StrEnum

from regionguard.config import Replication, Role, Topology
from regionguard.errors import ProviderError, RegionGuardError
from regionguard.orchestrator import engine, plans, readiness
from regionguard.orchestrator.approval import ApprovalGate, Approvals
from regionguard.orchestrator.detector import RegionHealth, observe
from regionguard.orchestrator.events import Event
from regionguard.orchestrator.executor import PlanFailed
from regionguard.orchestrator.ports import (
    DbStatus,
    LiveState,
    Ports,
    ProbeKind,
    ProbeResult,
    RouteTable,
    Verdict,
)
from regionguard.orchestrator.view import TickView

log = logging.getLogger("regionguard.controller")

CAUGHT_UP_BYTES = 1 << 20  # a standby this close streams the rest before sync matters
# a caught-up standby confirms in milliseconds; past this the tick goes on and tries again
SYNC_CONFIRM_TIMEOUT_S = 1.0


class Action(StrEnum):
    NONE = "none"
    FAILOVER = "failover"
    ALERT = "alert"
    REPAIR_APPS = "repair_apps"
    DEGRADE_SYNC = "degrade_sync"
    RESTORE_SYNC = "restore_sync"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    region: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    live: LiveState  # includes the persisted degrade point: it survives a restart
    health: Mapping[str, RegionHealth]
    standby_db: DbStatus | None
    probers: Mapping[str, ProbeKind] = field(default_factory=dict)  # name -> kind
    # this controller turned the primary's sync wait off since the current degrade record
    # (False after a restart: it is turned off again, idempotently, if the standby is lost)
    sync_off: bool = False

    def named(self, kind: ProbeKind) -> list[str]:
        return [name for name, k in self.probers.items() if k is kind]


def counted_probers(topology: Topology, region: str, role: Role,
                    probers: Mapping[str, ProbeKind]) -> frozenset[str]:
    """Application probes count only where app processes should run; replication probes
    (the primary's view of a standby) only for a standby."""
    apps_expected = topology.desired_processes(region, role) > 0

    def counts(kind: ProbeKind) -> bool:
        if kind is ProbeKind.APPLICATION:
            return apps_expected
        if kind is ProbeKind.REPLICATION:
            return role is Role.STANDBY
        return True
    return frozenset(name for name, kind in probers.items() if counts(kind))


def decide(topology: Topology, snap: Snapshot) -> list[Decision]:
    """What to do now, in order of urgency. Pure: the same snapshot gives the same decisions."""
    primary = snap.live.primary
    standby = topology.other_region(primary)
    policy = topology.health
    ph = snap.health.get(primary, RegionHealth())
    sh = snap.health.get(standby, RegionHealth())
    out: list[Decision] = []
    if ph.verdict is Verdict.DOWN:
        if topology.failover.mode == "manual":
            return [Decision(Action.ALERT, primary,
                             f"primary {primary} is DOWN; failover mode is manual")]
        return [Decision(Action.FAILOVER, standby, f"primary {primary} is DOWN")]
    threshold = policy.failure_threshold
    db_probers, app_probers = snap.named(ProbeKind.DATABASE), snap.named(ProbeKind.APPLICATION)
    if (db_probers and any(ph.failing(a, threshold) for a in app_probers)
            and not any(ph.failing(d, threshold) for d in db_probers)):
        out.append(Decision(Action.REPAIR_APPS, primary,
                            f"{primary}: app probes fail while its database answers"))
    if topology.replication is Replication.SYNC:
        # the standby is lost only by the same rule as any region: a quorum of its probers
        # (its database directly, the primary's replication view of it, its apps where they
        # run) each failing failure_threshold times; one slow prober never degrades sync
        standby_lost = sh.verdict is Verdict.DOWN
        db = snap.standby_db
        degraded_at = snap.live.sync_degraded_lsn
        caught_up = (
            db is not None and db.up and bool(db.in_recovery) and bool(db.streaming)
            and sh.verdict is Verdict.UP
            and db.lsn is not None and degraded_at is not None and db.lsn >= degraded_at
            and (db.lag_bytes is None or db.lag_bytes < CAUGHT_UP_BYTES)
        )
        # a record may exist while the primary waits for its standby again (a rejoin, `up`,
        # or a restore that did not get to clear it): losing the standby then must still turn
        # the wait off, or every commit blocks
        if (standby_lost and (degraded_at is None or not snap.sync_off)
                and topology.failover.sync_standby_lost == "degrade"):
            out.append(Decision(Action.DEGRADE_SYNC, primary,
                                f"sync standby {standby} lost; writing without it"))
        elif caught_up and degraded_at is not None:
            out.append(Decision(Action.RESTORE_SYNC, primary,
                                f"sync standby {standby} is back and caught up"))
    return out or [Decision(Action.NONE)]


RESUME_BACKOFF_MAX_S = 15.0
RESUME_BUSY_WAIT_S = 1.0  # another runner holds the plan: no need to ask four times a second
MAX_REMEMBERED_ERRORS = 100  # distinct unexpected errors told once each; then forgotten
RESTART_IN_PLACE_EVERY_S = 2.0  # a SIGKILLed postmaster's children take a moment to go
RESTART_IN_PLACE_TIMEOUT_S = 20.0


@dataclass
class Controller:
    ports: Ports
    clock_ns: Callable[[], int] = time.monotonic_ns
    health: dict[str, RegionHealth] = field(default_factory=dict)
    alerted: set[str] = field(default_factory=set)
    _roles_seen: dict[str, Role] = field(default_factory=dict)
    _resume_failures: int = 0
    _resume_not_before_ns: int = 0
    _restart_not_before_ns: int = 0
    _sync_off: bool = False  # see Snapshot.sync_off
    # what the last tick saw, for the ops endpoint's metrics and status page (replaced whole
    # each tick: a scrape reads one consistent view without a lock)
    view: TickView = field(default_factory=TickView)
    approvals: Approvals | None = None  # failover.approval = "manual": where requests wait
    readiness_facts: Callable[[], readiness.Facts] | None = None  # this world's gatherer
    _readiness: Future[list[readiness.Check]] | None = None
    _readiness_due_ns: int = 0
    _readiness_seen: dict[str, str] = field(default_factory=dict)  # check -> last status
    # anti-flap: when the last automatic plan ended (Unix time); read from the journal once,
    # then kept by this controller (only automatic plans count, and they are its own)
    _last_automatic_end: float | None = None
    _last_automatic_loaded: bool = False

    def __post_init__(self) -> None:
        self.topology: Topology = self.ports.topology
        self.kinds: dict[str, ProbeKind] = {p.name: p.kind for p in self.ports.probers}
        self._probe_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="probe")
        self._status_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dbstatus")
        self._standby_status: Future[DbStatus] | None = None
        self._last_standby: DbStatus | None = None
        self.stop = threading.Event()
        self._gate = ApprovalGate(self.ports, self.approvals) if self.approvals else None

    # -- one tick ---------------------------------------------------------------------------

    def probe_all(self) -> dict[str, list[ProbeResult]]:
        """Every prober on every region, concurrently, each bounded by the policy timeout."""
        timeout = self.topology.health.timeout_s
        futures = {
            (region, prober.name): self._probe_pool.submit(prober.probe, region, timeout)
            for region in self.topology.regions for prober in self.ports.probers
        }
        deadline = time.monotonic() + timeout + 0.02
        results: dict[str, list[ProbeResult]] = {r: [] for r in self.topology.regions}
        for (region, name), fut in futures.items():
            try:
                res = fut.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                res = ProbeResult(name, region, ok=False, latency_s=timeout, detail="timeout")
            except Exception as exc:  # a prober must never stop the controller
                res = ProbeResult(name, region, ok=False, latency_s=0.0, detail=str(exc))
            results[region].append(res)
        return results

    def _poll_standby(self, standby: str) -> DbStatus | None:
        fut = self._standby_status
        if fut is not None and fut.done():
            try:
                current = fut.result()
            except Exception:
                current = DbStatus(standby, up=False, error="status failed")
            previous = self._last_standby
            if current.lag_s is None and previous is not None and previous.lag_s is not None:
                # the primary is unreachable: keep the last lag measured against it
                current = replace(current, lag_s=previous.lag_s, lag_bytes=previous.lag_bytes)
            self._last_standby = current
            fut = None
        if fut is None:
            self._standby_status = self._status_pool.submit(self.ports.database.status, standby)
        return self._last_standby

    def tick(self) -> list[Decision]:
        live = self.ports.state.load()
        if live.plan is not None:
            self._resume(live)
            return [Decision(Action.NONE, reason="plan running")]
        if dict(live.roles) != self._roles_seen:  # roles changed: start every verdict afresh
            self.health = {}
            self._roles_seen = dict(live.roles)
            self._last_standby = None
        results = self.probe_all()
        now = self.clock_ns()
        for region, res in results.items():
            before = self.health.get(region, RegionHealth())
            after = observe(before, res, self.topology.health, now,
                            counted_probers(self.topology, region, live.roles[region],
                                            self.kinds))
            if after.verdict is not before.verdict:
                self.ports.journal.record(
                    Event.VERDICT_CHANGE, region=region, verdict=after.verdict.value,
                    previous=before.verdict.value,
                    first_failure_ns=after.first_failure_ns,
                    probes={r.prober: r.ok for r in res},
                )
                if after.verdict is Verdict.UP:
                    self.alerted.discard(region)
            self.health[region] = after
        standby = self.topology.other_region(live.primary)
        snap = Snapshot(live, dict(self.health), self._poll_standby(standby), self.kinds,
                        self._sync_off and live.sync_degraded_lsn is not None)
        self._publish(results, snap)
        self._evaluate_readiness()
        decisions = decide(self.topology, snap)
        if not any(d.action is Action.FAILOVER for d in decisions):
            self.alerted.discard("held_back")  # the next outage in the window is told again
            if self.approvals is not None and self.topology.failover.approval == "manual":
                try:
                    self._withdraw_approval(snap)
                except Exception as exc:  # never a reason not to act on the decisions
                    self._record_error(exc)
        for d in decisions:
            self.act(d, snap)
        return decisions

    # -- readiness --------------------------------------------------------------------------

    def _evaluate_readiness(self) -> None:
        """Every readiness.interval_s, off the tick's thread (a slow check never delays a
        verdict); a change of any check's status is journaled, a new failure alerted."""
        if self.readiness_facts is None:
            return
        fut = self._readiness
        if fut is not None and fut.done():
            self._readiness = None
            try:
                self._take_readiness(fut.result())
            except Exception as exc:  # a gatherer's bug: on the record, the loop goes on
                self._record_error(exc)
        now = self.clock_ns()
        if self._readiness is None and now >= self._readiness_due_ns:
            self._readiness_due_ns = now + int(self.topology.readiness.interval_s * 1e9)
            facts = self.readiness_facts
            self._readiness = self._status_pool.submit(
                lambda: readiness.evaluate(self.topology, facts()))

    def _take_readiness(self, checks: list[readiness.Check]) -> None:
        self.view = replace(self.view, readiness=[c.as_dict() for c in checks])
        now = {c.name: c.status for c in checks}
        if now == self._readiness_seen:
            return
        self.ports.journal.record(Event.READINESS, outcome=readiness.overall(checks),
                                  checks=[c.as_dict() for c in checks])
        for c in checks:
            if c.status == "fail" and self._readiness_seen.get(c.name) != "fail":
                self.ports.notifier.notify("readiness_failed", c.as_dict())
        self._readiness_seen = now

    def _publish(self, results: Mapping[str, list[ProbeResult]], snap: Snapshot) -> None:
        db = snap.standby_db
        self.view = replace(
            self.view,
            verdicts={r: h.verdict.value for r, h in self.health.items()},
            probes={(region, res.prober): res.ok
                    for region, rs in results.items() for res in rs},
            lag={db.region: (db.lag_bytes, db.lag_s)} if db is not None else {})

    # -- acting -----------------------------------------------------------------------------

    def act(self, d: Decision, snap: Snapshot) -> None:
        p = self.ports
        if d.action is Action.NONE:
            return
        if d.action is Action.ALERT:
            if d.region not in self.alerted:
                self.alerted.add(d.region or "")
                p.journal.record(Event.ALERT, region=d.region, detail=d.reason)
                p.notifier.notify("alert", {"region": d.region, "reason": d.reason})
            return
        if d.action is Action.REPAIR_APPS and d.region:
            want = self.topology.desired_processes(d.region, snap.live.roles[d.region])
            status = p.compute.scale(d.region, want)
            p.journal.record(Event.REPAIR, region=d.region, detail=d.reason, desired=status.desired)
            # give restarted processes time before judging them again
            self.health[d.region] = RegionHealth(verdict=self.health[d.region].verdict)
            return
        if d.action in (Action.DEGRADE_SYNC, Action.RESTORE_SYNC) and d.region:
            self._change_sync(d)
            return
        if d.action is Action.FAILOVER and d.region:
            self._failover(d, snap)

    def _change_sync(self, d: Decision) -> None:
        """Degrade: record the primary's LSN first (from then on it acknowledges writes its
        standby may lack), then stop waiting. Restore: wait again, then clear the record."""
        p = self.ports
        assert d.region is not None
        standby = self.topology.other_region(d.region)
        degrade = d.action is Action.DEGRADE_SYNC
        try:
            if degrade:
                recorded = p.state.load().sync_degraded_lsn
                lsn = recorded if recorded is not None else p.database.status(d.region).lsn
                if lsn is None:
                    raise ProviderError(f"{d.region}: no LSN to record; not degrading")
                if recorded is None:  # an older record stays: divergence began there
                    p.state.set_sync_degraded(lsn)
                p.database.set_sync_standby(d.region, None)
                self._sync_off = True
            else:  # sync on, then the standby confirms it has everything, then the record
                p.database.set_sync_standby(d.region, standby)  # goes (Patroni's /sync)
                lsn = p.database.confirm_sync(d.region, standby, SYNC_CONFIRM_TIMEOUT_S)
                p.state.set_sync_degraded(None)
                self._sync_off = False
        except RegionGuardError as exc:
            p.journal.record(Event.SYNC_CHANGE_FAILED, region=d.region, detail=str(exc))
            return
        detail = {"lsn": lsn}
        p.journal.record(Event(d.action.value), region=d.region, detail=d.reason, **detail)
        p.notifier.notify(d.action.value, {"primary": d.region, "reason": d.reason, **detail})

    def _held_back(self, d: Decision) -> bool:
        """Anti-flap: no automatic plan within failover.min_interval_s of the last one's end."""
        interval = self.topology.failover.min_interval_s
        if not interval:
            return False
        if not self._last_automatic_loaded:  # a previous controller's, once per process
            self._last_automatic_end = last_automatic_end(self.ports.journal.entries())
            self._last_automatic_loaded = True
        ended = self._last_automatic_end
        wait = (ended + interval - self.ports.clock.time()) if ended is not None else 0
        if wait <= 0:
            return False
        if "held_back" not in self.alerted:
            self.alerted.add("held_back")
            detail = (f"{d.reason}: held back {wait:.0f} s more, failover.min_interval_s = "
                      f"{interval:g} s after the last automatic plan")
            self.ports.journal.record(Event.HELD_BACK, region=d.region, detail=detail)
            self.ports.notifier.notify("held_back", {"region": d.region, "detail": detail})
        return True

    def _failover(self, d: Decision, snap: Snapshot) -> None:
        p = self.ports
        assert d.region is not None
        if self._held_back(d):
            return
        primary_health = self.health.get(snap.live.primary, RegionHealth())
        dbs = {d.region: snap.standby_db} if snap.standby_db is not None else {}
        verdict = {"region": snap.live.primary, "verdict": "down",
                   "first_failure_ns": primary_health.first_failure_ns,
                   "mono_ns": primary_health.changed_at_ns}
        request = engine.Request.automatic_failover(d.region, d.reason, verdict)
        observation = plans.Observation(snap.live, dbs)
        try:
            if self.topology.failover.approval == "manual":
                approved = self._approved(request, observation)
                if approved is None:
                    return
                request = approved
            # the primary is DOWN: plan from the standby's status alone, never wait on the dead
            try:
                engine.drive(p, request, observation=observation)
            finally:
                self._last_automatic_end = p.clock.time()
                self._last_automatic_loaded = True
        except PlanFailed as exc:
            log.error("failover failed: %s", exc)
        except RegionGuardError as exc:  # refused: the standby is not eligible
            key = f"ineligible:{d.region}"
            if key not in self.alerted:
                self.alerted.add(key)
                p.journal.record(Event.ALERT, region=d.region, detail=str(exc))
                p.notifier.notify("alert", {"reason": str(exc)})
            self._restart_primary_in_place(snap.live)
            return
        self.health = {}

    # -- approval -----------------------------------------------------------------------------

    def _approved(self, request: engine.Request, observation: plans.Observation
                  ) -> engine.Request | None:
        gate = self._gate
        assert gate is not None, "failover.approval = manual needs an approval store"
        try:
            return gate.gate(request, observation, self.view.readiness)
        finally:
            self.view = replace(self.view, awaiting_approval=gate.awaiting)

    def _withdraw_approval(self, snap: Snapshot) -> None:
        gate = self._gate
        assert gate is not None
        primary = snap.live.primary
        gate.recovered(primary, snap.health.get(primary, RegionHealth()).verdict is Verdict.UP)
        self.view = replace(self.view, awaiting_approval=gate.awaiting)

    def _restart_primary_in_place(self, live: LiveState) -> None:
        """No region to fail over to (a second fault): restart the primary's own database
        where it is, as Patroni restarts its leader's PostgreSQL. `promote` at the current
        epoch is exactly that, and idempotent: a crashed primary is started (crash recovery
        keeps every committed write), a running one is left alone, the epoch is not raised,
        and no second writer can appear (the other region is the one that is unavailable).
        At most one attempt per RESTART_IN_PLACE_EVERY_S, each journaled."""
        now = self.clock_ns()
        if now < self._restart_not_before_ns:
            return
        self._restart_not_before_ns = now + int(RESTART_IN_PLACE_EVERY_S * 1e9)
        p, primary = self.ports, live.primary
        if p.database.status(primary).up:
            return  # up but failing its probes otherwise (slow, partitioned): not ours to fix
        try:
            p.database.promote(primary, live.epoch, RESTART_IN_PLACE_TIMEOUT_S)
            # the region's apps too (a killed region lost both; idempotent): while the
            # primary stays DOWN no other decision would start them
            p.compute.scale(primary, self.topology.desired_processes(primary, Role.PRIMARY))
            # a failover that failed before its promote left the primary cut off at the
            # front door, and its epoch claimed: route to it again, with that epoch
            p.traffic.route(RouteTable(weights=plans.steady_weights(self.topology, primary),
                                       writer=primary, epoch=live.epoch))
        except RegionGuardError as exc:
            p.journal.record(Event.RESTART_IN_PLACE, region=primary, outcome="failed",
                             detail=str(exc))
            return
        p.journal.record(Event.RESTART_IN_PLACE, region=primary, outcome="done",
                         detail=f"{primary}'s database restarted where it is, epoch {live.epoch}")
        p.notifier.notify("restart_in_place", {"region": primary})
        self.health.pop(primary, None)  # judge it afresh

    def _resume(self, live: LiveState) -> None:
        """Resume the running plan; after a failed resume, wait (1, 2, 4 ... 15 s) before the
        next, so that the plan lock is free long enough for `up` or a person to repair what
        the plan is waiting for, instead of the controller re-taking it at once, for ever."""
        assert live.plan is not None
        if self.clock_ns() < self._resume_not_before_ns:
            return
        log.info("resuming interrupted plan %s", live.plan.id)
        try:
            outcome = engine.drive(self.ports, engine.Request.resume_only())
        except Exception as exc:  # a bug too: back off, or the loop re-takes the lock at once
            log.error("resumed plan failed: %s", exc)
            backoff_s = min(RESUME_BACKOFF_MAX_S, 2.0 ** self._resume_failures)
            self._resume_failures += 1
            self._resume_not_before_ns = self.clock_ns() + int(backoff_s * 1e9)
            self.ports.journal.record(Event.RESUME_BACKOFF, plan=live.plan.id,
                                      seconds=backoff_s, detail=str(exc))
            return
        self._resume_failures = 0
        if outcome.result is engine.Result.BUSY:  # its runner is alive: look again in a while
            self._resume_not_before_ns = self.clock_ns() + int(RESUME_BUSY_WAIT_S * 1e9)
        if outcome.result is engine.Result.RESUMED:
            self.health = {}

    def _record_error(self, exc: Exception) -> None:
        log.exception("tick failed unexpectedly")
        key = f"error:{type(exc).__name__}:{str(exc)[:120]}"
        if key in self.alerted:
            return
        errors = [k for k in self.alerted if k.startswith("error:")]
        if len(errors) >= MAX_REMEMBERED_ERRORS:  # messages with ids in them: stay bounded
            self.alerted.difference_update(errors)
        self.alerted.add(key)
        self.ports.journal.record(Event.CONTROLLER_ERROR, detail=f"{type(exc).__name__}: {exc}")
        self.ports.notifier.notify("controller_error", {"error": f"{type(exc).__name__}: {exc}"})

    def run_forever(self) -> None:
        interval = self.topology.health.interval_s
        self.ports.journal.record(Event.CONTROLLER, outcome="started",
                                  mode=self.topology.failover.mode)
        next_tick = time.monotonic()
        while not self.stop.is_set():
            try:
                self.tick()
            except RegionGuardError as exc:
                log.warning("tick failed: %s", exc)
            except Exception as exc:  # a bug or an unforeseen backend error: on the record,
                self._record_error(exc)  # told once, and the loop goes on (no crash loop)
            next_tick += interval
            delay = next_tick - time.monotonic()
            if delay < 0:
                next_tick = time.monotonic()
                delay = 0
            self.stop.wait(delay)
        self._probe_pool.shutdown(wait=False, cancel_futures=True)
        self._status_pool.shutdown(wait=False, cancel_futures=True)


def last_automatic_end(entries: list[dict[str, object]]) -> float | None:
    """When the last automatic plan (one with a verdict behind it) ended, as Unix time."""
    from datetime import datetime

    automatic = {e.get("plan") for e in entries if e.get("event") == "verdict"}
    for e in reversed(entries):
        if (e.get("event") == "plan" and e.get("plan") in automatic
                and e.get("outcome") in ("done", "failed")):
            try:
                return datetime.fromisoformat(str(e["ts"])).timestamp()
            except (KeyError, ValueError):
                return None
    return None
