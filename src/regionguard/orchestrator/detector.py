"""Probe results -> region verdicts: thresholds, quorum and hysteresis, as a pure function.

A region is DOWN only when a quorum of independent probers have each failed `failure_threshold`
times in a row; it is UP again only after a quorum has succeeded `recovery_threshold` times in a
row. One slow or failed probe never moves a verdict. A probe slower than the policy's timeout
counts as failed even if it eventually answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from regionguard.config import HealthPolicy
from regionguard.orchestrator.ports import ProbeResult, VantageReport, Verdict


@dataclass(frozen=True, slots=True)
class Streak:
    """One prober's current run of equal outcomes for one region."""

    failures: int = 0
    successes: int = 0
    failing_since_ns: int | None = None


@dataclass(frozen=True, slots=True)
class RegionHealth:
    verdict: Verdict = Verdict.UNKNOWN
    streaks: Mapping[str, Streak] = field(default_factory=dict)
    changed_at_ns: int | None = None
    first_failure_ns: int | None = None  # when the failure streak behind a DOWN verdict began

    def failing(self, prober: str, threshold: int) -> bool:
        s = self.streaks.get(prober)
        return s is not None and s.failures >= threshold


def _advance(streak: Streak, result: ProbeResult, policy: HealthPolicy, now_ns: int) -> Streak:
    ok = result.ok and result.latency_s <= policy.timeout_s
    if ok:
        return Streak(failures=0, successes=streak.successes + 1)
    return Streak(
        failures=streak.failures + 1,
        successes=0,
        failing_since_ns=streak.failing_since_ns if streak.failures else now_ns,
    )


def observe(
    health: RegionHealth,
    results: Iterable[ProbeResult],
    policy: HealthPolicy,
    now_ns: int,
    counted: frozenset[str] | None = None,
) -> RegionHealth:
    """The next health of one region after one round of probe results.

    `counted` names the probers whose results count for this region (e.g. app probes count only
    where app processes should run); None counts every prober that reported."""
    streaks = dict(health.streaks)
    for r in results:
        streaks[r.prober] = _advance(streaks.get(r.prober, Streak()), r, policy, now_ns)
    voters = {p: s for p, s in streaks.items() if counted is None or p in counted}
    if len(voters) < policy.quorum:  # too few independent probers: no verdict can be reached
        return replace(health, streaks=streaks)
    failing = [s for s in voters.values() if s.failures >= policy.failure_threshold]
    # From UNKNOWN (a fresh controller) one agreeing round is enough to call a region UP;
    # coming back from DOWN needs the full recovery streak (hysteresis).
    recovered_need = 1 if health.verdict is Verdict.UNKNOWN else policy.recovery_threshold
    recovered = [s for s in voters.values() if s.successes >= recovered_need]
    quorum = policy.quorum

    verdict = health.verdict
    first_failure = health.first_failure_ns
    if len(failing) >= quorum and health.verdict is not Verdict.DOWN:
        verdict = Verdict.DOWN
        starts = [s.failing_since_ns for s in failing if s.failing_since_ns is not None]
        first_failure = min(starts) if starts else now_ns
    elif len(recovered) >= quorum and health.verdict is not Verdict.UP:
        verdict = Verdict.UP
        first_failure = None
    changed = now_ns if verdict is not health.verdict else health.changed_at_ns
    return replace(health, verdict=verdict, streaks=streaks, changed_at_ns=changed,
                   first_failure_ns=first_failure)


@dataclass(frozen=True, slots=True)
class VantageVerdict:
    """A region judged by vantage points elsewhere: DOWN needs a quorum of them, each fresh and
    each past the failure threshold. `first_failure_at` is the earliest failure among the
    voters (the start of detection, for the RTO breakdown)."""

    target: str
    verdict: Verdict
    voters: tuple[VantageReport, ...]
    first_failure_at: float | None = None
    detail: str = ""
    # reports stamped further in the future than the clock-skew bound: not counted
    rejected: tuple[VantageReport, ...] = ()


def vantage_verdict(reports: Iterable[VantageReport], target: str, policy: HealthPolicy,
                    now: float, stale_after_s: float,
                    outside: frozenset[str] = frozenset()) -> VantageVerdict:
    """Pure: the verdict on `target` from the reports of vantage points not in `outside` (the
    Regions of the region judged: a region never votes on itself, since its own view of itself
    dies with it). A report older than `stale_after_s` does not vote: a prober that stopped
    reporting is no witness either way. Nor does one stamped more than
    `policy.max_clock_skew_s` ahead of `now`: a writer whose clock runs fast would otherwise
    keep its report "fresh" long after it stopped probing."""
    mine = [r for r in reports if r.target == target and r.vantage not in outside]
    rejected = tuple(r for r in mine if r.observed_at - now > policy.max_clock_skew_s)
    fresh = tuple(r for r in mine if r not in rejected and now - r.observed_at <= stale_after_s)
    failing = [r for r in fresh if r.failures >= policy.failure_threshold]
    healthy = [r for r in fresh if r.successes >= 1]
    summary = ", ".join(f"{r.vantage}: {r.failures} failed/{r.successes} ok" for r in fresh)
    if len(failing) >= policy.quorum:
        starts = [r.failing_since for r in failing if r.failing_since is not None]
        return VantageVerdict(target, Verdict.DOWN, tuple(failing),
                              min(starts) if starts else now, summary, rejected)
    if len(healthy) >= policy.quorum:
        return VantageVerdict(target, Verdict.UP, tuple(healthy), None, summary, rejected)
    return VantageVerdict(target, Verdict.UNKNOWN, fresh, None,
                          summary or "no fresh reports from outside the region", rejected)
