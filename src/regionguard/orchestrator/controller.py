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

from regionguard.config import Role, Topology
from regionguard.errors import ProviderError, RegionGuardError
from regionguard.orchestrator import engine, plans, readiness
from regionguard.orchestrator.approval import Approvals
from regionguard.orchestrator.automatic import AutomaticFailover, AutoResult
from regionguard.orchestrator.detector import RegionHealth, observe
from regionguard.orchestrator.events import Event
from regionguard.orchestrator.policy import (
    Action,
    Decision,
    Snapshot,
    counted_probers,
    decide,
)
from regionguard.orchestrator.ports import (
    DbStatus,
    LiveState,
    Ports,
    ProbeKind,
    ProbeResult,
    RouteTable,
    Verdict,
)
from regionguard.orchestrator.readiness_monitor import ReadinessMonitor
from regionguard.orchestrator.view import TickView

log = logging.getLogger("regionguard.controller")

# a caught-up standby confirms in milliseconds; past this the tick goes on and tries again
SYNC_CONFIRM_TIMEOUT_S = 1.0


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
    _restoring: Future[int] | None = None  # a sync restore waiting for the standby's word
    _restoring_for: Decision | None = None
    # what the last tick saw, for the ops endpoint's metrics and status page (replaced whole
    # each tick: a scrape reads one consistent view without a lock)
    view: TickView = field(default_factory=TickView)
    approvals: Approvals | None = None  # failover.approval = "manual": where requests wait
    readiness_facts: Callable[[], readiness.Facts] | None = None  # this world's gatherer
    _readiness: Future[list[readiness.Check]] | None = None
    _readiness_due_ns: int = 0

    def __post_init__(self) -> None:
        self.topology: Topology = self.ports.topology
        self.kinds: dict[str, ProbeKind] = {p.name: p.kind for p in self.ports.probers}
        self._probe_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="probe")
        # the standby's status, readiness and a sync restore: off the tick's thread
        self._status_pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="dbstatus")
        self._standby_status: Future[DbStatus] | None = None
        self._last_standby: DbStatus | None = None
        self.stop = threading.Event()
        # the one automatic-failover path (anti-flap, approval, drive, refusals), shared
        # with the AWS guard; the readiness monitor, shared the same way
        self.automatic = AutomaticFailover(self.ports, self.approvals)
        self.readiness_monitor = ReadinessMonitor(self.ports)

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
        self._poll_restore()
        snap = Snapshot(live, dict(self.health), self._poll_standby(standby), self.kinds)
        self._publish(results, snap)
        self._evaluate_readiness()
        decisions = decide(self.topology, snap)
        if not any(d.action is Action.FAILOVER for d in decisions):
            primary_up = self.health.get(live.primary, RegionHealth()).verdict is Verdict.UP
            try:  # the outage is over (or never began): tell the next one afresh
                self.automatic.recovered(live.primary, primary_up)
            except Exception as exc:  # never a reason not to act on the decisions
                self._record_error(exc)
            self.view = replace(self.view, awaiting_approval=self.automatic.awaiting)
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
        self.readiness_monitor.take(checks)

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
            self._change_sync(d, snap)
            return
        if d.action is Action.FAILOVER and d.region:
            self._failover(d, snap)

    def _change_sync(self, d: Decision, snap: Snapshot) -> None:
        """Degrade: record the primary's LSN first (from then on it acknowledges writes its
        standby may lack; an older record stays), then stop waiting; told only when
        something changed. Restore: off the tick's thread (the standby's confirmation can
        take a second; a verdict must not wait for it)."""
        p = self.ports
        assert d.region is not None
        if d.action is Action.RESTORE_SYNC:
            self._restore_sync(d, snap)
            return
        try:
            lsn = snap.live.sync_degraded_lsn
            noted = False
            if lsn is None:
                current = p.database.status(d.region).lsn
                if current is None:
                    raise ProviderError(f"{d.region}: no LSN to record; not degrading")
                lsn = p.state.note_sync_degraded(current)  # under the store's lock
                noted = lsn == current
            changed = p.database.set_sync_standby(d.region, None)
        except RegionGuardError as exc:
            p.journal.record(Event.SYNC_CHANGE_FAILED, region=d.region, detail=str(exc))
            return
        if changed or noted:
            self._tell(Event.DEGRADE_SYNC, d, lsn)

    def _restore_sync(self, d: Decision, snap: Snapshot) -> None:
        """Sync on, then the standby confirms it has everything, then the record goes, only
        if it is still the one this decision saw (Patroni's /sync: the standby is eligible
        again only once confirmed)."""
        assert d.region is not None and snap.live.sync_degraded_lsn is not None
        if self._restoring is not None:
            return  # one at a time; `_poll_restore` tells how it ended
        primary, standby = d.region, self.topology.other_region(d.region)
        since = snap.live.sync_degraded_lsn
        p = self.ports

        def restore() -> int:
            p.database.set_sync_standby(primary, standby)
            confirmed = p.database.confirm_sync(primary, standby, SYNC_CONFIRM_TIMEOUT_S)
            if not p.state.clear_sync_degraded(since):
                raise ProviderError(f"the degrade record moved from {since} while {standby} "
                                    "confirmed; it stays")
            return confirmed

        self._restoring = self._status_pool.submit(restore)
        self._restoring_for = d

    def _poll_restore(self) -> None:
        """Tell how a sync restore started on an earlier tick ended."""
        job, d = self._restoring, self._restoring_for
        if job is None or not job.done() or d is None:
            return
        self._restoring = None
        try:
            self._tell(Event.RESTORE_SYNC, d, job.result())
        except Exception as exc:  # not confirmed (yet): sync stays on, the record stays
            self.ports.journal.record(Event.SYNC_CHANGE_FAILED, region=d.region,
                                      detail=str(exc))

    def _tell(self, event: Event, d: Decision, lsn: int) -> None:
        self.ports.journal.record(event, region=d.region, detail=d.reason, lsn=lsn)
        self.ports.notifier.notify(event.value, {"primary": d.region, "reason": d.reason,
                                                 "lsn": lsn})

    def _failover(self, d: Decision, snap: Snapshot) -> None:
        """The primary is DOWN: the one automatic path decides the rest. When the standby
        cannot take over (it is refused, and alerted), the primary is restarted in place."""
        assert d.region is not None
        primary_health = self.health.get(snap.live.primary, RegionHealth())
        verdict = {"region": snap.live.primary, "verdict": "down",
                   "first_failure_ns": primary_health.first_failure_ns,
                   "mono_ns": primary_health.changed_at_ns}
        # the primary is DOWN: plan from the standby's status alone, never wait on the dead
        dbs = {d.region: snap.standby_db} if snap.standby_db is not None else {}
        result = self.automatic.attempt(d.region, d.reason, verdict,
                                        plans.Observation(snap.live, dbs), self.view.readiness)
        self.view = replace(self.view, awaiting_approval=self.automatic.awaiting)
        if result.result is AutoResult.REFUSED:
            self._restart_primary_in_place(snap.live)
        elif result.result in (AutoResult.DONE, AutoResult.BUSY):
            self.health = {}  # roles changed, or another runner acts: judge afresh

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
