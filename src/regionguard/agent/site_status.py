"""`regionguard status` on self-managed sites: what etcd says (epoch, live roles, the writer
key, a running plan, a sync degrade on record) and what each region's front door says about
itself (`/health/route`: does it hold the write lease). Read-only; every part that cannot be
read is said in its own field, never a guess and never a crash. The `--json` form is a stable
contract (docs/sites.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from regionguard.agent.site import Site
from regionguard.config import Topology
from regionguard.errors import RegionGuardError, UsageError
from regionguard.providers.etcd.state import EtcdStateStore

ROUTE_TIMEOUT_S = 1.0


def person_site(topology: Topology) -> Site:
    """The site whose identity a person's command uses on this host to reach etcd: the first
    (witness, then the regions) whose TLS files are here; the witness's when the sites run
    without TLS."""
    if topology.arbiter.kind != "etcd" or topology.witness is None:
        raise UsageError("arbiter.kind is not \"etcd\" (with a [witness]); this command's "
                         "sites form is the self-managed sites'")
    names = [topology.witness.name, *topology.regions]
    if topology.tls is None or topology.arbiter.cert_file is not None:
        return Site(topology, names[0])  # etcd's own client files (or none) serve any site
    for name in names:
        if all(Path(f).exists() for f in topology.tls.files(name)):
            return Site(topology, name)
    ca, cert, _ = topology.tls.files(names[0])
    raise UsageError(f"tls: no site's certificate and key are on this host (looked for {cert} "
                     f"and the others, with the CA {ca}); run this on one of the sites")


def site_journals(topology: Topology) -> list[dict[str, Any]]:
    """The journal of every site whose files are on this host (each agent journals to its own
    site's `journal.jsonl`; on a real host that is the host's own site, in the lab all of
    them), each entry with its `site`, in wall-clock order: for a person to read; the history
    checker never orders entries of two sites by their clocks."""
    entries: list[dict[str, Any]] = []
    for name in topology.sites:
        path = Site(topology, name).journal_path
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash mid-write
            if isinstance(entry, dict):
                entries.append({"site": name, **entry})
    entries.sort(key=lambda e: str(e.get("ts", "")))
    return entries


def plan_journal(topology: Topology, plan_id: str) -> list[dict[str, Any]]:
    """The journal of the site whose agent ran `plan_id` (its own clock throughout, so the
    report's durations never mix two sites' clocks); empty when no site's files here hold it."""
    for name in topology.sites:
        path = Site(topology, name).journal_path
        if not path.exists() or plan_id not in path.read_text():
            continue
        entries = []
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        if any(e.get("plan") == plan_id and e.get("event") == "plan"
               and e.get("outcome") == "started" for e in entries):
            return entries
    return []


def sites_status(topology: Topology, store: EtcdStateStore | None = None) -> dict[str, Any]:
    """The stable contract of `status --json` on the sites; `store`: etcd as a site's agent
    reaches it (default: with the identity of the site whose files are on this host)."""
    data: dict[str, Any] = {"world": "sites", "error": None, "epoch": None, "primary": None,
                            "writer": None, "plan": None, "sync_degraded_lsn": None,
                            "edge_url": None,  # the sandbox's sites fill it (`status`)
                            "approval": None,  # a failover waiting for a person
                            "last_plan": None}  # the latest plan (running, done or failed)
    roles: dict[str, str] = {}
    try:
        store = store or person_site(topology).store()
        live = store.load()
        held = store.writer()
        roles = {r: role.value for r, role in live.roles.items()}
        from regionguard.providers.etcd.approvals import EtcdApprovals

        data["approval"] = EtcdApprovals(store).pending()
        data.update(epoch=live.epoch, primary=live.primary,
                    writer=held.json() if held is not None else None,
                    sync_degraded_lsn=live.sync_degraded_lsn,
                    plan=None if live.plan is None else {
                        "id": live.plan.id, "kind": live.plan.plan.kind.value,
                        "target": live.plan.plan.target})
        last = store.read_plan()
        if last is not None:
            data["last_plan"] = {"id": last.id, "kind": last.plan.kind.value,
                                 "source": last.plan.source, "target": last.plan.target,
                                 "status": last.status.value, "finished_at": last.finished_at}
    except RegionGuardError as exc:
        data["error"] = f"etcd: {str(exc).splitlines()[0]}"
    regions = []
    with httpx.Client(timeout=ROUTE_TIMEOUT_S, trust_env=False) as http:
        for name, spec in topology.regions.items():
            url = Site(topology, name).front_door_url(name)
            route: dict[str, Any] | None = None
            route_error = None
            try:
                answer = http.get(f"{url}/health/route")
            except httpx.HTTPError as exc:
                route_error = f"{type(exc).__name__}: {exc}"[:200]
            else:
                try:
                    route = answer.json()
                except ValueError:
                    route = None
                if not isinstance(route, dict):  # e.g. the front door's own 503: no app of
                    # the region says it holds the lease
                    route, route_error = None, f"HTTP {answer.status_code} from the front door"
            regions.append({"name": name, "home_role": spec.home_role.value,
                            "role": roles.get(name), "host": spec.site_host,
                            "front_door_url": url, "route": route, "route_error": route_error})
    data["regions"] = regions
    witness = topology.witness
    data["witness"] = None if witness is None else {"name": witness.name, "host": witness.host}
    data["members"] = dict(topology.arbiter.members)
    # every site's agent serves /metrics, /api/status and the sites' live page (agent/ops.py)
    data["agent_urls"] = {name: f"http://{topology.site_host(name)}:"
                                f"{topology.arbiter.agent_port}" for name in topology.sites}
    return data
