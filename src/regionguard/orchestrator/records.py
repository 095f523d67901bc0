"""A running plan's record: what the state store keeps so that any runner can resume it.

The record is the plan itself, the epoch it claimed, its status, which steps are done (by their
index in the plan: a plan may run the same step twice, e.g. `route`), the facts its steps left
for later steps (`Scratch`), what a best-effort step could not do, and when each step first
started (a resumed step does not get a fresh deadline). It is a frozen value: the executor
replaces it after each step and saves the new one; the stores serialise it to JSON.

Records written before step indices (`"2:promote"`) are read as well, so a plan interrupted
by an upgrade still resumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from regionguard.errors import ProviderError
from regionguard.orchestrator.plans import Plan


class PlanStatus(StrEnum):
    RUNNING = "running"  # claimed and not finished: resumed by the next automatic drive
    DONE = "done"
    FAILED = "failed"  # stopped before its point of no return; the journal says why


@dataclass(slots=True)
class Scratch:
    """What one step of a running plan tells a later one. Saved with the record, so a resumed
    plan knows it too. Mutable: steps set it as they go, the executor saves it after each."""

    # the wall-clock time until which the old writer's apps may act on a lease they confirmed
    # before the fence revoked it (None: no lease in this world, or not revoked yet)
    lease_until: float | None = None
    lease_holder: str | None = None  # whose lease that is: the arbiter says when it ended
    # whether `fence` confirmed the old primary's database unable to write (None: not fenced)
    fence_complete: bool | None = None
    final_lsn: int | None = None  # a planned swap: where `stop_writes` stopped the primary
    degrade_recorded: bool = False  # promote recorded where the new primary began alone
    verify_failed: bool = False  # the last canary failed: a retry scales the target again
    forced_promote_recorded: bool = False  # a forced promote was journaled (once)
    # the write lease went to the target while its database promoted (`handover`): from
    # then on the plan cannot be rolled back, only finished
    handed_over: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scratch:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True)
class UnfinishedStep:
    """A best-effort step that could not be done (its region was unreachable): done when
    that region is back."""

    step: str
    args: Mapping[str, Any]
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "args": dict(self.args), "error": self.error}


@dataclass(frozen=True, slots=True)
class PlanRecord:
    plan: Plan
    epoch: int
    status: PlanStatus = PlanStatus.RUNNING
    done: tuple[int, ...] = ()  # indices into plan.steps
    scratch: Scratch = field(default_factory=Scratch)
    unfinished: tuple[UnfinishedStep, ...] = ()
    step_started_at: Mapping[int, float] = field(default_factory=dict)  # index -> wall time
    finished_at: float | None = None  # wall time it ended (done or failed)

    @property
    def id(self) -> str:
        return self.plan.id

    @property
    def running(self) -> bool:
        return self.status is PlanStatus.RUNNING

    def is_done(self, index: int) -> bool:
        return index in self.done

    def done_names(self) -> set[str]:
        return {self.plan.steps[i].name for i in self.done}

    def remaining(self) -> list[str]:
        return [s.name for i, s in enumerate(self.plan.steps) if i not in self.done]

    def with_done(self, index: int) -> PlanRecord:
        return replace(self, done=(*self.done, index))

    def finished(self, status: PlanStatus, at: float) -> PlanRecord:
        return replace(self, status=status, finished_at=at)

    def with_unfinished(self, item: UnfinishedStep) -> PlanRecord:
        return replace(self, unfinished=(*self.unfinished, item))

    def with_started(self, index: int, at: float) -> PlanRecord:
        return replace(self, step_started_at={**self.step_started_at, index: at})

    def to_dict(self) -> dict[str, Any]:
        return {**self.plan.to_dict(), "epoch": self.epoch, "status": self.status.value,
                "done": list(self.done), "scratch": self.scratch.to_dict(),
                "unfinished": [u.to_dict() for u in self.unfinished],
                "step_started_at": {str(i): t for i, t in self.step_started_at.items()},
                "finished_at": self.finished_at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanRecord:
        plan = Plan.from_dict(data)
        return cls(
            plan=plan, epoch=int(data.get("epoch", plan.base_epoch + 1)),
            status=PlanStatus(data.get("status", PlanStatus.RUNNING)),
            done=tuple(_index(d) for d in data.get("done", ())),
            scratch=Scratch.from_dict(data.get("scratch") or {}),
            unfinished=tuple(UnfinishedStep(u["step"], dict(u.get("args", {})),
                                            str(u.get("error", "")))
                             for u in data.get("unfinished", ())),
            step_started_at={_index(k): float(v)
                             for k, v in (data.get("step_started_at") or {}).items()},
            finished_at=(float(data["finished_at"]) if data.get("finished_at") is not None
                         else None))


def _index(key: object) -> int:
    """A step's index: an int, or an older record's "2:promote"."""
    if isinstance(key, int):
        return key
    return int(str(key).split(":", 1)[0])


def stored_record(raw: Mapping[str, Any] | None, where: str) -> PlanRecord | None:
    """A plan record as an arbiter stored it (None: no plan yet). One that cannot be read is a
    ProviderError naming `where`, never a guess at what the plan was."""
    if raw is None:
        return None
    try:
        return PlanRecord.from_dict(raw)
    except (KeyError, ValueError, TypeError) as exc:
        raise ProviderError(f"{where}: the plan record is unreadable ({type(exc).__name__}: "
                            f"{exc}); not acting on a guess") from None
