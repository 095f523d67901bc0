"""The Terraform path: a ready root module for a topology, beside the CDK app.

`regionguard/terraform/` ships inside the package: `modules/` (one per concern: network,
database, compute, routing, state, sessions, failover, static_site, backup, monitoring) and one
root per strategy, with providers aliased per region (primary, standby, witness, and global for
us-east-1). A root is `shared_root/` (the wiring, the variables with the topology's rules per
strategy in `strategies.tf`, the outputs: the same for every strategy, written once) plus
`roots/<strategy>/strategy.tf`, which pins the strategy. `write_terraform` copies the
topology's root and the modules into one self-contained folder and writes the topology's
values beside them, so a user runs `terraform init && terraform apply` there.

What keeps the two IaC paths in step is that nothing Terraform needs to agree on is written by
hand on the Terraform side: every resource name comes from `aws_naming` (the `names` variable),
the guard's IAM statements from the registry in `providers/aws/iam_actions.py` (the
`failover_grants` variable, in its own generated file), the app's grant on its sessions replica
from the same module (`app_session_grants`), and the Lambda code is the same bundle
(`make lambda-bundle`, zipped). The topology's rules are checked first by `aws_view`, so a
topology the CDK app refuses is refused here with the same one-line `ConfigError`; the roots'
own `validation` blocks and preconditions repeat the rules for a hand-edited tfvars file.

This module imports no CDK: the Terraform path needs neither the aws extra nor Node.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from regionguard.aws_naming import AwsNames
from regionguard.config import Topology
from regionguard.infra.view import AwsView, aws_view
from regionguard.providers.aws.iam_actions import (
    APP_SESSION_ACTIONS,
    app_session_resources,
    features,
    grants_for,
)

TERRAFORM = Path(__file__).resolve().parents[1] / "terraform"  # the tree in the package
MODULES = TERRAFORM / "modules"
ROOTS = TERRAFORM / "roots"  # per strategy: what makes the root that strategy's
SHARED_ROOT = TERRAFORM / "shared_root"  # the rest of every root: wiring, variables, outputs
TFVARS = "terraform.tfvars.json"
GRANTS_TFVARS = "failover_grants.auto.tfvars.json"  # generated from the IAM registry
# the CDK app's runtime (infra/stacks/common.py LAMBDA_RUNTIME; a test holds them equal): the
# bundle's wheels are built for it, so the Terraform functions must run on it too
LAMBDA_RUNTIME = "python3.13"
REPO = Path(__file__).resolve().parents[3]


def lambda_bundle_zip() -> Path:
    """The Lambda bundle as Terraform deploys it: `make lambda-bundle`'s folder, zipped beside
    it (`build/lambda.zip`); `RG_LAMBDA_BUNDLE` moves the folder as it does for the CDK app."""
    folder = Path(os.environ.get("RG_LAMBDA_BUNDLE", REPO / "build" / "lambda"))
    return folder.with_suffix(".zip")


def wheelhouse_zip() -> Path:
    """The EC2 app's wheelhouse (`make wheelhouse`), zipped beside it (`build/wheelhouse.zip`)."""
    folder = Path(os.environ.get("RG_WHEELHOUSE", REPO / "build" / "wheelhouse"))
    return folder.with_suffix(".zip")


def missing_artifacts(topology: Topology, lambda_zip: Path | None = None,
                      wheels_zip: Path | None = None) -> list[str]:
    """The zips a `terraform apply` of this topology reads and does not find, with the make
    target that builds each folder (zip it beside the folder). `terraform validate` needs none;
    `terraform plan` fails on a missing one, so the CLI can say it first, as `synth` does for
    the CDK app's artifacts."""
    out = []
    bundle = lambda_zip or lambda_bundle_zip()
    if not bundle.is_file():  # every strategy runs the health function (and most the guard)
        out.append(f"{bundle} (make lambda-bundle, zipped)")
    wheels = wheels_zip or wheelhouse_zip()
    if topology.aws is not None and topology.aws.compute == "ec2" and not wheels.is_file():
        out.append(f"{wheels} (make wheelhouse, zipped)")
    return out


def root_for(topology: Topology) -> Path:
    return ROOTS / topology.strategy.value


def failover_features(view: AwsView) -> set[str]:
    """What the deployment has, in the registry's terms: the same call the CDK guard stack
    makes, plus backup-restore when nothing stands by."""
    have = features(view.settings.database, view.settings.compute,
                    view.settings.provisioned_concurrency)
    if not view.replica:
        have.add("backup-restore")
    return have


def failover_grants(view: AwsView) -> list[dict[str, list[str]]]:
    """The guard's IAM statements for this deployment, from the registry (never hand-copied):
    each grant's actions on the resources it names for these three sites."""
    sites = (view.primary.aws_region, view.standby.aws_region, view.witness_region)
    return [{"actions": list(g.actions), "resources": g.resources(view.names, sites)}
            for g in grants_for(failover_features(view))]


def app_session_grants(view: AwsView) -> dict[str, dict[str, list[str]]]:
    """Each app region's grant on the sessions table, from the registry: its own replica only
    (the CDK compute stack grants the same)."""
    return {r.aws_region: {"actions": list(APP_SESSION_ACTIONS),
                           "resources": app_session_resources(view.names, r.aws_region)}
            for r in view.regions}


def iam_actions_for(topology: Topology, source: str = "topology") -> set[str]:
    """Every action the Terraform guard role is granted from the registry."""
    return {a for g in failover_grants(aws_view(topology, source)) for a in g["actions"]}


def names_var(view: AwsView) -> dict[str, Any]:
    """The `names` variable: every name the modules give a resource, from aws_naming."""
    n: AwsNames = view.names
    regions = [r.aws_region for r in view.regions]

    def per_region(name: str) -> dict[str, str]:
        return {r: getattr(n, name)(r) for r in regions}

    return {
        "db_instance": per_region("db_instance"),
        "db_cluster": per_region("db_cluster"),
        "global_cluster": n.global_cluster(),
        "asg": per_region("asg"),
        "app_function": per_region("app_function"),
        "failover_function": n.failover_function(),
        "guard_role": {site: n.guard_role(site) for site in view.sites},
        "health_function": per_region("health_function"),
        "db_subnet_group": per_region("db_subnet_group"),
        "db_security_group": per_region("db_security_group"),
        "db_secret": n.db_secret(),
        "admin_secret": n.admin_secret(),
        "origin_secret": n.origin_secret(),
        "state_table": n.state_table(),
        "sessions_table": n.sessions_table(),
        "alarm_topic": n.alarm_topic(),
        "notify_topic": n.notify_topic(),
        "region_host": per_region("region_host"),
        "health_host": n.health_host(),
        "static_bucket": per_region("static_bucket"),
        "backup_vault": per_region("backup_vault"),
    }


def tfvars(view: AwsView, lambda_zip: Path | None = None,
           wheels_zip: Path | None = None) -> dict[str, Any]:
    """The values of every variable the root declares (but the generated IAM), from the view."""
    t, s = view.topology, view.settings

    def region(r: Any) -> dict[str, Any]:
        return {"name": r.name, "aws_region": r.aws_region, "capacity": r.capacity,
                "standby_capacity": r.standby_capacity}

    return {
        "strategy": t.strategy.value,
        "app_name": view.names.app,
        "database_name": t.app,
        "account_id": view.names.account,
        "domain": s.domain,
        "hosted_zone_id": s.hosted_zone_id,
        "primary": region(view.primary),
        "standby": region(view.standby),
        "witness_region": view.witness_region,
        "compute": s.compute,
        "database": s.database,
        "engine": s.engine,
        "rds_proxy": s.rds_proxy,
        "routing": view.routing,
        "db_instance_class": s.db_instance_class,
        "instance_type": s.instance_type,
        "backup_retention_days": s.backup_retention_days,
        "provisioned_concurrency": s.provisioned_concurrency,
        "alarm_email": s.alarm_email,
        "api_rate_limit": s.api_rate_limit,
        "api_burst_limit": s.api_burst_limit,
        "cors_origins": list(s.cors_origins),
        "waf_rate_limit": s.waf_rate_limit,
        "lease_s": s.lease_s,
        "probe_interval_s": s.probe_interval_s,
        "probe_timeout_s": s.probe_timeout_s,
        "dns_check_interval_s": s.dns_check_interval_s,
        "dns_failure_threshold": s.dns_failure_threshold,
        "dns_record": s.dns_record,
        "dns_ttl_s": s.dns_ttl_s,
        "rpo_target_s": t.failover.rpo_target_s,
        "names": names_var(view),
        "app_session_grants": app_session_grants(view),
        # what the CDK guard stack puts in RG_TOPOLOGY
        "topology_json": t.model_dump_json(exclude={"state_dir"}),
        "lambda_bundle_zip": str(lambda_zip or lambda_bundle_zip()),
        "lambda_runtime": LAMBDA_RUNTIME,
        "app_wheelhouse_zip": str(wheels_zip or wheelhouse_zip()),
    }


def write_terraform(topology: Topology, out_dir: Path, source: str = "topology", *,
                    lambda_zip: Path | None = None,
                    wheels_zip: Path | None = None) -> list[Path]:
    """Write a ready root module for the topology's strategy into `out_dir`: the root's `.tf`
    files, `modules/` (so the folder is self-contained), `terraform.tfvars.json` (the
    topology's values) and `failover_grants.auto.tfvars.json` (the guard's IAM, from the
    registry). Raises the CDK path's `ConfigError` for a topology AWS cannot take. Returns the
    written files. Files of a previous run are replaced; nothing else in `out_dir` is touched
    (a `.terraform/` folder or state stays)."""
    view = aws_view(topology, source)
    root = root_for(topology)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for tf in sorted([*SHARED_ROOT.glob("*.tf"), *root.glob("*.tf")]):
        written.append(Path(shutil.copy2(tf, out_dir / tf.name)))
    modules = out_dir / "modules"
    if modules.exists():
        shutil.rmtree(modules)
    shutil.copytree(MODULES, modules, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    written += sorted(p for p in modules.rglob("*.tf"))
    values = out_dir / TFVARS
    values.write_text(json.dumps(tfvars(view, lambda_zip, wheels_zip), indent=2) + "\n")
    grants = out_dir / GRANTS_TFVARS
    grants.write_text(json.dumps({"failover_grants": failover_grants(view)}, indent=2) + "\n")
    return [*written, values, grants]

