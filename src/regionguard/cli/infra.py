"""The AWS architecture as code, and what AWS keeps for a restore: synth, backup."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from regionguard.cli.common import err, one_line_errors, out, print_json, state
from regionguard.config import Topology
from regionguard.errors import NotAvailable, ProviderError, UsageError


@one_line_errors
def synth(
    ctx: typer.Context,
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

    st = state(ctx)
    config, topo = st.config, st.user_topology()
    aws_view(topo, str(config))  # a topology that cannot be synthesized says so first
    if fmt not in ("cloudformation", "terraform"):
        raise UsageError(f"--format {fmt}: use cloudformation or terraform")
    if fmt == "terraform":
        if plan:
            raise UsageError("--plan: the deploy order is the CloudFormation assembly's; "
                             "Terraform orders its own apply (one `terraform apply` in --out)")
        _synth_terraform(topo, config, out_dir or Path("terraform.out"), check_only)
        return
    out_dir = out_dir or Path("cdk.out")
    absent = missing()
    if absent and not check_only:
        raise NotAvailable(f"the stacks deploy what this repo builds, and {', '.join(absent)} "
                           "is missing: run `make bundles` first (or synth --check-only to "
                           "review without them; that assembly is not deployable)")
    started = time.monotonic()
    with out.status("synthesizing ...", spinner="dots"):
        result = cdk_synth(topo, out_dir, source=str(config), deployable=not check_only)
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
              "parallel), by Region:", highlight=False)
    for number, wave in enumerate(result.waves, 1):
        by_region: dict[str, list[str]] = {}
        for stack in wave:
            by_region.setdefault(result.regions.get(stack, "?"), []).append(stack)
        for i, (region, stacks) in enumerate(sorted(by_region.items())):
            lead = f"  {number}." if i == 0 else "    "
            out.print(f"{lead} {region}: cdk deploy --app {out_dir} --exclusively "
                      f"{' '.join(stacks)}", highlight=False)
    out.print("across Regions (no shared value tells CloudFormation):", highlight=False)
    for edge in result.order:
        out.print(f"  {edge.before.stack_name} before {edge.after.stack_name}: {edge.why}",
                  highlight=False)


def _synth_terraform(topo: Topology, config: Path, out_dir: Path, check_only: bool) -> None:
    """The Terraform root for the topology's strategy, from the same names and IAM registry
    as the CDK app (infra/terraform.py)."""
    from regionguard.infra.terraform import missing_artifacts, write_terraform

    absent = missing_artifacts(topo)
    if absent and not check_only:
        raise NotAvailable(f"the configuration deploys what this repo builds, and "
                           f"{', '.join(absent)} is missing: run `make bundles` first (or "
                           "--check-only to write it for `terraform validate` alone)")
    written = write_terraform(topo, out_dir, source=str(config))
    if check_only:
        out.print(f"{len(written)} files for {topo.strategy.value} in {out_dir}, for review "
                  f"(`terraform init -backend=false && terraform validate` in it): not "
                  "deployable until `make bundles`, then synth again", highlight=False)
        return
    out.print(f"{len(written)} files for {topo.strategy.value} in {out_dir}; then: cd "
              f"{out_dir} && terraform init && terraform apply", highlight=False)


@one_line_errors
def backup(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(help="status: the newest snapshot copy in each "
                                               "Region and its age (the RPO of a restore).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Backups of the primary's database, as a restore would find them (AWS world)."""
    if action != "status":
        raise UsageError(f"backup {action!r}: the only action is `status`")
    ports = state(ctx).engine_ports()
    if ports.restorer is None:
        raise UsageError("this topology keeps a standing replica; backup status is for "
                         "strategy = \"backup-restore\"")
    now = ports.clock.time()
    rows: list[dict[str, Any]] = []
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
