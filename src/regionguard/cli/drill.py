"""`drill`: game days in the selected world, one at a time or as a randomized campaign."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from regionguard.cli.common import (
    CliState,
    one_line_errors,
    out,
    print_json,
    progress_reporter,
    state,
)
from regionguard.errors import NotAvailable, ProviderError, UnsafeOperation, UsageError

if TYPE_CHECKING:
    from regionguard.lab.drill import LabDrillResult
from regionguard.worlds import EmulatedDrills
from regionguard.worlds.local import LocalWorld, nothing_up, refuse_sites


@one_line_errors
def drill(
    ctx: typer.Context,
    fault: Annotated[str, typer.Option(help="Fault to inject (see --list).")]
    = "kill-region",
    rate: Annotated[float, typer.Option(help="Requests per second (70% writes).")] = 100.0,
    workers: Annotated[int, typer.Option(help="Concurrent client threads.")] = 4,
    repeat: Annotated[int, typer.Option(
        help="aws-emulated: run N drills; report each (the sites: --campaign N).")] = 1,
    region: Annotated[str | None, typer.Option(
        help="aws-emulated: the AWS Region (or topology region) the fault hits.")] = None,
    mode: Annotated[str | None, typer.Option(
        help="aws-emulated: how a dead endpoint fails: refused or timeout (default: refused; "
             "timeout for a partition).")] = None,
    time_factor: Annotated[float, typer.Option(
        help="aws-emulated: real seconds per emulated second (0.02: a minute in 1.2 s).")]
    = 0.02,
    app: Annotated[str, typer.Option(
        help="aws-emulated: what serves each Region: real (the workload app over a real "
             "PostgreSQL per Region, the standby streaming from the primary) or stub (a "
             "model of it; lighter).")] = "real",
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the reports (the sites: drill-NNN.html and .json; default: "
                      "the topology's state_dir/reports, or the lab's reports/).")] = None,
    list_faults: Annotated[bool, typer.Option("--list", help="List the faults.")] = False,
    campaign: Annotated[int | None, typer.Option(
        "--campaign", min=1, max=10_000,
        help="The sites: run N drills, the faults in an order drawn from --seed, each "
             "checked by the history checker and healed before the next.")]
    = None,
    seed: Annotated[int | None, typer.Option(
        help="--campaign: the seed of the faults' order (default: drawn and printed).")]
    = None,
    lab: Annotated[Path | None, typer.Option(
        "--lab", help="Drill the lab in this directory (`regionguard lab up` first; root "
                      "unless --loopback): its faults hit the live primary, its standby or "
                      "the witness.")] = None,
) -> None:
    """Game day: inject a real fault under load; measure RTO, RPO, availability, split brain.

    The sites (the sandbox's after `regionguard up`, or a lab's with --lab): the fault hits a
    site (kill-primary, its default `kill-region`, partitions in the namespaced lab only, a
    frozen agent, the standby's database, the witness), a client writes through the edge
    meanwhile, and the drill waits until the agents healed it; the history checker
    (acknowledged writes present exactly once, no read of an unwritten value, epochs never
    backwards, one writer per epoch, nothing acknowledged after the old lease ended) judges
    every drill. Exits 3 when the checker finds an anomaly, 1 when a drill did not heal.
    `--campaign N` runs N drills in a seeded order.

    With `--world aws-emulated`: brings up the emulated AWS for the topology
    (moto behind a per-region fault proxy, the guard functions on their schedules), injects
    region-outage, partition or control-plane-outage into one Region, waits for the outcome,
    writes the report and tears everything down."""
    st = state(ctx)
    here = st.world
    if out_dir is None and not list_faults:  # (the list needs no topology)
        out_dir = (lab / "reports" if lab is not None
                   else st.user_topology().state_dir / "reports")
    out_dir = out_dir or Path("reports")
    if isinstance(here.drills, EmulatedDrills) and lab is None:
        if campaign is not None:
            raise UsageError("--campaign: on the sites only (the sandbox's or a lab's); on "
                             "the emulated AWS use --repeat N with one --fault")
        _emulated_drill(st, here.drills, fault, region, mode, time_factor, repeat, out_dir,
                        list_faults, app)
        return
    # the sites' drills: the sandbox's (local world), or a lab's (--lab, whatever the world)
    drills = LocalWorld().drills if lab is not None else here.drills
    if drills is None:  # the registry refuses `drill` before this; kept for a world that lies
        raise UsageError(f"--world {here.name} runs no drills")
    if list_faults:
        for name, text in drills.faults.items():
            out.print(f"[bold]{name:<22}[/bold] {text}", highlight=False)
        return
    ignored = [name for name, given in (("--repeat", repeat != 1),
                                        ("--region", region is not None),
                                        ("--mode", mode is not None),
                                        ("--app", app != "real"),
                                        ("--time-factor", time_factor != 0.02),
                                        ("--seed", seed is not None and campaign is None))
               if given]
    if ignored:
        raise UsageError(f"{ignored[0]}: not for a drill of the sites (each runs until they "
                         "heal; --campaign N [--seed S] runs several)")
    if campaign is None and _lab_fault(fault) not in drills.faults:
        raise UsageError(f"--fault: {fault!r} is not a fault of the sites; use one of "
                         f"{', '.join(drills.faults)} (`drill --list`)")
    if rate <= 0 or workers < 1:
        raise UsageError("--workers must be >= 1 and --rate > 0")
    if lab is None:  # the sandbox's sites (`regionguard up`)
        user = st.user_topology()
        refuse_sites(user, "drill without --lab")
        lab = st.sandbox_sites(user)
        if lab is None:
            raise nothing_up(user)
    _lab_drill(lab, fault, campaign, seed, out_dir, rate, workers)


def _lab_fault(fault: str) -> str:
    """The sites' name of a fault: `kill-region` (the default, and `make run`'s) is the lab's
    `kill-primary`."""
    return "kill-primary" if fault == "kill-region" else fault


def _emulated_drill(st: CliState, drills: EmulatedDrills, fault: str, region: str | None,
                    mode: str | None, factor: float, repeat: int, out_dir: Path,
                    list_faults: bool, app: str = "real") -> None:
    """Drills on the emulated AWS, each bringing the emulated estate up and down."""
    if list_faults:
        for name, text in drills.faults.items():
            out.print(f"[bold]{name:<22}[/bold] {text}")
        return
    try:
        from regionguard.emulated.domains import FailMode, FaultKind
        from regionguard.emulated.drill import EmulatedDrillSettings, run_emulated_drill
    except ImportError:
        raise NotAvailable("the aws extra is missing: pip install 'regionguard[aws]'") from None
    if fault not in drills.faults:
        raise UsageError(f"--fault: {fault!r} is not an AWS fault; use one of "
                         f"{', '.join(drills.faults)}")
    if region is None:
        raise UsageError("--region: required with --world aws-emulated (e.g. us-east-1)")
    if mode not in (None, "refused", "timeout"):
        raise UsageError(f"--mode: {mode!r}; use refused or timeout")
    if not 0 < factor <= 1:
        raise UsageError(f"--time-factor: {factor:g} must be in (0, 1]")
    if repeat < 1:
        raise UsageError("--repeat must be >= 1")
    if app not in ("real", "stub"):
        raise UsageError(f"--app: {app!r}; use real or stub")
    topo = st.topology()
    report = progress_reporter()
    results = []
    for i in range(repeat):
        folder = out_dir if repeat == 1 else out_dir / f"drill-{i + 1}"
        settings = EmulatedDrillSettings(FaultKind(fault), region, folder,
                                         FailMode(mode) if mode else None, factor,
                                         real_app=app == "real")
        out.print(f"[bold]drill {i + 1}/{repeat}[/bold]: {fault} of {region} on the emulated "
                  "AWS", highlight=False)
        results.append(run_emulated_drill(topo, settings, report))
    for r in results:
        steps = ", ".join(f"{k} {v:g}" for k, v in r["rto_breakdown_s"].items())
        out.print(f"{r['outcome']}: {r['old_primary_region']} -> {r['new_primary_region']}, "
                  f"epoch {r['epoch_before']} -> {r['epoch_after']}, client RTO (modelled) "
                  f"{r['rto_client_s']} s: the later of writes through DNS "
                  f"{r['rto_writes_s']} s and resolver {r['rto_modeled_s']} s ({steps}) + "
                  f"TTL {r['dns_ttl_s']} s; writable after: "
                  f"{', '.join(r['writable_regions_after']) or 'none'}; split brain: "
                  f"{r['split_brain']}", highlight=False)
        if r.get("rpo") is not None:
            out.print(f"  orders: {r['rpo']['lost']} of {r['rpo']['acknowledged_before_fault']} "
                      f"acknowledged before the fault lost (RPO {r['rpo']['rpo_s']} s)",
                      highlight=False)
        if r.get("sessions") is not None:
            s = r["sessions"]
            out.print(f"  sessions (global table, no failover): "
                      f"{s['survivor_acked_after_fault']} of {s['survivor_writes_after_fault']} "
                      f"acknowledged in the survivors during the outage; "
                      f"{s['unreplicated_at_fault']} not yet replicated at the fault "
                      f"(RPO {s['rpo_s']} s), delivered once healed; "
                      f"{s['conflicts_resolved_after_heal']} conflicts resolved (last writer "
                      f"wins); replicas {'converged' if s['converged'] else 'DIFFER'}",
                      highlight=False)
            if s["survivor_refused"]:  # e.g. pilot light: no app runs there until scaled
                first = s["survivor_refused"][0]
                out.print(f"  sessions refused in the survivors from {first['t']} s after the "
                          f"fault: {first['status'] or 'no answer'} "
                          f"{first['detail'][:100]}".rstrip(), highlight=False)
    out.print(f"report: {out_dir}/…/drill-report.json and drill-report.html"
              if repeat > 1 else f"report: {out_dir / 'drill-report.json'} and "
              f"{out_dir / 'drill-report.html'}", highlight=False)
    if any(r["split_brain"] for r in results):
        raise UnsafeOperation("split brain detected; see the report")
    if any(r["outcome"] == "stuck" for r in results):
        raise ProviderError("a failover began and did not finish before the deadline; see "
                            "the report's journal")


def _lab_drill(lab: Path, fault: str, campaign: int | None, seed: int | None, out_dir: Path,
               rate: float, workers: int) -> None:
    """Drills on the lab: one (--fault), or a campaign (every lab fault in a seeded order)."""
    import random

    from regionguard.lab.drill import LabDriller, run_lab_campaign
    from regionguard.lab.lab import Lab

    the_lab = Lab.existing(lab)
    the_lab.require_root("drill")
    report = progress_reporter()
    if campaign is None:
        fault = _lab_fault(fault)
        report(f"drill: {fault} at {rate:g} req/s through the edge, until the sites heal")
        result = LabDriller(the_lab, out_dir, rate=rate, workers=workers).run(1, fault)
        measured = out_dir / "drill-001.json"
        measured.write_text(json.dumps(dataclasses.asdict(result), indent=1))
        _print_lab_drill(result)
        out.print(f"report: {result.report} (measures: {measured})", highlight=False)
        summary = {"anomalies": result.anomalies, "unhealed": [] if result.healed else [1],
                   "old_acked_after_lease": result.old_acked_after_lease_s or 0}
    else:
        seed = seed if seed is not None else random.randrange(10_000)
        report(f"lab campaign of {campaign} drills, seed {seed}")
        summary = run_lab_campaign(the_lab, campaign, seed, out_dir, report, rate=rate,
                                   workers=workers)
        print_json({k: v for k, v in summary.items() if k != "per_drill"})
    if summary["anomalies"] or summary.get("old_acked_after_lease"):
        raise typer.Exit(3)  # a split brain: the checker's, or a write after the lease ended
    if summary["unhealed"]:
        raise typer.Exit(1)


def _print_lab_drill(r: LabDrillResult) -> None:
    """A lab drill's result for a person (the JSON file keeps every field)."""
    if r.failover:
        moved = (f"{r.new_primary} took the writes: client RTO "
                 f"{'-' if r.client_rto_s is None else f'{r.client_rto_s:.2f} s'}")
    else:
        moved = f"no failover ({r.old_primary} kept the writes), as this fault requires" \
            if r.new_primary == r.old_primary else f"a failover to {r.new_primary}: WRONG"
    out.print(f"[bold]{r.fault}[/bold] on {r.site}: {moved}", highlight=False)
    out.print(f"  {r.acked_writes} writes acknowledged, {r.lost_acked} lost, split brain "
              f"{r.split_brain}, {len(r.anomalies)} anomalies"
              + ("" if r.healed else f"; NOT healed: {r.detail}"), highlight=False)
    if r.failover:
        seen = [f"{label} {value:.2f} s" for label, value in (
            ("old primary stopped at", r.old_stopped_s),
            ("etcd ended its lease at", r.lease_ended_s)) if value is not None]
        out.print(f"  after the fault: {', '.join(seen) or '-'}; writes it acknowledged after "
                  f"its lease: {r.old_acked_after_lease_s}", highlight=False)
        out.print("  steps: " + " · ".join(f"{k} {v:.2f} s" for k, v in r.steps.items()),
                  highlight=False)
