"""What one campaign drill does, drawn at random from a seed: faults from the whole catalog,
alone or compounded, each at a random moment.

A scenario is a list of primitive actions, each anchored to the fault's start or to the first
plan the engine starts after it, with an offset. Drawing is a pure function of the seed and the
sandbox's shape (`Shape`), so `--campaign 1 --seed S` replays drill S exactly: the same actions
at the same offsets (the world's own timing still varies, which is the point).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Act(StrEnum):
    KILL_REGION = "kill-region"  # SIGKILL the region's PostgreSQL and app processes
    KILL_DB = "kill-db"
    KILL_APP = "kill-app"
    FREEZE = "freeze"  # SIGSTOP the region's processes ...
    THAW = "thaw"  # ... and SIGCONT them
    PARTITION = "partition"  # nftables drops the region's ports ...
    UNPARTITION = "unpartition"  # ... and stops dropping them
    ARM_CONTROLLER_KILL = "arm-controller-kill"  # hold the controller after `step` ...
    KILL_HELD_CONTROLLER = "kill-held-controller"  # ... and SIGKILL it while it holds
    KILL_CONTROLLER = "kill-controller"  # SIGKILL the controller wherever it is
    SWITCHOVER = "switchover"  # `regionguard switchover --to region` as a child process ...
    KILL_SWITCHOVER = "kill-switchover"  # ... SIGKILLed mid-plan


class Anchor(StrEnum):
    FAULT = "fault"  # the drill's fault time
    PLAN = "plan"  # the first plan started at or after the fault time


@dataclass(frozen=True, slots=True)
class Action:
    act: Act
    at_s: float
    anchor: Anchor = Anchor.FAULT
    region: str | None = None
    step: str | None = None  # ARM_CONTROLLER_KILL

    def describe(self) -> str:
        where = f" {self.region}" if self.region else ""
        step = f" after {self.step}" if self.step else ""
        return f"{self.act.value}{where}{step} at {self.anchor.value}+{self.at_s:.2f}s"


@dataclass(frozen=True, slots=True)
class Shape:
    """What a draw needs to know about the sandbox."""

    primary: str
    standby: str
    detect_s: float  # probe interval x failure threshold + probe timeout: time to a verdict
    can_partition: bool  # root and nftables


# failover steps the controller can be killed after (retire is after recovery: less interesting)
CONTROLLER_STEPS = ("scale", "fence", "promote", "await_ready", "route", "verify")


@dataclass(frozen=True, slots=True)
class Scenario:
    seed: int
    kind: str
    actions: tuple[Action, ...]
    expects_failover: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        return f"{self.kind}: " + "; ".join(a.describe() for a in self.actions)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["description"] = self.describe()
        return d


KINDS = ("kill", "freeze-at-threshold", "partition", "controller-at-step",
         "second-fault-in-recovery", "fault-during-switchover", "standby-then-primary")


def draw(seed: int, shape: Shape) -> Scenario:
    """The scenario of drill `seed`: a kind, then its faults and timing."""
    rng = random.Random(seed)
    kind = rng.choice(KINDS)
    p, s = shape.primary, shape.standby
    jitter = round(rng.uniform(0.0, 1.0), 2)  # when the first fault lands after the warmup
    notes: list[str] = []
    if kind == "partition" and not shape.can_partition:
        kind = "freeze-at-threshold"
        notes.append("partition needs root and nftables: drew a freeze instead")

    if kind == "kill":
        act, region = rng.choice([(Act.KILL_REGION, p), (Act.KILL_DB, p), (Act.KILL_APP, p),
                                  (Act.KILL_APP, s), (Act.KILL_DB, s)])
        actions = [Action(act, jitter, region=region)]
        expects = region == p and act is not Act.KILL_APP
    elif kind == "freeze-at-threshold":
        # just below to well past the time the probes need to declare the region DOWN
        hold = round(shape.detect_s * rng.uniform(0.8, 1.6), 2)
        actions = [Action(Act.FREEZE, jitter, region=p), Action(Act.THAW, jitter + hold, region=p)]
        expects = False  # either outcome is correct; the history decides
        notes.append(f"frozen {hold:g} s against a detection time of {shape.detect_s:g} s")
    elif kind == "partition":
        hold = round(rng.uniform(shape.detect_s * 0.8, shape.detect_s * 4), 2)
        actions = [Action(Act.PARTITION, jitter, region=p),
                   Action(Act.UNPARTITION, jitter + hold, region=p)]
        expects = False
    elif kind == "controller-at-step":
        step = rng.choice(CONTROLLER_STEPS)
        actions = [Action(Act.ARM_CONTROLLER_KILL, jitter, step=step),
                   Action(Act.KILL_REGION, jitter, region=p),
                   Action(Act.KILL_HELD_CONTROLLER, 0.0, Anchor.PLAN)]
        expects = True
    elif kind == "second-fault-in-recovery":
        first = rng.choice([Act.KILL_REGION, Act.KILL_DB])
        second_at = round(rng.uniform(0.0, 1.5), 2)
        second = rng.choice(["kill-controller", "kill-app", "freeze", "kill-db"])
        actions = [Action(first, jitter, region=p)]
        if second == "kill-controller":
            actions.append(Action(Act.KILL_CONTROLLER, second_at, Anchor.PLAN))
        elif second == "kill-app":
            actions.append(Action(Act.KILL_APP, second_at, Anchor.PLAN, region=s))
        elif second == "freeze":
            hold = round(rng.uniform(0.2, shape.detect_s * 1.5), 2)
            actions += [Action(Act.FREEZE, second_at, Anchor.PLAN, region=s),
                        Action(Act.THAW, second_at + hold, Anchor.PLAN, region=s)]
        else:  # the new primary dies too: nothing may be acknowledged and then lost
            actions.append(Action(Act.KILL_DB, second_at, Anchor.PLAN, region=s))
        expects = True
    elif kind == "standby-then-primary":
        # the sync standby is lost (frozen) for less or more than the time the primary needs
        # to degrade to writing alone, then the primary's region dies and the standby thaws
        # at once: a standby the primary went on without must not take over (nor may any
        # write acknowledged alone be lost)
        hold = round(shape.detect_s * rng.uniform(0.5, 4.0), 2)
        actions = [Action(Act.FREEZE, jitter, region=s),
                   Action(Act.KILL_REGION, jitter + hold, region=p),
                   Action(Act.THAW, jitter + hold, region=s)]
        expects = False  # failed over (no degrade yet) or restarted in place (degraded)
        notes.append(f"standby frozen {hold:g} s against a detection time of "
                     f"{shape.detect_s:g} s, then the primary killed")
    else:  # fault-during-switchover
        at = round(rng.uniform(0.0, 1.2), 2)
        fault = rng.choice([(Act.KILL_SWITCHOVER, None), (Act.KILL_REGION, p),
                            (Act.KILL_DB, s), (Act.KILL_CONTROLLER, None)])
        actions = [Action(Act.SWITCHOVER, jitter, region=s),
                   Action(fault[0], at, Anchor.PLAN, region=fault[1])]
        expects = False  # the switchover may finish, be rolled back, or be failed over
    return Scenario(seed, kind, tuple(actions), expects, tuple(notes))
