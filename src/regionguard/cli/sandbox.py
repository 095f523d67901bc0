"""The sandbox's lifecycle and any world's status: validate, up, down, status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from regionguard.cli.common import one_line_errors, out, print_json, progress_reporter, state
from regionguard.config import load_topology
from regionguard.errors import ProviderError, UsageError
from regionguard.providers.local.sandbox import Sandbox
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
    wait: Annotated[float, typer.Option(help="Seconds to wait for the sandbox to serve.")]
    = 90.0,
    plan_wait: Annotated[float, typer.Option(
        help="--embedded: seconds to wait for a running failover/switchover to finish first.")]
    = 60.0,
    embedded: Annotated[bool, typer.Option(
        "--embedded", help="The older single-controller sandbox instead: one process decides "
                           "for both regions (state.json, fencing by signal), as on one host "
                           "only.")] = False,
) -> None:
    """Bring the sandbox up (idempotent: starts whatever is down).

    The regions of the topology run as self-managed sites on loopback, as on separate hosts:
    per site an etcd member and a `regionguard agent` (east and west also PostgreSQL, their
    apps and a front door; the witness only probes), TLS between them, and an edge that sends
    every client to the region whose apps hold the write lease. Files in <state_dir>/sites;
    prints the edge's URL."""
    st = state(ctx)
    topology = st.user_topology()
    refuse_sites(topology, "up")
    report = progress_reporter()
    sites = st.sandbox_sites(topology)
    if embedded:
        if sites is not None:
            raise UsageError("up --embedded: the sandbox's sites run (`regionguard up`); stop "
                             "them first with `regionguard down`")
        sb = Sandbox(topology)
        with out.status("bringing the sandbox up ...", spinner="dots"):
            url = sb.up(report=report, wait_s=wait, plan_wait_s=plan_wait)
            sb.start_supervisor(st.config, report)
        out.print(f"\n[bold green]up[/bold green]: front door {url}", highlight=False)
        return
    if Sandbox(topology).running():
        raise UsageError("up: the embedded sandbox runs (`up --embedded`); stop it first with "
                         "`regionguard down`")
    from regionguard.lab.sandbox_sites import sites_up

    data = sites_up(topology, report, wait)
    out.print(f"\n[bold green]up[/bold green]: edge {data['edge_url']} (sites "
              f"{', '.join(s['name'] for s in data['sites'])} on loopback); "
              "`regionguard status` for each region", highlight=False)


@one_line_errors
def down(
    ctx: typer.Context,
    purge: Annotated[bool, typer.Option(help="Also delete the state dir and databases.")] = False,
    plan_wait: Annotated[float, typer.Option(
        help="Seconds to wait for a running failover/switchover to finish first.")] = 60.0,
) -> None:
    """Stop every process the sandbox started (by pid) and verify none is left.

    The sites: every site's processes, then their files (`--purge` is implied: a site's data
    lives with it). The embedded sandbox: never in the middle of a plan (a running failover or
    switchover is waited for)."""
    st = state(ctx)
    topology = st.user_topology()
    refuse_sites(topology, "down")
    sites = st.sandbox_sites(topology)
    if sites is not None:
        from regionguard.lab.lab import down_anything

        left = down_anything(sites, progress_reporter())
        if left["survivors"] or left["namespaces_left"]:
            raise ProviderError(f"left behind: processes {left['survivors']}, "
                                f"{left['namespaces_left']}")
        out.print("down: the sites stopped, nothing left")
        if not purge:
            return
    result = Sandbox(topology).down(purge=purge, report=progress_reporter(),
                                    plan_wait_s=plan_wait)
    if sites is not None:
        return
    if not result.was_up:
        out.print("nothing is up" + (" (state purged)" if purge else ""))
        return
    if result.survivors:
        raise ProviderError(f"processes survived down: {sorted(set(result.survivors))}")
    out.print(f"down: stopped {len(result.stopped)} processes"
              + ("; state and databases deleted" if purge else ""))


@one_line_errors
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable (stable contract).")]
    = False,
) -> None:
    """Regions, live roles, database state and lag, processes, traffic share, last failover.

    On self-managed sites (arbiter kind "etcd"): what etcd says (epoch, roles, the writer key,
    a running plan, a sync degrade) and each region's front door (does it hold the lease)."""
    st = state(ctx)
    topology = st.topology()
    if st.world.name == "local" and topology.arbiter.kind == "etcd":
        from regionguard.agent.site_status import sites_status

        data = sites_status(topology)
        sites = st.sandbox_sites()
        if sites is not None:  # the sandbox's sites: their edge, and where their files are
            from regionguard.lab.lab import Lab

            data["edge_url"] = Lab.existing(sites).layout.edge_url
        if as_json:
            print_json(data)
        else:
            render_sites(data)
        return
    data = st.world.status(topology)
    if as_json or not st.world.status_table:
        print_json(data)
        return
    render_status(data)


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


def render_status(data: dict[str, Any]) -> None:
    """The `status --json` contract as a table and a few lines."""
    table = Table(title=f"front door {data['front_door']['url']} · epoch {data['epoch']}")
    for col in ("region", "role (home)", "database", "lag", "processes", "traffic"):
        table.add_column(col)
    for r in data["regions"]:
        db = r["db"]
        if not db["up"]:
            db_text = "[red]down[/red]"
        else:
            db_text = ("standby" if db["in_recovery"] else "[green]primary[/green]") + (
                f" tl{db['timeline']} {db['lsn']}")
        lag = "-" if db.get("lag_bytes") is None else f"{db['lag_bytes']} B / {db['lag_s']:.3f} s"
        share = r["traffic_share"]
        table.add_row(
            r["name"], f"{r['role']} ({r['home_role']})", db_text, lag,
            f"{r['compute']['ready']}/{r['compute']['desired']} ready",
            "?" if share is None else f"{share:.0%}",
        )
    out.print(table)
    last = data.get("last_failover")
    if last:
        steps = ", ".join(f"{k} {v:.2f}" for k, v in last["steps"].items())
        plan_id = last.get("plan_id")
        out.print(f"last {last['plan']}: {last['from']} -> {last['to']}, RTO {last['rto_s']:.2f} s"
                  f" ({steps}; other {last['other_s']:.2f})"
                  + (f"; plan {plan_id}, `regionguard report {plan_id}`" if plan_id else ""),
                  highlight=False, markup=False)
    ctl = data["controller"]
    out.print(f"controller: {'running, pid ' + str(ctl['pid']) if ctl['running'] else 'stopped'}"
              f" ({ctl['mode']})")
    waiting = data.get("awaiting_approval")
    if waiting and not waiting.get("decision"):
        out.print(f"[yellow]waiting for approval[/yellow]: {waiting['kind']} to "
                  f"{waiting['target']} ({waiting['reason']}); `regionguard approve "
                  f"{waiting['plan_id']}` or `regionguard reject {waiting['plan_id']}`")
    if data.get("ops"):
        out.print(f"status page {data['ops']['status_url']} · metrics "
                  f"{data['ops']['metrics_url']}", highlight=False)
