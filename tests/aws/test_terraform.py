"""The Terraform path (src/regionguard/terraform, infra/terraform.py), checked offline.

For each strategy variant: `write_terraform` writes a ready root; `terraform fmt -check`,
`terraform init -plugin-dir` (the local copy of the AWS provider) and `terraform validate` pass
there; a `terraform plan` runs with no credentials and no network (an override file gives the
providers dummy keys and skips their account lookups; every HTTP(S) request goes to a closed
local port), and its JSON is compared with the CDK app's synthesized templates: the same
resource kinds per Region, the same names, the same IAM for the guard. checkov finds nothing
on the tree, and every exception is one resource's `checkov:skip` with a reason.

The plans run in two worker threads, started before the CDK apps are synthesized, so the two
IaC paths are built side by side.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from regionguard.errors import ConfigError
from regionguard.infra import terraform as tf
from regionguard.infra.view import aws_view
from regionguard.providers.aws.iam_actions import APP_LEASE_RECORD_ACTIONS, all_actions

from .topologies import topology

pytestmark = pytest.mark.iac

VARIANTS = ("pilot-light", "warm-standby", "active-active", "backup-restore", "pilot-light-mysql")
REPO = Path(__file__).resolve().parents[2]
TREE = tf.TERRAFORM
PLATFORM = f"{platform.system().lower()}_" + {"x86_64": "amd64", "aarch64": "arm64"}.get(
    platform.machine(), platform.machine())
PROVIDER_GLOB = f"registry.terraform.io/hashicorp/aws/*/{PLATFORM}/terraform-provider-aws_*"
PLUGIN_ROOTS = (Path("/opt"), Path.home() / ".terraform.d" / "plugins",
                Path("/usr/share/terraform/plugins"),
                Path("/usr/local/share/terraform/plugins"))
ALIASES = ("primary", "standby", "witness", "global")


# -- finding the tools -------------------------------------------------------------------------


def plugin_dir() -> Path | None:
    """The root of a local copy of hashicorp/aws 5.x or 6.x (`-plugin-dir`): RG_TF_PLUGIN_DIR,
    or a known root, or one folder below one (/opt/tf-plugins)."""
    candidates = [Path(os.environ["RG_TF_PLUGIN_DIR"])] if os.environ.get("RG_TF_PLUGIN_DIR") \
        else [*PLUGIN_ROOTS]
    for base in candidates:
        if not base.is_dir():
            continue
        for root in (base, *sorted(p for p in base.iterdir() if p.is_dir())):
            for binary in root.glob(PROVIDER_GLOB):
                version = binary.parent.parent.name
                if version.split(".")[0] in ("5", "6") and binary.is_file():
                    return root
    return None


@dataclass(frozen=True)
class Tools:
    terraform: str
    plugins: Path
    env: dict[str, str]


@pytest.fixture(scope="session")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Tools:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not on PATH (install Terraform >= 1.5 to check the modules)")
    plugins = plugin_dir()
    if plugins is None:
        where = (f"RG_TF_PLUGIN_DIR={os.environ['RG_TF_PLUGIN_DIR']}"
                 if os.environ.get("RG_TF_PLUGIN_DIR")
                 else f"{', '.join(str(p) for p in PLUGIN_ROOTS)} (or set RG_TF_PLUGIN_DIR)")
        pytest.skip(f"no local copy of the hashicorp/aws provider 5.x/6.x for {PLATFORM} "
                    f"(terraform-provider-aws_*) under {where}; these tests run offline and "
                    "download nothing")
    home = tmp_path_factory.mktemp("tf-home")
    (home / "terraformrc").write_text("")  # no user configuration, no credentials helper
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    env.update({
        "TF_CLI_CONFIG_FILE": str(home / "terraformrc"),
        "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0",
        # nothing leaves the machine: every HTTP(S) request goes to a closed local port
        "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # the AWS provider is a large Go program started once per provider alias and command:
        # collecting its garbage only past 1 GiB roughly halves the CPU a plan takes
        "GOGC": "off", "GOMEMLIMIT": "1GiB",
    })
    return Tools(binary, plugins, env)


def run(tools: Tools, cwd: Path, *args: str,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nice", "-n", "10", tools.terraform, *args, "-no-color"], cwd=cwd,
                          env=tools.env, capture_output=True, text=True, timeout=timeout,
                          check=False)


# -- writing and planning each variant ---------------------------------------------------------


def offline_override() -> str:
    """Override file for the offline plan: dummy keys, no account lookup, no retries."""
    blocks = []
    for alias in ALIASES:
        blocks.append(
            'provider "aws" {\n'
            f'  alias                       = "{alias}"\n'
            '  access_key                  = "offline"\n'
            '  secret_key                  = "offline"\n'
            '  skip_credentials_validation = true\n'
            '  skip_requesting_account_id  = true\n'
            '  skip_metadata_api_check     = true\n'
            '  allowed_account_ids         = null\n'
            '  max_retries                 = 1\n'
            '}\n')
    return "\n".join(blocks)


@dataclass
class Outcome:
    """What happened to one variant: each command's result, and the plan as JSON."""

    folder: Path
    steps: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    plan: dict[str, Any] | None = None
    validated_with: str | None = None  # another variant of the same root ran `validate`

    def failed(self, step: str) -> str | None:
        if step == "validate" and self.validated_with:
            return None
        done = self.steps.get(step)
        if done is None:
            return f"{step} did not run (an earlier step failed)"
        if done.returncode != 0:
            return f"{step} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return None


def build(tools: Tools, variant: str, folder: Path, artifact: Path,
          validated_with: str | None = None) -> Outcome:
    """write_terraform, then fmt, init, validate, plan and show, stopping at the first failure.
    `validate` checks a root module whatever its values, so a second variant of a root that
    another variant validates skips it (its plan validates it again, with its values)."""
    tf.write_terraform(topology(variant), folder, lambda_zip=artifact, wheels_zip=artifact)
    out = Outcome(folder, validated_with=validated_with)
    out.steps["fmt"] = run(tools, folder, "fmt", "-check", "-recursive", "-diff")
    out.steps["init"] = run(tools, folder, "init", "-backend=false",
                            f"-plugin-dir={tools.plugins}", "-input=false")
    if out.steps["init"].returncode:
        return out
    if validated_with is None:
        out.steps["validate"] = run(tools, folder, "validate")
        if out.steps["validate"].returncode:
            return out
    (folder / "zz_offline_override.tf").write_text(offline_override())
    out.steps["plan"] = run(tools, folder, "plan", "-input=false", "-lock=false",
                            "-refresh=false", "-out=plan.bin")
    if out.steps["plan"].returncode:
        return out
    out.steps["show"] = run(tools, folder, "show", "-json", "plan.bin")
    if out.steps["show"].returncode == 0:
        out.plan = json.loads(out.steps["show"].stdout)
    return out


@pytest.fixture(scope="session")
def built(tools: Tools, tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[dict[str, Future[Outcome]]]:
    """Every variant written and planned in two threads; the CDK apps (the session's `synths`)
    synthesize meanwhile in this one, so the two IaC paths build side by side."""
    base = tmp_path_factory.mktemp("terraform")
    artifact = base / "bundle.zip"  # filebase64sha256 needs a file; its content is not planned
    with zipfile.ZipFile(artifact, "w") as z:
        z.writestr("regionguard/__init__.py", "")
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="terraform")
    roots: dict[str, str] = {}
    futures = {}
    for v in VARIANTS:
        root = tf.root_for(topology(v)).name
        futures[v] = pool.submit(build, tools, v, base / v, artifact, roots.get(root))
        roots.setdefault(root, v)
    # the drift tests report a CDK app that cannot be synthesized (or the aws extra missing)
    with contextlib.suppress(Exception, pytest.skip.Exception):
        request.getfixturevalue("synths")
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def outcome(built: dict[str, Future[Outcome]], variant: str) -> Outcome:
    return built[variant].result(timeout=600)


@pytest.mark.parametrize("variant", VARIANTS)
def test_written_root_is_formatted_and_valid(built: dict[str, Future[Outcome]],
                                             variant: str) -> None:
    out = outcome(built, variant)
    for step in ("fmt", "init", "validate"):
        problem = out.failed(step)
        assert problem is None, f"{variant}: terraform {problem}"
    files = {p.name for p in out.folder.iterdir()}
    assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf", tf.TFVARS,
            tf.GRANTS_TFVARS, "modules"} <= files


@pytest.mark.parametrize("variant", VARIANTS)
def test_plans_offline(built: dict[str, Future[Outcome]], variant: str) -> None:
    out = outcome(built, variant)
    for step in ("plan", "show"):
        problem = out.failed(step)
        assert problem is None, f"{variant}: terraform {problem}"
    assert out.plan is not None and resources(out.plan)


def test_source_tree_is_formatted(tools: Tools) -> None:
    done = run(tools, TREE, "fmt", "-check", "-recursive", "-diff")
    assert done.returncode == 0, done.stdout + done.stderr


# -- the tree's shape --------------------------------------------------------------------------


MODULE_NAMES = ("network", "database", "compute", "routing", "state", "sessions", "failover",
                "static_site", "backup", "monitoring")


def test_modules_and_roots_follow_the_standard_layout() -> None:
    for name in MODULE_NAMES:
        folder = tf.MODULES / name
        missing = {"main.tf", "variables.tf", "outputs.tf", "versions.tf"} - {
            p.name for p in folder.glob("*.tf")}
        assert not missing, f"modules/{name} lacks {sorted(missing)}"
        assert 'version = "~> 5.100"' in re.sub(r"\s+", " ",
                                                       (folder / "versions.tf").read_text())
    roots = sorted(p.name for p in tf.ROOTS.iterdir())
    assert roots == sorted(s for s in ("active-active", "backup-restore", "pilot-light",
                                       "warm-standby"))
    # one wiring for every strategy, written once: a root adds only what pins its strategy
    assert {p.name for p in tf.SHARED_ROOT.glob("*.tf")} >= {
        "main.tf", "variables.tf", "outputs.tf", "versions.tf"}
    for r in roots:
        assert [p.name for p in (tf.ROOTS / r).glob("*.tf")] == ["strategy.tf"], r


def test_every_root_variable_is_written_and_every_value_is_declared() -> None:
    """terraform.tfvars.json sets every variable a root declares (a value for an undeclared
    variable is a warning Terraform prints; a missing one is a prompt), from aws_view."""
    for variant in VARIANTS:
        topo = topology(variant)
        declared = set(re.findall(r'^variable "([a-z_]+)"', "".join(
            p.read_text() for p in [*tf.SHARED_ROOT.glob("*.tf"),
                                    *tf.root_for(topo).glob("*.tf")]), re.M))
        written = set(tf.tfvars(aws_view(topo))) | {"failover_grants"}
        assert declared == written, (f"{variant}: declared but not written: "
                                     f"{sorted(declared - written)}; written but not declared: "
                                     f"{sorted(written - declared)}")


def test_a_topology_without_aws_is_refused_as_by_the_cdk_path(tmp_path: Path) -> None:
    topo = topology("pilot-light").model_copy(update={"aws": None})
    with pytest.raises(ConfigError) as cdk:
        aws_view(topo, "regionguard.toml")
    with pytest.raises(ConfigError) as terraform:
        tf.write_terraform(topo, tmp_path / "out", "regionguard.toml")
    assert str(terraform.value) == str(cdk.value)
    assert not (tmp_path / "out").exists()


def test_guard_iam_is_generated_from_the_registry(tmp_path: Path) -> None:
    """failover_grants.auto.tfvars.json is the registry's statements for the deployment, and
    no module names an action of its own for the guard."""
    files = tf.write_terraform(topology("warm-standby"), tmp_path)
    grants = json.loads((tmp_path / tf.GRANTS_TFVARS).read_text())["failover_grants"]
    assert tmp_path / tf.GRANTS_TFVARS in files
    actions = {a for g in grants for a in g["actions"]}
    assert actions == tf.iam_actions_for(topology("warm-standby"))
    assert actions <= all_actions()
    assert "rds:FailoverGlobalCluster" in actions and "rds:PromoteReadReplica" not in actions
    assert not any(a.startswith("route53:") for a in actions)

    def text(path: Path) -> str:
        """The module's text, less the app's own write-lease policy: its UpdateItem (on one
        item, APP_LEASE_RECORD_ACTIONS) is the app's, not a guard action written by hand."""
        body = path.read_text()
        return re.sub(r'resource "aws_iam_role_policy" "write_lease" \{.*?\n\}\n', "", body,
                      flags=re.S) if path.parent.name == "compute" else body

    written = {a for path in tf.TERRAFORM.rglob("*.tf")
               for a in re.findall(r'"([a-z0-9-]+:[A-Za-z*]+)"', text(path))}
    assert set(APP_LEASE_RECORD_ACTIONS) <= {
        a for a in re.findall(r'"([a-z0-9-]+:[A-Za-z*]+)"',
                              (tf.TERRAFORM / "modules" / "compute" / "main.tf").read_text())}
    guard_only = all_actions() - {"dynamodb:GetItem", "dynamodb:PutItem", "sns:Publish",
                                  "secretsmanager:GetSecretValue", "rds:DescribeDBInstances"}
    assert not written & guard_only, ("a module names the registry's guard actions by hand: "
                                      f"{sorted(written & guard_only)}")


def test_missing_artifacts_are_named(tmp_path: Path) -> None:
    bundle, wheels = tmp_path / "lambda.zip", tmp_path / "wheelhouse.zip"
    ec2, lam = topology("pilot-light"), topology("active-active")
    assert tf.missing_artifacts(ec2, bundle, wheels) == [
        f"{bundle} (make lambda-bundle, zipped)", f"{wheels} (make wheelhouse, zipped)"]
    bundle.write_bytes(b"")
    assert tf.missing_artifacts(lam, bundle, wheels) == []  # Lambda compute needs no wheels


def test_lambda_runtime_is_the_cdk_apps() -> None:
    pytest.importorskip("aws_cdk", reason="the aws extra is not installed")
    from regionguard.infra.stacks.common import LAMBDA_RUNTIME

    assert LAMBDA_RUNTIME.name == tf.LAMBDA_RUNTIME


# -- checkov -----------------------------------------------------------------------------------


SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?$")


def test_every_checkov_skip_is_one_resources_with_a_reason() -> None:
    """No global skip (no .checkov config, no --skip-check), and each `checkov:skip` names one
    check inside one resource block, with a reason of some words."""
    assert not list(TREE.rglob(".checkov*")), "no global checkov configuration"
    count = 0
    for path in sorted(TREE.rglob("*.tf")):
        block = None
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"^(resource|data|module)\s", line):
                block = line
            elif line.startswith("}"):
                block = None
            match = SKIP.search(line)
            if not match:
                continue
            count += 1
            where = f"{path.relative_to(TREE)}:{number}"
            assert block and block.startswith("resource "), f"{where}: skip outside a resource"
            assert re.fullmatch(r"CKV2?_AWS_\d+", match.group(1)), f"{where}: {match.group(1)}"
            reason = (match.group(2) or "").strip()
            assert len(reason.split()) >= 5, f"{where}: skip {match.group(1)} without a reason"
    assert count > 0


def checkov_binary() -> str | None:
    # checkov pins older boto3 and packaging than the project's: it may live in its own venv
    for candidate in (os.environ.get("RG_CHECKOV"), str(REPO / ".venv" / "bin" / "checkov"),
                      str(REPO / ".venv-checkov" / "bin" / "checkov"), shutil.which("checkov")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def test_checkov_finds_nothing() -> None:
    binary = checkov_binary()
    if binary is None:
        pytest.skip("checkov is not installed: not in .venv, .venv-checkov or on PATH (it pins "
                    "older boto3 than regionguard: give it its own venv; RG_CHECKOV names a "
                    "binary)")
    done = subprocess.run(
        ["nice", "-n", "10", binary, "-d", str(TREE), "--framework", "terraform", "--quiet",
         "--compact", "-o", "json", "--skip-download"], capture_output=True, text=True,
        timeout=300, check=False,  # offline: no policy download, no request leaves the machine
        env={**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"})
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [f"{f['check_id']} {f['file_path']} {f['resource']}: {f['check_name']}"
              for r in reports for f in r["results"]["failed_checks"]]
    assert not failed, "checkov:\n" + "\n".join(failed)
    assert sum(r["summary"]["passed"] for r in reports) > 200
    for r in reports:
        for skipped in r["results"].get("skipped_checks", []):
            reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
            assert reason.strip(), f"{skipped['check_id']} {skipped['resource']} has no reason"


# -- the plan, read ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One resource of either IaC path, in CloudFormation's terms: its AWS Region, CFN type,
    properties (CFN) or planned values (Terraform), and where it came from."""

    region: str
    kind: str
    props: dict[str, Any]
    where: str


def resources(plan: dict[str, Any]) -> list[dict[str, Any]]:
    def walk(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield from module.get("resources", [])
        for child in module.get("child_modules", []):
            yield from walk(child)

    return [r for r in walk(plan["planned_values"]["root_module"]) if r["mode"] == "managed"]


def configuration(plan: dict[str, Any], address: str) -> dict[str, Any]:
    """A resource's configuration block (its provider alias, its expressions)."""
    parts = re.sub(r"\[[^\]]*\]", "", address).split(".")
    module = plan["configuration"]["root_module"]
    while parts[0] == "module":
        module = module["module_calls"][parts[1]]["module"]
        parts = parts[2:]
    name = ".".join(parts)
    return next(r for r in module["resources"] if r["address"] == name)


def alias_regions(tfvars: dict[str, Any]) -> dict[str, str]:
    return {"aws.primary": tfvars["primary"]["aws_region"],
            "aws.standby": tfvars["standby"]["aws_region"],
            "aws.witness": tfvars["witness_region"], "aws.global": "us-east-1"}


# Terraform types in CloudFormation's terms, for the kinds both express. A type missing here
# (an S3 bucket's sub-resources, security group rules, KMS aliases, ...) has no one-to-one CFN
# kind (CFN writes it inline) and is not compared.
KINDS: dict[str, str] = {
    "aws_vpc": "AWS::EC2::VPC",
    "aws_subnet": "AWS::EC2::Subnet",
    "aws_internet_gateway": "AWS::EC2::InternetGateway",
    "aws_nat_gateway": "AWS::EC2::NatGateway",
    "aws_eip": "AWS::EC2::EIP",
    "aws_route_table": "AWS::EC2::RouteTable",
    "aws_route": "AWS::EC2::Route",
    "aws_route_table_association": "AWS::EC2::SubnetRouteTableAssociation",
    "aws_flow_log": "AWS::EC2::FlowLog",
    "aws_security_group": "AWS::EC2::SecurityGroup",
    "aws_launch_template": "AWS::EC2::LaunchTemplate",
    "aws_kms_key": "AWS::KMS::Key",
    "aws_cloudwatch_log_group": "AWS::Logs::LogGroup",
    "aws_iam_role": "AWS::IAM::Role",
    "aws_iam_role_policy": "AWS::IAM::Policy",
    "aws_iam_instance_profile": "AWS::IAM::InstanceProfile",
    "aws_db_instance": "AWS::RDS::DBInstance",
    "aws_rds_cluster_instance": "AWS::RDS::DBInstance",
    "aws_rds_cluster": "AWS::RDS::DBCluster",
    "aws_rds_global_cluster": "AWS::RDS::GlobalCluster",
    "aws_db_subnet_group": "AWS::RDS::DBSubnetGroup",
    "aws_db_parameter_group": "AWS::RDS::DBParameterGroup",
    "aws_db_proxy": "AWS::RDS::DBProxy",
    "aws_db_proxy_default_target_group": "AWS::RDS::DBProxyTargetGroup",
    "aws_secretsmanager_secret": "AWS::SecretsManager::Secret",
    "aws_lambda_function": "AWS::Lambda::Function",
    "aws_lambda_alias": "AWS::Lambda::Alias",
    "aws_lambda_permission": "AWS::Lambda::Permission",
    "aws_autoscaling_group": "AWS::AutoScaling::AutoScalingGroup",
    "aws_lb": "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "aws_lb_listener": "AWS::ElasticLoadBalancingV2::Listener",
    "aws_lb_target_group": "AWS::ElasticLoadBalancingV2::TargetGroup",
    "aws_wafv2_web_acl": "AWS::WAFv2::WebACL",
    "aws_wafv2_web_acl_association": "AWS::WAFv2::WebACLAssociation",
    "aws_acm_certificate": "AWS::CertificateManager::Certificate",
    "aws_cognito_user_pool": "AWS::Cognito::UserPool",
    "aws_cognito_user_pool_client": "AWS::Cognito::UserPoolClient",
    "aws_apigatewayv2_api": "AWS::ApiGatewayV2::Api",
    "aws_apigatewayv2_stage": "AWS::ApiGatewayV2::Stage",
    "aws_apigatewayv2_route": "AWS::ApiGatewayV2::Route",
    "aws_apigatewayv2_integration": "AWS::ApiGatewayV2::Integration",
    "aws_apigatewayv2_authorizer": "AWS::ApiGatewayV2::Authorizer",
    "aws_apigatewayv2_domain_name": "AWS::ApiGatewayV2::DomainName",
    "aws_apigatewayv2_api_mapping": "AWS::ApiGatewayV2::ApiMapping",
    "aws_cloudwatch_event_rule": "AWS::Events::Rule",
    "aws_scheduler_schedule": "AWS::Scheduler::Schedule",
    "aws_sns_topic": "AWS::SNS::Topic",
    "aws_sns_topic_policy": "AWS::SNS::TopicPolicy",
    "aws_sns_topic_subscription": "AWS::SNS::Subscription",
    "aws_route53_health_check": "AWS::Route53::HealthCheck",
    "aws_route53_record": "AWS::Route53::RecordSet",
    "aws_backup_vault": "AWS::Backup::BackupVault",
    "aws_backup_plan": "AWS::Backup::BackupPlan",
    "aws_backup_selection": "AWS::Backup::BackupSelection",
    "aws_cloudwatch_metric_alarm": "AWS::CloudWatch::Alarm",
    "aws_cloudwatch_dashboard": "AWS::CloudWatch::Dashboard",
    "aws_s3_bucket": "AWS::S3::Bucket",
    "aws_s3_bucket_policy": "AWS::S3::BucketPolicy",
    "aws_cloudfront_distribution": "AWS::CloudFront::Distribution",
    "aws_cloudfront_origin_access_control": "AWS::CloudFront::OriginAccessControl",
    # the app's sessions table: Terraform's own resource, with replica blocks, against the CDK
    # app's TableV2 (both AWS::DynamoDB::GlobalTable, described alike by global_table below)
    "aws_dynamodb_table": "AWS::DynamoDB::GlobalTable",
    # the arbiter is CloudFormation's own resource in a stack Terraform owns: its template's
    # resources are compared as they are (AWS::DynamoDB::GlobalTable)
    "aws_cloudformation_stack": "AWS::CloudFormation::Stack",
}
COMPARED = set(KINDS.values()) | {"AWS::DynamoDB::GlobalTable"}


def terraform_side(plan: dict[str, Any], tfvars: dict[str, Any]) -> list[Resource]:
    regions = alias_regions(tfvars)
    out = []
    for r in resources(plan):
        if r["type"] not in KINDS:
            continue
        region = regions[configuration(plan, r["address"])["provider_config_key"]]
        values = r.get("values") or {}
        if r["type"] == "aws_cloudformation_stack":  # its template's resources, as deployed
            body = json.loads(values["template_body"])
            for logical, res in body["Resources"].items():
                out.append(Resource(region, res["Type"], res.get("Properties", {}),
                                    f"{r['address']}/{logical}"))
            continue
        extra = {"_unknown": after_unknown(plan, r["address"])} \
            if r["type"] == "aws_dynamodb_table" else {}
        out.append(Resource(region, KINDS[r["type"]], {**values, **extra, "_tf": r["type"]},
                            r["address"]))
    return out


def after_unknown(plan: dict[str, Any], address: str) -> dict[str, Any]:
    """Which of a resource's planned values the plan does not know yet (an ARN of a resource
    the same plan creates), in the shape of its values."""
    change = next(c for c in plan["resource_changes"] if c["address"] == address)["change"]
    unknown: dict[str, Any] = change.get("after_unknown") or {}
    return unknown


def cdk_side(synth: Any) -> list[Resource]:
    out = []
    for stack in synth.built.stacks():
        template = synth.raw(stack.stack_name)
        for logical, res in template["Resources"].items():
            if res["Type"] in COMPARED:
                out.append(Resource(stack.region, res["Type"], res.get("Properties", {}),
                                    f"{stack.stack_name}/{logical}"))
    return out


# -- what is compared --------------------------------------------------------------------------


def literal(value: Any) -> str | None:
    return value.rstrip(".") if isinstance(value, str) else None


def cfn_name(r: Resource) -> str | None:
    """The name the CDK app gives a resource (None: generated, or not compared)."""
    p = r.props
    simple = {
        "AWS::RDS::DBInstance": "DBInstanceIdentifier", "AWS::RDS::DBCluster":
        "DBClusterIdentifier", "AWS::RDS::GlobalCluster": "GlobalClusterIdentifier",
        "AWS::RDS::DBSubnetGroup": "DBSubnetGroupName", "AWS::EC2::SecurityGroup": "GroupName",
        "AWS::AutoScaling::AutoScalingGroup": "AutoScalingGroupName",
        "AWS::SNS::Topic": "TopicName", "AWS::Backup::BackupVault": "BackupVaultName",
        "AWS::S3::Bucket": "BucketName", "AWS::CloudWatch::Dashboard": "DashboardName",
        "AWS::WAFv2::WebACL": "Name", "AWS::ApiGatewayV2::Api": "Name",
        "AWS::ApiGatewayV2::DomainName": "DomainName", "AWS::IAM::Role": "RoleName",
    }
    if r.kind in simple:
        return literal(p.get(simple[r.kind]))
    if r.kind == "AWS::Lambda::Function":
        name = literal(p.get("FunctionName"))
        return name and f"{name} handler={p.get('Handler')}"
    if r.kind == "AWS::SecretsManager::Secret":
        replicas = sorted(x["Region"] for x in p.get("ReplicaRegions", []))
        return f"{p.get('Name')} replicas={','.join(replicas)}"
    if r.kind == "AWS::DynamoDB::GlobalTable":
        return cfn_global_table(r)
    if r.kind == "AWS::Route53::HealthCheck":
        c = p["HealthCheckConfig"]
        return (f"{c['Type']} {c['FullyQualifiedDomainName']}{c.get('ResourcePath', '')} "
                f"every {c.get('RequestInterval', 30)}s x{c.get('FailureThreshold', 3)}")
    if r.kind == "AWS::Route53::RecordSet" and p.get("Type") in ("A", "CNAME"):
        policy = p.get("Failover") or (f"latency:{p['Region']}" if p.get("Region") else "")
        ttl = f" ttl={p['TTL']}" if "TTL" in p else ""
        return f"{literal(p['Name'])} {p['Type']} {policy} {p.get('SetIdentifier', '')}" \
            f"{ttl}".strip()
    return None


@dataclass(frozen=True)
class GlobalTable:
    """A DynamoDB global table as both paths must agree on it: its name, consistency,
    replicas (and witnesses), key, capacity, TTL, stream, and per replica its point-in-time
    recovery and its encryption (`cmk`: a customer managed key of its Region, `aws`: the AWS
    managed key, `owned`: DynamoDB's own); deletion protection of the replica in the Region
    that creates the table (the AWS provider 5.x's replica block has none of its own)."""

    name: str
    consistency: str
    replicas: tuple[str, ...]
    witnesses: tuple[str, ...]
    key: str
    billing: str
    ttl: str
    stream: str
    pitr: tuple[str, ...]
    encryption: tuple[str, ...]  # region:cmk|aws|owned
    protected: bool

    def __str__(self) -> str:
        return (f"{self.name} {self.consistency} replicas={','.join(self.replicas)} "
                f"witnesses={','.join(self.witnesses)} key={self.key} billing={self.billing} "
                f"ttl={self.ttl} stream={self.stream} pitr={','.join(self.pitr)} "
                f"encryption={','.join(self.encryption)} deletion_protection={self.protected}")


def cfn_global_table(r: Resource) -> str:
    p = r.props
    replicas = p.get("Replicas", [])
    types = {a["AttributeName"]: a["AttributeType"] for a in p.get("AttributeDefinitions", [])}
    ttl = p.get("TimeToLiveSpecification") or {}
    sse = (p.get("SSESpecification") or {}).get("SSEEnabled")
    home = next((x for x in replicas if x["Region"] == r.region), {})

    def encryption(replica: dict[str, Any]) -> str:
        key = (replica.get("SSESpecification") or {}).get("KMSMasterKeyId")
        return "cmk" if key else "aws" if sse else "owned"

    return str(GlobalTable(
        name=p.get("TableName", ""),
        consistency=p.get("MultiRegionConsistency") or "EVENTUAL",
        replicas=tuple(sorted(x["Region"] for x in replicas)),
        witnesses=tuple(sorted(x["Region"] for x in p.get("GlobalTableWitnesses", []))),
        key=",".join(f"{k['AttributeName']}:{types.get(k['AttributeName'])}:{k['KeyType']}"
                     for k in p.get("KeySchema", [])),
        billing=p.get("BillingMode") or "PROVISIONED",
        ttl=ttl["AttributeName"] if ttl.get("Enabled") else "-",
        stream=(p.get("StreamSpecification") or {}).get("StreamViewType") or "-",
        pitr=tuple(sorted(x["Region"] for x in replicas if (
            x.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled"))),
        encryption=tuple(sorted(f"{x['Region']}:{encryption(x)}" for x in replicas)),
        protected=bool(home.get("DeletionProtectionEnabled"))))


def tf_global_table(r: Resource) -> str:
    """aws_dynamodb_table in cfn_global_table's terms: the table's own Region is its first
    replica; a key ARN the plan does not know yet is a key this plan creates (a CMK)."""
    p, unknown = r.props, r.props.get("_unknown", {})
    sse_on = bool(first(p, "server_side_encryption").get("enabled"))

    def encryption(values: dict[str, Any], unknowns: dict[str, Any]) -> str:
        key = values.get("kms_key_arn") or unknowns.get("kms_key_arn")
        return "cmk" if key else "aws" if sse_on else "owned"

    replicas = list(p.get("replica") or [])
    replicas_unknown = list(unknown.get("replica") or [{}] * len(replicas))
    home = (r.region, bool(first(p, "point_in_time_recovery").get("enabled")),
            encryption(first(p, "server_side_encryption"),
                       first(unknown, "server_side_encryption")))
    sites = [home] + [(x["region_name"], bool(x.get("point_in_time_recovery")), encryption(x, u))
                      for x, u in zip(replicas, replicas_unknown, strict=True)]
    types = {a["name"]: a["type"] for a in p.get("attribute") or []}
    key = ",".join(f"{p[k]}:{types.get(p[k])}:{kind}"
                   for k, kind in (("hash_key", "HASH"), ("range_key", "RANGE")) if p.get(k))
    ttl = first(p, "ttl")
    modes = {x.get("consistency_mode") for x in replicas} - {None}  # the provider 6.x's MRSC
    return str(GlobalTable(
        name=p.get("name", ""),
        consistency=modes.pop() if len(modes) == 1 else "EVENTUAL",
        replicas=tuple(sorted(region for region, _, _ in sites)),
        witnesses=(),
        key=key,
        billing=p.get("billing_mode") or "PROVISIONED",
        ttl=ttl["attribute_name"] if ttl.get("enabled") else "-",
        stream=(p.get("stream_view_type") or "-") if p.get("stream_enabled") else "-",
        pitr=tuple(sorted(region for region, pitr, _ in sites if pitr)),
        encryption=tuple(sorted(f"{region}:{how}" for region, _, how in sites)),
        protected=bool(p.get("deletion_protection_enabled"))))


def first(values: dict[str, Any], block: str) -> dict[str, Any]:
    """A nested block's only entry (an empty one when it is absent)."""
    found = values.get(block) or [{}]
    return dict(found[0])


def tf_name(r: Resource) -> str | None:
    """The name the Terraform modules give a resource, in cfn_name's form."""
    p = r.props
    simple = {
        "aws_db_instance": "identifier", "aws_rds_cluster": "cluster_identifier",
        "aws_rds_global_cluster": "global_cluster_identifier", "aws_db_subnet_group": "name",
        "aws_security_group": "name", "aws_autoscaling_group": "name", "aws_sns_topic": "name",
        "aws_backup_vault": "name", "aws_s3_bucket": "bucket",
        "aws_cloudwatch_dashboard": "dashboard_name", "aws_wafv2_web_acl": "name",
        "aws_apigatewayv2_api": "name", "aws_apigatewayv2_domain_name": "domain_name",
        "aws_iam_role": "name",
    }
    kind = p.get("_tf")
    if kind is None:  # a resource of the arbiter's CloudFormation template
        return cfn_name(r)
    if kind in simple:
        return literal(p.get(simple[kind]))
    if kind == "aws_dynamodb_table":
        return tf_global_table(r)
    if kind == "aws_lambda_function":
        name = literal(p.get("function_name"))
        return name and f"{name} handler={p.get('handler')}"
    if kind == "aws_secretsmanager_secret":
        replicas = sorted(x["region"] for x in p.get("replica") or [])
        return f"{p.get('name')} replicas={','.join(replicas)}"
    if kind == "aws_route53_health_check":
        return (f"{p['type']} {p['fqdn']}{p.get('resource_path') or ''} "
                f"every {p.get('request_interval')}s x{p.get('failure_threshold')}")
    if kind == "aws_route53_record" and p.get("type") in ("A", "CNAME"):
        failover = p.get("failover_routing_policy") or []
        latency = p.get("latency_routing_policy") or []
        policy = (failover[0]["type"] if failover else
                  f"latency:{latency[0]['region']}" if latency else "")
        ttl = f" ttl={p['ttl']}" if p.get("ttl") is not None else ""
        return f"{literal(p['name'])} {p['type']} {policy} {p.get('set_identifier') or ''}" \
            f"{ttl}".strip()
    return None


def kinds_by_region(items: list[Resource]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for r in items:
        out[r.region].add(r.kind)
    return out


def names_by_region(items: list[Resource], name: Any) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for r in items:
        found = name(r)
        if found:
            out[r.region].add(f"{r.kind} {found}")
    return out


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document.get("Statement", [])
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class GuardIam:
    actions: frozenset[str]
    scoped: frozenset[tuple[str, str]]  # (action, resource) where the resource is literal
    managed: frozenset[str]


def guard_iam(actions: list[str], resources_: list[tuple[list[str], list[Any]]],
              managed: list[str]) -> GuardIam:
    registry = all_actions()
    scoped = {(a, res) for acts, ress in resources_ for a in acts if a in registry
              for res in ress if isinstance(res, str)}
    return GuardIam(frozenset(actions), frozenset(scoped),
                    frozenset(m.rsplit("policy/", 1)[-1] for m in managed))


def cdk_guard_iam(synth: Any, function: str) -> dict[str, GuardIam]:
    out = {}
    for stack in synth.built.stacks():
        template = synth.raw(stack.stack_name)["Resources"]
        for res in template.values():
            p = res.get("Properties", {})
            if res["Type"] != "AWS::Lambda::Function" or p.get("FunctionName") != function:
                continue
            role = p["Role"]["Fn::GetAtt"][0]
            docs = [x["Properties"]["PolicyDocument"] for x in template.values()
                    if x["Type"] == "AWS::IAM::Policy"
                    and {"Ref": role} in x["Properties"].get("Roles", [])]
            stmts = [s for d in docs for s in statements(d)]
            managed = [m["Fn::Join"][1][-1] if isinstance(m, dict) else m
                       for m in template[role]["Properties"].get("ManagedPolicyArns", [])]
            out[stack.region] = guard_iam(
                [a for s in stmts for a in as_list(s["Action"])],
                [(as_list(s["Action"]), as_list(s["Resource"])) for s in stmts], managed)
    return out


def tf_guard_iam(plan: dict[str, Any], tfvars: dict[str, Any],
                 function: str) -> dict[str, GuardIam]:
    regions = alias_regions(tfvars)
    everything = resources(plan)
    out = {}
    for r in everything:
        if r["type"] != "aws_lambda_function" or r["values"].get("function_name") != function:
            continue
        module = r["address"].rsplit(".", 2)[0]
        conf = configuration(plan, r["address"])
        role = next(ref for ref in conf["expressions"]["role"]["references"]
                    if ref.count(".") == 1)  # aws_iam_role.<name>
        docs, managed = [], []
        for other in everything:
            if not other["address"].startswith(module + "."):
                continue
            refs = configuration(plan, other["address"]).get("expressions", {}) \
                .get("role", {}).get("references", [])
            if role not in refs:
                continue
            if other["type"] == "aws_iam_role_policy":
                docs.append(json.loads(other["values"]["policy"]))
            elif other["type"] == "aws_iam_role_policy_attachment":
                managed.append(other["values"]["policy_arn"])
        stmts = [s for d in docs for s in statements(d)]
        out[regions[conf["provider_config_key"]]] = guard_iam(
            [a for s in stmts for a in as_list(s["Action"])],
            [(as_list(s["Action"]), as_list(s["Resource"])) for s in stmts], managed)
    return out


def differences(label: str, cdk: dict[str, set[str]], terraform: dict[str, set[str]]) -> list[str]:
    lines = []
    for region in sorted(set(cdk) | set(terraform)):
        only_cdk = cdk.get(region, set()) - terraform.get(region, set())
        only_tf = terraform.get(region, set()) - cdk.get(region, set())
        lines += [f"{label} {region}: only in the CDK app: {x}" for x in sorted(only_cdk)]
        lines += [f"{label} {region}: only in Terraform: {x}" for x in sorted(only_tf)]
    return lines


def same_value(a: str, b: str) -> bool:
    """Equal strings, or equal JSON documents (jsonencode writes 30 where Python writes 30.0)."""
    if a == b:
        return True
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return False


def environment_drift(cdk: list[Resource], terraform: list[Resource]) -> list[str]:
    """Each function's environment where Terraform knows it at plan time (the guard's and the
    health writer's; the app's waits for its database endpoint): the same variables, and the
    same values where both are literal."""
    functions = {(r.region, r.props.get("FunctionName")): r.props.get("Environment", {})
                 .get("Variables", {}) for r in cdk if r.kind == "AWS::Lambda::Function"}
    lines = []
    for r in terraform:
        env = (r.props.get("environment") or [{}])[0].get("variables") or {}
        if r.props.get("_tf") != "aws_lambda_function" or not env:
            continue
        name = r.props["function_name"]
        theirs = functions.get((r.region, name))
        if theirs is None:
            continue  # the name comparison reports it
        if set(env) != set(theirs):
            lines.append(f"env {r.region} {name}: CDK {sorted(theirs)}, Terraform {sorted(env)}")
            continue
        lines += [f"env {r.region} {name}: {key} differs" for key in sorted(env)
                  if isinstance(theirs[key], str) and not same_value(theirs[key], env[key])]
    return lines


def session_grants(stmts: list[tuple[str, dict[str, Any]]], table: str) -> set[str]:
    """What the apps' roles may do with the sessions table, as `region action target` lines:
    each action on each table ARN, and each KMS action with the service it is limited to
    (kms:ViaService: the CDK app names the key by ARN, Terraform by alias)."""
    out = set()
    for region, st in stmts:
        actions = as_list(st["Action"])
        arns = [x for x in as_list(st["Resource"]) if isinstance(x, str) and f":table/{table}" in x]
        out |= {f"{region} {a} {arn}" for a in actions for arn in arns}
        via = (st.get("Condition") or {}).get("StringEquals", {}).get("kms:ViaService")
        if via and via.startswith("dynamodb."):
            out |= {f"{region} {a} via {via}" for a in actions}
    return out


def arbiter_grants(stmts: list[tuple[str, dict[str, Any]]], table: str) -> set[str]:
    """What the apps' stacks may do with the arbiter, as `region action target condition`
    lines: the condition (the one item an app may write) is part of the grant."""
    out = set()
    for region, st in stmts:
        arns = [x for x in as_list(st["Resource"]) if isinstance(x, str) and f":table/{table}" in x]
        condition = json.dumps(st.get("Condition") or {}, sort_keys=True)
        out |= {f"{region} {a} {arn} {condition}" for a in as_list(st["Action"]) for arn in arns}
    return out


def session_grant_drift(synth: Any, plan: dict[str, Any], tfvars: dict[str, Any]) -> list[str]:
    """The apps' grants on the sessions table and on the arbiter, compared."""
    table, arbiter = tfvars["names"]["sessions_table"], tfvars["names"]["state_table"]
    cdk = []
    for stack in synth.built.stacks():
        if not stack.stack_name.endswith("-Compute"):
            continue
        for res in synth.raw(stack.stack_name)["Resources"].values():
            if res["Type"] == "AWS::IAM::Policy":
                cdk += [(stack.region, st)
                        for st in statements(res["Properties"]["PolicyDocument"])]
    regions = alias_regions(tfvars)
    terraform = []
    for r in resources(plan):
        if r["type"] == "aws_iam_role_policy" and r["address"].startswith("module.compute_") \
                and "policy" in (r.get("values") or {}):  # the plan knows it
            region = regions[configuration(plan, r["address"])["provider_config_key"]]
            terraform += [(region, st) for st in statements(json.loads(r["values"]["policy"]))]
    a, b = session_grants(cdk, table), session_grants(terraform, table)
    c, d = arbiter_grants(cdk, arbiter), arbiter_grants(terraform, arbiter)
    return [f"app sessions grant only in the CDK app: {x}" for x in sorted(a - b)] + \
        [f"app sessions grant only in Terraform: {x}" for x in sorted(b - a)] + \
        [f"app arbiter grant only in the CDK app: {x}" for x in sorted(c - d)] + \
        [f"app arbiter grant only in Terraform: {x}" for x in sorted(d - c)]


def drift(synth: Any, plan: dict[str, Any], tfvars: dict[str, Any]) -> list[str]:
    """Every difference between the two IaC paths that the comparison covers, one per line."""
    cdk, terraform = cdk_side(synth), terraform_side(plan, tfvars)
    lines = differences("kind", kinds_by_region(cdk), kinds_by_region(terraform))
    lines += differences("name", names_by_region(cdk, cfn_name),
                         names_by_region(terraform, tf_name))
    lines += environment_drift(cdk, terraform)
    lines += session_grant_drift(synth, plan, tfvars)
    function = tfvars["names"]["failover_function"]
    cdk_iam, tf_iam = cdk_guard_iam(synth, function), tf_guard_iam(plan, tfvars, function)
    if set(cdk_iam) != set(tf_iam):
        lines.append(f"guard sites: CDK {sorted(cdk_iam)}, Terraform {sorted(tf_iam)}")
    for site in sorted(set(cdk_iam) & set(tf_iam)):
        a, b = cdk_iam[site], tf_iam[site]
        lines += [f"guard IAM {site}: action only in the CDK app: {x}"
                  for x in sorted(a.actions - b.actions)]
        lines += [f"guard IAM {site}: action only in Terraform: {x}"
                  for x in sorted(b.actions - a.actions)]
        lines += [f"guard IAM {site}: grant only in the CDK app: {x}"
                  for x in sorted(a.scoped - b.scoped)]
        lines += [f"guard IAM {site}: grant only in Terraform: {x}"
                  for x in sorted(b.scoped - a.scoped)]
        if a.managed != b.managed:
            lines.append(f"guard IAM {site}: managed policies CDK {sorted(a.managed)}, "
                         f"Terraform {sorted(b.managed)}")
    return lines


@pytest.mark.parametrize("variant", VARIANTS)
def test_terraform_and_cdk_do_not_drift(built: dict[str, Future[Outcome]],
                                        synths: dict[str, Any], variant: str) -> None:
    out = outcome(built, variant)
    if out.plan is None:
        pytest.fail(f"{variant}: no plan to compare: "
                    f"{out.failed('plan') or out.failed('show') or out.failed('validate')}")
    tfvars = json.loads((out.folder / tf.TFVARS).read_text())
    lines = drift(synths[variant], out.plan, tfvars)
    assert not lines, f"{variant}: the Terraform and CDK paths differ:\n" + "\n".join(lines)


def test_drift_is_caught(built: dict[str, Future[Outcome]], synths: dict[str, Any]) -> None:
    """The comparison fails when one side loses the witness, renames the replica, drops a guard
    action, or points a function elsewhere."""
    out = outcome(built, "pilot-light")
    assert out.plan is not None
    tfvars = json.loads((out.folder / tf.TFVARS).read_text())
    plan = json.loads(json.dumps(out.plan))
    for r in resources(plan):
        v = r.get("values") or {}
        if r["type"] == "aws_cloudformation_stack":
            body = json.loads(v["template_body"])
            body["Resources"]["State"]["Properties"]["GlobalTableWitnesses"] = []
            v["template_body"] = json.dumps(body)
        if r["type"] == "aws_db_instance" and v.get("identifier") == "orders-db-us-west-2":
            v["identifier"] = "orders-db-renamed"  # the replica
        if r["type"] == "aws_iam_role_policy" and "rds:PromoteReadReplica" in v.get("policy", ""):
            v["policy"] = v["policy"].replace('"rds:PromoteReadReplica",', "")
        if r["type"] == "aws_lambda_function" and v.get("handler", "").endswith("health.handler"):
            v["environment"][0]["variables"]["RG_STATE_TABLE"] = "another-table"
    lines = "\n".join(drift(synths["pilot-light"], plan, tfvars))
    assert "witnesses=us-east-2" in lines and "only in the CDK app" in lines
    assert "orders-db-renamed" in lines
    assert "action only in the CDK app: rds:PromoteReadReplica" in lines
    assert "orders-health-writer-us-east-1: RG_STATE_TABLE differs" in lines


def test_synth_format_terraform_writes_the_root_and_says_what_a_deploy_still_needs(
        tmp_path: Path) -> None:
    """The documented command (docs/aws.md): `regionguard synth --format terraform --out DIR`."""
    import sys

    out = tmp_path / "tf"
    cmd = [sys.executable, "-m", "regionguard", "-c", str(REPO / "regionguard.toml"), "synth",
           "--format", "terraform", "--out", str(out)]
    env = {**os.environ, "RG_LAMBDA_BUNDLE": str(tmp_path / "absent")}  # not built
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env,
                             check=False)
    assert refused.returncode == 4 and "make bundles" in refused.stderr, refused.stderr
    assert not out.exists()
    done = subprocess.run([*cmd, "--check-only"], capture_output=True, text=True, timeout=120,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "not deployable" in done.stdout and "terraform apply" not in done.stdout, done.stdout
    planned = subprocess.run([*cmd, "--check-only", "--plan"], capture_output=True, text=True,
                             timeout=120, env=env, check=False)
    assert planned.returncode == 2 and "Terraform orders its own apply" in planned.stderr
    assert {"main.tf", "variables.tf", "terraform.tfvars.json",
            "failover_grants.auto.tfvars.json"} <= {p.name for p in out.iterdir()}
    assert (out / "modules" / "state" / "main.tf").is_file()
    bad = subprocess.run([*cmd[:-4], "--format", "yaml"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "--format yaml: use cloudformation or terraform" in bad.stderr


@pytest.mark.parametrize("variant", ["pilot-light", "warm-standby", "backup-restore"])
def test_the_sessions_table_is_an_mrec_global_table_with_a_key_per_region(
        built: dict[str, Future[Outcome]], variant: str) -> None:
    """The Terraform twin of the CDK app's sessions table, read from the offline plan: one
    aws_dynamodb_table from the primary's Region with a replica block for the standby's, on
    demand, TTL on `expires_at`, point-in-time recovery on both replicas, a customer managed key
    (with rotation, alias alias/<table>) in each Region, the stream global tables 2019 need;
    and each Region's app may use its own replica only, with the registry's actions."""
    from regionguard.providers.aws.iam_actions import APP_SESSION_ACTIONS

    out = outcome(built, variant)
    assert out.plan is not None, out.failed("plan") or out.failed("show")
    plan = out.plan
    tfvars = json.loads((out.folder / tf.TFVARS).read_text())
    regions = alias_regions(tfvars)
    primary, standby = tfvars["primary"]["aws_region"], tfvars["standby"]["aws_region"]

    def region_of(r: dict[str, Any]) -> str:
        return regions[configuration(plan, r["address"])["provider_config_key"]]

    [table] = [r for r in resources(plan) if r["type"] == "aws_dynamodb_table"]
    v = table["values"]
    assert region_of(table) == primary and v["name"] == "orders-sessions"
    assert (v["billing_mode"], v["hash_key"], v["attribute"]) == (
        "PAY_PER_REQUEST", "id", [{"name": "id", "type": "S"}])
    assert v["ttl"] == [{"attribute_name": "expires_at", "enabled": True}]
    assert v["point_in_time_recovery"][0]["enabled"] is True
    assert (v["stream_enabled"], v["stream_view_type"]) == (True, "NEW_AND_OLD_IMAGES")
    assert v["deletion_protection_enabled"] is True
    [replica] = v["replica"]
    assert replica["region_name"] == standby and replica["point_in_time_recovery"] is True
    assert "consistency_mode" not in replica or replica["consistency_mode"] != "STRONG"
    # each replica's key is one this plan creates in that replica's Region
    conf = configuration(plan, table["address"])["expressions"]
    assert v["server_side_encryption"][0]["enabled"] is True
    keys = {r["address"].rsplit(".", 1)[-1]: r for r in resources(plan)
            if r["type"] == "aws_kms_key" and r["address"].startswith("module.sessions.")}
    assert {region_of(k) for k in keys.values()} == {primary, standby}
    assert all(k["values"]["enable_key_rotation"] for k in keys.values())
    assert conf["server_side_encryption"][0]["kms_key_arn"]["references"][0] == \
        "aws_kms_key.primary.arn" and region_of(keys["primary"]) == primary
    assert conf["replica"][0]["kms_key_arn"]["references"][0] == "aws_kms_key.standby.arn" \
        and region_of(keys["standby"]) == standby
    aliases = {region_of(r): r["values"]["name"] for r in resources(plan)
               if r["type"] == "aws_kms_alias" and r["address"].startswith("module.sessions.")}
    assert aliases == {primary: "alias/orders-sessions", standby: "alias/orders-sessions"}
    # each Region's app: its own replica only, with exactly the registry's actions
    for module, region in (("compute_primary", primary), ("compute_standby", standby)):
        [policy] = [r for r in resources(plan) if r["type"] == "aws_iam_role_policy"
                    and r["address"] == f"module.{module}.aws_iam_role_policy.sessions"]
        assert region_of(policy) == region
        stmts = {st["Sid"]: st for st in statements(json.loads(policy["values"]["policy"]))}
        assert stmts["SessionsInThisRegion"]["Action"] == list(APP_SESSION_ACTIONS)
        assert stmts["SessionsInThisRegion"]["Resource"] == [
            f"arn:aws:dynamodb:{region}:123456789012:table/orders-sessions"]
        key = stmts["SessionsKeyThroughDynamoDB"]
        assert key["Resource"] == [f"arn:aws:kms:{region}:123456789012:key/*"]
        assert key["Condition"] == {
            "ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/orders-sessions"]},
            "StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}}
        # no other policy of the app's names the table (the plan knows every one that could)
        others = [r for r in resources(plan) if r["type"] == "aws_iam_role_policy"
                  and r["address"].startswith(f"module.{module}.") and r is not policy]
        assert not any("orders-sessions" in (r["values"].get("policy") or "") for r in others)
    # the app's environment names the table and its own Region (the written module's locals)
    main = (out.folder / "modules" / "compute" / "main.tf").read_text()
    assert re.search(r"RG_SESSIONS_TABLE\s*=\s*var\.sessions_table", main)
    assert re.search(r"RG_SESSIONS_REGION\s*=\s*var\.aws_region", main)


def test_drift_in_the_sessions_table_is_caught(built: dict[str, Future[Outcome]],
                                               synths: dict[str, Any]) -> None:
    """The comparison covers the sessions table and the apps' grants on it and on the arbiter:
    a TTL on another attribute, a replica without point-in-time recovery or its own key,
    provisioned capacity, a grant that lost an action on one side, or an app allowed to write
    another arbiter item than its lease record fails it."""
    out = outcome(built, "pilot-light")
    assert out.plan is not None
    tfvars = json.loads((out.folder / tf.TFVARS).read_text())
    plan = json.loads(json.dumps(out.plan))
    assert not [x for x in drift(synths["pilot-light"], plan, tfvars)
                if "sessions" in x or "arbiter" in x]
    for r in resources(plan):
        v = r.get("values") or {}
        if r["type"] == "aws_dynamodb_table":
            v["ttl"][0]["attribute_name"] = "expiry"
            v["billing_mode"] = "PROVISIONED"
            v["replica"][0]["point_in_time_recovery"] = False
        if r["address"] == "module.compute_standby.aws_iam_role_policy.sessions":
            v["policy"] = v["policy"].replace('"dynamodb:DeleteItem"', '"dynamodb:Query"')
        if r["address"].startswith("module.compute_primary.") and "lease#" in v.get("policy", ""):
            v["policy"] = v["policy"].replace('"lease#', '"state#')  # the app's lease record
    for c in plan["resource_changes"]:  # the standby's replica under the AWS managed key
        if c["type"] == "aws_dynamodb_table":
            c["change"]["after_unknown"]["replica"][0]["kms_key_arn"] = False
    lines = "\n".join(drift(synths["pilot-light"], plan, tfvars))
    assert "only in Terraform: AWS::DynamoDB::GlobalTable orders-sessions EVENTUAL" in lines
    assert "ttl=expiry" in lines and "billing=PROVISIONED" in lines
    assert "pitr=us-east-1 " in lines and "us-west-2:aws" in lines
    assert ("app sessions grant only in the CDK app: us-west-2 dynamodb:DeleteItem "
            "arn:aws:dynamodb:us-west-2:123456789012:table/orders-sessions") in lines
    assert "app sessions grant only in Terraform: us-west-2 dynamodb:Query" in lines
    assert "app arbiter grant only in Terraform: us-east-1 dynamodb:UpdateItem" in lines
    assert "app arbiter grant only in the CDK app: us-east-1 dynamodb:UpdateItem" in lines
