"""The `regionguard` command line (Typer + Rich).

Every command turns a `RegionGuardError` into one line on stderr and its exit code
(0 ok, 1 failed, 2 bad input, 3 refused as unsafe, 4 not available yet): never a traceback.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

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
from regionguard.orchestrator import plans
from regionguard.orchestrator.controller import Controller
from regionguard.orchestrator.executor import Executor, Ports
from regionguard.providers.local import build_ports
from regionguard.providers.local.sandbox import Sandbox
from regionguard.providers.local.supervisor import supervise

app = typer.Typer(
    help="Keep an application available across two regions and fail it over automatically.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

class _Ctx:
    config: Path = DEFAULT_CONFIG_FILE
    world: str = "local"


ctx_state = _Ctx()


@app.callback()
def _main(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Topology file (default: ./regionguard.toml).")
    ] = DEFAULT_CONFIG_FILE,
    world: Annotated[str, typer.Option(
        "--world", help="local (the sandbox) or aws (boto3 with your AWS credentials; "
        "status, failover and switchover).")] = "local",
) -> None:
    ctx_state.config = config
    if world not in ("local", "aws"):
        err.print(f"error: --world: {world!r} is not a world; use local or aws")
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
) -> None:
    """Bring the local two-region sandbox up (idempotent: repairs whatever is missing).

    Starts PostgreSQL primary + streaming hot standby, the app processes each region runs in
    its live role, and the HAProxy front door; prints the front-door URL."""
    sb = sandbox()
    report = progress_reporter()
    with out.status("bringing the sandbox up ...", spinner="dots"):
        url = sb.up(report=report, wait_s=wait)
        sb.start_supervisor(ctx_state.config, report)
    out.print(f"\n[bold green]up[/bold green]: front door {url}", highlight=False)


@app.command()
@one_line_errors
def down(
    purge: Annotated[bool, typer.Option(help="Also delete the state dir and databases.")] = False,
) -> None:
    """Stop every process the sandbox started (by pid) and verify none is left."""
    result = sandbox().down(purge=purge, report=progress_reporter())
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


# -- the engine's commands ---------------------------------------------------------------------


def engine_ports() -> Ports:
    """The engine's ports for the selected world (one wiring function per world)."""
    if ctx_state.world == "aws":
        try:
            from regionguard.providers.aws.wiring import build_ports as aws_ports
        except ImportError:
            raise NotAvailable("the aws extra is missing: pip install 'regionguard[aws]'") from None
        return aws_ports(topology())
    return build_ports(topology())


def _observe(ports: Ports) -> plans.Observation:
    live = ports.state.load()
    if live.plan is not None:
        raise UnsafeOperation(
            f"plan {live.plan.get('name')} ({live.plan.get('id')}) is running or was "
            "interrupted; the controller resumes it (run `regionguard up` if it is not running)"
        )
    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = list(pool.map(ports.database.status, list(ports.topology.regions)))
    return plans.Observation(live, {s.region: s for s in statuses},
                             ports.database.zero_loss_switchover)


def _run_plan(ports: Ports, plan: plans.Plan, dry_run: bool, yes: bool) -> None:
    for line in plan.describe():
        out.print(line, highlight=False)
    if dry_run:
        out.print("[dim](dry run: nothing was changed)[/dim]")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("this changes which region takes writes; pass --yes to confirm")
        typer.confirm(f"{plan.kind.value} to {plan.target}: proceed?", abort=True)
    report = progress_reporter()

    def on_step(name: str, outcome: str, elapsed: float) -> None:
        if outcome == "done":
            report(f"{name} done ({elapsed:.2f} s)")

    with ports.state.plan_lock() as held:
        if not held:
            raise UnsafeOperation("another plan is running (plan lock held); wait for it")
        summary = Executor(ports).run(plan, on_step=on_step)
    out.print(f"[bold green]{plan.kind.value} done[/bold green]: {plan.target} is primary; "
              f"RTO {summary.get('rto_s')} s", highlight=False)
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
    ports = engine_ports()
    plan = plans.failover(ports.topology, _observe(ports), to, force=force)
    _run_plan(ports, plan, dry_run, yes)


@app.command()
@one_line_errors
def switchover(
    to: Annotated[str, typer.Option(help="Region to make primary.")],
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Planned, no data loss: stop writes, wait for the standby to replay, swap roles."""
    ports = engine_ports()
    plan = plans.switchover(ports.topology, _observe(ports), to)
    _run_plan(ports, plan, dry_run, yes)


@app.command()
@one_line_errors
def failback(dry_run: DryRun = False, yes: Yes = False) -> None:
    """Rebuild the home primary as a standby (pg_rewind or copy), then switch back to it."""
    ports = build_ports(topology())
    plan = plans.failback(ports.topology, _observe(ports))
    _run_plan(ports, plan, dry_run, yes)


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
        extra = e.get("detail") or e.get("reason") or ""
        dur = f" ({e['duration_s']} s)" if "duration_s" in e else ""
        plan_id = f" [{e['plan']}]" if e.get("plan") else ""
        out.print(f"{e['ts']} {e['event']:<14} {what}{dur}{plan_id} {extra}", highlight=False)


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
    ports = build_ports(topology())
    controller = Controller(ports)
    signal.signal(signal.SIGTERM, lambda *_: controller.stop.set())
    controller.run_forever()


def parse_duration(text: str) -> float:
    """'30s', '2m', '500ms' or plain seconds."""
    t = text.strip().lower()
    try:
        for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
            if t.endswith(suffix):
                value = float(t[: -len(suffix)]) * factor
                break
        else:
            value = float(t)
    except ValueError:
        raise UsageError(f"--duration: {text!r} is not a duration; use e.g. 30s or 2m") from None
    if value <= 0:
        raise UsageError(f"--duration: must be positive, got {text!r}")
    return value


@app.command()
@one_line_errors
def drill(
    fault: Annotated[str, typer.Option(help="Fault to inject: " + ", ".join(CATALOG))]
    = "kill-region",
    duration: Annotated[str, typer.Option(help="Load duration per drill, e.g. 30s.")] = "20s",
    rate: Annotated[float, typer.Option(help="Requests per second (70% writes).")] = 100.0,
    workers: Annotated[int, typer.Option(help="Concurrent client threads.")] = 4,
    repeat: Annotated[int, typer.Option(help="Run N drills; report p50/p95/max.")] = 1,
    freeze: Annotated[float, typer.Option(help="Seconds a freeze-region lasts.")] = 5.0,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for drill-report.json/.html.")]
    = Path("."),
    list_faults: Annotated[bool, typer.Option("--list", help="List the faults.")] = False,
) -> None:
    """Game day: inject a real fault under load; measure RTO, RPO, availability, split brain.

    Heals itself at the end (fault healing, then failback), so the sandbox is healthy after."""
    if list_faults:
        for f in describe_catalog():
            out.print(f"[bold]{f['name']:<18}[/bold] {f['description']}")
        return
    if repeat < 1 or rate <= 0 or workers < 1:
        raise UsageError("--repeat and --workers must be >= 1 and --rate > 0")
    settings = DrillSettings(fault=fault, duration_s=parse_duration(duration), rate=rate,
                             workers=workers, freeze_s=freeze, out_dir=out_dir)
    sb = sandbox()
    runs = []
    for i in range(repeat):
        out.print(f"[bold]drill {i + 1}/{repeat}[/bold]: {fault}, {settings.duration_s:g} s "
                  f"at {rate:g} req/s", highlight=False)
        runs.append(run_drill(sb, settings, progress_reporter(), index=i))
    measures = [r.measures for r in runs]
    out.print(rich_table(measures))
    json_path = out_dir / "drill-report.json"
    write_json(json_path, measures)
    out.print(f"report: {json_path} and {runs[-1].html}", highlight=False)
    if any(m.split_brain for m in measures):
        raise UnsafeOperation("split brain detected; see the report")


@app.command()
@one_line_errors
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Cloud assembly folder.")]
    = Path("cdk.out"),
) -> None:
    """Synthesize the AWS architecture for the topology (CloudFormation, offline).

    Checks the app with cdk-nag (AwsSolutions); exits 1 when a finding is not suppressed with a
    reason. Deploying is `cdk deploy --app <out>` with your credentials."""
    try:
        from regionguard.infra.app import synth as cdk_synth
    except ImportError:
        raise NotAvailable("the aws extra is missing: pip install 'regionguard[aws]'") from None
    topo = topology()
    started = time.monotonic()
    with out.status("synthesizing ...", spinner="dots"):
        result = cdk_synth(topo, out_dir, source=str(ctx_state.config))
    for path in result.templates:
        out.print(f"  {path}", highlight=False)
    out.print(f"{len(result.templates)} stacks for {topo.strategy.value} in "
              f"{time.monotonic() - started:.1f} s; cdk-nag: {len(result.nag_errors)} errors, "
              f"{len(result.nag_warnings)} warnings", highlight=False)
    if result.nag_errors:
        for line in result.nag_errors:
            err.print(f"  {line[:200]}", highlight=False)
        raise ProviderError(f"cdk-nag found {len(result.nag_errors)} unsuppressed errors")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
