"""The engine's commands: failover, switchover, failback, approve, reject, and what the journal
says about them: events, report, readiness."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from regionguard.cli.common import (
    one_line_errors,
    out,
    print_json,
    progress_reporter,
    state,
    who,
)
from regionguard.errors import UsageError
from regionguard.ops.report import plan_report, plan_report_html
from regionguard.orchestrator import engine, plans
from regionguard.orchestrator import readiness as readiness_checks
from regionguard.orchestrator.events import Event
from regionguard.orchestrator.ports import Ports
from regionguard.worlds.local import nothing_up

DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


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
    moved = (f"RTO {float(rto):.2f} s" if rto is not None
             else f"{result.plan.source} rebuilt as its standby; the writer did not move")
    out.print(f"[bold green]{result.plan.kind.value} done[/bold green]: {result.plan.target} is "
              f"primary; {moved}", highlight=False)
    for warning in result.plan.warnings:  # what it accepted knowingly, said again at the end
        out.print(f"[bold yellow]warning[/bold yellow]: {escape(warning)}", highlight=False)
    out.print(f"plan {result.plan.id}: its steps, RTO and trigger with `regionguard report "
              f"{result.plan.id}`", highlight=False, markup=False)


SITE_WAIT_S = 180.0  # a rebuild (pg_rewind, else a copy) and the switchover after it


def _confirm_sites(what: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("this changes which region takes writes; pass --yes to confirm")
    typer.confirm(f"{what}: proceed?", abort=True)


def _sites_done(kind: str, answer: dict[str, Any]) -> None:
    summary = answer.get("summary") or {}
    rto = summary.get("rto_s")
    plan_id = escape(str(answer.get("plan")))
    out.print(f"[bold green]{kind} done[/bold green]: plan {plan_id}"
              + (f", writes moved in {float(rto):.2f} s" if rto is not None else "")
              + f"; its steps and RTO with `regionguard report {plan_id}`", highlight=False)


@one_line_errors
def failover(
    ctx: typer.Context,
    to: Annotated[str | None, typer.Option(help="Target region (default: the standby).")]
    = None,
    force: Annotated[bool, typer.Option(help=(
        "Fail over even if the primary looks healthy, the standby lags beyond the RPO target "
        "or was left behind by a sync degrade (acknowledged writes may be lost), or the old "
        "primary can neither be fenced nor waited out by its lease (two writers are "
        "possible). Each risk taken is journaled."))] = False,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Unplanned: fence the primary, promote the standby, scale, route, verify."""
    st = state(ctx)
    if st.topology().arbiter.kind == "etcd":
        raise UsageError("on self-managed sites a failover is the agents' own (a quorum of "
                         "sites sees the primary down, etcd ends its lease); to move the "
                         "writer by hand, use `regionguard switchover --to REGION`")
    _drive(st.engine_ports(), engine.Request(plans.PlanKind.FAILOVER, to, force=force),
           dry_run, yes)


@one_line_errors
def switchover(
    ctx: typer.Context,
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
    """Planned, no data loss: stop writes, wait for the standby to replay, swap roles.

    On self-managed sites (arbiter kind "etcd") the target's agent runs it and the old
    primary's agent hands over (a clean stop, its final LSN in etcd); this command asks and
    follows it."""
    st = state(ctx)
    topology = st.topology()
    if topology.arbiter.kind == "etcd":
        if ungraceful or dry_run:
            raise UsageError("--ungraceful and --dry-run: --world aws only; on the sites a "
                             "failover is the agents' own, and a switchover is planned by "
                             "the target's agent")
        _confirm_sites(f"switchover to {to}", yes)
        from regionguard.cli import site_plans  # etcd's client only where the sites are

        _sites_done("switchover", site_plans.switchover(topology, to, who(by), SITE_WAIT_S))
        return
    ports = st.engine_ports()
    if not ungraceful:
        _drive(ports, engine.Request(plans.PlanKind.SWITCHOVER, to), dry_run, yes)
        return
    asked_by = who(by)
    reason = f"ungraceful switchover to {to}, asked by {asked_by}"

    def on_record(plan: plans.Plan) -> None:  # confirmed: who asked, before anything runs
        ports.journal.record(Event.UNGRACEFUL, plan=plan.id, region=to, by=asked_by,
                             detail=reason)

    _drive(ports, engine.Request(plans.PlanKind.FAILOVER, to, reason=reason), dry_run,
           yes, on_confirmed=on_record)


@one_line_errors
def failback(ctx: typer.Context, dry_run: DryRun = False, yes: Yes = False) -> None:
    """Rebuild the home primary as a standby (pg_rewind or copy), then switch back to it.

    When the writer is already home (a second failover brought it back), rebuild the other
    region as its standby instead, so the pair is redundant again. On self-managed sites: the
    home region's agent rebuilds it (`rejoin`), then a switchover to it."""
    st = state(ctx)
    topology = st.topology()
    if topology.arbiter.kind == "etcd":
        if dry_run:
            raise UsageError("--dry-run: --world aws only; on the sites the agents plan")
        _confirm_sites(f"failback to {topology.home_primary}", yes)
        from regionguard.cli import site_plans

        _sites_done("failback", site_plans.failback(topology, who(None), SITE_WAIT_S))
        return
    _drive(st.engine_ports(), engine.Request(plans.PlanKind.FAILBACK), dry_run, yes)


@one_line_errors
def events(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    last: Annotated[int, typer.Option(help="Show only the last N events (0: all).")] = 50,
) -> None:
    """The engine's journal: verdicts, plan steps, alerts (from .regionguard/journal.jsonl).

    On self-managed sites: the journals of the sites whose files are on this host, each line
    with its site."""
    st = state(ctx)
    topology = st.topology()
    if st.world.name == "local" and topology.arbiter.kind == "etcd":
        from regionguard.agent.site_status import site_journals

        entries = site_journals(topology)
    else:
        entries = st.world.build_ports(topology).journal.entries()
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
        site = f"{e['site']:<8} " if "site" in e else ""
        # plain text: Rich would read "[failover-…]" (and any bracket in a detail) as markup
        # and drop it, and the plan id is what `report` needs
        out.print(f"{e['ts']} {site}{e['event']:<14} {what}{dur}{plan_id} {extra}",
                  highlight=False, markup=False)


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


@one_line_errors
def readiness(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="The checks as JSON.")] = False,
) -> None:
    """Would a failover work now? The standby streams within the RPO target, its capacity can
    start, the live configuration matches the topology, a drill ran recently; on self-managed
    sites also: the etcd members, the write lease, the vantage points, the primary's front
    door. Exit 1 when a check fails (the AWS guard also evaluates every readiness.interval_s)."""
    topology = state(ctx).topology()
    if topology.arbiter.kind != "etcd":  # the sandbox's input, and no sites made from it
        raise nothing_up(topology)
    from regionguard.agent.site_readiness import sites_readiness  # what the sites publish

    checks = sites_readiness(topology, datetime.now(UTC))
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


@one_line_errors
def approve(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(help="The plan waiting for approval (`status`).")],
    by: Annotated[str | None, typer.Option(help="Who approves (default: user@host).")] = None,
) -> None:
    """Approve the automatic failover that waits for a person (failover.approval = manual)."""
    st = state(ctx)
    st.world.approvals(st.topology()).decide(plan_id, "approved", who(by), time.time())
    out.print(f"approved {plan_id}: its runner (the failover target's agent on the sites, "
              "its guard on AWS) runs it at its next look", highlight=False)


@one_line_errors
def reject(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(help="The plan waiting for approval (`status`).")],
    by: Annotated[str | None, typer.Option(help="Who rejects (default: user@host).")] = None,
) -> None:
    """Reject the automatic failover that waits for a person: nothing runs for this outage."""
    st = state(ctx)
    st.world.approvals(st.topology()).decide(plan_id, "rejected", who(by), time.time())
    out.print(f"rejected {plan_id}: nothing runs; the failover target's agent alerts again on "
              "the next outage", highlight=False)


@one_line_errors
def report(
    ctx: typer.Context,
    plan_id: Annotated[str, typer.Argument(help="The plan's id (see `events` or `status`).")],
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Write the self-contained HTML report to this file.")] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open the HTML in a browser.")]
    = False,
) -> None:
    """A plan's execution report, rebuilt from the journal: what triggered it, each step's
    start, end, attempts and outcome, the RTO breakdown, readiness then, who approved it."""
    st = state(ctx)
    topology = st.topology()
    if topology.arbiter.kind == "etcd":  # the sites: the journal of the agent that ran it
        from regionguard.agent.site_status import plan_journal

        entries = plan_journal(topology, plan_id)
    else:
        entries = st.engine_ports().journal.entries()
    data = plan_report(entries, plan_id)
    if data is None:
        raise UsageError(f"no plan {plan_id!r} in the journal; `regionguard events` lists "
                         "the plans (their ids are in brackets)")
    if as_json:
        print_json(data)
    if out_file is not None or open_it:
        target = out_file or Path(topology.state_dir) / "reports" / f"{plan_id}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(plan_report_html(entries, plan_id) or "")
        if not as_json:
            out.print(f"wrote {target}", highlight=False)
        if open_it:
            import webbrowser

            if not webbrowser.open(target.absolute().as_uri()):
                out.print(f"no browser found to open it: the report is {target.absolute()}",
                          highlight=False)
    if as_json or out_file is not None or open_it:
        return
    rto = data.get("rto") or {}
    out.print(f"{data['kind']} {plan_id}: {data['source']} -> {data['target']}, "
              f"{data['outcome']}, RTO "
              + (f"{rto['rto_s']:.2f} s" if rto.get("rto_s") is not None else "n/a"),
              highlight=False)
    for s in data["steps"]:
        counts = "in the RTO" if s.get("in_rto", True) else "after it"
        out.print(f"  {s['step']:<14} {s['outcome']:<10} {s['duration_s']:>8.2f} s"
                  f"  {counts:<10}  attempts {s['attempts']}"
                  + (f"  {s['detail']}" if s["detail"] else ""), highlight=False, markup=False)
    approvals = ", ".join(f"{a.get('outcome')} by {a.get('by')}" for a in data["approvals"])
    out.print(f"approval: {approvals or 'none (automatic or manual command)'}", highlight=False)
