"""The write lease handed to a failover's target while its database promotes (AWS).

Where the promotion may start before the old writer's lease has ended (`Database.
promotes_under_old_lease`: replication cut with the old Region), it takes minutes (Aurora
about one, RDS several) and the lease only `lease_s` (30 s). Waiting for the promotion
before naming the new writer put DNS behind it: Route 53 only starts to move once the target's
`/health/route` answers 200, which it does once its apps hold the lease. So the lease is
handed over beside the promotion, the moment the arbiter says the old one has ended: the
target's apps confirm it, Route 53's checkers and the resolvers' TTL run while the database
promotes, and until it is promoted the target answers writes with 503 and `Retry-After`
(its database is a replica: it refuses them itself) and serves reads.

Safety is unchanged: the arbiter names the new writer only once the old lease has ended
(`StateStore.set_writer` checks it), exactly as `route` does later, and no write commits in
the target before its database is promoted. `route` still runs after `promote`: it finds the
lease handed over and names the same writer again (idempotent). What the handover could not do
before the promotion ended (an arbiter that did not answer) is simply left to `route`; a
promotion that fails after the handover leaves the plan interrupted, to be finished.
"""

from __future__ import annotations

import contextlib
import threading

from regionguard.clock import ScaledClock, wait_event
from regionguard.errors import PlanConflict, ProviderError
from regionguard.orchestrator.events import Event, Outcome
from regionguard.orchestrator.ports import Ports, RouteTable
from regionguard.orchestrator.records import Scratch

RETRY_EVERY_S = 1.0  # world seconds between tries while the arbiter still holds the lease


class Handover:
    """A thread that hands the write lease to the target once the old one has ended; stopped
    (and joined) when the promotion returns, whether or not it got there. Once it has, the
    plan is past its point of no return (`Scratch.handed_over`): a promotion that then fails
    leaves the plan interrupted for the next run to finish, never rolled back, since the
    target's apps hold the lease and DNS follows them."""

    def __init__(self, p: Ports, plan_id: str, epoch: int, table: RouteTable,
                 scratch: Scratch) -> None:
        self.p, self.plan_id, self.table = p, plan_id, table
        self.epoch = epoch
        self.scratch = scratch
        self.until, self.holder = scratch.lease_until, scratch.lease_holder
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rg-handover")

    def start(self) -> Handover:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        # an emulated world's time stands still while its guard computes, on this thread too
        clock = self.p.clock
        with clock.pause() if isinstance(clock, ScaledClock) else contextlib.nullcontext():
            try:
                self._hand_over()
            except Exception as exc:  # never silently: `route` does it after the promotion
                self._record(Outcome.FAILED, detail=f"{type(exc).__name__}: {exc}")

    def _record(self, outcome: Outcome, **fields: object) -> None:
        self.p.journal.record(Event.HANDOVER, plan=self.plan_id, epoch=self.epoch,
                              outcome=outcome, writer=self.table.writer, **fields)

    def _hand_over(self) -> None:
        p = self.p
        started = p.clock.time()
        if self.until is not None and wait_event(p.clock, self._stop,
                                                 self.until - p.clock.time()):
            return  # the promotion ended first: `route` waits out the rest
        while not self._stop.is_set():
            try:
                if self.holder is None or p.state.writer_lease_ended(self.holder):
                    p.traffic.route(self.table)
                    self.scratch.handed_over = True
                    self._record(Outcome.DONE, waited_s=round(p.clock.time() - started, 3))
                    return
            except PlanConflict as exc:  # a newer plan owns the epoch: `route` will say so
                self._record(Outcome.FAILED, detail=str(exc))
                return
            except ProviderError:  # the arbiter did not answer, or still holds it: again
                pass
            wait_event(p.clock, self._stop, RETRY_EVERY_S)


def handover_during_promote(p: Ports, plan_id: str, epoch: int, scratch: Scratch,
                            route_args: dict[str, object] | None) -> Handover | None:
    """Start the handover when it applies: a failover whose promotion does not wait for the
    old lease (the caller decided), with a revoked lease to wait for and a `route` to do."""
    if route_args is None or scratch.lease_until is None:
        return None
    weights = route_args["weights"]
    assert isinstance(weights, dict)
    table = RouteTable(weights=dict(weights), writer=str(route_args["writer"]), epoch=epoch)
    return Handover(p, plan_id, epoch, table, scratch).start()
