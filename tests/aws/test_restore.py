"""Backup & restore that restores (seed 003), on moto: the failover plan restores the newest
snapshot copied to the backup Region into the instance, subnet group and security group the
Database stack named, waits for it, and the app then finds the restored endpoint by its
identifier. `backup status` shows each Region's newest copy and its age (the RPO)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto", reason="the aws extra is not installed")

import boto3
from moto import mock_aws

from regionguard.app.settings import AppSettings
from regionguard.aws_naming import names_for
from regionguard.errors import StepAbandoned, UnsafeOperation
from regionguard.orchestrator import engine, plans
from regionguard.orchestrator.executor import Executor
from regionguard.orchestrator.steps import RunContext
from regionguard.providers.aws.wiring import build_ports

from .topologies import topology

pytestmark = pytest.mark.aws

EAST, WEST = "us-east-1", "us-west-2"
TOPOLOGY = topology("backup-restore", aws={"rpo_target_s": 86400})
N = names_for(TOPOLOGY)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        east = boto3.client("rds", region_name=EAST)
        east.create_db_instance(
            DBInstanceIdentifier=N.db_instance(EAST), Engine="postgres",
            DBInstanceClass="db.t4g.medium", MasterUsername="regionguard",
            MasterUserPassword="not-a-secret-1", AllocatedStorage=20, MultiAZ=True)
        west = boto3.client("rds", region_name=WEST)
        for name in ("nightly-1", "nightly-2"):  # two copies: the newer one is restored
            snap = east.create_db_snapshot(DBSnapshotIdentifier=name,
                                           DBInstanceIdentifier=N.db_instance(EAST))
            west.copy_db_snapshot(SourceDBSnapshotIdentifier=snap["DBSnapshot"]["DBSnapshotArn"],
                                  TargetDBSnapshotIdentifier=f"copy-{name}", SourceRegion=EAST)
            time.sleep(0.01)  # distinct creation times
        ec2 = boto3.client("ec2", region_name=WEST)  # what the West Database stack created
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24",
                                     AvailabilityZone=f"{WEST}{az}")["Subnet"]["SubnetId"]
                   for i, az in enumerate("ab")]
        ec2.create_security_group(GroupName=N.db_security_group(WEST), VpcId=vpc,
                                  Description="PostgreSQL from inside the VPC only")
        west.create_db_subnet_group(DBSubnetGroupName=N.db_subnet_group(WEST),
                                    DBSubnetGroupDescription="isolated", SubnetIds=subnets)
        boto3.client("dynamodb", region_name=WEST).create_table(
            TableName=N.state_table(), BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        yield


def ports() -> Any:
    return build_ports(TOPOLOGY, runs_in=WEST, poll_s=0.01)


def test_the_failover_plan_restores_the_newest_copy_and_waits_for_it(aws: None) -> None:
    p = ports()
    obs = engine.observe(p)
    copy = obs.snapshots["west"]
    assert copy is not None and copy.snapshot_id == "copy-nightly-2"
    assert set(obs.snapshots) == {"west"}  # the primary's Region is never asked
    plan = plans.failover(p.topology, obs, deadlines=p.deadlines)
    assert [s.name for s in plan.steps] == ["fence", "restore", "scale", "await_ready",
                                            "route", "verify", "retire"]
    restore = next(s for s in plan.steps if s.name == "restore")
    assert restore.args == {"region": "west", "snapshot": "copy-nightly-2"}
    assert restore.deadline_s == 5400.0 and "writes after it are lost" in plan.warnings[0]

    # the step alone, through the executor (the app side of the plan needs a deployment)
    detail = Executor(p)._attempt(restore, RunContext(plan, 2))
    assert detail == "orders-db-us-west-2 restored from copy-nightly-2"
    rds = boto3.client("rds", region_name=WEST)
    [inst] = rds.describe_db_instances(DBInstanceIdentifier=N.db_instance(WEST))["DBInstances"]
    assert inst["DBInstanceStatus"] == "available" and inst["MultiAZ"] is True
    assert inst["DBSubnetGroup"]["DBSubnetGroupName"] == N.db_subnet_group(WEST)
    # a resumed step finds the instance and waits for it instead of restoring twice
    assert p.restorer.restore("west", "copy-nightly-2", 1.0).endswith("copy-nightly-2")


def test_the_app_finds_the_restored_database_by_its_identifier(aws: None) -> None:
    boto3.client("secretsmanager", region_name=WEST).create_secret(
        Name=N.db_secret(), SecretString='{"username": "regionguard", "password": "pw"}')
    env = {"RG_REGION": "west", "RG_DB_INSTANCE": N.db_instance(WEST), "RG_DB_NAME": "orders",
           "RG_DB_SECRET_ID": N.db_secret(), "RG_DB_SECRET_REGION": WEST}
    with pytest.raises(ValueError, match=r"has no endpoint yet.*restore it first"):
        AppSettings.from_env(env)
    ports().restorer.restore("west", "copy-nightly-1", 1.0)
    dsn = AppSettings.from_env(env).dsns["west"]
    assert "orders-db-us-west-2." in dsn and "us-west-2.rds.amazonaws.com" in dsn


def test_no_copy_or_a_copy_past_the_rpo_target_is_refused_unless_forced(aws: None) -> None:
    p = ports()
    obs = engine.observe(p)
    stale = plans.Observation(obs.live, obs.databases, obs.zero_loss_switchover,
                              obs.snapshots, obs.observed_at + 2 * 86400)
    with pytest.raises(UnsafeOperation, match=r"48\.0 h old, past rpo_target_s = 86400"):
        plans.failover(p.topology, stale)
    forced = plans.failover(p.topology, stale, force=True)
    assert "forced past rpo_target_s" in forced.warnings[0]
    none = plans.Observation(obs.live, obs.databases, obs.zero_loss_switchover,
                             {"east": None, "west": None}, obs.observed_at)
    with pytest.raises(UnsafeOperation, match="no snapshot of east's database has been copied"):
        plans.failover(p.topology, none)


def test_backup_status_shows_each_regions_newest_copy_and_its_age(
        aws: None, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from regionguard.cli import app

    text = (Path(__file__).resolve().parents[2] / "regionguard.toml").read_text()
    config = tmp_path / "br.toml"
    config.write_text(text.replace('strategy = "pilot-light"', 'strategy = "backup-restore"')
                      .replace('database = "rds" ', "rpo_target_s = 86400 "))
    result = CliRunner().invoke(app, ["-c", str(config), "--world", "aws", "backup",
                                      "status", "--json"], env={"AWS_REGION": WEST})
    assert result.exit_code == 0, result.output
    rows = {r["region"]: r for r in json.loads(result.output)["regions"]}
    assert rows["west"]["snapshot"] == "copy-nightly-2" and rows["west"]["age_s"] < 60
    assert rows["east"]["snapshot"] is None  # nothing of west's instance to restore in east
    assert datetime.fromtimestamp(rows["west"]["created_at"], UTC).year >= 2024
    local = CliRunner().invoke(app, ["-c", str(config), "backup", "status"])
    assert local.exit_code == 2 and "--world aws backup status" in local.output


def test_an_instance_this_restore_did_not_make_is_never_reused(aws: None) -> None:
    """A leftover instance with the restore's name (an earlier restore, deletion protection
    on) would serve stale data if a resumed step took it for its own."""
    boto3.client("rds", region_name=WEST).create_db_instance(
        DBInstanceIdentifier=N.db_instance(WEST), Engine="postgres",
        DBInstanceClass="db.t4g.medium", MasterUsername="regionguard",
        MasterUserPassword="not-a-secret-1", AllocatedStorage=20)
    with pytest.raises(StepAbandoned, match="already exists, restored from something else"):
        ports().restorer.restore("west", "copy-nightly-2", 1.0)

