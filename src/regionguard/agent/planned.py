"""Planned switchovers on the sites: run by the target's agent, with the old primary's agent
doing the one step that is its own.

A person asks in etcd (`regionguard switchover --to REGION`, providers/etcd/requests.py). The
target's agent takes the request while the roles are still those it was asked at and drives
the ordinary switchover plan through `engine.drive`. Claiming the plan's epoch ends the old
primary's write lease; its lease keeper, seeing that a planned plan is taking the writer from
it, does not fence by an immediate stop as after a failure but hands over: a clean (fast)
shutdown, which sends every WAL record to the connected standby, and the final LSN written to
etcd. The target's `stop_writes` of the old primary waits for that record, replays up to the
LSN and promotes: nothing written on the old primary is left behind. Its `rejoin` asks the old
primary's agent to follow the new one (`rejoin`, as after a failover), which it does once the
plan has ended.

Anything that cannot reach etcd does not hand over: it fences itself as after a failure, and
the plan's `stop_writes` runs out of time waiting for a handover that never comes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from regionguard.agent.site import Site
from regionguard.errors import RegionGuardError, UnsafeOperation, UsageError
from regionguard.orchestrator import engine
from regionguard.orchestrator.plans import PlanKind
from regionguard.orchestrator.ports import LiveState, Ports
from regionguard.providers.etcd.requests import SiteRequests
from regionguard.providers.etcd.state import EtcdStateStore

log = logging.getLogger("regionguard.agent")


def planned_handover(revoked_by: Mapping[str, Any] | None, region: str) -> str | None:
    """The id of the switchover that revoked `region`'s lease, from the plan record etcd
    returned with the revoke (never a second read: a fence for any other reason, the deadline
    with etcd unreachable above all, must not wait on etcd), or None."""
    if not revoked_by or revoked_by.get("status") != "running":
        return None
    if revoked_by.get("kind") != PlanKind.SWITCHOVER.value or revoked_by.get("source") != region:
        return None
    plan_id = revoked_by.get("id")
    return str(plan_id) if plan_id else None


def hand_over(site: Site, store: EtcdStateStore, plan_id: str, stop_within_s: float) -> int:
    """Stop this site's database cleanly within `stop_within_s` (before the watchdog's
    deadline: an immediate stop in the middle would leave no clean end) and tell the target
    where its WAL ends. ProviderError when the stop was not clean: no record is written."""
    lsn = site.database(site.name).stop_writes(stop_within_s)
    SiteRequests(store).hand_over(plan_id, site.name, lsn)
    return lsn


def run_asked(site: Site, store: EtcdStateStore, ports: Ports, live: LiveState) -> str | None:
    """Run the switchover a person asked of this region, if one waits; what became of it."""
    requests = SiteRequests(store)
    ask = requests.asked()
    if ask is None or ask.target != site.name or live.plan is not None:
        return None
    if not requests.take(ask.id):  # taken meanwhile (or withdrawn by its asker)
        return None
    if ask.epoch != live.epoch:
        detail = (f"the roles moved since it was asked (epoch {ask.epoch}, now {live.epoch}); "
                  "ask again")
        requests.answer(ask.id, "refused", detail)
        return f"switchover request {ask.id} dropped: {detail}"
    if ask.kind != PlanKind.SWITCHOVER.value:
        requests.answer(ask.id, "refused", f"{ask.kind!r}: only a switchover is run this way")
        return f"request {ask.id} refused: not a switchover"
    request = engine.Request(PlanKind.SWITCHOVER, site.name,
                             reason=f"switchover to {site.name}, asked by {ask.by}")
    try:
        outcome = engine.drive(ports, request)
    except (UnsafeOperation, UsageError) as exc:
        requests.answer(ask.id, "refused", str(exc))
        return f"switchover request {ask.id} refused: {exc}"
    except RegionGuardError as exc:
        requests.answer(ask.id, "failed", str(exc))
        return f"switchover request {ask.id} failed: {exc}"
    summary: dict[str, Any] = {k: v for k, v in outcome.summary.items()
                               if isinstance(v, (int, float, str)) or v is None}
    requests.answer(ask.id, outcome.result.value, outcome.detail,
                    plan=outcome.plan.id if outcome.plan else None, summary=summary)
    return f"switchover request {ask.id}: {outcome.result.value}"
