"""Campaign scenarios: drawn from the seed alone (so a seed replays its drill), covering the
whole catalog and every compound timing."""

from __future__ import annotations

import pytest

from regionguard.drill.scenario import CONTROLLER_STEPS, KINDS, Act, Anchor, Shape, draw

pytestmark = pytest.mark.unit

SHAPE = Shape(primary="east", standby="west", detect_s=0.95, can_partition=True)


def test_a_seed_replays_its_scenario() -> None:
    assert [draw(s, SHAPE) for s in range(50)] == [draw(s, SHAPE) for s in range(50)]
    assert len({draw(s, SHAPE).describe() for s in range(50)}) > 40


def test_two_hundred_drills_cover_every_kind_fault_and_controller_step() -> None:
    scenarios = [draw(s, SHAPE) for s in range(200)]
    assert {s.kind for s in scenarios} == set(KINDS)
    acts = {a.act for s in scenarios for a in s.actions}
    assert acts == set(Act)
    steps = {a.step for s in scenarios for a in s.actions if a.act is Act.ARM_CONTROLLER_KILL}
    assert steps == set(CONTROLLER_STEPS)
    # compound timing: a second action anchored to the plan the first one started
    assert any(a.anchor is Anchor.PLAN and s.kind == "second-fault-in-recovery"
               for s in scenarios for a in s.actions)


def test_freezes_straddle_the_detection_threshold() -> None:
    holds = []
    for s in range(300):
        sc = draw(s, SHAPE)
        if sc.kind == "freeze-at-threshold":
            freeze, thaw = sc.actions
            holds.append(thaw.at_s - freeze.at_s)
    assert min(holds) < SHAPE.detect_s < max(holds)


def test_without_root_a_partition_becomes_a_freeze_and_says_so() -> None:
    shape = Shape("east", "west", 0.95, can_partition=False)
    scenarios = [draw(s, shape) for s in range(200)]
    assert not any(a.act is Act.PARTITION for s in scenarios for a in s.actions)
    assert any("partition needs root" in n for s in scenarios for n in s.notes)


def test_every_action_names_a_region_of_the_sandbox_or_none() -> None:
    for s in range(200):
        for a in draw(s, SHAPE).actions:
            assert a.region in (None, "east", "west")
            assert a.at_s >= 0


def test_a_lost_standby_is_followed_by_a_lost_primary_on_both_sides_of_the_degrade() -> None:
    """Loss of the sync standby, then of the primary: some before the primary degrades to
    writing alone (the standby has every acknowledged write and may take over), some after
    (it must not)."""
    holds = []
    for s in range(300):
        sc = draw(s, SHAPE)
        if sc.kind == "standby-then-primary":
            freeze, kill, thaw = sc.actions
            assert (freeze.act, freeze.region) == (Act.FREEZE, "west")
            assert (kill.act, kill.region) == (Act.KILL_REGION, "east")
            assert thaw.act is Act.THAW and thaw.at_s == kill.at_s
            holds.append(kill.at_s - freeze.at_s)
    assert min(holds) < SHAPE.detect_s < max(holds)
