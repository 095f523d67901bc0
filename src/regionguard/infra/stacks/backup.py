"""Backup & restore: a vault per region (each with that region's CMK) and, in the primary
region, an AWS Backup plan whose copy action sends every encrypted RDS snapshot to the other
region's vault. Retention comes from the topology."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_backup as backup
from aws_cdk import aws_events as events
from constructs import Construct

from regionguard.config import Role
from regionguard.infra.stacks.common import cmk
from regionguard.infra.stacks.nag import justify
from regionguard.infra.view import AwsRegion, AwsView


class BackupStack(Stack):
    def __init__(self, scope: Construct, id: str, *, view: AwsView, region: AwsRegion,
                 **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        n = view.names
        self.key = cmk(self, "VaultKey", f"backup vault in {region.name}")
        self.vault = backup.BackupVault(
            self, "Vault", backup_vault_name=n.backup_vault(region.aws_region),
            encryption_key=self.key, removal_policy=RemovalPolicy.RETAIN)
        if region.home_role is not Role.PRIMARY:
            return
        other = view.standby.aws_region
        dest = backup.BackupVault.from_backup_vault_arn(
            self, "OtherVault", n.arn("backup", other, f"backup-vault:{n.backup_vault(other)}"))
        keep = Duration.days(view.settings.backup_retention_days)
        self.plan = backup.BackupPlan(self, "Plan", backup_vault=self.vault, backup_plan_rules=[
            backup.BackupPlanRule(
                rule_name="daily-copy-to-other-region", delete_after=keep,
                schedule_expression=events.Schedule.cron(hour="3", minute="0"),
                copy_actions=[backup.BackupPlanCopyActionProps(
                    destination_backup_vault=dest, delete_after=keep)]),
        ])
        database = (n.arn("rds", region.aws_region, f"db:{n.db_instance(region.aws_region)}")
                    if view.settings.database == "rds" else
                    n.arn("rds", region.aws_region, f"cluster:{n.db_cluster(region.aws_region)}"))
        selection = self.plan.add_selection(
            "Database", resources=[backup.BackupResource.from_arn(database)])
        justify(selection, {"AwsSolutions-IAM4": "AWSBackupServiceRolePolicyForBackup is the "
                            "AWS-maintained policy AWS Backup needs to snapshot the database"})
