"""The sandbox's own processes, started by `up` (hidden commands): the supervisor and the
controller it keeps running."""

from __future__ import annotations

import logging
import signal
from datetime import UTC, datetime

import typer

from regionguard.cli.common import state
from regionguard.errors import RegionGuardError


def supervise_cmd(ctx: typer.Context) -> None:
    """(internal) Keep the controller running."""
    from regionguard.providers.local.supervisor import supervise

    st = state(ctx)
    raise typer.Exit(supervise(st.config.absolute(),
                               st.user_topology().state_dir.absolute()))


def controller_cmd(ctx: typer.Context) -> None:
    """(internal) The detection and failover loop."""
    from regionguard.ops.report import plan_report_html, plan_waterfall_svg
    from regionguard.orchestrator.controller import Controller
    from regionguard.providers.local.ops_endpoint import start_ops
    from regionguard.providers.local.readiness_facts import gather as gather_readiness
    from regionguard.providers.local.sandbox import Sandbox

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    st = state(ctx)
    topo, world = st.user_topology(), st.world
    ports = world.build_ports(topo)
    controller = Controller(ports, approvals=world.approvals(topo),
                            readiness_facts=lambda: gather_readiness(ports, datetime.now(UTC)))
    signal.signal(signal.SIGTERM, lambda *_: controller.stop.set())
    try:
        ops = start_ops(Sandbox(topo), tick=lambda: controller.view,
                        report_html=lambda plan: plan_report_html(ports.journal.entries(), plan),
                        waterfall=plan_waterfall_svg)
    except (OSError, RegionGuardError) as exc:  # no status page is no reason not to fail over
        logging.getLogger("regionguard.ops").error("ops endpoint not started: %s", exc)
        ops = None
    try:
        controller.run_forever()
    finally:
        if ops is not None:
            ops.stop()
