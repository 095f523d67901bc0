"""The StateStore and ObservationStore ports over etcd: the self-managed sites' arbiter.

It plays the part the MRSC DynamoDB table plays in AWS (providers/aws/state.py) and keeps its
shape, so one engine decides the same way in both worlds:

- `<prefix>/state`: one JSON document (epoch, live roles, the current plan's record, the sync
  degrade record, the region whose write lease was revoked and at which epoch). Every change
  is a compare-and-set on its `mod_revision` (a `Txn`), so the epoch claim and the plan
  record are one atomic write, and a runner that stalled past its plan lock cannot undo its
  successor's work.
- `<prefix>/writer`: which region takes writes, at which epoch, bound to the holder's etcd
  lease (writer_lease.py). It disappears when etcd expires that lease: a failover waits for
  exactly that, never for a TTL counted from its own revoke.
- `<prefix>/lock`: the plan lock, on a lease renewed while held; a killed runner's lock goes
  when etcd expires its lease.
- `<prefix>/obs/<target>/<vantage>`: the vantage points' reports (only their writer changes
  them).
- `<prefix>/drill`: the last drill that measured a failover path without a split brain (its
  end, wall time): readiness's "a drill ran recently", as the AWS arbiter's drill item.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from regionguard.clock import SYSTEM_CLOCK, Clock
from regionguard.config import Role
from regionguard.errors import PlanConflict, ProviderError
from regionguard.orchestrator.plans import Plan, PlanKind
from regionguard.orchestrator.ports import LiveState, VantageReport
from regionguard.orchestrator.records import PlanRecord, PlanStatus, stored_record
from regionguard.providers.etcd.client import Entry, EtcdArbiter

log = logging.getLogger("regionguard.etcd")

CAS_ATTEMPTS = 8  # compare-and-set retries when another writer changed the state meanwhile
# etcd measures a lease on its leader's clock, a waiter on its own: slack for their rates
LEASE_MARGIN = 1.1


class _Unchanged(Exception):
    """A mutation found nothing to change (an idempotent repeat): no write is made."""

    def __init__(self, result: Any = None) -> None:
        super().__init__()
        self.result = result


class EtcdStateStore:
    """One application's arbiter state in an etcd cluster (see the module docstring)."""

    def __init__(self, arbiter: EtcdArbiter, *, app: str, home_roles: Mapping[str, Role],
                 sites: tuple[str, ...], plan_lock_ttl_s: int = 10,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.arbiter = arbiter
        self.prefix = f"/regionguard/{app}/"
        self.home_roles = dict(home_roles)
        self.sites = sites  # every vantage point that may report (regions and the witness)
        self.plan_lock_ttl_s = plan_lock_ttl_s
        self.clock = clock
        self.owner = uuid.uuid4().hex[:12]

    def key(self, name: str) -> str:
        return self.prefix + name

    # -- the state document -----------------------------------------------------------------

    def read_state(self) -> tuple[dict[str, Any], int]:
        """The state document and its mod_revision (0 and the home roles before first use)."""
        entry = self.arbiter.get(self.key("state"))
        if entry is None:
            return {"epoch": 1, "roles": {k: v.value for k, v in self.home_roles.items()},
                    "plan": None, "sync_degraded_lsn": None, "revoked": None}, 0
        try:
            doc = entry.json()
            int(doc["epoch"]), dict(doc["roles"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError(f"etcd: {entry.key} is unreadable ({type(exc).__name__}: "
                                f"{exc}); not acting on a guess") from None
        return doc, entry.mod_revision

    def _update(self, what: str, mutate: Callable[[dict[str, Any]], Any]) -> Any:
        """Read, mutate, write back only if nobody wrote meanwhile; again if someone did.
        `mutate` changes the document in place and returns the call's result, or raises
        `_Unchanged` (nothing to write) or PlanConflict (refused)."""
        for _ in range(CAS_ATTEMPTS):
            doc, revision = self.read_state()
            try:
                result = mutate(doc)
            except _Unchanged as same:
                return same.result
            if self.arbiter.txn(what, {self.key("state"): revision},
                                {self.key("state"): json.dumps(doc, default=str).encode()}):
                return result
        raise ProviderError(f"etcd {what}: the state changed under {CAS_ATTEMPTS} attempts in a "
                            "row; another runner is writing it, try again")

    # -- StateStore -----------------------------------------------------------------------

    def load(self) -> LiveState:
        doc, _ = self.read_state()
        plan = stored_record(doc.get("plan"), "etcd")
        return LiveState(epoch=int(doc["epoch"]),
                         roles={k: Role(v) for k, v in doc["roles"].items()},
                         plan=plan if plan is not None and plan.running else None,
                         sync_degraded_lsn=doc.get("sync_degraded_lsn"))

    def read_plan(self) -> PlanRecord | None:
        return stored_record(self.read_state()[0].get("plan"), "etcd")

    def claim_epoch(self, expected: int, plan: Plan) -> int:
        """The epoch compare-and-set and the plan's record, in one Txn."""
        def claim(doc: dict[str, Any]) -> int:
            running = doc.get("plan") or {}
            if running.get("status") == PlanStatus.RUNNING.value:
                if running.get("id") == plan.id:
                    raise _Unchanged(int(running["epoch"]))  # our own claim, replayed
                raise PlanConflict(f"plan {running.get('name')} ({running.get('id')}) is "
                                   "already running")
            if int(doc["epoch"]) != expected:
                raise PlanConflict(f"epoch moved from {expected} to {doc['epoch']} while "
                                   "planning; re-read the state")
            if (plan.kind is PlanKind.FAILOVER and doc.get("sync_degraded_lsn") is not None
                    and "degraded_lsn" not in plan.risk):
                # the primary recorded a degrade after this plan was made: its standby may
                # lack writes acknowledged alone since; plan again from what etcd says now
                raise PlanConflict("a sync degrade was recorded while planning; re-read the "
                                   "state")
            doc["epoch"] = expected + 1
            doc["plan"] = PlanRecord(plan, expected + 1).to_dict()
            return expected + 1
        return int(self._update(f"epoch claim by plan {plan.id}", claim))

    def _current_plan(self, doc: dict[str, Any], plan_id: str,
                      status: PlanStatus) -> dict[str, Any]:
        current = doc.get("plan") or {}
        if current.get("id") != plan_id or current.get("status") != status.value:
            raise PlanConflict(f"plan {plan_id} is no longer the current plan (the record is "
                               f"{current.get('id')}, {current.get('status')}); this runner "
                               "stops")
        return current

    def save_plan(self, record: PlanRecord) -> None:
        """Only the current plan's record, and never back to life once finished."""
        expected = PlanStatus.DONE if record.status is PlanStatus.DONE else PlanStatus.RUNNING

        def save(doc: dict[str, Any]) -> None:
            self._current_plan(doc, record.id, expected)
            doc["plan"] = record.to_dict()
        self._update(f"progress of plan {record.id}", save)

    def finish_plan(self, plan_id: str, roles: Mapping[str, Role], finished_at: float) -> None:
        def finish(doc: dict[str, Any]) -> None:
            current = self._current_plan(doc, plan_id, PlanStatus.RUNNING)
            doc["plan"] = {**current, "status": PlanStatus.DONE.value,
                           "finished_at": finished_at}
            doc["roles"] = {k: Role(v).value for k, v in roles.items()}
        self._update(f"end of plan {plan_id}", finish)

    def set_roles(self, roles: Mapping[str, Role], plan_id: str | None = None) -> None:
        def set_roles(doc: dict[str, Any]) -> None:
            if plan_id is not None:
                self._current_plan(doc, plan_id, PlanStatus.RUNNING)
            merged = {**doc["roles"], **{k: Role(v).value for k, v in roles.items()}}
            if merged == doc["roles"]:
                raise _Unchanged()
            doc["roles"] = merged
        self._update("live roles", set_roles)

    def set_sync_degraded(self, lsn: int | None) -> None:
        def set_record(doc: dict[str, Any]) -> None:
            if doc.get("sync_degraded_lsn") == lsn:
                raise _Unchanged()
            doc["sync_degraded_lsn"] = lsn
        self._update("sync degrade record", set_record)

    def note_sync_degraded(self, lsn: int) -> int:
        def note(doc: dict[str, Any]) -> int:
            if (doc.get("plan") or {}).get("status") == PlanStatus.RUNNING.value:
                # a failover may be planning from the standby this very moment: a primary
                # that cannot record its degrade keeps waiting for its standby
                raise ProviderError("a plan is running; the sync degrade is not recorded, "
                                    "the primary keeps waiting for its standby")
            standing = doc.get("sync_degraded_lsn")
            if standing is not None:
                raise _Unchanged(int(standing))  # the first degrade point is the one that counts
            doc["sync_degraded_lsn"] = lsn
            return lsn
        return int(self._update("sync degrade record", note))

    def clear_sync_degraded(self, since_lsn: int) -> bool:
        def clear(doc: dict[str, Any]) -> bool:
            standing = doc.get("sync_degraded_lsn")
            if standing is None:
                raise _Unchanged(True)
            if int(standing) != since_lsn:
                raise _Unchanged(False)  # a degrade raced the restore: its record stays
            doc["sync_degraded_lsn"] = None
            return True
        return bool(self._update("sync degrade record", clear))

    # -- the write lease ----------------------------------------------------------------------

    def writer(self) -> Entry | None:
        """The writer key: `{"region", "epoch"}`, bound to its holder's lease."""
        return self.arbiter.get(self.key("writer"))

    def revoke_writer(self, region: str) -> float | None:
        """Mark `region` revoked at the current epoch (a plan claimed it first, so a holder
        from before sees the epoch moved and releases at once if it can still reach etcd; and
        `region` may not take the key again at this epoch) and return when etcd will
        expire the lease its writer key is bound to: now plus what etcd says is left of it,
        with slack for clock rates. Nothing held by `region`: now. `writer_lease_ended`, not
        this estimate, is what a promote trusts."""
        def mark(doc: dict[str, Any]) -> None:
            revoked = {"region": region, "epoch": int(doc["epoch"])}
            if doc.get("revoked") == revoked:
                raise _Unchanged()
            doc["revoked"] = revoked
        self._update(f"revoke of {region}'s write lease", mark)
        now = self.clock.time()
        held = self.writer()
        if held is None or held.json().get("region") != region or not held.lease:
            return now
        left = self.arbiter.time_to_live(held.lease)
        return now + max(0, left) * LEASE_MARGIN

    def writer_lease_ended(self, region: str) -> bool:
        """etcd's own answer: True once no lease lets `region` take writes (its writer key
        expired with its holder's lease, was released, or belongs to another region)."""
        held = self.writer()
        if held is None or held.json().get("region") != region:
            return True
        return bool(held.lease) and self.arbiter.time_to_live(held.lease) < 0

    # -- the plan lock ------------------------------------------------------------------------

    @contextlib.contextmanager
    def plan_lock(self) -> Iterator[bool]:
        """Held while its lease is renewed; a killed runner's lock goes when etcd expires its
        lease, and the next runner resumes its plan from the record."""
        lease = self.arbiter.grant(self.plan_lock_ttl_s)
        owner = json.dumps({"owner": self.owner, "lease": lease}).encode()
        if not self.arbiter.txn("plan lock", {self.key("lock"): 0}, {self.key("lock"): owner},
                                lease=lease):
            with contextlib.suppress(ProviderError):
                self.arbiter.revoke(lease)
            yield False
            return
        stop = threading.Event()
        beat = threading.Thread(target=self._renew_lock, args=(lease, stop), daemon=True,
                                name="rg-etcd-plan-lock")
        beat.start()
        try:
            yield True
        finally:
            stop.set()
            beat.join()
            with contextlib.suppress(ProviderError):
                self.arbiter.revoke(lease)  # the lock key goes with it

    def _renew_lock(self, lease: int, stop: threading.Event) -> None:
        every_s = self.plan_lock_ttl_s / 3 * self.clock.factor
        while not stop.wait(every_s):
            try:
                if self.arbiter.keepalive(lease) < 0:
                    log.error("plan lock lost (etcd expired its lease); this runner's plan "
                              "writes will be refused")
                    return
            except ProviderError as exc:  # keep trying: the lease has slack
                log.warning("plan lock renewal failed: %s", exc)

    # -- rejoin requests ----------------------------------------------------------------------

    def request_rejoin(self, region: str, by: str, epoch: int) -> None:
        """Ask `region`'s agent to rebuild its database (a demoted old primary) as a standby of
        the live primary at `epoch`: only that site's agent touches its files, and only while
        the roles are still those of `epoch` (a request made before a later failover is
        dropped, never a licence to rewind a database that became something else)."""
        self.arbiter.put(self.key(f"rejoin/{region}"), json.dumps(
            {"by": by, "epoch": epoch, "requested_at": self.clock.time()}).encode())

    def rejoin_requested(self, region: str) -> dict[str, Any] | None:
        entry = self.arbiter.get(self.key(f"rejoin/{region}"))
        if entry is None:
            return None
        try:
            found: dict[str, Any] = entry.json()
        except ValueError:
            return {"by": "?"}
        return found

    def clear_rejoin(self, region: str) -> None:
        self.arbiter.delete(self.key(f"rejoin/{region}"))

    # -- drills -------------------------------------------------------------------------------

    def record_drill(self, fault: str, ended_at: float, **measures: Any) -> None:
        """A drill that measured the sites without a split brain (whoever ran it: the record
        lives with the arbiter, not on one host's disk, so readiness on any site sees it)."""
        self.arbiter.put(self.key("drill"), json.dumps(
            {"fault": fault, "ended_at": ended_at, **measures}).encode())

    def last_drill(self) -> dict[str, Any] | None:
        entry = self.arbiter.get(self.key("drill"))
        if entry is None:
            return None
        try:
            found = entry.json()
        except ValueError:
            return None
        return found if isinstance(found, dict) and "ended_at" in found else None

    # -- ObservationStore -------------------------------------------------------------------

    def publish(self, report: VantageReport) -> None:
        body = {"vantage": report.vantage, "target": report.target,
                "failures": report.failures, "successes": report.successes,
                "observed_at": report.observed_at, "failing_since": report.failing_since,
                "detail": report.detail}
        self.arbiter.put(self.key(f"obs/{report.target}/{report.vantage}"),
                         json.dumps(body).encode())

    def reports(self, target: str) -> list[VantageReport]:
        out = []
        for entry in self.arbiter.get_prefix(self.key(f"obs/{target}/")):
            try:
                raw = entry.json()
                out.append(VantageReport(
                    vantage=str(raw["vantage"]), target=str(raw["target"]),
                    failures=int(raw["failures"]), successes=int(raw["successes"]),
                    observed_at=float(raw["observed_at"]),
                    failing_since=None if raw.get("failing_since") is None
                    else float(raw["failing_since"]),
                    detail=str(raw.get("detail", ""))))
            except (ValueError, KeyError, TypeError):
                log.warning("etcd: ignoring an unreadable report at %s", entry.key)
        return out

