"""The sandbox's lifecycle and any world's status: validate, up, down, status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from regionguard.cli.common import one_line_errors, out, print_json, progress_reporter, state
from regionguard.config import load_topology
from regionguard.errors import NotAvailable, ProviderError
from regionguard.worlds.local import refuse_sites


@one_line_errors
def validate(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Argument(help="Topology file to check (default: the -c file).")
    ] = None,
) -> None:
    """Check a topology file: one line saying it is valid, or one line per problem and exit 2."""
    path = file or state(ctx).config
    topo = load_topology(path)
    regions = ", ".join(f"{n} ({r.home_role.value})" for n, r in topo.regions.items())
    out.print(
        f"{path}: ok — app {topo.app!r}, {topo.strategy.value}, {topo.replication.value} "
        f"replication, regions {regions}",
        highlight=False,
    )


@one_line_errors
def up(
    ctx: typer.Context,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the sites to serve.")]
    = 90.0,
) -> None:
    """Bring the sandbox up (idempotent: starts whichever site is down).

    The regions of the topology run as self-managed sites on loopback, as on separate hosts:
    per site an etcd member and a `regionguard agent` (east and west also PostgreSQL, their
    apps and a front door; the witness only probes), TLS between them, and an edge that sends
    every client to the region whose apps hold the write lease. Files in <state_dir>/sites;
    prints the edge's URL."""
    st = state(ctx)
    topology = st.user_topology()
    refuse_sites(topology, "up")
    from regionguard.lab.sandbox_sites import sites_up

    data = sites_up(topology, progress_reporter(), wait)
    out.print(f"\n[bold green]up[/bold green]: edge {data['edge_url']} (sites "
              f"{', '.join(s['name'] for s in data['sites'])} on loopback); "
              "`regionguard status` for each region", highlight=False)
    page = next((s["agent_url"] for s in data["sites"] if s.get("agent_url")), None)
    if page:
        out.print(f"live page and /metrics: {page}/ (every site's agent serves them)",
                  highlight=False)


@one_line_errors
def down(ctx: typer.Context) -> None:
    """Stop every process of the sandbox's sites (by pid), remove their files (a site's data
    lives with it) and verify that nothing is left."""
    st = state(ctx)
    topology = st.user_topology()
    refuse_sites(topology, "down")
    sites = st.sandbox_sites(topology)
    if sites is None:
        out.print("nothing is up")
        if (topology.state_dir / "state.json").exists():  # an older regionguard's sandbox
            out.print(f"note: {topology.state_dir.absolute() / 'state.json'} is the retired "
                      "single-controller sandbox's: any of its processes still running are "
                      "named (with their pids) in it; stop them, then delete the folder",
                      highlight=False)
        return
    from regionguard.lab.lab import down_anything

    left = down_anything(sites, progress_reporter())
    if left["survivors"] or left["namespaces_left"]:
        raise ProviderError(f"left behind: processes {left['survivors']}, "
                            f"{left['namespaces_left']}")
    out.print("down: the sites stopped, nothing left")


@one_line_errors
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable (stable contract).")]
    = False,
) -> None:
    """Regions, live roles, the writer and its lease, a running plan, each front door.

    Self-managed sites (the sandbox's, or arbiter kind "etcd"): what etcd says (epoch, roles,
    the writer key, a running plan, a sync degrade, a pending approval) and each region's
    front door (does it hold the lease). Exit 4 when nothing is up. Other worlds: their
    arbiter's summary as JSON."""
    st = state(ctx)
    topology = st.topology()
    sites = st.sandbox_sites()
    if sites is not None:  # the sandbox's sites: running at all? (files outlive a reboot)
        from regionguard.lab.lab import Lab

        lab = Lab.existing(sites)
        if not any(lab.processes(site.name) for site in lab.layout.sites):
            raise NotAvailable(f"the sandbox's sites in {sites} are not running (the machine "
                               "restarted?): `regionguard up` starts them again, "
                               "`regionguard down` removes them")
    data = st.world.status(topology)
    if st.world.name != "local":
        print_json(data)
        return
    if sites is not None:  # the sandbox's sites: their edge
        data["edge_url"] = lab.layout.edge_url
    if as_json:
        print_json(data)
    else:
        render_sites(data)


def render_sites(data: dict[str, Any]) -> None:
    """The sites' `status --json` contract as a table and a line."""
    table = Table(title=f"self-managed sites · epoch {data['epoch']} · writer "
                        f"{(data['writer'] or {}).get('region', 'none')}")
    for col in ("region", "role (home)", "host", "front door", "holds the lease"):
        table.add_column(col)
    for r in data["regions"]:
        route = r["route"]
        holds = ("[green]yes[/green]" if route and route.get("holds_lease") else
                 "no" if route is not None else f"no ({r['route_error']})")
        table.add_row(r["name"], f"{r['role'] or '?'} ({r['home_role']})", r["host"],
                      r["front_door_url"], holds)
    out.print(table)
    if data["plan"]:
        out.print(f"plan running: {data['plan']['kind']} to {data['plan']['target']} "
                  f"({data['plan']['id']})", highlight=False)
    if data["sync_degraded_lsn"]:
        out.print(f"[yellow]sync degraded[/yellow] from {data['sync_degraded_lsn']}: the "
                  "standby is not eligible until it confirms every write", highlight=False)
    last = data.get("last_plan")
    if last and last["status"] != "running":
        out.print(f"last plan: {last['kind']} {last['source']} -> {last['target']}, "
                  f"{last['status']} ({last['id']}); its report: `regionguard report "
                  f"{last['id']}`", highlight=False, markup=False)
    waiting = data.get("approval")
    if waiting and not waiting.get("decision"):
        out.print(f"[yellow]waiting for approval[/yellow]: {waiting.get('plan_id')} (a failover "
                  f"to {waiting.get('target')}); `regionguard approve|reject "
                  f"{waiting.get('plan_id')}`", highlight=False)
    if data.get("edge_url"):
        out.print(f"edge (every client's URL): {data['edge_url']}", highlight=False)
    pages = data.get("agent_urls") or {}
    if pages:
        out.print("live page and /metrics: each site's agent, e.g. "
                  f"{next(iter(pages.values()))}/", highlight=False)
    if data["error"]:
        out.print(f"[red]{data['error']}[/red]", highlight=False)
