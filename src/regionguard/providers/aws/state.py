"""The arbiter: a DynamoDB table with multi-Region strong consistency (MRSC).

The table has replicas in both app regions and a witness in a third Region of the same MRSC
Region set. A conditional write or a strongly consistent read on any replica is linearizable
and succeeds while that replica can reach one more site, so the epoch claim, the plan lease, the
plan's progress, the write lease and the vantage points' reports survive the loss of any one
Region, from either surviving one. Last-writer-wins global tables cannot do this: two Regions'
conditional writes can both "succeed" and one is silently overwritten on replication (DynamoDB:
MREC "resolve[s] such conflicts by using a last writer wins mechanism").

Every call goes through `ArbiterClient` (arbiter.py: also the API of the other modules that
keep an item in the table), which tries this Region's own replica first (then whichever
answered last), then the other one. A `ConditionalCheckFailedException` is an answer
(someone else won); anything else (a dead Region, a replica that lost its quorum,
`ReplicatedWriteConflictException`) moves on to the next replica, and `ProviderError` is
raised only when no replica answers.

Items: `state` (epoch, live roles, the writer with its epoch and the revoked lease's end, the
current plan's record), `lock` (the plan lease, renewed by a heartbeat while held),
`obs#<target>#<vantage>` (reports), `journal#...` (the engine's journal), `lease#<region>`
(the latest end of a write lease that Region's apps were granted, which they record before
each confirmation). Plan writes are conditional on the plan being the current one, so a
runner that stalled past its lease cannot undo its successor's work. MRSC supports no TTL and
no transactions: neither is used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from regionguard.aws_naming import LEASE_RECORD_ATTRIBUTE, lease_record_key
from regionguard.clock import wait_event
from regionguard.config import Role
from regionguard.errors import PlanConflict, ProviderError
from regionguard.orchestrator.plans import Plan
from regionguard.orchestrator.ports import LiveState, VantageReport
from regionguard.orchestrator.records import PlanRecord, PlanStatus, stored_record
from regionguard.providers.aws.arbiter import ArbiterClient, ConditionFailed
from regionguard.providers.aws.context import AwsContext

log = logging.getLogger("regionguard.arbiter")

# a killed runner's plan is taken over this long after its last renewal, renewed every quarter
# of it. A renewal that hangs for the client's whole budget (3 tries of 2 s connect and 10 s
# read) can outlast it: the next runner then takes the plan over, and the stalled one's plan
# writes are refused (each is conditional on the plan's id and status)
PLAN_LEASE_S = 30.0
LEASE_MARGIN = 1.1  # clock-rate slack: an app's lease is measured on its own clock
# tries of the lease record's read after a revoke (each on every replica): one replica that
# stalls once should not cost the failover a whole lease
READS_OF_THE_RECORD = 2


class DynamoDBStateStore:
    """The StateStore and ObservationStore ports over the arbiter table."""

    def __init__(self, ctx: AwsContext) -> None:
        self.ctx = ctx
        self.arbiter = ArbiterClient(ctx)  # the table's items, for every port that keeps one
        self.table = self.arbiter.table
        self.nearest = self.arbiter.nearest  # the replica order (Powertools uses the nearest)
        self.owner = (f"{os.environ.get('AWS_LAMBDA_LOG_STREAM_NAME', 'cli')[-24:]}-"
                      f"{uuid.uuid4().hex[:8]}")

    def read_state(self) -> dict[str, Any]:
        """The `state` item, decoded; created from the home roles on first use."""
        item = self.arbiter.get("state")
        if item is None:
            roles = {r.name: r.home_role.value for r in self.ctx.view.regions}
            with contextlib.suppress(ConditionFailed):  # another writer created it first
                self.arbiter.put("state", {
                    "epoch": {"N": "1"}, "roles": {"S": json.dumps(roles)},
                    "writer": {"S": self.ctx.view.primary.name}, "writer_epoch": {"N": "1"}},
                    condition="attribute_not_exists(pk)")
            item = self.arbiter.get("state") or {}
        return {"epoch": int(item["epoch"]["N"]), "roles": json.loads(item["roles"]["S"]),
                "writer": item.get("writer", {}).get("S", ""),
                "writer_epoch": int(item["writer_epoch" if "writer_epoch" in item
                                         else "epoch"]["N"]),
                "lease_until": float(item["lease_until"]["N"]) if "lease_until" in item
                else None,
                "plan": json.loads(item["plan"]["S"]) if "plan" in item else None}

    # -- StateStore -----------------------------------------------------------------------------

    def load(self) -> LiveState:
        data = self.read_state()
        plan = stored_record(data["plan"], "the arbiter")
        return LiveState(epoch=data["epoch"],
                         roles={k: Role(v) for k, v in data["roles"].items()},
                         plan=plan if plan is not None and plan.running else None)

    def read_plan(self) -> PlanRecord | None:
        return stored_record(self.read_state()["plan"], "the arbiter")

    def claim_epoch(self, expected: int, plan: Plan) -> int:
        record = PlanRecord(plan, expected + 1).to_dict()
        for _ in range(2):  # twice: the first use of a fresh table creates its state item
            try:
                self.arbiter.update(
                    "state", "SET epoch = :next, #plan = :plan, "
                             "plan_status = :running, plan_id = :id",
                    condition="epoch = :expected AND (attribute_not_exists("
                              "plan_status) OR plan_status <> :running)",
                    names={"#plan": "plan"},
                    values={":next": {"N": str(expected + 1)},
                            ":expected": {"N": str(expected)},
                            ":plan": {"S": json.dumps(record, default=str)},
                            ":running": {"S": "running"}, ":id": {"S": plan.id}})
            except ConditionFailed:
                current = self.read_state()
                running = current["plan"] or {}
                if running.get("id") == plan.id and running.get("status") == "running":
                    return int(running["epoch"])  # our own claim, replayed (a retried write)
                if running.get("status") == "running":
                    raise PlanConflict(f"plan {running.get('name')} ({running.get('id')}) "
                                       "is already running") from None
                if current["epoch"] != expected:
                    raise PlanConflict(f"epoch moved from {expected} to {current['epoch']} "
                                       "while planning; re-read the state") from None
                continue
            return expected + 1
        raise PlanConflict(f"could not claim epoch {expected + 1}; re-read the state")

    def save_plan(self, record: PlanRecord) -> None:
        """Only the current plan's record, and never back to life once finished: a runner
        that lost its plan (it stalled past its lease, another took over) cannot undo it."""
        expected = PlanStatus.DONE if record.status is PlanStatus.DONE else PlanStatus.RUNNING
        self._update_plan("SET #plan = :plan, plan_status = :status", record.id, expected,
                          {":plan": {"S": json.dumps(record.to_dict(), default=str)},
                           ":status": {"S": record.status.value}})

    def set_roles(self, roles: Mapping[str, Role], plan_id: str | None = None) -> None:
        merged = {**self.read_state()["roles"], **{k: str(v) for k, v in roles.items()}}
        values = {":roles": {"S": json.dumps(merged)}}
        if plan_id is None:
            self.arbiter.update("state", "SET #roles = :roles", names={"#roles": "roles"},
                                values=values)
            return
        self._update_plan("SET #roles = :roles", plan_id, "running", values,
                          {"#roles": "roles"})

    def finish_plan(self, plan_id: str, roles: Mapping[str, Role], finished_at: float) -> None:
        plan = self.read_state()["plan"] or {}
        if plan.get("id") == plan_id:
            plan["status"] = PlanStatus.DONE.value
            plan["finished_at"] = finished_at
        self._update_plan(
            "SET #plan = :plan, plan_status = :done, #roles = :roles, last_plan = :id",
            plan_id, "running",
            {":plan": {"S": json.dumps(plan, default=str)}, ":done": {"S": "done"},
             ":roles": {"S": json.dumps({k: str(v) for k, v in roles.items()})}},
            {"#roles": "roles"})

    def _update_plan(self, expression: str, plan_id: str, status: str,
                     values: dict[str, Any], names: dict[str, str] | None = None) -> None:
        attr_names = dict(names or {})
        if "#plan" in expression:
            attr_names["#plan"] = "plan"  # PLAN is a DynamoDB reserved word
        try:
            self.arbiter.update("state", expression,
                                condition="plan_id = :id AND plan_status = :expected",
                                values={**values, ":id": {"S": plan_id},
                                        ":expected": {"S": status}}, names=attr_names)
        except ConditionFailed:
            current = self.read_state()["plan"] or {}
            raise PlanConflict(f"plan {plan_id} is no longer the current plan (the record "
                               f"is {current.get('id')}, {current.get('status')}); this "
                               "runner stops") from None

    def set_sync_degraded(self, lsn: int | None) -> None:
        return None  # RDS and Aurora replicate across Regions asynchronously: nothing to record

    def note_sync_degraded(self, lsn: int) -> int:
        return lsn  # asynchronous: never degraded from sync, nothing to record

    def clear_sync_degraded(self, since_lsn: int) -> bool:
        return True

    # -- the write lease ------------------------------------------------------------------

    def revoke_writer(self, region: str) -> float | None:
        """Take the write lease from `region`; return when the last lease its apps could hold
        has run out, recorded (only ever raised): a repeat returns at least the recorded time.

        Two bounds, the earlier wins. Every app read that named `region` started before the
        arbiter acknowledged the revoke, so no lease outlasts that instant plus `lease_s`
        with slack for clock rates. And every confirmation was preceded by its record in
        `lease#<region>` (app/lease.py), read here after the revoke: no lease outlasts the
        latest recorded end plus the same slack and `aws.lease_clock_skew_s` (the record is
        on the app's wall clock). A Region that died stopped renewing when it died, so the
        second bound is its last renewal's, typically well before the first; a Region whose
        apps renew until the revoke records about a lease ahead, and the first holds."""
        with contextlib.suppress(ConditionFailed):  # already revoked, or never the writer
            self.arbiter.update(
                "state", "SET writer = :none, revoked_from = :region",
                condition="writer = :region",
                values={":none": {"S": ""}, ":region": {"S": region}})
        settings = self.ctx.view.settings
        now = self.ctx.clock.time()
        until = now + settings.lease_s * LEASE_MARGIN
        recorded = self._lease_record(region) if settings.lease_record else None
        if recorded is not None:
            read_at = self.ctx.clock.time()  # an app still renewing may have recorded since `now`
            if recorded > read_at + settings.lease_s + settings.lease_clock_skew_s:
                log.warning("the lease record of %s ends %.1f s from now, later than a lease "
                            "taken now could: an app host's clock runs ahead of this one",
                            region, recorded - read_at)
            until = min(until, recorded + settings.lease_s * (LEASE_MARGIN - 1)
                        + settings.lease_clock_skew_s)
        try:
            self.arbiter.update(
                "state", "SET lease_until = :until",
                condition="attribute_not_exists(lease_until) OR lease_until < :until",
                values={":until": {"N": f"{until:.3f}"}})
        except ConditionFailed:  # a later time is already recorded: that one holds
            held_until = self.read_state()["lease_until"]
            return max(until, held_until or until)
        return until

    def _lease_record(self, region: str) -> float | None:
        """The latest lease end `region`'s apps recorded, on their clock (None: none recorded,
        or the arbiter did not answer: the revoke's bound holds)."""
        for attempt in range(1, READS_OF_THE_RECORD + 1):
            try:
                item = self.arbiter.get(lease_record_key(region))
            except ProviderError as exc:
                if attempt < READS_OF_THE_RECORD:
                    continue
                log.warning("the lease record of %s could not be read (%s): waiting a whole "
                            "lease from the revoke", region, exc)
                return None
            if item is None or LEASE_RECORD_ATTRIBUTE not in item:
                return None
            return float(item[LEASE_RECORD_ATTRIBUTE]["N"])
        return None

    def writer_lease_ended(self, region: str) -> bool:
        """The same condition `set_writer` checks: `region` no longer named writer, and the
        revoked lease's recorded end has passed."""
        state = self.read_state()
        until = state["lease_until"]
        return state["writer"] != region and (until is None or until <= self.ctx.clock.time())

    def set_writer(self, region: str, epoch: int) -> None:
        """Hand the write lease to `region` at `epoch` (the token its apps write with). The
        arbiter itself refuses while the epoch moved on (a newer plan routes now) or while a
        revoked writer's lease may still run: the wait in `route` is checked, not trusted.
        Handing the lease back to the region it was taken from (a swap rolled back before
        promote) needs no wait: no other region can have written."""
        now = self.ctx.clock.time()
        try:
            self.arbiter.update(
                "state", "SET writer = :w, writer_epoch = :e",
                condition="epoch = :e AND (writer = :w OR (writer = :none AND "
                          "(revoked_from = :w OR attribute_not_exists(lease_until) "
                          "OR lease_until <= :now)))",
                values={":w": {"S": region}, ":e": {"N": str(epoch)},
                        ":none": {"S": ""}, ":now": {"N": f"{now:.3f}"}})
        except ConditionFailed:
            state = self.read_state()
            if state["epoch"] != epoch:
                raise PlanConflict(f"not routing writes to {region}: the epoch is "
                                   f"{state['epoch']}, not {epoch}") from None
            raise ProviderError(
                f"not routing writes to {region} yet: {state['writer'] or 'a revoked writer'} "
                f"may hold its lease until {state['lease_until']}") from None

    # -- the plan lease -------------------------------------------------------------------

    @contextlib.contextmanager
    def plan_lock(self) -> Iterator[bool]:
        """The plan lease: held while renewed. A killed runner stops renewing, and the next
        scheduled run takes the plan over `PLAN_LEASE_S` later, resuming its progress."""
        if not self._take_lease():
            yield False
            return
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(stop,), daemon=True,
                                name="rg-plan-lease")
        beat.start()
        try:
            yield True
        finally:
            stop.set()
            beat.join()  # a renewal in flight ends (bounded by the client's timeouts) first
            with contextlib.suppress(ConditionFailed, ProviderError):
                self.arbiter.delete("lock", condition="#o = :me", names={"#o": "owner"},
                                    values={":me": {"S": self.owner}})

    def _take_lease(self) -> bool:
        now = self.ctx.clock.time()
        try:
            self.arbiter.put(
                "lock", {"owner": {"S": self.owner},
                         "expires_at": {"N": f"{now + PLAN_LEASE_S:.3f}"}},
                condition="attribute_not_exists(pk) OR expires_at < :now OR #o = :me",
                names={"#o": "owner"},
                values={":now": {"N": f"{now:.3f}"}, ":me": {"S": self.owner}})
        except ConditionFailed:
            return False
        return True

    def _renew_lease(self) -> None:
        """Extend a lease this runner holds (never re-create one it released or lost)."""
        now = self.ctx.clock.time()
        self.arbiter.update("lock", "SET expires_at = :until", condition="#o = :me",
                            names={"#o": "owner"},
                            values={":until": {"N": f"{now + PLAN_LEASE_S:.3f}"},
                                    ":me": {"S": self.owner}})

    def _heartbeat(self, stop: threading.Event) -> None:
        while not wait_event(self.ctx.clock, stop, PLAN_LEASE_S / 4):
            try:
                self._renew_lease()
            except ConditionFailed:
                log.error("plan lease lost to another runner; its plan writes will be refused")
                return
            except ProviderError as exc:  # keep trying: the lease has slack
                log.warning("plan lease renewal failed: %s", exc)

    # -- ObservationStore -------------------------------------------------------------------

    def publish(self, report: VantageReport) -> None:
        item: dict[str, Any] = {
            "vantage": {"S": report.vantage}, "target": {"S": report.target},
            "failures": {"N": str(report.failures)}, "successes": {"N": str(report.successes)},
            "observed_at": {"N": f"{report.observed_at:.3f}"},
            "detail": {"S": report.detail or "-"}}
        if report.failing_since is not None:
            item["failing_since"] = {"N": f"{report.failing_since:.3f}"}
        self.arbiter.put(f"obs#{report.target}#{report.vantage}", item)

    def reports(self, target: str) -> list[VantageReport]:
        keys = [f"obs#{target}#{site}" for site in self.ctx.view.vantages]
        return [_report(item) for item in self.arbiter.get_many(keys)]

    # -- journal ----------------------------------------------------------------------------

    def journal_sink(self, fallback: Callable[[str], None]) -> ArbiterJournalSink:
        return ArbiterJournalSink(self, fallback)


def _report(item: Mapping[str, Any]) -> VantageReport:
    return VantageReport(
        vantage=item["vantage"]["S"], target=item["target"]["S"],
        failures=int(item["failures"]["N"]), successes=int(item["successes"]["N"]),
        observed_at=float(item["observed_at"]["N"]),
        failing_since=float(item["failing_since"]["N"]) if "failing_since" in item else None,
        detail=item.get("detail", {}).get("S", ""))


class ArbiterJournalSink:
    """The engine's journal in the arbiter, readable by every later run (a Lambda's /tmp is
    gone with it): a resumed plan's RTO breakdown includes the steps its killed predecessor
    ran. Each line also goes to the function's log at once. Storing it is one MRSC write (a
    cross-Region round trip), so it is done off the engine's path, by a few writer threads
    shared by the execution environment: the executor flushes at the end of each step, the
    handler before it returns, and a read flushes first. Storing is best effort: a line that
    cannot be stored never fails a step, and the lines of a step a killed runner was in may
    be missing from the arbiter (never from the log); the plan's own progress is saved apart,
    conditionally, and a resumed plan never depends on the journal."""

    def __init__(self, store: DynamoDBStateStore, fallback: Callable[[str], None]) -> None:
        self.store = store
        self.fallback = fallback
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        self.fallback(line)
        entry = json.loads(line)
        key = f"journal#{int(entry.get('mono_ns', 0)):020d}#{uuid.uuid4().hex[:6]}"
        stored = _journal_writers().submit(self._store, key, line)
        with self._lock:
            self._pending.add(stored)
        stored.add_done_callback(self._done)

    def _done(self, stored: Future[None]) -> None:
        with self._lock:
            self._pending.discard(stored)

    def _store(self, key: str, line: str) -> None:
        try:
            self.store.arbiter.put(key, {"line": {"S": line}})
        except Exception as exc:  # in the log already; never lost silently in a future
            log.warning("journal line not stored in the arbiter: %s: %s",
                        type(exc).__name__, exc)

    def flush(self) -> None:
        with self._lock:
            pending = list(self._pending)
        wait(pending, timeout=JOURNAL_FLUSH_S)

    def read_lines(self) -> list[str]:
        self.flush()
        lines: list[tuple[str, str]] = []
        try:
            for page in self.store.arbiter.scan("journal#"):
                lines += [(i["pk"]["S"], i["line"]["S"]) for i in page]
        except ProviderError as exc:  # what was read so far still tells part of the story
            log.warning("journal not readable: %s", exc)
        return [line for _, line in sorted(lines)]


JOURNAL_WRITERS = 4
# real seconds a flush waits at most: inside the guard's margin before its Lambda timeout
# (MARGIN_S, 5 s), and an arbiter that does not answer holds no plan longer
JOURNAL_FLUSH_S = 4.0
_WRITERS: list[ThreadPoolExecutor] = []
_WRITERS_LOCK = threading.Lock()


def _journal_writers() -> ThreadPoolExecutor:
    """One pool per process (a warm Lambda environment keeps it between invocations)."""
    with _WRITERS_LOCK:
        if not _WRITERS:
            _WRITERS.append(ThreadPoolExecutor(JOURNAL_WRITERS,
                                               thread_name_prefix="rg-journal"))
        return _WRITERS[0]
