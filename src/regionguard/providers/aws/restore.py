"""Backup & restore (seed 003): the backup Region's database, restored from the newest snapshot
of the primary's instance copied there (AWS Backup's daily cross-Region copy, or a manual copy).

Every call goes to the backup Region only: the Region that failed is never asked. The restored
instance gets the deterministic identifier the app and the IAM policies know, into the subnet
group and security group its Database stack created for it (by name), Multi-AZ.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from regionguard.errors import ProviderError, StepAbandoned
from regionguard.orchestrator.ports import SnapshotCopy
from regionguard.providers.aws.boundary import aws_boundary, expected
from regionguard.providers.aws.context import AwsContext
from regionguard.providers.aws.rds import describe_instance

RESTORED_FROM = "regionguard:restored-from"  # a resumed step reuses only its own restore
TERMINAL = frozenset({"failed", "incompatible-restore", "incompatible-parameters",
                      "incompatible-network", "inaccessible-encryption-credentials",
                      "storage-full"})


@aws_boundary
class SnapshotRestorer:
    def __init__(self, ctx: AwsContext, poll_s: float = 15.0) -> None:
        self.ctx = ctx
        self.poll_s = poll_s

    def _rds(self, region: str) -> Any:
        return self.ctx.clients.get("rds", self.ctx.aws_region(region))

    def newest_copy(self, region: str) -> SnapshotCopy | None:
        """Snapshots of the *other* Region's instance (the primary a restore here replaces)."""
        other = self.ctx.view.topology.other_region(region)
        source = self.ctx.names.db_instance(self.ctx.aws_region(other))
        found: list[dict[str, Any]] = []
        # automated and manual copies by default; AWS Backup's copies only when asked for
        for kind in (None, "awsbackup"):
            optional = kind is not None  # an API (or emulator) without it: the others do
            with expected(f"{region}: describe_db_snapshots", any_code=optional) as refused:
                out = self._rds(region).describe_db_snapshots(
                    DBInstanceIdentifier=source, **({"SnapshotType": kind} if kind else {}))
            if refused:
                continue
            found += [s for s in out.get("DBSnapshots", []) if s.get("Status") == "available"]
        if not found:
            return None
        newest = max(found, key=lambda s: _created(s))
        return SnapshotCopy(region, newest["DBSnapshotIdentifier"], _created(newest))

    def _instance(self, region: str) -> dict[str, Any] | None:
        return describe_instance(self.ctx, region)

    def _security_group(self, region: str) -> str:
        name = self.ctx.names.db_security_group(self.ctx.aws_region(region))
        groups = self.ctx.clients.get("ec2", self.ctx.aws_region(region)) \
            .describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
        ids = [str(g["GroupId"]) for g in groups.get("SecurityGroups", [])]
        if len(ids) != 1:
            raise ProviderError(f"{region}: security group {name} not found (found {len(ids)}); "
                                "deploy the Database stack of this Region first")
        return ids[0]

    def restore(self, region: str, snapshot_id: str, timeout_s: float) -> str:
        r = self.ctx.aws_region(region)
        ident = self.ctx.names.db_instance(r)
        settings = self.ctx.view.settings
        existing = self._instance(region)
        if existing is not None:
            tags = {t["Key"]: t["Value"] for t in existing.get("TagList", [])}
            if tags.get(RESTORED_FROM) != snapshot_id:  # not this plan's restore: never reuse
                raise StepAbandoned(
                    f"{region}: an instance {ident} already exists, restored from "
                    f"{tags.get(RESTORED_FROM, 'something else')}, not {snapshot_id}; "
                    "delete it (keep a final snapshot) before restoring, or it would serve "
                    "stale data")
        else:
            # DBInstanceAlreadyExists: a resumed step's restore is under way; wait for it
            with expected(f"{region}: restore_db_instance_from_db_snapshot",
                          "DBInstanceAlreadyExists"):
                self._rds(region).restore_db_instance_from_db_snapshot(
                    DBInstanceIdentifier=ident, DBSnapshotIdentifier=snapshot_id,
                    DBInstanceClass=settings.db_instance_class, MultiAZ=True,
                    DBSubnetGroupName=self.ctx.names.db_subnet_group(r),
                    VpcSecurityGroupIds=[self._security_group(region)],
                    PubliclyAccessible=False, EnableIAMDatabaseAuthentication=True,
                    DeletionProtection=True, CopyTagsToSnapshot=True,
                    Tags=[{"Key": RESTORED_FROM, "Value": snapshot_id}])
        clock = self.ctx.clock
        deadline = clock.monotonic() + timeout_s
        while True:
            inst = self._instance(region) or {}
            status = inst.get("DBInstanceStatus")
            if status == "available":
                return f"{ident} restored from {snapshot_id}"
            if status in TERMINAL:
                raise ProviderError(f"{region}: {ident} is {status}; the restore cannot finish "
                                    "(see the RDS events of the instance)")
            if clock.monotonic() > deadline:
                raise ProviderError(f"{region}: {ident} still {status} after {timeout_s:g} s")
            clock.sleep(self.poll_s)


def _created(snapshot: dict[str, Any]) -> float:
    """When the data was taken: a copy's own creation time is when it was copied, which says
    nothing about its age as a backup (the RPO)."""
    created = snapshot.get("OriginalSnapshotCreateTime") or snapshot.get("SnapshotCreateTime")
    return created.timestamp() if isinstance(created, datetime) else 0.0
