"""Vantage reports -> a region's verdict: thresholds, quorum and freshness, as a pure function.

A region is DOWN only when a quorum of vantage points outside it (sites, or AWS Regions) each
report `failure_threshold` failed probes in a row, in reports fresh enough to count; one slow or
failed probe never moves a verdict, and a report from the future does not vote.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from regionguard.config import HealthPolicy
from regionguard.orchestrator.ports import VantageReport, Verdict


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
        dissent = _dissent(failing, healthy)
        if dissent:  # the failing voters share one Region, and another one sees it up
            return VantageVerdict(target, Verdict.UNKNOWN, fresh, None,
                                  f"{summary}; not DOWN: {dissent}", rejected)
        starts = [r.failing_since for r in failing if r.failing_since is not None]
        return VantageVerdict(target, Verdict.DOWN, tuple(failing),
                              min(starts) if starts else now, summary, rejected)
    if len(healthy) >= policy.quorum:
        return VantageVerdict(target, Verdict.UP, tuple(healthy), None, summary, rejected)
    return VantageVerdict(target, Verdict.UNKNOWN, fresh, None,
                          summary or "no fresh reports from outside the region", rejected)


def vantage_site(vantage: str) -> str:
    """Where a vantage point runs: an AWS app region's second prober (`us-west-2/b`) runs in
    its Region's site (`us-west-2`); every other vantage is a site of its own."""
    return vantage.split("/", 1)[0]


def _dissent(failing: list[VantageReport], healthy: list[VantageReport]) -> str:
    """Two probers of one site (an app region's two) make a quorum on their own; a fresh
    healthy report from another site then outweighs them: what they see may be their own
    site's link to the primary, not the primary. Without one (the witness's guard gone), they
    decide. "" when there is no such dissent."""
    sites = {vantage_site(r.vantage) for r in failing}
    if len(sites) > 1:
        return ""
    others = sorted({r.vantage for r in healthy if vantage_site(r.vantage) not in sites})
    return f"{', '.join(others)} sees it up" if others else ""
