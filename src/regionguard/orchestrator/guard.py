"""Detection from outside the primary, for worlds where no one process watches every region.

In AWS a whole Region can die with everything in it, so the region that is judged must never be
needed to judge it. Each vantage point (a scheduled function in the standby Region and one in the
witness Region) runs a `Guard`: every `interval_s` it probes the live primary, publishes its
running report to the arbiter, reads every vantage point's report, and reaches a verdict with the
pure `vantage_verdict` (a quorum of fresh reports from outside the primary's Region). Only the
guard in the failover target's own Region acts, through the engine's one entry point, so the plan
runs in the Region that survives. The same guard re-drives an interrupted plan (a function that
timed out or was killed), and after a failover it judges the new primary: protection follows the
live roles, not the file's home roles. When a region that was left behind runs again, its own
guard does what the last plan's best-effort steps could not do there (retire its capacity).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from regionguard.errors import RegionGuardError
from regionguard.orchestrator import engine
from regionguard.orchestrator.approval import Approvals
from regionguard.orchestrator.automatic import AutomaticFailover, AutoResult
from regionguard.orchestrator.detector import VantageVerdict, vantage_verdict
from regionguard.orchestrator.events import Event
from regionguard.orchestrator.executor import Executor
from regionguard.orchestrator.plans import Observation
from regionguard.orchestrator.ports import (
    LiveState,
    ObservationStore,
    Ports,
    Prober,
    VantageReport,
    Verdict,
)

log = logging.getLogger("regionguard.guard")


class CycleKind(StrEnum):
    WATCHING = "watching"  # probed the primary; no DOWN verdict
    OWN_REGION = "own_region"  # this site is in the primary's region: it does not judge itself
    PLAN_ELSEWHERE = "plan_elsewhere"  # a plan runs; it belongs to another region's guard
    DOWN_SEEN = "down_seen"  # DOWN, but this site does not act (the witness, manual mode)
    FAILOVER = "failover"  # this guard drove the failover
    RESUMED = "resumed"  # this guard re-drove an interrupted plan
    BUSY = "busy"  # another invocation holds the plan lease
    REFUSED = "refused"  # DOWN, but the standby is not eligible; alerted


@dataclass(frozen=True, slots=True)
class CycleResult:
    kind: CycleKind
    verdict: VantageVerdict | None = None
    outcome: engine.Outcome | None = None
    detail: str = ""

    @property
    def acted(self) -> bool:
        return self.kind in (CycleKind.FAILOVER, CycleKind.RESUMED)

    def as_dict(self) -> dict[str, Any]:
        return {"cycle": self.kind.value,
                "verdict": self.verdict.verdict.value if self.verdict else None,
                "outcome": self.outcome.as_dict() if self.outcome else None,
                "detail": self.detail}


@dataclass
class Guard:
    ports: Ports
    observations: ObservationStore
    prober: Prober
    vantage: str  # this site (an AWS Region)
    home: str | None  # the topology region this site belongs to; None for the witness
    sites_of: Callable[[str], frozenset[str]]  # region -> the sites that must not judge it
    interval_s: float
    timeout_s: float
    _mine: dict[str, VantageReport] = field(default_factory=dict)
    _alerted: set[str] = field(default_factory=set)
    _caught_up: bool = False  # unfinished steps of the last plan looked at, once per run
    approvals: Approvals | None = None  # failover.approval = "manual": requests in the arbiter
    stale_s: float | None = None  # a long-running guard (a site's agent) sets its own
    last_live: LiveState | None = None  # the state its last cycle read (for the ops views)

    def __post_init__(self) -> None:
        # the one automatic-failover path (anti-flap, approval, drive, refusals)
        self.automatic = AutomaticFailover(self.ports, self.approvals)

    @property
    def stale_after_s(self) -> float:
        """Reports older than this do not vote: three missed probes, or a minute-long gap
        between two scheduled runs, whichever is longer; or what a long-running guard (a
        site's agent, which has no gaps between runs) sets."""
        if self.stale_s is not None:
            return self.stale_s
        return max(3 * self.interval_s, 60.0 + 2 * self.interval_s)

    def last_report(self, target: str) -> VantageReport | None:
        """This vantage point's running report on `target` (None before its first probe)."""
        return self._mine.get(target)

    def cycle(self) -> CycleResult:
        """One probe round and what follows from it. Raises ProviderError when the arbiter
        cannot be read (then nothing safe can be decided this round)."""
        p = self.ports
        live = self.last_live = p.state.load()
        if live.plan is not None:
            if live.plan.plan.target != self.home:
                return CycleResult(CycleKind.PLAN_ELSEWHERE, detail=live.plan.id)
            outcome = engine.drive(p, engine.Request.resume_only())
            kind = CycleKind.RESUMED if outcome.result is engine.Result.RESUMED else \
                CycleKind.BUSY
            return CycleResult(kind, outcome=outcome, detail=outcome.detail)
        primary = live.primary
        if self.home is not None and primary != self.home and not self._caught_up:
            # this region is back (its guard runs): do what the last plan could not do here
            done = Executor(p).complete_unfinished(self.home)
            self._caught_up = True
            if done:
                log.info("completed in %s what the last plan left unfinished: %s",
                         self.home, ", ".join(done))
        if primary == self.home:
            return CycleResult(CycleKind.OWN_REGION)
        now = p.clock.time()
        probe = self.prober.probe(primary, self.timeout_s)
        before = self._mine.get(primary) or self._previous(primary, now)
        report = before.after(probe.ok, now, probe.detail[:200])
        self._mine[primary] = report
        self.observations.publish(report)
        reports = self.observations.reports(primary)
        read_at = p.clock.time()  # after the read: no honest report is newer than this
        verdict = vantage_verdict(reports, primary, p.topology.health, read_at,
                                  self.stale_after_s, self.sites_of(primary))
        self._record_rejected(verdict, read_at)
        if verdict.verdict is not Verdict.DOWN:
            self._alerted.discard(primary)
            if self.home == p.topology.other_region(primary):  # the failover target's guard
                self.automatic.recovered(primary, verdict.verdict is Verdict.UP)
            return CycleResult(CycleKind.WATCHING, verdict)
        standby = p.topology.other_region(primary)
        if p.topology.failover.mode == "manual":
            self._alert(primary, f"primary {primary} is DOWN ({verdict.detail}); failover "
                                 "mode is manual")
            return CycleResult(CycleKind.DOWN_SEEN, verdict, detail="manual mode")
        if self.home != standby:
            return CycleResult(CycleKind.DOWN_SEEN, verdict, detail="not the failover target")
        return self._fail_over(primary, standby, verdict, live)

    def _fail_over(self, primary: str, standby: str, verdict: VantageVerdict,
                   live: Any) -> CycleResult:
        p = self.ports
        seen_from = ", ".join(sorted(r.vantage for r in verdict.voters))
        reason = f"primary {primary} is DOWN as seen from {seen_from}"
        # the journal's own time base: reports carry wall-clock times, and so does an AWS
        # journal (its lines come from several invocations)
        now_ns = p.journal.clock_ns()
        first = verdict.first_failure_at
        journal_verdict = {
            "region": primary, "verdict": "down", "mono_ns": now_ns,
            "first_failure_ns": now_ns - int((p.clock.time() - first) * 1e9) if first else None,
            "vantages": verdict.detail}
        # the primary is down: plan from the standby's database alone, never wait on the dead
        obs = Observation(live, {standby: p.database.status(standby)},
                          p.database.zero_loss_switchover, observed_at=p.clock.time(),
                          source_lost_at=first)
        result = self.automatic.attempt(standby, reason, journal_verdict, obs)
        match result.result:
            case AutoResult.DONE | AutoResult.BUSY:
                self._mine.clear()  # roles changed (or another runner acts): afresh
                kind = (CycleKind.FAILOVER if result.result is AutoResult.DONE
                        else CycleKind.BUSY)
                return CycleResult(kind, verdict, result.outcome, result.detail)
            case AutoResult.FAILED:
                return CycleResult(CycleKind.FAILOVER, verdict, detail=result.detail)
            case AutoResult.REFUSED:
                return CycleResult(CycleKind.REFUSED, verdict, detail=result.detail)
            case _:  # held back, waiting for a person, or no answer before the claim
                return CycleResult(CycleKind.DOWN_SEEN, verdict, detail=result.detail)

    def _record_rejected(self, verdict: VantageVerdict, now: float) -> None:
        """Reports from the future did not vote: journaled once per vantage point while its
        clock stays ahead (a clock to fix), and again if it drifts ahead after recovering."""
        ahead = {f"future:{r.vantage}" for r in verdict.rejected}
        self._alerted -= {k for k in self._alerted if k.startswith("future:")} - ahead
        for report in verdict.rejected:
            key = f"future:{report.vantage}"
            if key in self._alerted:
                continue
            self._alerted.add(key)
            self.ports.journal.record(
                Event.OBSERVATION_REJECTED, region=report.target, vantage=report.vantage,
                ahead_s=round(report.observed_at - now, 3),
                detail=f"{report.vantage}'s report is stamped {report.observed_at - now:.1f} s "
                       f"ahead of this clock (bound {self.ports.topology.health.max_clock_skew_s:g}"
                       " s): not counted; check that site's clock")

    def _previous(self, target: str, now: float) -> VantageReport:
        """Continue this site's streak from its last published report when that is fresh (a
        new scheduled run picks up where the last one stopped), else start anew."""
        try:
            mine = [r for r in self.observations.reports(target) if r.vantage == self.vantage]
        except RegionGuardError:
            mine = []
        if mine and now - mine[0].observed_at <= self.stale_after_s:
            return mine[0]
        return VantageReport(self.vantage, target, 0, 0, now)

    def _alert(self, key: str, reason: str) -> None:
        if key in self._alerted:
            return
        self._alerted.add(key)
        self.ports.journal.record(Event.ALERT, region=key, detail=reason)
        self.ports.notifier.notify("alert", {"reason": reason})

    def run(self, duration_s: float) -> list[CycleResult]:
        """Cycle every `interval_s` for `duration_s` of elapsed time (a scheduled run's
        length; slow cycles make fewer rounds, never a longer run), or until this guard has
        driven a plan to its end."""
        clock = self.ports.clock
        started = clock.monotonic()
        results: list[CycleResult] = []
        while True:
            began = clock.monotonic()
            try:
                result = self.cycle()
            except RegionGuardError as exc:
                log.warning("guard cycle failed: %s", exc)
                result = CycleResult(CycleKind.WATCHING, detail=f"cycle failed: {exc}")
            results.append(result)
            if result.acted:
                return results
            next_at = began + self.interval_s
            if next_at - started >= duration_s:
                return results
            clock.sleep(next_at - clock.monotonic())
