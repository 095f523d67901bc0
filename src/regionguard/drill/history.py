"""A history checker of our own (in the spirit of Jepsen's): the clients' history of one drill,
the rows left in the database, and the fences from the journal, checked for five properties.

1. every acknowledged write is present exactly once, with the id and value it was acknowledged
   with (kinds `lost-acked-write`, `duplicated-write`);
2. no read returns a value that was never written (`read-of-unwritten-value`);
3. epochs seen by clients never go backwards: a write acknowledged in epoch e finished before
   another write started means that one is acknowledged in e or later (`epoch-went-backwards`);
4. no two regions acknowledge writes in the same epoch (`two-writers-one-epoch`);
5. nothing is acknowledged by a region after its fence (`acked-by-fenced-region`);
6. every acknowledged write is placed on the surviving primary's own history, by where the
   server said its commit lies in the log (timeline and LSN, `Request.timeline`) and where that
   history left each earlier timeline (its timeline history file, `Timelines`): a write whose
   commit lies inside that history must be there, even under async replication, where a loss
   is otherwise allowed (`lost-on-surviving-history`); under sync replication no write may be
   acknowledged past the point where the survivor's timeline branched off (`acked-past-fork`):
   the standby had confirmed it, so the branch would have contained it. No clock is involved.

Properties 3-5 are what "split brain" means everywhere in regionguard (`split_brain`): the local
drill's measures, the campaign and the emulated AWS drill all call it, so the three kinds of
drill cannot disagree about whether a history had two writers.

With async replication an acknowledged write of a region that was failed away from may be lost
by design (bounded by `rpo_target_s`): such writes are counted in `lost_acked` but are not an
anomaly, unless property 6 places them inside the surviving history. Every other loss is. The
checker never asks the engine: only the clients' own history, the rows, the journal's fence
records (when each fence finished) and the surviving primary's timeline history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from regionguard.drill.load import Request
from regionguard.orchestrator.lsn import parse_lsn

EXCERPT = 6  # history entries kept per anomaly: enough to see it, small enough to read


class AnomalyKind(StrEnum):
    LOST = "lost-acked-write"
    DUPLICATED = "duplicated-write"
    UNWRITTEN_READ = "read-of-unwritten-value"
    EPOCH_BACKWARDS = "epoch-went-backwards"
    TWO_WRITERS = "two-writers-one-epoch"
    FENCED_ACK = "acked-by-fenced-region"
    LOST_ON_HISTORY = "lost-on-surviving-history"
    ACKED_PAST_FORK = "acked-past-fork"


SPLIT_BRAIN = frozenset({AnomalyKind.EPOCH_BACKWARDS, AnomalyKind.TWO_WRITERS,
                         AnomalyKind.FENCED_ACK})
# an acknowledged write missing: reported by its most specific kind (placed inside the
# surviving history, acknowledged past the fork under sync, or neither)
LOSSES = frozenset({AnomalyKind.LOST, AnomalyKind.LOST_ON_HISTORY, AnomalyKind.ACKED_PAST_FORK})


@dataclass(frozen=True, slots=True)
class Fence:
    """When a region was fenced (the journal's fence step, or a lab drill's view of etcd ending
    its lease, on the driller's clock): after it, the region must not acknowledge a write
    sent later, in an older epoch."""

    region: str
    done_ns: int  # monotonic time the fence step finished
    # the epoch the plan claimed: the fenced region may ack again only in this epoch or later
    # (after being promoted back); None: never again within the history checked
    epoch: int | None = None

    def forbids(self, r: Request) -> bool:
        """`r`, an acknowledged write, was sent after this fence and acked by the fenced
        region in an epoch older than the fence's."""
        return (r.region == self.region and r.t_ns > self.done_ns
                and (self.epoch is None or r.epoch is None or r.epoch < self.epoch))


@dataclass(frozen=True, slots=True)
class Timelines:
    """The surviving primary's own history: its timeline now, and where each earlier timeline
    of it ended (its timeline history file: the LSN where the next one branched off)."""

    current: int
    switched_at: dict[int, str] = field(default_factory=dict)  # timeline -> switch LSN
    # the surviving primary: only it writes on the timeline its own promotion created (a
    # timeline number alone is not an identity: two promotions can pick the same one)
    region: str | None = None

    def place(self, r: Request) -> bool | None:
        """True: `r`'s commit is inside this history; False: past the point where this
        history left its timeline (or on a timeline it never had); None: not known (no
        position, or a commit that straddles the switch point)."""
        if r.timeline is None or r.after_lsn is None or r.by_lsn is None:
            return None
        if r.timeline == self.current:
            return True if self.region is None or r.region == self.region else None
        switch = parse_lsn(self.switched_at.get(r.timeline))
        if switch is None:
            return False if r.timeline < self.current else None
        if (parse_lsn(r.by_lsn) or 0) <= switch:
            return True
        if (parse_lsn(r.after_lsn) or 0) >= switch:
            return False
        return None


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the run left in the database after the drill."""

    request_id: str
    order_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: AnomalyKind
    count: int
    detail: str
    excerpt: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "count": self.count, "detail": self.detail,
                "excerpt": list(self.excerpt)}


@dataclass
class Verdict:
    anomalies: list[Anomaly] = field(default_factory=list)
    lost_acked: list[str] = field(default_factory=list)  # every acknowledged write not present
    acked_writes: int = 0
    reads_checked: int = 0

    @property
    def kinds(self) -> set[AnomalyKind]:
        return {a.kind for a in self.anomalies}

    @property
    def split_brain(self) -> int:
        return sum(a.count for a in self.anomalies if a.kind in SPLIT_BRAIN)


def entry(r: Request) -> dict[str, Any]:
    """A history entry as the report shows it."""
    d = asdict(r)
    d["end_ns"] = r.end_ns
    return {k: v for k, v in d.items() if v is not None}


def check(history: Sequence[Request], rows: Iterable[Row] | None, fences: Sequence[Fence],
          loss_allowed_from: Collection[str] = (), timelines: Timelines | None = None,
          sync: bool = False, discarded: Collection[str] = ()) -> Verdict:
    """Check one drill. `loss_allowed_from`: regions an async failover left in this drill, whose
    acknowledged writes may be lost by design (they are still counted in `lost_acked`).
    `rows` None: the database could not be read (a drill that did not heal); the first
    property is then not checked, the others are. `timelines`: the surviving primary's
    history (property 6; None: not checked); `sync`: the topology replicates synchronously;
    `discarded`: request ids of the rows an old primary held past the fork, read before its
    rewind (providers/local/postgres/divergence.py): an acknowledged one is past the fork."""
    acked = [r for r in history if r.kind == "write" and r.ok and r.request_id]
    verdict = Verdict(acked_writes=len(acked), reads_checked=sum(
        1 for r in history if r.kind == "read" and r.status == 200))
    verdict.anomalies = [
        *(_present_exactly_once(acked, list(rows), loss_allowed_from, verdict, timelines,
                                sync, frozenset(discarded)) if rows is not None else []),
        *_reads_of_written_values(history),
        *split_brain(acked, fences),
    ]
    return verdict


def split_brain(acked: Sequence[Request], fences: Sequence[Fence] = ()) -> list[Anomaly]:
    """Properties 3-5 over acknowledged writes alone: epochs never backwards, one writer per
    epoch, nothing acknowledged by a region after its fence. For a history whose rows cannot
    be read, or a world with no fence records (the emulated AWS: pass none)."""
    return [*_epochs_forward(acked), *_one_writer_per_epoch(acked),
            *_nothing_after_fence(acked, fences)]


def _anomaly(kind: AnomalyKind, detail: str, involved: Sequence[Request]) -> Anomaly:
    return Anomaly(kind, len(involved), detail, tuple(entry(r) for r in involved[:EXCERPT]))


def _present_exactly_once(acked: Sequence[Request], rows: Sequence[Row],
                          loss_allowed_from: Collection[str], verdict: Verdict,
                          timelines: Timelines | None, sync: bool,
                          discarded: frozenset[str]) -> list[Anomaly]:
    by_id: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_id[row.request_id].append(row)
    lost, on_history, past_fork, duplicated = [], [], [], []
    for r in acked:
        assert r.request_id is not None
        present = by_id.get(r.request_id, [])
        if len(present) > 1:
            duplicated.append(r)
        elif not present or present[0].order_id != r.order_id \
                or present[0].quantity != r.quantity:
            verdict.lost_acked.append(r.request_id)
            placed = timelines.place(r) if timelines is not None else None
            if r.request_id in discarded:
                placed = False  # the old primary held it past the fork: seen, not inferred
            if placed is True:
                on_history.append(r)  # never allowed: the surviving history holds its commit
            elif placed is False and sync:
                past_fork.append(r)
            elif r.region not in loss_allowed_from:
                lost.append(r)
    found = []
    if lost:
        found.append(_anomaly(
            AnomalyKind.LOST, f"{len(lost)} acknowledged writes are not in the database "
            "(or hold another id or value)", lost))
    if on_history:
        found.append(_anomaly(
            AnomalyKind.LOST_ON_HISTORY, f"{len(on_history)} acknowledged writes are missing "
            "although their commits lie inside the surviving primary's own history (first: "
            f"timeline {on_history[0].timeline} by {on_history[0].by_lsn})", on_history))
    if past_fork:
        first = past_fork[0]
        branch = (timelines.switched_at.get(first.timeline or 0, "?") if timelines is not None
                  else "?")
        found.append(_anomaly(
            AnomalyKind.ACKED_PAST_FORK, f"{len(past_fork)} writes were acknowledged under "
            f"sync replication past the point where the surviving history left their timeline "
            f"(first: {first.request_id}, timeline {first.timeline} after {first.after_lsn}, "
            f"the branch at {branch})", past_fork))
    if duplicated:
        found.append(_anomaly(
            AnomalyKind.DUPLICATED, f"{len(duplicated)} acknowledged writes are in the database "
            "more than once", duplicated))
    return found


def _reads_of_written_values(history: Sequence[Request]) -> list[Anomaly]:
    """A read's (id, request_id, quantity) must be one some write sent; when that write was
    acknowledged, with the id it was acknowledged with."""
    sent = {r.request_id: r for r in history if r.kind == "write" and r.request_id}
    bad = []
    for r in history:
        if r.kind != "read" or r.status != 200:
            continue
        write = sent.get(r.request_id or "")
        if write is None or write.quantity != r.quantity or (
                write.ok and write.order_id != r.order_id):
            bad.append(r)
    if not bad:
        return []
    return [_anomaly(AnomalyKind.UNWRITTEN_READ,
                     f"{len(bad)} reads returned a value no client wrote", bad)]


def _epochs_forward(acked: Sequence[Request]) -> list[Anomaly]:
    """Real-time order: B started after A finished, so B's epoch must be >= A's."""
    with_epoch = [r for r in acked if r.epoch is not None]
    by_end = sorted(with_epoch, key=lambda r: r.end_ns)
    bad: list[Request] = []
    i, best = 0, None  # best: the finished write with the highest epoch so far
    for r in sorted(with_epoch, key=lambda r: r.t_ns):
        while i < len(by_end) and by_end[i].end_ns < r.t_ns:
            if best is None or (by_end[i].epoch or 0) > (best.epoch or 0):
                best = by_end[i]
            i += 1
        if best is not None and (r.epoch or 0) < (best.epoch or 0):
            bad += [best, r]
    if not bad:
        return []
    newer, older = bad[0], bad[1]
    return [_anomaly(AnomalyKind.EPOCH_BACKWARDS,
                     f"{len(bad) // 2} writes were acknowledged in an older epoch than a write "
                     f"that had finished before they started (first: {older.region} at epoch "
                     f"{older.epoch} after {newer.region} at epoch {newer.epoch})", bad)]


def _one_writer_per_epoch(acked: Sequence[Request]) -> list[Anomaly]:
    by_epoch: dict[int, dict[str, Request]] = defaultdict(dict)
    for r in acked:
        if r.epoch is not None and r.region:
            by_epoch[r.epoch].setdefault(r.region, r)
    found = []
    for epoch, writers in sorted(by_epoch.items()):
        if len(writers) > 1:
            found.append(_anomaly(
                AnomalyKind.TWO_WRITERS,
                f"epoch {epoch} has acknowledged writes from {', '.join(sorted(writers))}",
                list(writers.values())))
    return found


def _nothing_after_fence(acked: Sequence[Request], fences: Sequence[Fence]) -> list[Anomaly]:
    """One anomaly per fenced region that acknowledged writes sent after its fence."""
    by_region: dict[str, list[tuple[Request, Fence]]] = defaultdict(list)
    for r in acked:
        fence = next((f for f in fences if f.forbids(r)), None)
        if fence is not None:
            by_region[fence.region].append((r, fence))
    found = []
    for region, hits in sorted(by_region.items()):
        first, fence = min(hits, key=lambda hit: hit[0].t_ns)
        found.append(_anomaly(
            AnomalyKind.FENCED_ACK,
            f"{len(hits)} writes sent after their region's fence were acknowledged by fenced "
            f"region {region} (the first {(first.t_ns - fence.done_ns) / 1e9:.3f} s after "
            f"its fence, in epoch {first.epoch})", [r for r, _ in hits]))
    return found
