"""The CDK app: key resources per strategy (aws_cdk.assertions), cfn-lint with zero errors,
cdk-nag with zero unsuppressed errors (and a proof that it can fail)."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk", reason="the aws extra is not installed")

from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from regionguard.errors import ConfigError
from regionguard.infra.app import build_app, nag_findings
from regionguard.infra.view import aws_view

from .synth import Synth
from .topologies import topology

pytestmark = pytest.mark.iac

ACCOUNT = "123456789012"


def resources(t: Template, kind: str) -> dict[str, Any]:
    return t.find_resources(kind)


def test_pilot_light_on_ec2(synths: dict[str, Synth]) -> None:
    s = synths["pilot-light"]
    assert s.stack("Orders-East-Compute").region == "us-east-1"
    assert s.stack("Orders-West-Compute").region == "us-west-2"
    # RDS Multi-AZ, encrypted with a CMK, credentials in Secrets Manager
    east_db = s.template("Orders-East-Database")
    east_db.has_resource_properties("AWS::RDS::DBInstance", {
        "MultiAZ": True, "StorageEncrypted": True,
        "KmsKeyId": Match.object_like(
            {"Fn::GetAtt": Match.array_with([Match.string_like_regexp("DbKey")])}),
        "DBInstanceIdentifier": "orders-db-us-east-1",
        "MasterUserPassword": Match.any_value()})
    east_db.resource_count_is("AWS::SecretsManager::Secret", 1)
    # the cross-region read replica: source ARN, source region, its own region's CMK
    s.template("Orders-West-Database").has_resource_properties("AWS::RDS::DBInstance", {
        "SourceDBInstanceIdentifier": f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-db-us-east-1",
        "SourceRegion": "us-east-1",
        "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("DbKey"), "Arn"]},
        "BackupRetentionPeriod": Match.absent()})  # RDS for PostgreSQL replicas take none
    # ASG: 2/2/2 in the primary, 0/0/0 in the backup region; ALB health on /health/deep
    asg = {"MinSize": "0", "MaxSize": "0", "DesiredCapacity": "0",
           "AutoScalingGroupName": "orders-asg-us-west-2"}
    s.template("Orders-West-Compute").has_resource_properties("AWS::AutoScaling::AutoScalingGroup",
                                                              asg)
    s.template("Orders-East-Compute").has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup", {"MinSize": "2", "DesiredCapacity": "2"})
    s.template("Orders-East-Compute").has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup", {"HealthCheckPath": "/health/deep"})
    s.template("Orders-East-Compute").has_resource_properties(
        "AWS::EC2::LaunchTemplate", {"LaunchTemplateData": Match.object_like(
            {"UserData": Match.any_value()})})
    # Route 53 failover records, owned here: each region's half carries a health check of its
    # own /health/route (200 only while the region holds the write lease): DNS follows the
    # lease on Route 53's data plane, and no engine ever edits a record
    for region, role, host in (("East", "PRIMARY", "us-east-1.app.example.com"),
                               ("West", "SECONDARY", "us-west-2.app.example.com")):
        t = s.template(f"Orders-{region}-Compute")
        t.has_resource_properties("AWS::Route53::RecordSet", {
            "Name": "app.example.com", "Failover": role,
            "HealthCheckId": {"Fn::GetAtt": [Match.string_like_regexp("RegionHealthCheck"),
                                             "HealthCheckId"]},
            "Type": "A", "AliasTarget": Match.any_value()})  # the default: an alias
        t.has_resource_properties("AWS::Route53::HealthCheck", {
            "HealthCheckConfig": Match.object_like({
                "Type": "HTTPS", "ResourcePath": "/health/route", "RequestInterval": 10,
                "FailureThreshold": 2, "FullyQualifiedDomainName": host})})
        t.resource_count_is("AWS::CloudWatch::Alarm", 0)  # no engine-driven routing alarm
    # the extra signal: the alarm on HealthCheckStatus in us-east-1 wakes the standby's guard
    trigger = s.template("Orders-Trigger")
    assert s.stack("Orders-Trigger").region == "us-east-1"
    trigger.has_resource_properties("AWS::Route53::HealthCheck", {"HealthCheckConfig":
        Match.object_like({"Type": "HTTPS", "ResourcePath": "/health/deep"})})
    trigger.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": "AWS/Route53", "MetricName": "HealthCheckStatus",
        "AlarmActions": [{"Ref": Match.string_like_regexp("Alarms")}]})
    trigger.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "lambda",
        "Endpoint": f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:orders-regionguard-failover"})
    trigger.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    # the guard: the same function in both app regions and the witness, each on its schedule
    for name, region in (("East", "us-east-1"), ("West", "us-west-2"),
                         ("Witness", "us-east-2")):
        guard = s.template(f"Orders-{name}-Guard")
        assert s.stack(f"Orders-{name}-Guard").region == region
        guard.has_resource_properties("AWS::Lambda::Function", {
            "Handler": "regionguard.providers.aws.lambda_entry.handler",
            "FunctionName": "orders-regionguard-failover", "Timeout": 900,
            "ReservedConcurrentExecutions": 5})
        guard.has_resource_properties("AWS::Scheduler::Schedule", {
            "ScheduleExpression": "rate(1 minute)",
            "Target": Match.object_like({"Input": '{"regionguard": "guard"}'})})
        # an app region's second prober (reports only): three vantage points outside
        # either primary, so losing the witness's guard leaves a quorum
        app_region = name != "Witness"
        guard.resource_count_is("AWS::Scheduler::Schedule", 2 if app_region else 1)
        if app_region:
            guard.has_resource_properties("AWS::Scheduler::Schedule", {
                "Target": Match.object_like(
                    {"Input": '{"regionguard": "guard", "prober": "b"}'})})
    s.template("Orders-West-Guard").has_resource_properties("AWS::Lambda::Permission", {
        "Principal": "sns.amazonaws.com",
        "SourceArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:orders-regionguard-alarms"})
    # the app confirms its write lease from the arbiter, nearest replica first, and records
    # how long it may run in its own Region's item, the only one it may write
    tables = [f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders-regionguard-state",
              f"arn:aws:dynamodb:us-west-2:{ACCOUNT}:table/orders-regionguard-state"]
    s.template("Orders-West-Compute").has_resource_properties("AWS::IAM::Policy", {
        "PolicyDocument": {"Statement": Match.array_with([
            Match.object_like({"Action": "dynamodb:GetItem", "Resource": tables}),
            Match.object_like({"Action": "dynamodb:UpdateItem", "Resource": tables,
                               "Condition": {"ForAllValues:StringEquals": {
                                   "dynamodb:LeadingKeys": ["lease#west"],
                                   "dynamodb:Attributes": ["pk", "until_s"]}}})])}})


def policy_statements(t: Template) -> list[dict[str, Any]]:
    out = []
    for res in t.find_resources("AWS::IAM::Policy").values():
        out += res["Properties"]["PolicyDocument"]["Statement"]
    return out


def test_guard_lambda_may_touch_exactly_its_resources(synths: dict[str, Synth]) -> None:
    statements = policy_statements(synths["pilot-light"].template("Orders-Witness-Guard"))
    by_action = {}
    for st in statements:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for a in actions:
            by_action[a] = res
    assert by_action["rds:PromoteReadReplica"] == [
        f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-db-us-east-1",
        f"arn:aws:rds:us-west-2:{ACCOUNT}:db:orders-db-us-west-2"]
    assert all("orders-asg-" in r for r in by_action["autoscaling:UpdateAutoScalingGroup"])
    assert not any(a.startswith("route53:") for a in by_action)  # no DNS control plane
    assert by_action["dynamodb:UpdateItem"] == [  # the arbiter's two replicas
        f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders-regionguard-state",
        f"arn:aws:dynamodb:us-west-2:{ACCOUNT}:table/orders-regionguard-state"]
    assert by_action["sns:Publish"] == [  # its topic in each of the three sites
        f"arn:aws:sns:{r}:{ACCOUNT}:orders-regionguard-events"
        for r in ("us-east-1", "us-west-2", "us-east-2")]
    assert "kms:GenerateDataKey*" in by_action  # the topic is encrypted with a CMK
    scoped = {"rds:PromoteReadReplica", "autoscaling:UpdateAutoScalingGroup",
              "dynamodb:UpdateItem", "sns:Publish", "kms:GenerateDataKey*"}
    assert not any("*" in by_action[a] for a in scoped)  # no bare "*" resource


def existing_arns(s: Synth) -> set[str]:
    """The ARN of every named resource the synthesized app creates, in its stack's Region."""
    arns: set[str] = set()
    for stack in s.built.stacks():
        region = stack.region
        for res in s.raw(stack.stack_name)["Resources"].values():
            props, kind = res.get("Properties", {}), res["Type"]
            name = next((props[k] for k in ("DBInstanceIdentifier", "DBClusterIdentifier",
                                             "AutoScalingGroupName", "TopicName",
                                             "FunctionName", "TableName", "Name",
                                             "GlobalClusterIdentifier", "RoleName")
                         if isinstance(props.get(k), str)), None)
            if name is None:
                continue
            arn = f"arn:aws:{{}}:{region}:{ACCOUNT}:{{}}"
            match kind:
                case "AWS::RDS::DBInstance":
                    arns.add(arn.format("rds", f"db:{name}"))
                case "AWS::RDS::DBCluster":
                    arns.add(arn.format("rds", f"cluster:{name}"))
                case "AWS::RDS::GlobalCluster":
                    arns.add(f"arn:aws:rds::{ACCOUNT}:global-cluster:{name}")
                case "AWS::AutoScaling::AutoScalingGroup":
                    arns.add(arn.format("autoscaling",
                                        f"autoScalingGroup:uuid:autoScalingGroupName/{name}"))
                case "AWS::SNS::Topic":
                    arns.add(arn.format("sns", name))
                case "AWS::Lambda::Function":
                    arns.add(arn.format("lambda", f"function:{name}"))
                case "AWS::IAM::Role":  # global: no Region in the ARN
                    arns.add(f"arn:aws:iam::{ACCOUNT}:role/{name}")
                case "AWS::SecretsManager::Secret":  # ARNs end in 6 random characters
                    regions = [region, *(r["Region"] for r in props.get("ReplicaRegions", []))]
                    arns |= {f"arn:aws:secretsmanager:{r}:{ACCOUNT}:secret:{name}-AbC123"
                             for r in regions}
                case "AWS::DynamoDB::GlobalTable":
                    arns |= {f"arn:aws:dynamodb:{r['Region']}:{ACCOUNT}:table/{name}"
                             for r in props["Replicas"]}
        for res in s.raw(stack.stack_name)["Resources"].values():
            if res["Type"] == "AWS::Lambda::Alias":  # function:<name>:<alias>
                fn = next((a for a in arns if a.startswith(f"arn:aws:lambda:{region}:")), None)
                if fn:
                    arns.add(f"{fn}:{res['Properties']['Name']}")
    return arns


@pytest.mark.parametrize("strategy", ["pilot-light", "warm-standby", "active-active",
                                      "pilot-light-mysql"])
def test_the_guard_policy_names_only_resources_the_app_creates_and_their_keys(
        synths: dict[str, Synth], strategy: str) -> None:
    """Derived from the code (a registry the providers' calls are checked against) and from
    the resources: every scoped grant names something this deployment has (no Aurora grant
    for RDS), and an encrypted target brings its key (the events topic's CMK)."""
    s = synths[strategy]
    arns = existing_arns(s)
    assert len(arns) >= 8, arns  # the collector sees the app: the check below is not vacuous
    for stack in ("Orders-East-Guard", "Orders-West-Guard", "Orders-Witness-Guard"):
        template = s.raw(stack)
        statements = [st for r in template["Resources"].values()
                      if r["Type"] == "AWS::IAM::Policy"
                      for st in r["Properties"]["PolicyDocument"]["Statement"]]
        for st in statements:
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            for arn in resources:
                if isinstance(arn, str) and arn != "*" and not arn.startswith("arn:aws:logs"):
                    assert any(fnmatch.fnmatchcase(a, arn) for a in arns), (
                        f"{stack}: {st['Action']} on {arn}, which {strategy} does not create")
        # the topic the guard publishes to is encrypted: its key is in the same policy
        [topic] = [r for r in template["Resources"].values() if r["Type"] == "AWS::SNS::Topic"]
        key = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
        kms = {a for st in statements
               for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
               if st["Resource"] == {"Fn::GetAtt": [key, "Arn"]}}
        assert {"kms:GenerateDataKey*", "kms:Decrypt"} <= kms, (stack, kms)
    actions = {a for st in policy_statements(s.template("Orders-West-Guard"))
               for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    aurora = s.built.view.settings.database == "aurora-global"
    assert ("rds:FailoverGlobalCluster" in actions) is aurora
    assert ("rds:PromoteReadReplica" in actions) is not aurora


def test_below_its_zones_apex_the_app_record_is_a_cname_with_its_own_ttl(
        synths: dict[str, Synth]) -> None:
    """aws.dns_record = "cname" (the warm-standby variant: app.example.com in example.com): a
    client keeps the old answer for the record's own TTL (aws.dns_ttl_s), not an ALB alias's
    60 s, which every client RTO paid; the zone is the parent's."""
    s = synths["warm-standby"]
    for region, role in (("East", "PRIMARY"), ("West", "SECONDARY")):
        s.template(f"Orders-{region}-Compute").has_resource_properties(
            "AWS::Route53::RecordSet", {"Name": "app.example.com", "Failover": role,
                                        "Type": "CNAME", "TTL": "15",
                                        "ResourceRecords": [Match.any_value()]})


def test_the_arbiter_is_strongly_consistent_across_two_replicas_and_a_witness(
        synths: dict[str, Synth]) -> None:
    s = synths["pilot-light"]
    t = s.template("Orders-State")
    t.has_resource_properties("AWS::DynamoDB::GlobalTable", {
        "TableName": "orders-regionguard-state", "MultiRegionConsistency": "STRONG",
        "GlobalTableWitnesses": [{"Region": "us-east-2"}],
        "Replicas": Match.array_with([Match.object_like({"Region": "us-west-2"}),
                                      Match.object_like({"Region": "us-east-1"})])})
    table = next(iter(t.find_resources("AWS::DynamoDB::GlobalTable").values()))
    assert "TimeToLiveSpecification" not in table["Properties"]  # MRSC supports no TTL


def test_health_check_route_is_behind_a_cognito_jwt_authorizer(synths: dict[str, Synth]) -> None:
    t = synths["pilot-light"].template("Orders-East-Compute")
    t.has_resource_properties("AWS::ApiGatewayV2::Route", {
        "RouteKey": "GET /health-check", "AuthorizationType": "JWT",
        "AuthorizerId": Match.any_value()})
    t.has_resource_properties("AWS::ApiGatewayV2::Authorizer", {
        "AuthorizerType": "JWT",
        "JwtConfiguration": Match.object_like({"Issuer": Match.any_value()})})
    t.resource_count_is("AWS::Cognito::UserPool", 1)
    t.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(1 minute)"})


@pytest.mark.parametrize("strategy", ["pilot-light", "warm-standby"])
def test_the_health_check_api_has_its_custom_domain_in_every_region(
        synths: dict[str, Synth], strategy: str) -> None:
    """Seed 004: `health.<domain>`, latency-routed, each Region's record dropped when that
    Region's app stops answering; the execute-api endpoint is off (the domain is the way in)."""
    s = synths[strategy]
    for stack, region in (("Orders-East-Compute", "us-east-1"),
                          ("Orders-West-Compute", "us-west-2")):
        raw = s.raw(stack)["Resources"]
        [api] = [k for k, r in raw.items() if r["Type"] == "AWS::ApiGatewayV2::Api"
                 and r["Properties"]["Name"].startswith("orders-health-")]
        assert raw[api]["Properties"]["DisableExecuteApiEndpoint"] is True
        [mapping] = [r for r in raw.values() if r["Type"] == "AWS::ApiGatewayV2::ApiMapping"
                     and r["Properties"]["ApiId"] == {"Ref": api}]
        domain = raw[mapping["Properties"]["DomainName"]["Ref"]]
        assert domain["Properties"]["DomainName"] == "health.app.example.com"
        [record] = [r for r in raw.values() if r["Type"] == "AWS::Route53::RecordSet"
                    and r["Properties"]["Name"] == "health.app.example.com"]
        assert record["Properties"]["Region"] == region
        check = raw[record["Properties"]["HealthCheckId"]["Fn::GetAtt"][0]]
        assert check["Properties"]["HealthCheckConfig"]["ResourcePath"] == "/health"
        [cert] = [r for r in raw.values() if r["Type"] == "AWS::CertificateManager::Certificate"]
        assert "health.app.example.com" in cert["Properties"]["SubjectAlternativeNames"]


def test_backup_copies_encrypted_snapshots_to_the_other_region(synths: dict[str, Synth]) -> None:
    s = synths["pilot-light"]
    s.template("Orders-East-Backup").has_resource_properties("AWS::Backup::BackupPlan", {
        "BackupPlan": Match.object_like({"BackupPlanRule": [Match.object_like({
            "Lifecycle": {"DeleteAfterDays": 7},
            "CopyActions": [Match.object_like({"DestinationBackupVaultArn":
                f"arn:aws:backup:us-west-2:{ACCOUNT}:backup-vault:orders-vault-us-west-2",
                "Lifecycle": {"DeleteAfterDays": 7}})]})]})})
    for region in ("East", "West"):
        s.template(f"Orders-{region}-Backup").has_resource_properties(
            "AWS::Backup::BackupVault", {"EncryptionKeyArn": Match.any_value()})


def test_serverless_warm_standby_with_aurora_global(synths: dict[str, Synth]) -> None:
    s = synths["warm-standby"]
    s.template("Orders-East-Database").has_resource_properties("AWS::RDS::GlobalCluster", {
        "GlobalClusterIdentifier": "orders-global"})
    s.template("Orders-West-Database").has_resource_properties("AWS::RDS::DBCluster", {
        "GlobalClusterIdentifier": "orders-global", "Engine": "aurora-postgresql",
        "KmsKeyId": Match.any_value(), "StorageEncrypted": True})
    for region in ("East", "West"):
        t = s.template(f"Orders-{region}-Compute")
        t.has_resource_properties("AWS::Lambda::Function", {
            "Handler": "regionguard.app.lambda_handler.handler"})
        t.resource_count_is("AWS::ApiGatewayV2::Api", 2)  # the app and /health-check
        t.has_resource_properties("AWS::Route53::RecordSet", {"Failover": Match.any_value()})
    # S3 static content replicated to the standby region, CloudFront in front of both
    s.template("Orders-East-Static").has_resource_properties("AWS::S3::Bucket", {
        "ReplicationConfiguration": Match.object_like({"Rules": [Match.object_like({
            "Destination": {"Bucket": f"arn:aws:s3:::orders-static-{ACCOUNT}-us-west-2"}})]})})
    s.template("Orders-Edge").has_resource_properties("AWS::CloudFront::Distribution", {
        "DistributionConfig": Match.object_like({"OriginGroups": Match.any_value()})})


def test_serverless_active_active_uses_latency_routing_and_rds_proxy(
        synths: dict[str, Synth]) -> None:
    s = synths["active-active"]
    s.template("Orders-East-Compute").has_resource_properties("AWS::Route53::RecordSet", {
        "Name": "app.example.com", "Region": "us-east-1"})
    s.template("Orders-West-Compute").has_resource_properties("AWS::Route53::RecordSet", {
        "Name": "app.example.com", "Region": "us-west-2"})
    s.template("Orders-East-Database").resource_count_is("AWS::RDS::DBProxy", 1)


def test_mysql_is_rds_mysql_multi_az_with_a_tls_only_cross_region_replica(
        synths: dict[str, Synth]) -> None:
    """Seed 000: RDS MySQL Multi-AZ in the primary Region and its encrypted read replica in the
    standby Region (promoted by the same provider), TLS enforced, the app told its engine."""
    s = synths["pilot-light-mysql"]
    east, west = s.template("Orders-East-Database"), s.template("Orders-West-Database")
    east.has_resource_properties("AWS::RDS::DBInstance", {
        "Engine": "mysql", "MultiAZ": True, "StorageEncrypted": True,
        "EnableIAMDatabaseAuthentication": True})
    east.has_resource_properties("AWS::RDS::DBParameterGroup", {
        "Family": Match.string_like_regexp("^mysql8"),
        "Parameters": {"require_secure_transport": "1"}})
    east.has_resource_properties("AWS::EC2::SecurityGroup", {
        "SecurityGroupIngress": [Match.object_like({"FromPort": 3306, "ToPort": 3306})]})
    west.has_resource_properties("AWS::RDS::DBInstance", {
        "SourceDBInstanceIdentifier": Match.string_like_regexp(":db:orders-db-us-east-1$"),
        "SourceRegion": "us-east-1", "MultiAZ": True,
        "EnableCloudwatchLogsExports": ["error", "slowquery"],
        "DBParameterGroupName": Match.any_value(),
        # backups before any promotion: PromoteReadReplica then takes none while it promotes
        "BackupRetentionPeriod": 7})
    # promoted, the replica keeps refusing plain text: TLS is enforced in its Region too
    west.has_resource_properties("AWS::RDS::DBParameterGroup", {
        "Parameters": {"require_secure_transport": "1"}})
    assert "5432" not in json.dumps(s.raw("Orders-West-Database"))
    for stack in ("Orders-East-Compute", "Orders-West-Compute"):
        assert "RG_DB_ENGINE=mysql" in json.dumps(s.raw(stack))


def test_backup_restore_keeps_no_standing_replica(synths: dict[str, Synth]) -> None:
    s = synths["backup-restore"]
    s.template("Orders-West-Database").resource_count_is("AWS::RDS::DBInstance", 0)
    s.template("Orders-East-Backup").resource_count_is("AWS::Backup::BackupPlan", 1)
    assert not any(st.stack_name.endswith("-Guard") for st in s.built.stacks())
    s.template("Orders-Trigger").resource_count_is("AWS::SNS::Subscription", 0)
    # what a restore needs, by name: the subnet group and security group it restores into
    west_db = s.template("Orders-West-Database")
    west_db.has_resource_properties("AWS::RDS::DBSubnetGroup",
                                    {"DBSubnetGroupName": "orders-db-us-west-2"})
    west_db.has_resource_properties("AWS::EC2::SecurityGroup",
                                    {"GroupName": "orders-db-us-west-2"})
    # the app there finds the restored instance by identifier (no host at synth time)
    from .test_app_environment import ec2_environment

    env, _ = ec2_environment(s, "Orders-West-Compute")
    assert env["RG_DB_INSTANCE"] == "orders-db-us-west-2" and "RG_DB_HOST" not in env
    s.template("Orders-West-Compute").has_resource_properties("AWS::IAM::Policy", {
        "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Action": "rds:DescribeDBInstances",
            "Resource": f"arn:aws:rds:us-west-2:{ACCOUNT}:db:orders-db-us-west-2"})])}})


ENCRYPTED = {
    "AWS::RDS::DBCluster": "KmsKeyId",
    "AWS::SNS::Topic": "KmsMasterKeyId",
    "AWS::SecretsManager::Secret": "KmsKeyId",
    "AWS::Backup::BackupVault": "EncryptionKeyArn",
}


def test_every_encrypted_resource_names_a_kms_key(synths: dict[str, Synth]) -> None:
    checked = 0
    for s in synths.values():
        for stack in s.built.stacks():
            t = s.template(stack.stack_name)
            for kind, prop in ENCRYPTED.items():
                for name, res in t.find_resources(kind).items():
                    assert prop in res["Properties"], f"{stack.stack_name}/{name} has no {prop}"
                    checked += 1
            for name, res in t.find_resources("AWS::RDS::DBInstance").items():
                props = res["Properties"]
                if "DBClusterIdentifier" in props:
                    continue  # an Aurora instance: its cluster holds the key
                assert "KmsKeyId" in props, f"{stack.stack_name}/{name} has no KmsKeyId"
                checked += 1
    assert checked > 20


def test_cdk_nag_has_no_unsuppressed_errors(synths: dict[str, Synth]) -> None:
    for name, s in synths.items():
        assert s.errors == [], f"{name}: {s.errors[:5]}"


def test_cdk_nag_fails_on_a_deliberately_non_compliant_resource(tmp_path: Path) -> None:
    built = build_app(topology("pilot-light"), tmp_path)
    s3.Bucket(built.stacks()[0], "Careless")  # no SSL enforcement, no access logs
    errors, _ = nag_findings(built.app.synth())
    assert any("Careless" in e and "AwsSolutions-S10" in e for e in errors), errors


def test_every_template_passes_cfn_lint(synths: dict[str, Synth]) -> None:
    templates = [str(p) for s in synths.values() for p in s.outdir.glob("*.template.json")]
    assert len(templates) >= 50
    cfn_lint = str(Path(sys.executable).with_name("cfn-lint"))
    proc = subprocess.run(
        [cfn_lint, "--non-zero-exit-code", "error", *templates],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.mark.parametrize(("change", "expected"), [
    ({"regions": {"west": {"aws": {"region": "us-east-1", "account": ACCOUNT}}}},
     "regions.west.aws.region: us-east-1 is already used by region east"),
    ({"aws": {"compute": "lambda"}},
     "aws.compute: 'lambda' is not supported with strategy 'pilot-light'"),
    ({"aws": {"routing": "latency"}}, "aws.routing: latency routing"),
    ({"aws": {"cors_origins": ["https://shop.example"]}},
     "aws.cors_origins: CORS is answered by API Gateway"),
    ({"aws": {"witness_region": "eu-west-1"}},
     "aws.witness_region: eu-west-1 is not in the Region set of us-east-1 and us-west-2"),
    ({"aws": {"witness_region": "us-west-2"}}, "aws.witness_region: us-west-2 is an app region"),
    ({"regions": {"west": {"aws": {"region": "eu-west-1", "account": ACCOUNT}}},
      "aws": {"witness_region": None}},
     "regions: us-east-1 and eu-west-1 are not in one DynamoDB multi-Region strong "
     "consistency Region set"),
])
def test_bad_aws_topology_is_one_line_naming_the_field(change: dict[str, Any],
                                                       expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        aws_view(topology("pilot-light", **change), "regionguard.toml")
    message = str(info.value)
    assert expected in message and "\n" not in message and message.startswith("regionguard.toml")


def test_mysql_on_aurora_global_is_refused_in_one_line_naming_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        topology("pilot-light", aws={"engine": "mysql", "database": "aurora-global"})
    message = str(info.value)
    assert 'aws.engine "mysql" runs on RDS MySQL with a cross-region read replica: set ' \
           'database = "rds"' in message and "\n" not in message


def test_synth_without_an_aws_section_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from regionguard.cli import app

    text = (Path(__file__).resolve().parents[2] / "regionguard.toml").read_text()
    config = tmp_path / "local-only.toml"
    config.write_text(text[: text.index("[aws]")])
    result = CliRunner().invoke(app, ["-c", str(config), "synth", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "aws: section missing" in result.output and "Traceback" not in result.output


def test_instances_install_only_the_wheels_this_repo_built_pinned_by_hash(
        synths: dict[str, Synth]) -> None:
    from .test_app_environment import render

    template = synths["pilot-light"].raw("Orders-East-Compute")
    [lt] = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    script = render(lt["Properties"]["LaunchTemplateData"]["UserData"], {})
    assert script.startswith("#!/bin/bash\nset -euo pipefail\n")
    assert "aws s3 cp" in script  # the CDK asset, from the account's asset bucket
    install = next(line for line in script.splitlines() if "pip install" in line)
    assert "--no-index" in install and "--require-hashes" in install, install
    assert not any("pip install" in line and "--no-index" not in line
                   for line in script.splitlines())  # nothing from a package index
    assert "/opt/regionguard/venv/bin/python -m uvicorn" in script


def test_a_deployable_synth_needs_the_built_artifacts_and_says_which(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from regionguard.cli import app

    monkeypatch.setenv("RG_LAMBDA_BUNDLE", str(tmp_path / "no-bundle"))
    monkeypatch.setenv("RG_WHEELHOUSE", str(tmp_path / "no-wheels"))
    config = Path(__file__).resolve().parents[2] / "regionguard.toml"
    result = CliRunner().invoke(app, ["-c", str(config), "synth", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "no-bundle (make lambda-bundle)" in result.output
    assert "no-wheels (make wheelhouse)" in result.output
    assert "make bundles" in result.output and not (tmp_path / "o").exists()


def test_synth_plan_prints_the_deploy_order_in_waves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from regionguard.cli import app

    config = Path(__file__).resolve().parents[2] / "regionguard.toml"
    result = CliRunner().invoke(app, ["-c", str(config), "synth", "--check-only", "--plan",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    waves = [line for line in lines if "cdk deploy --app" in line]
    position = {stack: i for i, line in enumerate(waves)
                for stack in line.split("--exclusively", 1)[1].split()}
    # each wave's stacks by Region: every line names the Region its stacks deploy in
    regions = {line.split(":", 1)[0].split()[-1] for line in waves}
    assert regions == {"us-east-1", "us-west-2", "us-east-2"}, waves
    # the replica after its source, the compute after the database and the arbiter
    assert position["Orders-East-Database"] < position["Orders-West-Database"]
    assert position["Orders-West-Database"] < position["Orders-West-Compute"]
    assert position["Orders-State"] < position["Orders-West-Guard"]
    assert position["Orders-West-Guard"] < position["Orders-Trigger"]
    assert position["Orders-West-Backup"] < position["Orders-East-Backup"]
    assert len(position) == 15  # every stack, once
    assert ("Orders-East-Database before Orders-West-Database: the read replica is created "
            "from the primary instance") in result.output
    assert "not deployable" in result.output


@pytest.mark.parametrize("strategy", ["pilot-light", "active-active"])
def test_every_health_check_is_used_and_every_alarm_is_one_route53_supports(
        synths: dict[str, Synth], strategy: str) -> None:
    """A health check drives a DNS record or an alarm (none is left undriven), and no alarm on
    a Route 53 metric asks for a period Route 53 does not publish (one minute)."""
    s = synths[strategy]
    checks, used = set(), set()
    for stack in s.built.stacks():
        for logical, res in s.raw(stack.stack_name)["Resources"].items():
            props = res.get("Properties", {})
            if res["Type"] == "AWS::Route53::HealthCheck":
                checks.add((stack.stack_name, logical))
            elif res["Type"] == "AWS::Route53::RecordSet" and "HealthCheckId" in props:
                used.add((stack.stack_name, props["HealthCheckId"]["Fn::GetAtt"][0]))
            elif res["Type"] == "AWS::CloudWatch::Alarm" and props.get("Namespace") == (
                    "AWS/Route53"):
                assert props["Period"] >= 60, (stack.stack_name, logical, props["Period"])
                for dim in props.get("Dimensions", []):
                    if dim["Name"] == "HealthCheckId":
                        used.add((stack.stack_name, dim["Value"]["Fn::GetAtt"][0]))
    assert checks and checks <= used, f"undriven health checks: {checks - used}"
    if strategy == "active-active":  # latency records too: traffic leaves a dead region
        for name in ("Orders-East-Compute", "Orders-West-Compute"):
            records = [r for r in s.raw(name)["Resources"].values()
                       if r["Type"] == "AWS::Route53::RecordSet" and "Region" in r["Properties"]]
            assert records and all("HealthCheckId" in r["Properties"] for r in records)


def test_the_edge_guards_the_api_and_the_site_with_waf_throttling_and_cors(
        synths: dict[str, Synth], tmp_path: Path) -> None:
    """Seed 002: WAF (managed rules + a rate limit per IP) on CloudFront, which fronts the
    static site and the API (uncached); stage throttling; CORS from the topology."""
    s = synths["warm-standby"]
    edge = s.template("Orders-Edge")
    edge.has_resource_properties("AWS::WAFv2::WebACL", {
        "Scope": "CLOUDFRONT", "Rules": Match.array_with([
            Match.object_like({"Statement": {"ManagedRuleGroupStatement": {
                "VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet"}}}),
            Match.object_like({"Action": {"Block": {}}, "Statement": {"RateBasedStatement": {
                "Limit": 2000, "AggregateKeyType": "IP"}}})])})
    [dist] = edge.find_resources("AWS::CloudFront::Distribution").values()
    config = dist["Properties"]["DistributionConfig"]
    assert "WebACLId" in config
    api = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    assert set(api) == {"/orders", "/orders/*", "/health*"}
    assert all(b["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
               and "POST" in b["AllowedMethods"] for b in api.values())
    # only the edge reaches the API: CloudFront sends the origin secret, resolved at deploy
    # time from its us-east-1 replica (never in the template), and the apps read it
    [api_origin] = [o for o in config["Origins"] if o.get("CustomOriginConfig")]
    [header] = api_origin["OriginCustomHeaders"]
    assert header["HeaderName"] == "X-Regionguard-Origin"
    assert header["HeaderValue"] == ("{{resolve:secretsmanager:orders/regionguard/origin-secret:"
                                     "SecretString:::}}")
    state = s.template("Orders-State")
    state.has_resource_properties("AWS::SecretsManager::Secret", {
        "Name": "orders/regionguard/origin-secret",
        "ReplicaRegions": Match.array_with([Match.object_like({"Region": "us-west-2"})])})
    assert ("Orders-State", "Orders-Edge") in {(e.before.stack_name, e.after.stack_name)
                                               for e in s.built.order} or \
        s.stack("Orders-State").region == "us-east-1"
    for stack in ("Orders-East-Compute", "Orders-West-Compute"):
        assert "RG_ORIGIN_SECRET" in json.dumps(s.raw(stack))
    compute = s.template("Orders-West-Compute")
    compute.has_resource_properties("AWS::ApiGatewayV2::Stage", {"DefaultRouteSettings": {
        "ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200}})
    # `<domain>` reaches the API (the record and CloudFront send Host: app.example.com)
    compute.has_resource_properties("AWS::ApiGatewayV2::DomainName",
                                    {"DomainName": "app.example.com"})
    # CORS only when the topology names origins
    assert not any("CorsConfiguration" in r["Properties"] for r in
                   compute.find_resources("AWS::ApiGatewayV2::Api").values())
    built = build_app(topology("warm-standby", aws={"cors_origins": ["https://shop.example"]}),
                      tmp_path, nag=False)
    built.app.synth()
    with_cors = Template.from_stack(next(x for x in built.stacks()
                                         if x.stack_name == "Orders-East-Compute"))
    with_cors.has_resource_properties("AWS::ApiGatewayV2::Api", {"CorsConfiguration": {
        "AllowOrigins": ["https://shop.example"]}})
    # the ALB (EC2) gets a regional web ACL
    synths["pilot-light"].template("Orders-East-Compute").resource_count_is(
        "AWS::WAFv2::WebACLAssociation", 1)


@pytest.mark.parametrize("strategy", ["pilot-light", "warm-standby", "active-active",
                                      "backup-restore"])
def test_the_sessions_table_is_an_mrec_global_table_with_a_key_per_region(
        synths: dict[str, Synth], strategy: str) -> None:
    """The app's sessions: one global table from the primary's Region, a replica in each app
    Region (none in the witness's), on demand, point-in-time recovery and deletion protection
    on every replica, TTL on `expires_at`, each replica under its own Region's customer managed
    key, multi-Region eventual consistency; each Region's app may use its own replica only."""
    from regionguard.providers.aws.iam_actions import APP_SESSION_ACTIONS

    from .test_app_environment import ec2_environment, lambda_environment

    s = synths[strategy]
    regions = {"East": "us-east-1", "West": "us-west-2"}
    [table] = [r for r in s.raw("Orders-State")["Resources"].values()
               if r["Type"] == "AWS::DynamoDB::GlobalTable"
               and r["Properties"]["TableName"] == "orders-sessions"]
    assert s.stack("Orders-State").region == "us-east-1"
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    p = table["Properties"]
    assert p.get("MultiRegionConsistency", "EVENTUAL") == "EVENTUAL"  # MREC, not MRSC
    assert "GlobalTableWitnesses" not in p
    assert p["BillingMode"] == "PAY_PER_REQUEST"
    assert p["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert p["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert p["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert p["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    assert p["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    replicas = {x["Region"]: x for x in p["Replicas"]}
    assert set(replicas) == set(regions.values())
    for name, region in regions.items():
        replica = replicas[region]
        assert replica["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True}
        assert replica["DeletionProtectionEnabled"] is True
        # its own Region's key, named by the alias that Region's database stack gives it
        key_id = replica["SSESpecification"]["KMSMasterKeyId"]
        text = key_id if isinstance(key_id, str) else "".join(
            x if isinstance(x, str) else "aws" for x in key_id["Fn::Join"][1])
        assert text == f"arn:aws:kms:{region}:{ACCOUNT}:alias/orders-sessions", text
        database = s.raw(f"Orders-{name}-Database")["Resources"]
        [alias] = [r for r in database.values() if r["Type"] == "AWS::KMS::Alias"
                   and r["Properties"]["AliasName"] == "alias/orders-sessions"]
        key = database[alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]]
        assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
        assert key["DeletionPolicy"] == "Retain"
        # the keys' stacks deploy first: the table's stack shares no value with them
        assert (f"Orders-{name}-Database", "Orders-State") in {
            (e.before.stack_name, e.after.stack_name) for e in s.built.order}
        # the app: its own Region's replica, by its own Region's endpoint
        stack = f"Orders-{name}-Compute"
        env, _ = (lambda_environment if s.built.view.serverless else ec2_environment)(s, stack)
        assert (env["RG_SESSIONS_TABLE"], env["RG_SESSIONS_REGION"]) == (
            "orders-sessions", region)
        compute = s.raw(stack)["Resources"]
        grants = {(a, arn) for r in compute.values() if r["Type"] == "AWS::IAM::Policy"
                  for st in r["Properties"]["PolicyDocument"]["Statement"]
                  for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
                  for arn in (st["Resource"] if isinstance(st["Resource"], list)
                              else [st["Resource"]])
                  if isinstance(arn, str) and ":table/orders-sessions" in arn}
        own = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/orders-sessions"
        assert grants == {(a, own) for a in APP_SESSION_ACTIONS}, grants
        # ... and its key, through DynamoDB in this Region only (the ARN from the database
        # stack of the same Region)
        [kms] = [st for r in compute.values() if r["Type"] == "AWS::IAM::Policy"
                 for st in r["Properties"]["PolicyDocument"]["Statement"]
                 if "Fn::ImportValue" in st["Resource"]
                 and "SessionsKey" in st["Resource"]["Fn::ImportValue"]]
        assert kms["Resource"]["Fn::ImportValue"].startswith(f"Orders-{name}-Database:")
        assert kms["Condition"] == {"StringEquals": {
            "kms:ViaService": f"dynamodb.{region}.amazonaws.com"}}
        assert "kms:Decrypt" in kms["Action"] and "kms:CreateGrant" not in kms["Action"]
    # the guards may check both replicas (readiness) and do nothing else with the table
    for guard in (st.stack_name for st in s.built.stacks() if st.stack_name.endswith("-Guard")):
        touched = {a for st in policy_statements(s.template(guard))
                   for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
                   if "orders-sessions" in json.dumps(st["Resource"])}
        assert touched == {"dynamodb:DescribeTable"}, (guard, touched)
