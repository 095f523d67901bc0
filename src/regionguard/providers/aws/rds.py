"""The Database port for RDS PostgreSQL with a cross-region read replica.

Promotion is `PromoteReadReplica` and a wait until the instance is `available` and no longer a
replica. RDS has no fence for a primary that is still running: fencing reboots it when it is
reachable (dropping sessions) and reports what it could not fence; writes are then refused by
the apps themselves, whose write lease the engine revoked in the arbiter. Cross-region
replication is asynchronous, so there is no zero-loss switchover: `stop_writes` refuses and
says to use Aurora Global Database.
"""

from __future__ import annotations

from typing import Any

from regionguard.errors import NotAvailable, ProviderError, UnsafeOperation
from regionguard.orchestrator.ports import DbStatus, FenceResult
from regionguard.providers.aws.boundary import aws_boundary, best_effort, expected
from regionguard.providers.aws.context import AwsContext
from regionguard.providers.aws.replica_lag import lag_points

# statuses in which a standalone instance takes writes: `backing-up` is the first automated
# backup a promotion with backups just enabled takes (RDS User Guide, DB instance status: the
# instance is available meanwhile); waiting it out would add its whole duration to the RTO
WRITABLE = frozenset({"available", "backing-up"})


def describe_instance(ctx: AwsContext, region: str) -> dict[str, Any] | None:
    """`region`'s DB instance (by its deterministic name), None when there is none;
    ProviderError when the Region does not answer."""
    r = ctx.aws_region(region)
    with expected(f"{region}: describe_db_instances", "DBInstanceNotFound") as missing:
        out = ctx.clients.get("rds", r).describe_db_instances(
            DBInstanceIdentifier=ctx.names.db_instance(r))
    if missing:
        return None
    instances: list[dict[str, Any]] = out["DBInstances"]
    return instances[0] if instances else None


@aws_boundary
class RdsReplicaDatabase:
    zero_loss_switchover = False
    stopped_writes_are_final = False
    promotes_under_old_lease = True  # a cross-Region read replica is asynchronous

    def __init__(self, ctx: AwsContext, poll_s: float = 5.0) -> None:
        self.ctx = ctx
        self.poll_s = poll_s

    def _describe(self, region: str) -> dict[str, Any] | None:
        return describe_instance(self.ctx, region)

    def _lag_points(self, region: str) -> tuple[tuple[float, float], ...]:
        r = self.ctx.aws_region(region)
        return lag_points(self.ctx, r, "ReplicaLag",
                          ("DBInstanceIdentifier", self.ctx.names.db_instance(r)))

    def status(self, region: str) -> DbStatus:
        try:
            inst = self._describe(region)
        except ProviderError as exc:
            return DbStatus(region, up=False, error=str(exc))
        if inst is None:
            return DbStatus(region, up=False, error="no such DB instance")
        replica = bool(inst.get("ReadReplicaSourceDBInstanceIdentifier"))
        up = inst.get("DBInstanceStatus") == "available"
        points = self._lag_points(region) if replica else ()
        return DbStatus(region, up=up, in_recovery=replica,
                        lag_s=(points[-1][1] if points else None) if replica else 0.0,
                        lag_points=points,
                        streaming=replica or None,
                        error=None if up else f"status {inst.get('DBInstanceStatus')}")

    def fence(self, region: str) -> FenceResult:
        """Never raises: what could not be fenced is in the result."""
        r = self.ctx.aws_region(region)
        try:
            inst = self._describe(region)
        except ProviderError as exc:
            return FenceResult(region, False, (), (f"not reachable: {exc}",))
        if inst is None or inst.get("DBInstanceStatus") != "available":
            return FenceResult(region, False, (), (
                f"{region} database unreachable or not available; not rebooted",))
        with best_effort() as failed:
            self.ctx.clients.get("rds", r).reboot_db_instance(
                DBInstanceIdentifier=self.ctx.names.db_instance(r))
        if failed:
            return FenceResult(region, False, (), (f"reboot failed: {failed.detail}",))
        return FenceResult(region, False, ("rebooted (sessions dropped)",), (
            "RDS cannot keep a running primary from accepting writes; the apps refuse them "
            "once their write lease is revoked",))

    def promote(self, region: str, epoch: int, timeout_s: float, planned: bool = False) -> None:
        r = self.ctx.aws_region(region)
        inst = self._describe(region)
        if inst is None:
            raise ProviderError(f"{region}: no DB instance to promote")
        if inst.get("ReadReplicaSourceDBInstanceIdentifier"):
            # a replica with automated backups of its own (MySQL; deployed so) keeps them, and
            # RDS then takes no backup while it promotes; one without (RDS for PostgreSQL
            # replicas have none) gets the retention now
            retention = ({} if int(inst.get("BackupRetentionPeriod") or 0) > 0 else
                         {"BackupRetentionPeriod": self.ctx.view.settings.backup_retention_days})
            # InvalidDBInstanceState: already being promoted (a resumed step): wait for it
            with expected(f"{region}: promote_read_replica", "InvalidDBInstanceState"):
                self.ctx.clients.get("rds", r).promote_read_replica(
                    DBInstanceIdentifier=self.ctx.names.db_instance(r), **retention)
        clock = self.ctx.clock
        deadline = clock.monotonic() + timeout_s
        while True:
            inst = self._describe(region) or {}
            if (inst.get("DBInstanceStatus") in WRITABLE
                    and not inst.get("ReadReplicaSourceDBInstanceIdentifier")):
                return  # no longer a replica, and taking writes: the first backup can run on
            if clock.monotonic() > deadline:
                raise ProviderError(f"{region}: still {inst.get('DBInstanceStatus')} and a "
                                    f"replica after {timeout_s:g} s")
            clock.sleep(self.poll_s)

    def stop_writes(self, region: str, timeout_s: float) -> int:
        # the planner refuses first (zero_loss_switchover); this guards a hand-built plan
        raise UnsafeOperation(
            "refusing switchover on RDS: cross-region read replicas are asynchronous and RDS "
            "has no zero-loss switchover; use failover, or database = \"aurora-global\"")

    def wait_replayed(self, region: str, lsn: int, timeout_s: float) -> int:
        raise UnsafeOperation("RDS cross-region replicas expose no replay position")

    def rebuild_as_standby(self, region: str, of: str, timeout_s: float) -> str:
        raise NotAvailable(
            f"rebuilding {region} as a replica of {of} is a redeploy: delete the old instance "
            "(keep a final snapshot) and `cdk deploy` the Database stack with the roles swapped")

    def set_sync_standby(self, primary: str, standby: str | None) -> bool:
        return False  # RDS cross-region replication is asynchronous; nothing to configure

    def confirm_sync(self, primary: str, standby: str, timeout_s: float) -> int:
        raise UnsafeOperation("no synchronous standby to confirm: RDS cross-region "
                              "replication is asynchronous")

    def stamp_epoch(self, region: str, epoch: int) -> None:
        return None  # on AWS the token is the arbiter's writer_epoch (the write lease)
