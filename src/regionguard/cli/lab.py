"""`regionguard lab up|status|down|fault`: the lab of real hosts on one machine (root only).

The lab runs the topology of `-c` (its application, strategy, replication and policy) on sites
of its own: one network and PID namespace per region, one for the witness, one for a client
site with the edge. See docs/sites.md, "The lab"."""

from __future__ import annotations

import signal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from regionguard.cli.common import one_line_errors, out, print_json, progress_reporter, state
from regionguard.errors import ProviderError, UsageError

# the lab's modules (etcd's client and the agent's) are imported by its commands only

app = typer.Typer(help="A lab of real hosts on one machine: namespaces, real partitions "
                       "(root); or the same sites on loopback (--loopback, any user).",
                  no_args_is_help=True)

LabDir = Annotated[Path, typer.Option("--lab", help="The lab's directory (its topology, "
                                                    "record, logs and data).")]
DEFAULT_LAB = Path(".regionguard-lab")


class Fault(StrEnum):
    KILL = "kill"  # the site's host is lost: every process, and its link
    FREEZE = "freeze"  # every process of the site stopped (SIGSTOP): a hung host
    THAW = "thaw"
    PARTITION = "partition"  # nftables in the site's namespace, from --from (default: all)
    HEAL = "heal"  # undo partition, link down, a stopped etcd member, freeze
    START = "start"  # start a killed site again (its old primary stays fenced)
    KILL_AGENT = "kill-agent"  # the agent alone (its init restarts it, as systemd would)
    FREEZE_AGENT = "freeze-agent"
    STOP_ETCD = "stop-etcd"  # lose the site's etcd member until `heal`


@app.command("up")
@one_line_errors
def up(ctx: typer.Context, lab: LabDir = DEFAULT_LAB,
       timeout: Annotated[float, typer.Option(help="Seconds to wait for the lab to serve.")]
       = 120.0,
       loopback: Annotated[bool, typer.Option(
           "--loopback", help="The same sites side by side on 127.77.0.x, as any user: no "
                              "namespaces, so no partitions (kill, freeze, agent and etcd "
                              "faults only).")] = False) -> None:
    """Build the lab (namespaces, bridge, one etcd member and one agent per site, the edge)
    and wait until the edge reaches the primary under the write lease."""
    from regionguard.lab.lab import Lab

    lab_ = Lab.create(lab, state(ctx).user_topology(), loopback=loopback)
    lab_.require_root("up")
    data = lab_.up(progress_reporter(), timeout)
    where = (f"from namespace {data['client_namespace']}" if data["client_namespace"]
             else "on loopback")
    out.print(f"[bold green]lab up[/bold green]: edge {data['edge_url']} ({where}); "
              f"`regionguard lab status --lab {lab}` for each site", highlight=False)


@app.command("status")
@one_line_errors
def status(ctx: typer.Context, lab: LabDir = DEFAULT_LAB,
           as_json: Annotated[bool, typer.Option(
               "--json", help="Machine-readable (a stable contract: docs/sites.md).")] = False
           ) -> None:
    """Each site: kind, live role, namespace, address, pids, front door; the edge URL."""
    from regionguard.lab.lab import Lab

    lab_ = Lab.existing(lab)
    lab_.require_root("status")
    data = lab_.status()
    if as_json:
        print_json(data)
        return
    for site in data["sites"]:
        pids = ", ".join(f"{k} {' '.join(map(str, v))}" for k, v in site["pids"].items() if v)
        out.print(f"{site['name']:<8} {site['kind']:<8} {site['role'] or '-':<8} "
                  f"{site['namespace'] or 'loopback':<14} {site['address']:<12} "
                  f"{'up' if site['running'] else 'DOWN':<5} {pids}", highlight=False)
    where = (f"namespace {data['client_namespace']}" if data["client_namespace"]
             else "loopback")
    out.print(f"edge {data['edge_url']} ({where})"
              + (f"; {data['error']}" if data["error"] else ""), highlight=False)


@app.command("down")
@one_line_errors
def down(lab: LabDir = DEFAULT_LAB) -> None:
    """Stop every process of the lab and remove its namespaces, links, nftables tables and
    files (also what a crashed lab left behind)."""
    from regionguard.lab.lab import down_anything

    result = down_anything(lab, progress_reporter())
    if result["survivors"] or result["namespaces_left"]:
        raise ProviderError(f"left behind: processes {result['survivors']}, namespaces "
                            f"{result['namespaces_left']}")
    out.print("lab down: nothing left")


@app.command("fault")
@one_line_errors
def fault(
    fault: Annotated[Fault, typer.Argument(help="What to do to the site.")],
    site: Annotated[str, typer.Argument(help="The site (a region, witness or client).")],
    lab: LabDir = DEFAULT_LAB,
    from_: Annotated[list[str] | None, typer.Option(
        "--from", help="partition: the peers cut off (repeat; default: every other site).")]
    = None,
    direction: Annotated[str, typer.Option(
        help="partition: both, in (drop what arrives) or out (drop what leaves).")] = "both",
    etcd_only: Annotated[bool, typer.Option(
        "--etcd-only", help="partition: only etcd's traffic (client and peer ports): the "
                            "site keeps its replication and its apps' paths.")] = False,
) -> None:
    """Hurt one site the way real hosts fail (or undo it)."""
    from regionguard.lab.lab import Lab
    from regionguard.lab.layout import ETCD_CLIENT_PORT, ETCD_PEER_PORT

    lab_ = Lab.existing(lab)
    lab_.require_root("fault")
    names = [s.name for s in lab_.layout.sites]
    if site not in names:
        raise UsageError(f"site {site!r} is not in the lab; choose one of {', '.join(names)}")
    if direction not in ("both", "in", "out"):
        raise UsageError("--direction: use both, in or out")
    match fault:
        case Fault.KILL:
            done = f"killed {len(lab_.kill(site))} processes, link down"
        case Fault.FREEZE | Fault.THAW:
            sig = signal.SIGSTOP if fault is Fault.FREEZE else signal.SIGCONT
            done = f"{fault.value}: {len(lab_.signal_site(site, sig))} processes"
        case Fault.PARTITION:
            peers = from_ or [n for n in names if n != site]
            unknown = [p for p in peers if p not in names or p == site]
            if unknown:
                raise UsageError(f"--from {unknown[0]}: not another site of the lab")
            lab_.partition(site, peers, inbound=direction != "out", outbound=direction != "in",
                           ports=(ETCD_CLIENT_PORT, ETCD_PEER_PORT) if etcd_only else ())
            done = (f"partitioned from {', '.join(peers)}"
                    + (" for etcd only" if etcd_only else "") + f" ({direction})")
        case Fault.HEAL:
            lab_.heal(site)
            done = "healed"
        case Fault.START:
            lab_.start(site)
            done = "started"
        case Fault.KILL_AGENT | Fault.FREEZE_AGENT:
            sig = signal.SIGKILL if fault is Fault.KILL_AGENT else signal.SIGSTOP
            done = f"{fault.value}: pids {lab_.signal_site(site, sig, only='agent')}"
        case Fault.STOP_ETCD:
            done = f"etcd member stopped: pids {lab_.stop_etcd(site)}"
    out.print(f"{site}: {done}", highlight=False)


@one_line_errors
def init_cmd(ctx: typer.Context,
             site: Annotated[str, typer.Option("--site")],
             lab: LabDir = DEFAULT_LAB) -> None:
    """(internal) A lab site's init, first process of its PID namespace."""
    from regionguard.lab import site_init
    from regionguard.lab.lab import Lab
    from regionguard.lab.layout import LabLayout

    lab_ = Lab.existing(lab)
    raise typer.Exit(site_init.main(LabLayout.of_lab(lab, lab_.topology), lab_.topology, site))
