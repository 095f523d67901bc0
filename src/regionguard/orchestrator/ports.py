"""The engine's ports: what it needs from a world, as synchronous Protocols and small values.

Written with the local world and owned by the engine: a provider implements these and never
decides policy. Every method's docstring states its contract: idempotent or not, bounded by which
timeout, and what it raises when the backend cannot be reached (`ProviderError` unless stated).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from regionguard.clock import SYSTEM_CLOCK, Clock
from regionguard.config import Role, Topology
from regionguard.orchestrator.deadlines import LOCAL_DEADLINES, Deadlines
from regionguard.orchestrator.journal import Journal

if TYPE_CHECKING:  # plans and records are built from these values, not the reverse
    from regionguard.orchestrator.plans import Plan
    from regionguard.orchestrator.records import PlanRecord


class Verdict(StrEnum):
    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class DbStatus:
    """One region's database as seen now. `up=False` means unreachable, not an error."""

    region: str
    up: bool
    in_recovery: bool | None = None
    lsn: int | None = None  # primary: current write LSN; standby: last replayed LSN
    timeline: int | None = None
    epoch: int | None = None  # the fencing token stored in the database (regionguard_epoch)
    lag_bytes: int | None = None  # standby only, measured against the live primary
    lag_s: float | None = None
    # standby only, where a history is kept (AWS replicas): (period end, maximum lag s),
    # oldest first. The lag just before the source was lost is what a failover loses; the
    # latest (lag_s) keeps growing once the source died
    lag_points: tuple[tuple[float, float], ...] = ()
    streaming: bool | None = None  # standby only: the live primary is sending it WAL now
    pids: tuple[int, ...] = ()
    port: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ComputeStatus:
    region: str
    desired: int
    ready: int
    pids: tuple[int, ...] = ()
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProbeResult:
    prober: str
    region: str
    ok: bool
    latency_s: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class VantageReport:
    """One vantage point's running judgement of one region, kept where every site can read it.

    Times are wall-clock seconds (the world's clock), because reports cross processes and
    Regions. `failing_since` is when the current run of failures began."""

    vantage: str  # where the prober runs (an AWS Region)
    target: str  # the region judged (its topology name)
    failures: int
    successes: int
    observed_at: float
    failing_since: float | None = None
    detail: str = ""

    def after(self, ok: bool, now: float, detail: str = "") -> VantageReport:
        """The report once one more probe has answered `ok` (or not) at `now`."""
        if ok:
            return VantageReport(self.vantage, self.target, 0, self.successes + 1, now, None,
                                 detail)
        return VantageReport(self.vantage, self.target, self.failures + 1, 0, now,
                             self.failing_since if self.failures else now, detail)


@dataclass(frozen=True, slots=True)
class FenceResult:
    """What fencing achieved; `complete=False` is journaled, never hidden."""

    region: str
    complete: bool
    actions: tuple[str, ...] = ()
    unfenced: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LiveState:
    """The StateStore's view: live roles and the epoch (fencing token) that only grows."""

    epoch: int
    roles: Mapping[str, Role]
    plan: PlanRecord | None = None  # the running plan, if any
    # the primary stopped waiting for its lost sync standby at this LSN (degrade): writes
    # acknowledged since then may exist on the primary alone
    sync_degraded_lsn: int | None = None

    @property
    def primary(self) -> str:
        return next(n for n, r in self.roles.items() if r is Role.PRIMARY)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    region: str | None
    epoch: int | None
    latency_s: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Where the front door sends requests: weights per region, the writer and its epoch."""

    weights: Mapping[str, int]
    writer: str
    epoch: int
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SnapshotCopy:
    """The newest backup of the primary's database found in a Region (backup & restore)."""

    region: str
    snapshot_id: str
    created_at: float  # wall-clock seconds: its age is the RPO of a restore

    def age_s(self, now: float) -> float:
        return max(0.0, now - self.created_at)


class Restorer(Protocol):
    """Backup & restore: nothing stands in the backup Region; its database is restored from
    the newest snapshot copied there."""

    def newest_copy(self, region: str) -> SnapshotCopy | None:
        """The newest available snapshot of the primary's database in `region`, if any."""
        ...

    def restore(self, region: str, snapshot_id: str, timeout_s: float) -> str:
        """Restore `region`'s database from `snapshot_id` and wait until it is available.
        Idempotent: a restore already under way (or done) is waited for, not repeated."""
        ...


class Database(Protocol):
    zero_loss_switchover: bool  # can stop writes and confirm the standby replayed them all
    # `stop_writes` returns only once the old primary's database can commit nothing more (a
    # clean shutdown): no app of it can write under its old lease, so a switchover need not
    # wait the lease out. False where the stop is a managed switchover's, done later.
    stopped_writes_are_final: bool
    # True where replication between the regions is asynchronous (AWS: RDS read replicas and
    # Aurora Global Database replicate across Regions asynchronously). A failover whose old
    # writer's database cannot be reached (its Region out or cut off, its replication with
    # it) then promotes as soon as the lease is revoked, without waiting it out: what the old
    # region acknowledges until its lease ends could not reach the new primary either way,
    # and `route` still waits for the lease's end, so no two regions take writes at once.
    # Where it can be reached, or replication is synchronous (the sites), promote waits.
    promotes_under_old_lease: bool

    def status(self, region: str) -> DbStatus:
        """Current state; never raises for an unreachable database (returns up=False).

        Bounded by ~2 s (psycopg's minimum connect timeout)."""
        ...

    def fence(self, region: str) -> FenceResult:
        """Make `region`'s database unable to accept writes. Idempotent, best effort:
        whatever could not be fenced is listed in the result, not raised."""
        ...

    def promote(self, region: str, epoch: int, timeout_s: float, planned: bool = False) -> None:
        """Make `region` the writable primary and store `epoch` in it. Idempotent:
        an already-promoted database only gets the epoch written (never lowered); a cleanly
        stopped primary (a switchover being rolled back) is started first. `planned` (the
        engine's decision: a switchover, no data loss) lets a managed database drain the old
        writer instead of failing over."""
        ...

    def stop_writes(self, region: str, timeout_s: float) -> int:
        """Planned demotion: stop the primary cleanly; return its final LSN. Idempotent."""
        ...

    def wait_replayed(self, region: str, lsn: int, timeout_s: float) -> int:
        """Wait until `region` has replayed `lsn`; return the replayed LSN or raise."""
        ...

    def rebuild_as_standby(self, region: str, of: str, timeout_s: float) -> str:
        """Turn `region` into a streaming standby of `of` (pg_rewind, else a fresh copy).
        Idempotent: a healthy standby of `of` is left alone. Returns the method used."""
        ...

    def set_sync_standby(self, primary: str, standby: str | None) -> bool:
        """Require (or, with None, stop requiring) `standby` to confirm every commit.
        Idempotent; True when the setting changed (so a loop that asks every tick journals
        only a change)."""
        ...

    def confirm_sync(self, primary: str, standby: str, timeout_s: float) -> int:
        """Wait until `standby` is `primary`'s synchronous standby (the primary's own view) and
        has flushed everything the primary had flushed once it was; return that LSN.

        What makes a degraded standby eligible again: from then on every acknowledged commit
        is on it, and so is everything acknowledged while the primary wrote alone (Patroni
        counts a standby as sync only once it reached the primary's flush LSN taken after
        the change). Bounded by `timeout_s`; raises ProviderError when not confirmed in time.
        Idempotent and read-only but for one tiny WAL record that moves replication on."""
        ...

    def stamp_epoch(self, region: str, epoch: int) -> None:
        """Store `epoch` as the fencing token of `region`'s running primary (never lowered):
        a plan that keeps the writer where it is but claimed an epoch (a standby rebuild)
        moves the token with it. A world whose token lives elsewhere (a lease) does nothing."""
        ...


class Compute(Protocol):
    def scale(self, region: str, count: int) -> ComputeStatus:
        """Run exactly `count` app processes in `region` (starting missing or dead ones,
        stopping extra ones). Idempotent; returns without waiting for readiness."""
        ...

    def status(self, region: str) -> ComputeStatus:
        ...

    def wait_ready(self, region: str, at_least: int, timeout_s: float) -> ComputeStatus:
        """Poll readiness until `at_least` processes answer; raise ProviderError at timeout."""
        ...


class Traffic(Protocol):
    def cut(self, region: str) -> None:
        """Send no more requests to `region` (maintenance at the front door). Idempotent."""
        ...

    def route(self, table: RouteTable) -> None:
        """Apply `table` at the front door, epoch header included. Idempotent."""
        ...

    def shares(self) -> dict[str, float]:
        """The share of new requests each region receives, read from the front door itself."""
        ...

    def verify(self, timeout_s: float) -> VerifyResult:
        """A real canary write and read through the front door (never user data)."""
        ...


class ProbeKind(StrEnum):
    """What a prober looks at; the engine reasons about kinds, never about prober names."""

    DATABASE = "database"  # the region's database answers (and in which role)
    APPLICATION = "application"  # the region's app answers, as its clients reach it
    # the primary's own view of a standby's replication: its walsender streams and the standby
    # confirms what it was sent (sync replication waits on exactly this); counts for standbys
    REPLICATION = "replication"


class Prober(Protocol):
    name: str  # unique per prober: its own streak, its own vote
    kind: ProbeKind

    def probe(self, region: str, timeout_s: float) -> ProbeResult:
        """One health probe of `region`, bounded by `timeout_s`; never raises."""
        ...


class Notifier(Protocol):
    def notify(self, event: str, detail: Mapping[str, Any]) -> None:
        """Tell a human. Best effort: never raises, never blocks longer than ~1 s."""
        ...


class ObservationStore(Protocol):
    """Where vantage points outside a region publish their judgement of it (AWS: the arbiter).

    Both methods are bounded by the provider's timeouts and raise `ProviderError` when the
    store cannot be reached (then no verdict can be reached either)."""

    def publish(self, report: VantageReport) -> None:
        ...

    def reports(self, target: str) -> list[VantageReport]:
        """Every vantage point's latest report on `target`, read consistently."""
        ...


class StateStore(Protocol):
    def load(self) -> LiveState:
        ...

    def claim_epoch(self, expected: int, plan: Plan) -> int:
        """Compare-and-set the epoch `expected` -> `expected + 1` and record `plan` as the
        running plan (a fresh `PlanRecord` at the new epoch), in one atomic write.
        Idempotent for the same plan id; raises PlanConflict if another plan holds the epoch
        or the epoch moved."""
        ...

    def save_plan(self, record: PlanRecord) -> None:
        """Record a plan's progress. Refuses (PlanConflict) a save that would overwrite
        another plan's record or revive a finished one."""
        ...

    def read_plan(self) -> PlanRecord | None:
        """The latest plan's record (running, done or failed), or None before the first."""
        ...

    def finish_plan(self, plan_id: str, roles: Mapping[str, Role], finished_at: float) -> None:
        """Record the plan as done at `finished_at` (wall time) and the live roles it
        produced, in one write; PlanConflict when it is no longer the current plan."""
        ...

    def set_roles(self, roles: Mapping[str, Role], plan_id: str | None = None) -> None:
        """Record live roles (after promote, before the plan finishes). Idempotent; with
        `plan_id`, only while that plan's record is the current one."""
        ...

    def set_sync_degraded(self, lsn: int | None) -> None:
        """Record (replacing any record) that the primary commits without its sync standby
        since `lsn`; None: no record. Survives restarts: failover and restore decide from it.
        For a new primary (promote); a lost standby uses `note_sync_degraded`."""
        ...

    def note_sync_degraded(self, lsn: int) -> int:
        """Record a degrade at `lsn` unless a record stands (the first degrade point is the
        one that counts: divergence began there), atomically; returns the standing LSN."""
        ...

    def clear_sync_degraded(self, since_lsn: int) -> bool:
        """Clear the record only if it still says `since_lsn` (compare-and-clear: a record
        written meanwhile, by a degrade that raced the restore, stays); True when cleared."""
        ...

    def revoke_writer(self, region: str) -> float | None:
        """Withdraw `region`'s right to take writes where its app confirms it (the write
        lease). Returns the wall-clock time until which an app of `region` may still act on a
        lease it confirmed before this call, or None when the world fences without leases
        (the local front door cuts traffic at once). Idempotent: a repeat returns the time
        recorded by the first call."""
        ...

    def writer_lease_ended(self, region: str) -> bool:
        """The arbiter's own answer, after `revoke_writer(region)`: True once no lease lets
        an app of `region` take writes (etcd: the holder's lease expired or was released;
        DynamoDB: the recorded end has passed; no lease in this world: True). A promote and
        a route trust this, not the estimate `revoke_writer` returned."""
        ...

    def plan_lock(self) -> AbstractContextManager[bool]:
        """Hold the one-plan-at-a-time lock; yields False (without waiting) when another
        process holds it. Released when the holder exits, even by SIGKILL."""
        ...


@dataclass
class Ports:
    """One world's implementation of every port, as `build_ports` wires it."""

    topology: Topology
    database: Database
    compute: Compute
    traffic: Traffic
    probers: list[Prober]
    notifier: Notifier
    state: StateStore
    journal: Journal
    clock: Clock = SYSTEM_CLOCK
    deadlines: Deadlines = LOCAL_DEADLINES
    restorer: Restorer | None = None  # backup & restore (AWS): the database from a snapshot
    # writes a plan's execution report when it ends (ops/report.py), given its id
    reports: Callable[[str], None] | None = None
