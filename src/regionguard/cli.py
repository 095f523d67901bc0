"""The `regionguard` command line (Typer + Rich).

Every command turns a `RegionGuardError` into one line on stderr and its exit code
(0 ok, 1 failed, 2 bad input, 3 refused as unsafe, 4 not available yet): never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from regionguard import durations
from regionguard.config import DEFAULT_CONFIG_FILE, Topology, load_topology
from regionguard.drill.faults import CATALOG, describe_catalog
from regionguard.drill.report import rich_table, write_json
from regionguard.drill.runner import DrillSettings, run_drill
from regionguard.errors import (
    NotAvailable,
    ProviderError,
    RegionGuardError,
    UnsafeOperation,
    UsageError,
)
from regionguard.ops.report import plan_report, plan_report_html, plan_waterfall_svg
from regionguard.orchestrator import engine, plans
from regionguard.orchestrator import readiness as readiness_checks
from regionguard.orchestrator.approval import Approvals
from regionguard.orchestrator.controller import Controller
from regionguard.orchestrator.events import Event
from regionguard.orchestrator.ports import Ports
from regionguard.providers.local import build_ports
from regionguard.providers.local.approvals import FileApprovals
from regionguard.providers.local.ops_endpoint import start_ops
from regionguard.providers.local.readiness_facts import gather as gather_readiness
from regionguard.providers.local.sandbox import Sandbox
from regionguard.providers.local.supervisor import supervise
from regionguard.worlds.local import SandboxTarget

app = typer.Typer(
    help="Keep an application available across two regions and fail it over automatically.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

WORLDS = ("local", "aws", "aws-emulated")


class _Ctx:
    config: Path = DEFAULT_CONFIG_FILE
    world: str = "local"


ctx_state = _Ctx()


WORLD_COMMANDS = {
    "aws": {"status", "failover", "switchover", "validate", "synth", "backup"},
    "aws-emulated": {"drill", "validate", "synth"},
}


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Topology file (default: ./regionguard.toml).")
    ] = DEFAULT_CONFIG_FILE,
    world: Annotated[str, typer.Option(
        "--world", help="local (the sandbox), aws (boto3 with your AWS credentials; "
        "status, failover and switchover) or aws-emulated (the AWS world on moto behind a "
        "per-region fault proxy, offline; drill).")] = "local",
) -> None:
    ctx_state.config = config
    if world not in WORLDS:
        err.print(f"error: --world: {world!r} is not a world; use {', '.join(WORLDS)}")
        raise typer.Exit(2)
    allowed = WORLD_COMMANDS.get(world)
    if allowed is not None and ctx.invoked_subcommand not in allowed:
        err.print(f"error: --world {world}: `{ctx.invoked_subcommand}` is for the local "
                  f"sandbox; with this world use {', '.join(sorted(allowed))}")
        raise typer.Exit(2)
    ctx_state.world = world


def one_line_errors(func: F) -> F:
    """Run a command; print a RegionGuardError as one line and exit with its code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RegionGuardError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: one line, the traceback only when asked for
            if os.environ.get("RG_DEBUG"):
                raise
            err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (a bug; rerun "
                      "with RG_DEBUG=1 for the traceback and report it)", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def topology() -> Topology:
    return load_topology(ctx_state.config)


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.command()
@one_line_errors
def validate(
    file: Annotated[
        Path | None, typer.Argument(help="Topology file to check (default: the -c file).")
    ] = None,
) -> None:
    """Check a topology file: one line saying it is valid, or one line per problem and exit 2."""
    path = file or ctx_state.config
    topo = load_topology(path)
    regions = ", ".join(f"{n} ({r.home_role.value})" for n, r in topo.regions.items())
    out.print(
        f"{path}: ok — app {topo.app!r}, {topo.strategy.value}, {topo.replication.value} "
        f"replication, regions {regions}",
        highlight=False,
    )


def sandbox() -> Sandbox:
    return Sandbox(topology())


def progress_reporter() -> Callable[[str], None]:
    """Print each step of a long operation with the time since the command started."""
    started = time.monotonic()

    def report(message: str) -> None:
        out.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim]  {message}", highlight=False)

    return report


@app.command()
@one_line_errors
def up(
    wait: Annotated[float, typer.Option(help="Seconds to wait for app processes to be ready.")]
    = 60.0,
    plan_wait: Annotated[float, typer.Option(
        help="Seconds to wait for a running failover/switchover to finish first.")] = 60.0,
) -> None:
    """Bring the local two-region sandbox up (idempotent: repairs whatever is missing).

    Starts PostgreSQL primary + streaming hot standby, the app processes each region runs in
    its live role, and the HAProxy front door; prints the front-door URL."""
    sb = sandbox()
    report = progress_reporter()
    with out.status("bringing the sandbox up ...", spinner="dots"):
        url = sb.up(report=report, wait_s=wait, plan_wait_s=plan_wait)
        sb.start_supervisor(ctx_state.config, report)
    out.print(f"\n[bold green]up[/bold green]: front door {url}", highlight=False)


@app.command()
@one_line_errors
def down(
    purge: Annotated[bool, typer.Option(help="Also delete the state dir and databases.")] = False,
    plan_wait: Annotated[float, typer.Option(
        help="Seconds to wait for a running failover/switchover to finish first.")] = 60.0,
) -> None:
    """Stop every process the sandbox started (by pid) and verify none is left.

    Never in the middle of a plan: a running failover or switchover is waited for."""
    result = sandbox().down(purge=purge, report=progress_reporter(), plan_wait_s=plan_wait)
    if not result.was_up:
        out.print("nothing is up" + (" (state purged)" if purge else ""))
        return
    if result.survivors:
        raise ProviderError(f"processes survived down: {sorted(set(result.survivors))}")
    out.print(f"down: stopped {len(result.stopped)} processes"
              + ("; state and databases deleted" if purge else ""))


@app.command()
@one_line_errors
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable (stable contract).")]
    = False,
) -> None:
    """Regions, live roles, database state and lag, processes, traffic share, last failover."""
    if ctx_state.world == "aws":
        from regionguard.providers.aws.wiring import describe

        print_json(describe(engine_ports()))
        return
    data = sandbox().status()
    if as_json:
        print_json(data)
        return
    render_status(data)


def render_status(data: dict[str, Any]) -> None:
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
        out.print(f"last {last['plan']}: {last['from']} -> {last['to']}, RTO {last['rto_s']:.2f} s"
                  f" ({steps}; other {last['other_s']:.2f})", highlight=False)
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


# -- the engine's commands ---------------------------------------------------------------------


def engine_ports() -> Ports:
    """The engine's ports for the selected world (one wiring function per world)."""
    if ctx_state.world == "aws-emulated":
        raise UsageError("--world aws-emulated runs drills only: `regionguard --world "
                         "aws-emulated drill --fault region-outage --region us-east-1`")
    if ctx_state.world == "aws":
        try:
            from regionguard.providers.aws.wiring import build_ports as aws_ports
        except ImportError:
            raise NotAvailable("the aws extra is missing: pip install 'regionguard[aws]'") from None
        return aws_ports(topology())
    return local_ports()


def local_ports() -> Ports:
    """The local world's ports, for a sandbox that exists (else exit 4 saying how to start)."""
    topo = topology()
    ports = build_ports(topo)
    if not ports.state.load().roles:
        raise NotAvailable(f"no sandbox in {topo.state_dir.absolute()}; start one with "
                           "`regionguard up`")
    return ports


def _drive(ports: Ports, request: engine.Request, dry_run: bool, yes: bool,
           on_confirmed: Callable[[plans.Plan], None] | None = None) -> None:
    """A person's plan through the engine's one entry point: print it, confirm, run it.
    `on_confirmed` sees the plan once the person confirmed it, before it runs."""

    def show(plan: plans.Plan) -> None:
        for line in plan.describe():
            out.print(line, highlight=False)

    def confirm(plan: plans.Plan) -> None:
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError("this changes which region takes writes; pass --yes to confirm")
            typer.confirm(f"{plan.kind.value} to {plan.target}: proceed?", abort=True)
        if on_confirmed is not None:
            on_confirmed(plan)

    report = progress_reporter()

    def on_step(name: str, outcome: str, elapsed: float) -> None:
        if outcome == "done":
            report(f"{name} done ({elapsed:.2f} s)")

    result = engine.drive(ports, request, dry_run=dry_run, on_plan=show, confirm=confirm,
                          on_step=on_step)
    if result.result is engine.Result.PLANNED:
        out.print("[dim](dry run: nothing was changed)[/dim]")
        return
    assert result.plan is not None
    rto = result.summary.get("rto_s")
    moved = (f"RTO {rto} s" if rto is not None
             else f"{result.plan.source} rebuilt as its standby; the writer did not move")
    out.print(f"[bold green]{result.plan.kind.value} done[/bold green]: {result.plan.target} is "
              f"primary; {moved}", highlight=False)
    for warning in result.plan.warnings:  # what it accepted knowingly, said again at the end
        out.print(f"[bold yellow]warning[/bold yellow]: {escape(warning)}", highlight=False)
    if ctx_state.world == "local":
        render_status(sandbox().status())


DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@app.command()
@one_line_errors
def failover(
    to: Annotated[str | None, typer.Option(help="Target region (default: the standby).")]
    = None,
    force: Annotated[bool, typer.Option(help="Fail over even if the primary looks healthy "
                                        "or the standby lags beyond the RPO target.")] = False,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Unplanned: fence the primary, promote the standby, scale, route, verify."""
    _drive(engine_ports(), engine.Request(plans.PlanKind.FAILOVER, to, force=force),
           dry_run, yes)


@app.command()
@one_line_errors
def switchover(
    to: Annotated[str, typer.Option(help="Region to make primary.")],
    ungraceful: Annotated[bool, typer.Option(
        help="The graceful plan cannot finish (e.g. `stop_writes` on a primary that no longer "
             "answers): run the ungraceful mode instead, a failover that fences the primary "
             "rather than draining it; journaled with who asked.")] = False,
    by: Annotated[str | None, typer.Option(help="Who asks for --ungraceful (default: "
                                           "user@host).")] = None,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Planned, no data loss: stop writes, wait for the standby to replay, swap roles."""
    ports = engine_ports()
    if not ungraceful:
        _drive(ports, engine.Request(plans.PlanKind.SWITCHOVER, to), dry_run, yes)
        return
    who = _who(by)
    reason = f"ungraceful switchover to {to}, asked by {who}"

    def on_record(plan: plans.Plan) -> None:  # confirmed: who asked, before anything runs
        ports.journal.record(Event.UNGRACEFUL, plan=plan.id, region=to, by=who, detail=reason)

    _drive(ports, engine.Request(plans.PlanKind.FAILOVER, to, reason=reason), dry_run, yes,
           on_confirmed=on_record)


@app.command()
@one_line_errors
def failback(dry_run: DryRun = False, yes: Yes = False) -> None:
    """Rebuild the home primary as a standby (pg_rewind or copy), then switch back to it.

    When the writer is already home (a second failover brought it back), rebuild the other
    region as its standby instead, so the pair is redundant again."""
    _drive(local_ports(), engine.Request(plans.PlanKind.FAILBACK), dry_run, yes)


@app.command()
@one_line_errors
def events(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    last: Annotated[int, typer.Option(help="Show only the last N events (0: all).")] = 50,
) -> None:
    """The engine's journal: verdicts, plan steps, alerts (from .regionguard/journal.jsonl)."""
    entries = build_ports(topology()).journal.entries()
    if last:
        entries = entries[-last:]
    if as_json:
        for e in entries:
            sys.stdout.write(json.dumps(e) + "\n")
        return
    if not entries:
        out.print("no events yet")
        return
    for e in entries:
        what = " ".join(str(e[k]) for k in ("step", "outcome", "region", "verdict")
                        if e.get(k) is not None)
        extra = e.get("detail") or e.get("reason") or _observed(e) or ""
        dur = f" ({e['duration_s']} s)" if "duration_s" in e else ""
        plan_id = f" [{e['plan']}]" if e.get("plan") else ""
        out.print(f"{e['ts']} {e['event']:<14} {what}{dur}{plan_id} {extra}", highlight=False)


def _observed(e: dict[str, Any]) -> str:
    """One line for an `observation` entry: each region's role and database as planned from."""
    if e.get("event") != "observation":
        return ""
    dbs = e.get("databases") or {}
    parts = []
    for region, role in (e.get("roles") or {}).items():
        db = dbs.get(region)
        seen = ("" if db is None else " db down" if not db.get("up") else
                f" db {'standby' if db.get('in_recovery') else 'primary'}"
                + (f" lag {db['lag_bytes']} B" if db.get("lag_bytes") is not None else ""))
        parts.append(f"{region} {role}{seen}")
    return f"epoch {e.get('epoch')}: " + ", ".join(parts)


@app.command()
@one_line_errors
def readiness(
    as_json: Annotated[bool, typer.Option("--json", help="The checks as JSON.")] = False,
) -> None:
    """Would a failover work now? The standby streams within the RPO target, its capacity can
    start, the live configuration matches the topology, a drill ran recently. Exit 1 when a
    check fails (the controller also evaluates every readiness.interval_s)."""
    if ctx_state.world == "aws":
        raise NotAvailable("readiness runs against the local world for now; in AWS the guards' "
                           "probes and `status` cover replication and routing")
    ports = local_ports()
    checks = readiness_checks.evaluate(ports.topology,
                                       gather_readiness(ports, datetime.now(UTC)))
    worst = readiness_checks.overall(checks)
    if as_json:
        print_json({"status": worst, "checks": [c.as_dict() for c in checks]})
    else:
        colour = {"pass": "green", "warn": "yellow", "fail": "red"}
        for c in checks:
            out.print(f"[{colour[c.status]}]{c.status:<4}[/] {c.name:<22} {c.observed}"
                      + (f"\n     {'':<22} → {c.action}" if c.action and c.status != "pass"
                         else ""))
    if worst == "fail":
        raise typer.Exit(1)


def _approvals() -> Approvals:
    """Where the waiting request lives: the sandbox's file, or (`--world aws`) the arbiter."""
    if ctx_state.world == "aws":
        from regionguard.providers.aws.wiring import approvals

        return approvals(engine_ports())
    return FileApprovals(topology().state_dir)


def _who(by: str | None) -> str:
    import getpass
    import socket

    return by or f"{getpass.getuser()}@{socket.gethostname()}"


@app.command()
@one_line_errors
def approve(
    plan_id: Annotated[str, typer.Argument(help="The plan waiting for approval (`status`).")],
    by: Annotated[str | None, typer.Option(help="Who approves (default: user@host).")] = None,
) -> None:
    """Approve the automatic failover that waits for a person (failover.approval = manual)."""
    _approvals().decide(plan_id, "approved", _who(by), time.time())
    out.print(f"approved {plan_id}: the controller runs it on its next tick", highlight=False)


@app.command()
@one_line_errors
def reject(
    plan_id: Annotated[str, typer.Argument(help="The plan waiting for approval (`status`).")],
    by: Annotated[str | None, typer.Option(help="Who rejects (default: user@host).")] = None,
) -> None:
    """Reject the automatic failover that waits for a person: nothing runs for this outage."""
    _approvals().decide(plan_id, "rejected", _who(by), time.time())
    out.print(f"rejected {plan_id}: nothing runs; the controller alerts again on the next "
              "outage", highlight=False)


@app.command()
@one_line_errors
def report(
    plan_id: Annotated[str, typer.Argument(help="The plan's id (see `events` or `status`).")],
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Write the self-contained HTML report to this file.")] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open the HTML in a browser.")]
    = False,
) -> None:
    """A plan's execution report, rebuilt from the journal: what triggered it, each step's
    start, end, attempts and outcome, the RTO breakdown, readiness then, who approved it."""
    entries = engine_ports().journal.entries()
    data = plan_report(entries, plan_id)
    if data is None:
        raise UsageError(f"no plan {plan_id!r} in the journal; `regionguard events` lists "
                         "the plans (their ids are in brackets)")
    if as_json:
        print_json(data)
    if out_file is not None or open_it:
        target = out_file or Path(topology().state_dir) / "reports" / f"{plan_id}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(plan_report_html(entries, plan_id) or "")
        if not as_json:
            out.print(f"wrote {target}", highlight=False)
        if open_it:
            import webbrowser

            webbrowser.open(target.absolute().as_uri())
    if as_json or out_file is not None or open_it:
        return
    rto = data.get("rto") or {}
    out.print(f"{data['kind']} {plan_id}: {data['source']} -> {data['target']}, "
              f"{data['outcome']}, RTO "
              + (f"{rto['rto_s']:.3f} s" if rto.get("rto_s") is not None else "n/a"),
              highlight=False)
    for s in data["steps"]:
        out.print(f"  {s['step']:<14} {s['outcome']:<10} {s['duration_s']:>8.3f} s"
                  f"  attempts {s['attempts']}" + (f"  {s['detail']}" if s["detail"] else ""),
                  highlight=False)
    approvals = ", ".join(f"{a.get('outcome')} by {a.get('by')}" for a in data["approvals"])
    out.print(f"approval: {approvals or 'none (automatic or manual command)'}", highlight=False)


@app.command("_supervise", hidden=True)
def supervise_cmd() -> None:
    """(internal) Keep the controller running."""
    topo = topology()
    raise typer.Exit(supervise(ctx_state.config.absolute(), topo.state_dir.absolute()))


@app.command("_controller", hidden=True)
def controller_cmd() -> None:
    """(internal) The detection and failover loop."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    topo = topology()
    ports = build_ports(topo)
    controller = Controller(ports, approvals=FileApprovals(topo.state_dir),
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


def _synth_terraform(topo: Topology, out_dir: Path, check_only: bool) -> None:
    """The Terraform root for the topology's strategy, from the same names and IAM registry
    as the CDK app (infra/terraform.py)."""
    from regionguard.infra.terraform import missing_artifacts, write_terraform

    absent = missing_artifacts(topo)
    if absent and not check_only:
        raise NotAvailable(f"the configuration deploys what this repo builds, and "
                           f"{', '.join(absent)} is missing: run `make bundles` first (or "
                           "--check-only to write it for `terraform validate` alone)")
    written = write_terraform(topo, out_dir, source=str(ctx_state.config))
    out.print(f"{len(written)} files for {topo.strategy.value} in {out_dir}; then: cd "
              f"{out_dir} && terraform init && terraform apply", highlight=False)


def parse_duration(text: str) -> float:
    """`--duration`: the one duration parser, with this option's name and range."""
    try:
        value = durations.parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--duration: {exc}") from None
    if value <= 0:
        raise UsageError(f"--duration: must be positive, got {text!r}")
    return value


@app.command()
@one_line_errors
def drill(
    fault: Annotated[str, typer.Option(help="Fault to inject (see --list).")]
    = "kill-region",
    duration: Annotated[str, typer.Option(help="Load duration per drill, e.g. 30s.")] = "20s",
    rate: Annotated[float, typer.Option(help="Requests per second (70% writes).")] = 100.0,
    workers: Annotated[int, typer.Option(help="Concurrent client threads.")] = 4,
    repeat: Annotated[int, typer.Option(help="Run N drills; report p50/p95/max.")] = 1,
    freeze: Annotated[float, typer.Option(help="Seconds a freeze-region lasts.")] = 5.0,
    region: Annotated[str | None, typer.Option(
        help="aws-emulated: the AWS Region (or topology region) the fault hits.")] = None,
    mode: Annotated[str | None, typer.Option(
        help="aws-emulated: how a dead endpoint fails: refused or timeout (default: refused; "
             "timeout for a partition).")] = None,
    time_factor: Annotated[float, typer.Option(
        help="aws-emulated: real seconds per emulated second (0.02: a minute in 1.2 s).")]
    = 0.02,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for drill-report.json/.html.")]
    = Path("."),
    list_faults: Annotated[bool, typer.Option("--list", help="List the faults.")] = False,
    campaign: Annotated[int | None, typer.Option(
        "--campaign", min=1, max=10_000,
        help="Run N randomized drills (faults and timing drawn from --seed, compound faults "
             "included), check every client history, write campaign-report.json/.html.")]
    = None,
    seed: Annotated[int | None, typer.Option(
        help="--campaign: drill i uses seed SEED+i; `--campaign 1 --seed S` replays drill S. "
             "Default: drawn and printed.")] = None,
) -> None:
    """Game day: inject a real fault under load; measure RTO, RPO, availability, split brain.

    `--campaign N`: N drills drawn at random (a fault in the middle of a switchover, a second
    fault during recovery, the controller killed after a random step, a freeze around the
    detection threshold, a partition), each checked by the history checker (acknowledged
    writes present exactly once, no read of an unwritten value, epochs never backwards, one
    writer per epoch, nothing acknowledged after a fence) and healed before the next. Exits 3
    when the checker finds an anomaly, 1 when a drill cannot be healed.

    Local world: heals itself at the end (fault healing, then failback), so the sandbox is
    healthy after. With `--world aws-emulated`: brings up the emulated AWS for the topology
    (moto behind a per-region fault proxy, the guard functions on their schedules), injects
    region-outage, partition or control-plane-outage into one Region, waits for the outcome,
    writes the report and tears everything down."""
    if ctx_state.world == "aws-emulated":
        if campaign is not None:
            raise UsageError("--campaign: the local world only for now; on the emulated AWS "
                             "use --repeat N with one --fault")
        _emulated_drill(fault, region, mode, time_factor, repeat, out_dir, list_faults)
        return
    if list_faults:
        for f in describe_catalog():
            out.print(f"[bold]{f['name']:<18}[/bold] {f['description']}")
        return
    if campaign is not None:
        _campaign(campaign, seed, rate, workers, out_dir)
        return
    if seed is not None:
        raise UsageError("--seed: only with --campaign N (e.g. --campaign 1 --seed 42 replays "
                         "drill 42)")
    if fault not in CATALOG:
        raise UsageError(f"--fault: {fault!r} is not a fault of the local world; use one of "
                         f"{', '.join(CATALOG)} (or --world aws-emulated for AWS faults)")
    if repeat < 1 or rate <= 0 or workers < 1:
        raise UsageError("--repeat and --workers must be >= 1 and --rate > 0")
    settings = DrillSettings(fault=fault, duration_s=parse_duration(duration), rate=rate,
                             workers=workers, freeze_s=freeze, out_dir=out_dir)
    sb = sandbox()
    runs = []
    for i in range(repeat):
        out.print(f"[bold]drill {i + 1}/{repeat}[/bold]: {fault}, {settings.duration_s:g} s "
                  f"at {rate:g} req/s", highlight=False)
        runs.append(run_drill(SandboxTarget(sb), settings, progress_reporter(), index=i))
    measures = [r.measures for r in runs]
    out.print(rich_table(measures))
    json_path = out_dir / "drill-report.json"
    write_json(json_path, measures)
    out.print(f"report: {json_path} and {runs[-1].html}", highlight=False)
    if any(m.split_brain for m in measures):
        raise UnsafeOperation("split brain detected; see the report")


def _campaign(drills: int, seed: int | None, rate: float, workers: int, out_dir: Path) -> None:
    from regionguard.drill.campaign import CampaignSettings, run_campaign
    from regionguard.drill.campaign_report import rich_summary, write_reports

    if rate <= 0 or workers < 1:
        raise UsageError("--workers must be >= 1 and --rate > 0")
    if seed is None:
        seed = secrets.randbelow(1_000_000)
    settings = CampaignSettings(drills, seed, out_dir, ctx_state.config, rate=rate,
                                workers=workers)
    result = run_campaign(SandboxTarget(sandbox()), settings, progress_reporter())
    json_path, html_path, data = write_reports(result)
    out.print(rich_summary(data))
    out.print(f"report: {json_path} and {html_path}", highlight=False)
    if result.stopped_early:
        raise ProviderError(f"campaign stopped early: {result.stopped_early}")
    if data["anomalies"]:
        kinds = sorted({a["kind"] for a in data["anomalies"]})
        raise UnsafeOperation(f"the history checker found {len(data['anomalies'])} anomalies "
                              f"({', '.join(kinds)}); see {html_path}")
    if data["unavailable"]:
        raise UnsafeOperation(f"{len(data['unavailable'])} drills did not recover writes within "
                              f"the settle deadline (liveness); see {html_path}")


EMULATED_FAULTS = {
    "region-outage": "the Region is gone: every request to it fails (Route 53's API and its "
                     "health-check metrics too, for us-east-1), its functions die",
    "partition": "the Region runs and answers the internet, but nothing crosses between it "
                 "and the other Regions",
    "control-plane-outage": "mutating control-plane calls to the Region fail; reads and data "
                            "planes (DynamoDB items, app traffic) work",
}


def _emulated_drill(fault: str, region: str | None, mode: str | None, factor: float,
                    repeat: int, out_dir: Path, list_faults: bool) -> None:
    if list_faults:
        for name, text in EMULATED_FAULTS.items():
            out.print(f"[bold]{name:<22}[/bold] {text}")
        return
    try:
        from regionguard.emulated.domains import FailMode, FaultKind
        from regionguard.emulated.drill import EmulatedDrillSettings, run_emulated_drill
    except ImportError:
        raise NotAvailable("the aws extra is missing: pip install 'regionguard[aws]'") from None
    if fault not in EMULATED_FAULTS:
        raise UsageError(f"--fault: {fault!r} is not an AWS fault; use one of "
                         f"{', '.join(EMULATED_FAULTS)}")
    if region is None:
        raise UsageError("--region: required with --world aws-emulated (e.g. us-east-1)")
    if mode not in (None, "refused", "timeout"):
        raise UsageError(f"--mode: {mode!r}; use refused or timeout")
    if not 0 < factor <= 1:
        raise UsageError(f"--time-factor: {factor:g} must be in (0, 1]")
    if repeat < 1:
        raise UsageError("--repeat must be >= 1")
    topo = topology()
    report = progress_reporter()
    results = []
    for i in range(repeat):
        folder = out_dir if repeat == 1 else out_dir / f"drill-{i + 1}"
        settings = EmulatedDrillSettings(FaultKind(fault), region, folder,
                                         FailMode(mode) if mode else None, factor)
        out.print(f"[bold]drill {i + 1}/{repeat}[/bold]: {fault} of {region} on the emulated "
                  "AWS", highlight=False)
        results.append(run_emulated_drill(topo, settings, report))
    for r in results:
        steps = ", ".join(f"{k} {v:g}" for k, v in r["rto_breakdown_s"].items())
        out.print(f"{r['outcome']}: {r['old_primary_region']} -> {r['new_primary_region']}, "
                  f"epoch {r['epoch_before']} -> {r['epoch_after']}, RTO (modelled) "
                  f"{r['rto_modeled_s']} s ({steps}); writable after: "
                  f"{', '.join(r['writable_regions_after']) or 'none'}; split brain: "
                  f"{r['split_brain']}", highlight=False)
    out.print(f"report: {out_dir}/…/drill-report.json and drill-report.html"
              if repeat > 1 else f"report: {out_dir / 'drill-report.json'} and "
              f"{out_dir / 'drill-report.html'}", highlight=False)
    if any(r["split_brain"] for r in results):
        raise UnsafeOperation("split brain detected; see the report")
    if any(r["outcome"] == "stuck" for r in results):
        raise ProviderError("a failover began and did not finish before the deadline; see "
                            "the report's journal")


@app.command()
@one_line_errors
def synth(
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Where to write: the cloud assembly (default cdk.out), or the Terraform "
                      "root module (default terraform.out).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="cloudformation (the CDK app, checked by cdk-nag) or terraform (a "
                         "ready root module for the strategy: run `terraform init && "
                         "terraform apply` in --out).")] = "cloudformation",
    check_only: Annotated[bool, typer.Option(
        "--check-only", help="Synthesize for review (cfn-lint, cdk-nag, the deploy order) "
                             "without the built artifacts (make bundles); the assembly is "
                             "not deployable.")] = False,
    plan: Annotated[bool, typer.Option(
        "--plan", help="Also print the deploy order: waves of stacks, each wave after the "
                       "previous one, with the `cdk deploy` command of each and why stacks in "
                       "different Regions wait for each other.")] = False,
) -> None:
    """Synthesize the AWS architecture for the topology (CloudFormation, offline).

    Checks the app with cdk-nag (AwsSolutions); exits 1 when a finding is not suppressed with a
    reason. Deploying is `cdk deploy --app <out> --all` (the stacks carry their order) with your
    credentials, or wave by wave as `--plan` prints it."""
    try:
        from regionguard.infra.app import synth as cdk_synth
    except ImportError:
        raise NotAvailable("the aws extra is missing: pip install 'regionguard[aws]'") from None
    from regionguard.infra.artifacts import missing
    from regionguard.infra.view import aws_view

    topo = topology()
    aws_view(topo, str(ctx_state.config))  # a topology that cannot be synthesized says so first
    if fmt not in ("cloudformation", "terraform"):
        raise UsageError(f"--format {fmt}: use cloudformation or terraform")
    if fmt == "terraform":
        _synth_terraform(topo, out_dir or Path("terraform.out"), check_only)
        return
    out_dir = out_dir or Path("cdk.out")
    absent = missing()
    if absent and not check_only:
        raise NotAvailable(f"the stacks deploy what this repo builds, and {', '.join(absent)} "
                           "is missing: run `make bundles` first (or synth --check-only to "
                           "review without them; that assembly is not deployable)")
    started = time.monotonic()
    with out.status("synthesizing ...", spinner="dots"):
        result = cdk_synth(topo, out_dir, source=str(ctx_state.config),
                           deployable=not check_only)
    for path in result.templates:
        out.print(f"  {path}", highlight=False)
    out.print(f"{len(result.templates)} stacks for {topo.strategy.value} in "
              f"{time.monotonic() - started:.1f} s; cdk-nag: {len(result.nag_errors)} errors, "
              f"{len(result.nag_warnings)} warnings", highlight=False)
    if check_only:
        out.print("synthesized for review only: not deployable (make bundles, then synth)",
                  highlight=False)
    if plan:
        _print_deploy_plan(result, out_dir)
    if result.nag_errors:
        for line in result.nag_errors:
            err.print(f"  {line[:200]}", highlight=False)
        raise ProviderError(f"cdk-nag found {len(result.nag_errors)} unsuppressed errors")


def _print_deploy_plan(result: Any, out_dir: Path) -> None:
    out.print(f"deploy order ({len(result.waves)} waves; a wave's stacks may deploy in "
              "parallel):", highlight=False)
    for number, wave in enumerate(result.waves, 1):
        out.print(f"  {number}. cdk deploy --app {out_dir} --exclusively "
                  f"{' '.join(wave)}", highlight=False)
    out.print("across Regions (no shared value tells CloudFormation):", highlight=False)
    for edge in result.order:
        out.print(f"  {edge.before.stack_name} before {edge.after.stack_name}: {edge.why}",
                  highlight=False)


@app.command()
@one_line_errors
def backup(
    action: Annotated[str, typer.Argument(help="status: the newest snapshot copy in each "
                                               "Region and its age (the RPO of a restore).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Backups of the primary's database, as a restore would find them (AWS world)."""
    if action != "status":
        raise UsageError(f"backup {action!r}: the only action is `status`")
    if ctx_state.world != "aws":
        raise UsageError("backups live in AWS: `regionguard --world aws backup status`")
    ports = engine_ports()
    if ports.restorer is None:
        raise UsageError("this topology keeps a standing replica; backup status is for "
                         "strategy = \"backup-restore\"")
    now = ports.clock.time()
    rows = []
    for region in ports.topology.regions:
        try:
            copy = ports.restorer.newest_copy(region)
        except ProviderError as exc:  # one Region unreachable: say so, show the others
            rows.append({"region": region, "snapshot": None, "created_at": None,
                         "age_s": None, "error": str(exc)})
            continue
        rows.append({"region": region, "snapshot": copy.snapshot_id if copy else None,
                     "created_at": copy.created_at if copy else None,
                     "age_s": round(copy.age_s(now)) if copy else None})
    if as_json:
        print_json({"rpo_target_s": ports.topology.failover.rpo_target_s, "regions": rows})
        return
    for row in rows:
        age = (row.get("error") or "no copy" if row["age_s"] is None
               else f"{row['age_s'] / 3600:.1f} h old")
        out.print(f"{row['region']:<10} {row['snapshot'] or '-':<40} {age}", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
