"""Detector: thresholds, quorum, hysteresis; no verdict from a single slow or failed probe."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regionguard.config import HealthPolicy
from regionguard.orchestrator.detector import RegionHealth, observe
from regionguard.orchestrator.ports import ProbeResult, Verdict

pytestmark = pytest.mark.unit

POLICY = HealthPolicy()  # 3 failures, 5 recoveries, quorum 2, timeout 0.2 s


def round_(pg: bool, http: bool, latency: float = 0.01) -> list[ProbeResult]:
    return [ProbeResult("postgres", "east", pg, latency),
            ProbeResult("http", "east", http, latency)]


def run(rounds: list[list[ProbeResult]], start: Verdict = Verdict.UP) -> list[Verdict]:
    h = RegionHealth(verdict=start)
    out = []
    for i, r in enumerate(rounds):
        h = observe(h, r, POLICY, now_ns=i * 250_000_000)
        out.append(h.verdict)
    return out


def test_down_after_threshold_consecutive_failures_seen_by_both_probers() -> None:
    verdicts = run([round_(False, False)] * 3)
    assert verdicts == [Verdict.UP, Verdict.UP, Verdict.DOWN]


def test_one_prober_failing_forever_never_makes_down() -> None:
    assert Verdict.DOWN not in run([round_(False, True)] * 50)
    assert Verdict.DOWN not in run([round_(True, False)] * 50)


def test_a_slow_probe_counts_as_failed_but_one_is_not_enough() -> None:
    slow = round_(True, True, latency=POLICY.timeout_s + 0.05)
    assert run([slow, round_(True, True), slow, slow]) == [Verdict.UP] * 4
    assert run([slow] * 3)[-1] is Verdict.DOWN


def test_recovery_needs_recovery_threshold_successes_hysteresis() -> None:
    verdicts = run([round_(False, False)] * 3 + [round_(True, True)] * 5)
    assert verdicts[2] is Verdict.DOWN
    assert verdicts[3:7] == [Verdict.DOWN] * 4
    assert verdicts[7] is Verdict.UP


def test_first_failure_time_is_when_the_streak_began() -> None:
    h = RegionHealth(verdict=Verdict.UP)
    for i, r in enumerate([round_(True, True), round_(False, False), round_(False, False),
                           round_(False, False)]):
        h = observe(h, r, POLICY, now_ns=i * 100)
    assert h.verdict is Verdict.DOWN
    assert h.first_failure_ns == 100 and h.changed_at_ns == 300


def test_only_counted_probers_vote_and_too_few_voters_never_decide() -> None:
    h = RegionHealth(verdict=Verdict.UP)
    for i in range(10):
        h = observe(h, round_(False, False), POLICY, i, counted=frozenset({"postgres"}))
    assert h.verdict is Verdict.UP  # quorum 2 cannot be reached by one prober


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=60))
def test_no_down_without_quorum_of_threshold_failure_streaks(seq: list[tuple[bool, bool]]) -> None:
    """Property: DOWN appears only at a round where both probers' current failure streaks
    are each at least failure_threshold long."""
    h = RegionHealth(verdict=Verdict.UP)
    streak = {"postgres": 0, "http": 0}
    for i, (pg, http) in enumerate(seq):
        streak["postgres"] = 0 if pg else streak["postgres"] + 1
        streak["http"] = 0 if http else streak["http"] + 1
        before = h.verdict
        h = observe(h, round_(pg, http), POLICY, i)
        if h.verdict is Verdict.DOWN and before is not Verdict.DOWN:
            assert min(streak.values()) >= POLICY.failure_threshold


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_up_again_only_after_recovery_streak(seq: list[bool]) -> None:
    h = RegionHealth(verdict=Verdict.DOWN)
    ok_streak = 0
    for i, ok in enumerate(seq):
        ok_streak = ok_streak + 1 if ok else 0
        h = observe(h, round_(ok, ok), POLICY, i)
        if h.verdict is Verdict.UP:
            assert ok_streak >= POLICY.recovery_threshold
            break
