"""What a drill proves, from the client's own history and the journal (never the engine's word).

- RTO: first failed request after the fault -> first successful write after it (client clock).
- availability: successful / total requests during the drill.
- RPO: acknowledged writes missing on the primary afterwards, checked one by one.
- split brain: what the history checker calls it (`history.split_brain`): two regions
  acknowledging writes in one epoch, a write acknowledged in an older epoch than one that had
  finished before it started, or any write acknowledged by a region after its fence.
- mismatched/phantom rows: an acknowledged write whose row has another id (lost, then written
  again), or a row with this run's prefix that the client never sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from regionguard.drill import history
from regionguard.drill.history import Fence
from regionguard.drill.load import LoadResult, Request, client_rto_s

FENCING_STEPS = ("fence", "stop_writes")  # failover's fence, switchover's stop of writes


def fences_in(entries: Iterable[Mapping[str, Any]], since_ns: int) -> list[Fence]:
    """Every fence the journal records since `since_ns`: the plan's source, when the step
    finished, and the epoch the plan claimed."""
    sources: dict[str, str] = {}
    fences = []
    for e in entries:
        if e.get("event") == "plan" and e.get("outcome") == "started":
            sources[str(e.get("plan"))] = str(e.get("source"))
        elif (e.get("event") == "step" and e.get("step") in FENCING_STEPS
              and e.get("outcome") == "done" and int(e["mono_ns"]) >= since_ns
              and str(e.get("plan")) in sources):
            epoch = e.get("epoch")
            fences.append(Fence(sources[str(e.get("plan"))], int(e["mono_ns"]),
                                int(epoch) if epoch is not None else None))
    return fences


def split_brain(acked: Sequence[Request], fences: Sequence[Fence]) -> list[str]:
    """The history checker's split-brain findings, one line each (empty: a clean history)."""
    return [a.detail for a in history.split_brain(acked, fences)]


@dataclass
class DrillMeasures:
    fault: str
    region: str
    strategy: str
    replication: str
    duration_s: float
    requests: int
    ok: int
    failed: int
    availability: float
    rto_s: float | None
    engine: Mapping[str, Any] | None
    acked_writes: int
    rpo_lost: list[str] = field(default_factory=list)
    split_brain: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    phantoms: list[str] = field(default_factory=list)
    failover: bool = False
    new_primary: str | None = None
    fault_detail: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def rpo_count(self) -> int:
        return len(self.rpo_lost)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rpo_count"] = self.rpo_count
        d["split_brain_count"] = len(self.split_brain)
        return d


def measure(
    *, fault: str, region: str, strategy: str, replication: str, load: LoadResult,
    fault_ns: int, rows: Mapping[str, int], run_prefix: str, fences: Sequence[Fence],
    engine: Mapping[str, Any] | None, new_primary: str | None, fault_detail: str,
) -> DrillMeasures:
    """`rows` maps request_id -> order id for every row with `run_prefix` on the primary."""
    rto = client_rto_s(load, since_ns=fault_ns)
    acked = load.acked_writes
    sent = {r.request_id for r in load.requests if r.kind == "write"}
    ok = sum(1 for r in load.requests if r.ok)
    total = len(load.requests)
    return DrillMeasures(
        fault=fault, region=region, strategy=strategy, replication=replication,
        duration_s=(load.stopped_ns - load.started_ns) / 1e9,
        requests=total, ok=ok, failed=total - ok,
        availability=ok / total if total else 0.0,
        rto_s=rto, engine=engine, acked_writes=len(acked),
        rpo_lost=[r.request_id for r in acked if r.request_id not in rows and r.request_id],
        split_brain=split_brain(acked, fences),
        mismatched=[r.request_id for r in acked if r.request_id and r.request_id in rows
                    and r.order_id and rows[r.request_id] != r.order_id],
        phantoms=sorted(rid for rid in rows if rid.startswith(run_prefix) and rid not in sent),
        failover=new_primary is not None and new_primary != region,
        new_primary=new_primary, fault_detail=fault_detail,
    )
