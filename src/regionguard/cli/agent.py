"""`regionguard agent --site NAME`: a self-managed site's one process (systemd runs it on real
hosts; the lab and the tests start one per site), and its watchdog (hidden: the agent starts
it beside PostgreSQL)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer

from regionguard.cli.common import one_line_errors, state

# the agent's modules (etcd's client, PostgreSQL's, the app's) are imported by its commands
# only: every other command starts without them

SITE_HELP = ("This host's site: a region of the topology, or the witness. The topology's "
             "[arbiter] must be kind = \"etcd\" with one member per site.")


def _stopping() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@one_line_errors
def agent(ctx: typer.Context,
          site: Annotated[str, typer.Option("--site", help=SITE_HELP)]) -> None:
    """Run this site's agent until stopped: keep the write lease (primary) or probe the primary
    and fail over to this region when a quorum of other sites sees it down (standby), keep this
    site's database, apps and front door in the role etcd gives it. The primary's database is
    fenced by this site itself when the lease cannot be renewed; no site acts on another."""
    from regionguard.agent.runner import Agent
    from regionguard.agent.site import Site

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    st = state(ctx)
    runner = Agent(Site(st.user_topology(), site), st.config.absolute())
    runner.run(_stopping())


@one_line_errors
def watchdog_cmd(ctx: typer.Context,
                 site: Annotated[str, typer.Option("--site", help=SITE_HELP)]) -> None:
    """(internal) Fence this site's database when its agent stops renewing the write lease."""
    from regionguard.agent.site import Site
    from regionguard.agent.watchdog import watch_until_stopped

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    st = state(ctx)
    here = Site(st.user_topology(), site)
    database = here.database(here.region)
    watch_until_stopped(here.heartbeat, lambda _: database.self_fence(), _stopping())


@one_line_errors
def rejoin(ctx: typer.Context,
           region: Annotated[str, typer.Argument(help="The old primary to rebuild.")],
           by: Annotated[str | None, typer.Option(help="Who asks, for the journal "
                                                       "(default: user@host).")] = None) -> None:
    """Rebuild REGION's database, an old primary kept stopped since a failover, as a standby
    of the live primary: its own agent does it (pg_rewind, else a fresh copy), on its next
    look. Self-managed sites only; the sandbox's `failback` does this and more."""
    from regionguard.cli.common import out, who
    from regionguard.cli.site_plans import sites_store
    from regionguard.config import Role
    from regionguard.errors import UnsafeOperation, UsageError

    topology = state(ctx).topology()
    if topology.arbiter.kind != "etcd":
        raise UsageError("rejoin: arbiter.kind is not \"etcd\"; in the sandbox "
                         "`regionguard failback` rebuilds the old primary")
    if region not in topology.regions:
        raise UsageError(f"rejoin: {region!r} is not a region; choose one of "
                         f"{', '.join(topology.regions)}")
    store = sites_store(topology, "rejoin")
    live = store.load()
    if live.roles[region] is Role.PRIMARY:
        raise UnsafeOperation(f"rejoin: {region} is the live primary; only a region that was "
                              "failed away from is rebuilt")
    store.request_rejoin(region, who(by), live.epoch)
    out.print(f"{region}: rejoin asked; its agent rebuilds it as a standby of {live.primary} "
              "on its next look", highlight=False)
