"""`drill`: game days in the selected world, one at a time or as a randomized campaign."""

from __future__ import annotations

import dataclasses
import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from regionguard import durations
from regionguard.cli.common import (
    CliState,
    one_line_errors,
    out,
    print_json,
    progress_reporter,
    state,
)
from regionguard.drill.faults import describe_catalog
from regionguard.drill.report import rich_table, write_json
from regionguard.drill.runner import DrillSettings, run_drill
from regionguard.errors import NotAvailable, ProviderError, UnsafeOperation, UsageError

if TYPE_CHECKING:
    from regionguard.lab.drill import LabDrillResult
from regionguard.worlds import EmulatedDrills, SiteDrills, running


def parse_duration(text: str, option: str = "--duration") -> float:
    """A duration option: the one duration parser, with the option's name and range."""
    try:
        value = durations.parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
    if value <= 0:
        raise UsageError(f"{option}: must be positive, got {text!r}")
    return value


@one_line_errors
def drill(
    ctx: typer.Context,
    fault: Annotated[str, typer.Option(help="Fault to inject (see --list).")]
    = "kill-region",
    duration: Annotated[str | None, typer.Option(
        help="Load duration per drill, e.g. 30s (default 20s; the sites' drills run until they "
             "heal).")] = None,
    rate: Annotated[float, typer.Option(help="Requests per second (70% writes).")] = 100.0,
    workers: Annotated[int, typer.Option(help="Concurrent client threads.")] = 4,
    repeat: Annotated[int, typer.Option(help="Run N drills; report p50/p95/max.")] = 1,
    freeze: Annotated[float | None, typer.Option(
        help="Seconds a freeze-region lasts (default 5).")] = None,
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
    settle: Annotated[str, typer.Option(
        help="--campaign: writes must be acknowledged again within this long of the fault, "
             "or the drill is a liveness failure, e.g. 40s.")] = "40s",
    lab: Annotated[Path | None, typer.Option(
        "--lab", help="Drill the lab in this directory (`regionguard lab up` first; root "
                      "unless --loopback): its faults hit the live primary, its standby or "
                      "the witness.")] = None,
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
    st = state(ctx)
    if lab is None and st.world.name == "local":
        lab = st.sandbox_sites()  # the sandbox runs as sites (`regionguard up`): drill them
    if lab is not None:
        ignored = [name for name, given in (("--duration", duration is not None),
                                            ("--repeat", repeat != 1),
                                            ("--freeze", freeze is not None),
                                            ("--seed", seed is not None and campaign is None))
                   if given]
        if ignored:
            raise UsageError(f"{ignored[0]}: not for a drill of the sites (each runs until "
                             "they heal; --campaign N [--seed S] runs several)")
        _lab_drill(lab, fault, campaign, seed, out_dir, rate, workers, list_faults)
        return
    here = st.world
    match here.drills:
        case EmulatedDrills() as emulated:
            if campaign is not None:
                raise UsageError("--campaign: the local world only for now; on the emulated "
                                 "AWS use --repeat N with one --fault")
            _emulated_drill(st, emulated, fault, region, mode, time_factor, repeat, out_dir,
                            list_faults)
        case SiteDrills() as site:
            _site_drill(st, site, fault, duration or "20s", rate, workers, repeat,
                        5.0 if freeze is None else freeze, out_dir, list_faults, campaign,
                        seed, settle)
        case None:  # the registry refuses `drill` before this; kept for a world that lies
            raise UsageError(f"--world {here.name} runs no drills")


def _site_drill(st: CliState, drills: SiteDrills, fault: str, duration: str, rate: float,
                workers: int, repeat: int, freeze: float, out_dir: Path, list_faults: bool,
                campaign: int | None, seed: int | None, settle: str) -> None:
    """A drill (or a campaign) through the drill runner on the world's own processes."""
    if list_faults:
        for f in describe_catalog(drills.faults):
            out.print(f"[bold]{f['name']:<18}[/bold] {f['description']}")
        return
    if campaign is not None:
        _campaign(st, drills, campaign, seed, rate, workers, out_dir,
                  parse_duration(settle, "--settle"))
        return
    if seed is not None:
        raise UsageError("--seed: only with --campaign N (e.g. --campaign 1 --seed 42 replays "
                         "drill 42)")
    if fault not in drills.faults:
        others = [w.name for w in running("drill") if w is not st.world]
        raise UsageError(f"--fault: {fault!r} is not a fault of the {st.world.name} world; use one "
                         f"of {', '.join(drills.faults)}"
                         + (f" (or --world {' or '.join(others)} for its faults)"
                            if others else ""))
    if repeat < 1 or rate <= 0 or workers < 1:
        raise UsageError("--repeat and --workers must be >= 1 and --rate > 0")
    settings = DrillSettings(fault=fault, duration_s=parse_duration(duration), rate=rate,
                             workers=workers, freeze_s=freeze, out_dir=out_dir)
    target = drills.target(st.topology())
    runs = []
    for i in range(repeat):
        out.print(f"[bold]drill {i + 1}/{repeat}[/bold]: {fault}, {settings.duration_s:g} s "
                  f"at {rate:g} req/s", highlight=False)
        runs.append(run_drill(target, settings, progress_reporter(), index=i,
                              faults=drills.faults))
    measures = [r.measures for r in runs]
    out.print(rich_table(measures))
    json_path = out_dir / "drill-report.json"
    write_json(json_path, measures)
    out.print(f"report: {json_path} and {runs[-1].html}", highlight=False)
    if any(m.split_brain for m in measures):
        raise UnsafeOperation("split brain detected; see the report")


def _campaign(st: CliState, drills: SiteDrills, count: int, seed: int | None, rate: float,
              workers: int, out_dir: Path, settle_s: float) -> None:
    from regionguard.drill.campaign import CampaignSettings, run_campaign
    from regionguard.drill.campaign_report import rich_summary, write_reports

    if rate <= 0 or workers < 1:
        raise UsageError("--workers must be >= 1 and --rate > 0")
    if seed is None:
        seed = secrets.randbelow(1_000_000)
    settings = CampaignSettings(count, seed, out_dir, st.config, rate=rate, workers=workers,
                                settle_deadline_s=settle_s)
    result = run_campaign(drills.target(st.topology()), settings, progress_reporter())
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


def _emulated_drill(st: CliState, drills: EmulatedDrills, fault: str, region: str | None,
                    mode: str | None, factor: float, repeat: int, out_dir: Path,
                    list_faults: bool) -> None:
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
    topo = st.topology()
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


def _lab_drill(lab: Path, fault: str, campaign: int | None, seed: int | None, out_dir: Path,
               rate: float, workers: int, list_faults: bool) -> None:
    """Drills on the lab: one (--fault), or a campaign (every lab fault in a seeded order)."""
    import random

    from regionguard.lab.drill import LAB_FAULTS, PARTITIONS, LabDriller, run_lab_campaign
    from regionguard.lab.lab import Lab

    if list_faults:
        for name, fails_over in LAB_FAULTS.items():
            out.print(f"{name:<22} {'fails over' if fails_over else 'must not fail over'}"
                      + (" (namespaced lab only)" if name in PARTITIONS else ""))
        return
    the_lab = Lab.existing(lab)
    the_lab.require_root("drill")
    report = progress_reporter()
    if campaign is None:
        fault = "kill-primary" if fault == "kill-region" else fault
        report(f"drill: {fault} at {rate:g} req/s through the edge, until the sites heal")
        result = LabDriller(the_lab, out_dir, rate=rate, workers=workers).run(1, fault)
        measured = out_dir / "drill-001.json"
        measured.write_text(json.dumps(dataclasses.asdict(result), indent=1))
        _print_lab_drill(result)
        out.print(f"report: {result.report} (measures: {measured})", highlight=False)
        summary = {"anomalies": result.anomalies, "unhealed": [] if result.healed else [1]}
    else:
        seed = seed if seed is not None else random.randrange(10_000)
        report(f"lab campaign of {campaign} drills, seed {seed}")
        summary = run_lab_campaign(the_lab, campaign, seed, out_dir, report)
        print_json({k: v for k, v in summary.items() if k != "per_drill"})
    if summary["anomalies"]:
        raise typer.Exit(3)
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
