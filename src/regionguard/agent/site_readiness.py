"""`regionguard readiness` on self-managed sites: would a failover work now?

The same checks as every world's (orchestrator/readiness.py: the standby streams within the RPO
target, its capacity can start, the live configuration matches the topology, a drill ran
recently), from what the sites publish, plus what only the sites can lose:

- `arbiter_members`: every etcd member answers (two of three decide; with one more lost,
  nothing can be decided and the primary fences itself at the end of its lease);
- `write_lease`: the live primary holds the writer key (nobody holding it means no app writes);
- `vantage_points`: enough sites outside the primary report on it, freshly, to make the DOWN
  quorum (without them a dead primary is never failed over);
- `front_doors`: the primary's front door says its apps hold the lease (the edge's check).

The standby's database is read with the credentials of a region's site whose files are on this
host (the standby's own on a real host; all of them in the lab); the witness holds only a
login-only role, which cannot see replication, so readiness runs on a region's host.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from regionguard.agent.ports import status_against
from regionguard.agent.runner import report_stale_after_s
from regionguard.agent.site import Site
from regionguard.agent.site_status import ROUTE_TIMEOUT_S, person_site
from regionguard.config import Topology
from regionguard.errors import RegionGuardError, UsageError
from regionguard.orchestrator.ports import LiveState, VantageReport
from regionguard.orchestrator.readiness import Check, Facts, evaluate
from regionguard.providers.etcd.state import EtcdStateStore
from regionguard.providers.local.readiness_facts import capacity_problems


def sites_readiness(topology: Topology, now: datetime) -> list[Check]:
    site = person_site(topology)
    store = site.store()
    try:
        live = store.load()
    except RegionGuardError as exc:
        return [Check("arbiter", "fail", f"etcd: {str(exc).splitlines()[0]}",
                      "start the etcd members (or reach them from this host); nothing can be "
                      "decided without a majority of them")]
    standby = topology.other_region(live.primary)
    facts = Facts(
        primary=live.primary, standby=standby, standby_db=_standby_db(topology, live),
        sync_degraded=live.sync_degraded_lsn is not None,
        capacity_problems=capacity_problems(topology),
        drift=_drift(topology, live),
        last_drill_age_s=_last_drill_age_s(store, now),
        extra=(arbiter_members(topology.arbiter.members, store.arbiter.unhealthy_members()),
               write_lease(store, live),
               vantage_points(topology, live.primary, store.reports(live.primary), time.time()),
               front_door(site, live.primary)))
    return [_sites_action(c) for c in evaluate(topology, facts)]


def _sites_action(check: Check) -> Check:
    """The sites' own remedy where the shared check names the embedded sandbox's (`up`)."""
    if check.status == "pass":
        return check
    match check.name:
        case "last_drill":
            limit = check.action.rsplit("limit ", 1)[-1]
            action = ("drill the sites: `regionguard drill --fault kill-primary` (the "
                      "sandbox's; add `--lab DIR` for a lab of them), limit " + limit.rstrip(")"))
        case "standby_replication" if "`regionguard up`" in check.action:
            action = ("the standby's agent starts its database and streams again: look at "
                      "it (`regionguard events`); until then a failover is refused or loses "
                      "writes")
        case "configuration_drift":
            action = "start every site's agent from this topology"
        case _:
            return check
    return Check(check.name, check.status, check.observed, action)


def _region_site_here(topology: Topology, prefer: str) -> Site:
    for name in (prefer, *topology.regions):
        site = Site(topology, name)
        if site.database(name).passfile.exists():
            return site
    raise UsageError("readiness reads the regions' databases with a region's credentials, "
                     "and no region's files are on this host; run it on a region's host (the "
                     "standby's)")


def _standby_db(topology: Topology, live: LiveState) -> Any:
    standby = topology.other_region(live.primary)
    site = _region_site_here(topology, standby)  # none here: one line, not "down"
    try:
        return status_against(site, standby, live.primary)
    except RegionGuardError:
        return None  # the replication check says the standby is down


def _drift(topology: Topology, live: LiveState) -> list[str]:
    if set(live.roles) != set(topology.regions):
        return [f"etcd has regions {sorted(live.roles)}, the topology "
                f"{sorted(topology.regions)}"]
    return []


def _last_drill_age_s(store: EtcdStateStore, now: datetime) -> float | None:
    try:
        drill = store.last_drill()
    except RegionGuardError:
        return None
    if drill is None:
        return None
    return max(0.0, now.timestamp() - float(drill["ended_at"]))


def arbiter_members(members: Mapping[str, str], down: Mapping[str, str]) -> Check:
    """`down`: the members that did not answer their status call, with why."""
    majority = len(members) // 2 + 1
    up = len(members) - len(down)
    detail = "; ".join(f"{name}: {why}" for name, why in down.items())
    if up < majority:
        return Check("arbiter_members", "fail", f"{up} of {len(members)} etcd members answer "
                     f"({detail})", "start the lost members: without a majority nothing is "
                     "decided and the primary fences itself when its lease ends")
    if down:
        return Check("arbiter_members", "warn", f"{up} of {len(members)} etcd members answer "
                     f"({detail})", "start the lost member: one more loss and no failover can "
                     "be decided")
    return Check("arbiter_members", "pass", f"all {len(members)} etcd members answer")


def write_lease(store: EtcdStateStore, live: LiveState) -> Check:
    try:
        held = store.writer()
    except RegionGuardError as exc:
        return Check("write_lease", "fail", f"etcd: {str(exc).splitlines()[0]}", "")
    holder = held.json() if held is not None else None
    if live.plan is not None:
        return Check("write_lease", "warn", f"a {live.plan.plan.kind.value} runs "
                     f"({live.plan.id}); the writer key is {holder or 'free'}",
                     "wait for the plan to end")
    if not isinstance(holder, dict) or holder.get("region") != live.primary:
        return Check("write_lease", "fail", f"the primary {live.primary} does not hold the "
                     f"write lease (writer key: {holder or 'none'})",
                     f"look at {live.primary}'s agent (`regionguard events`): its apps refuse "
                     "writes without the lease")
    return Check("write_lease", "pass",
                 f"{live.primary} holds the write lease (epoch {holder.get('epoch')})")


def vantage_points(topology: Topology, primary: str, reports: Sequence[VantageReport],
                   now: float) -> Check:
    """Enough fresh reporters outside the primary's site for the DOWN quorum. The reports carry
    their writers' wall clocks: stale means older than the agents' own staleness bound, with
    `health.max_clock_skew_s` of slack for two hosts' clocks."""
    stale_s = report_stale_after_s(topology) + topology.health.max_clock_skew_s
    outside = [s for s in topology.sites if s != primary]
    fresh = {r.vantage for r in reports if r.vantage in outside and now - r.observed_at <= stale_s}
    missing = [s for s in outside if s not in fresh]
    need = topology.health.quorum
    name = "vantage_points"
    if len(fresh) < need:
        return Check(name, "fail", f"{len(fresh)} of the {need} vantage points a DOWN verdict "
                     f"needs report on {primary} (silent: {', '.join(missing)})",
                     "start their agents: until then a dead primary is never failed over")
    if missing:
        return Check(name, "warn", f"{', '.join(sorted(fresh))} report on {primary}; "
                     f"{', '.join(missing)} is silent", "start its agent: one more silent "
                     "site and no failover can be decided")
    return Check(name, "pass", f"{', '.join(sorted(fresh))} report on {primary}")


def front_door(site: Site, primary: str) -> Check:
    url = site.front_door_url(primary)
    name = "front_doors"
    try:
        answer = httpx.get(f"{url}/health/route", timeout=ROUTE_TIMEOUT_S, trust_env=False)
    except httpx.HTTPError as exc:
        return Check(name, "fail", f"{primary}'s front door {url} does not answer "
                     f"({type(exc).__name__})", f"look at {primary}'s agent: it runs the front "
                     "door and the apps")
    if answer.status_code != 200:
        return Check(name, "fail", f"{primary}'s front door answers HTTP {answer.status_code}: "
                     "no app of the primary holds the lease", f"look at {primary}'s apps "
                     "(`regionguard events`)")
    return Check(name, "pass", f"{primary}'s front door routes to apps holding the lease")
