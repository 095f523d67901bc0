"""The Database port for an Aurora PostgreSQL Global Database.

`promote` does what the engine decided: a managed switchover (`SwitchoverGlobalCluster`, no data
loss) for a planned swap, a failover (`FailoverGlobalCluster` with `AllowDataLoss`) otherwise,
then polls the global cluster's members until the target is the writer. Every call is made in
the target's own Region (the one that survives) and, for the global cluster's membership, falls
back to the other Region: the primary's Region may be the one that died. Aurora rejoins the old
primary as a secondary by itself once its Region is back, so `rebuild_as_standby` only waits.
"""

from __future__ import annotations

from typing import Any

from regionguard.errors import ProviderError, UnsafeOperation
from regionguard.orchestrator.ports import DbStatus, FenceResult
from regionguard.providers.aws.boundary import aws_boundary, best_effort, expected
from regionguard.providers.aws.context import AwsContext
from regionguard.providers.aws.replica_lag import lag_points


@aws_boundary
class AuroraGlobalDatabase:
    zero_loss_switchover = True
    stopped_writes_are_final = False  # SwitchoverGlobalCluster drains the writer at promote
    promotes_under_old_lease = True  # cross-Region replication is asynchronous

    def __init__(self, ctx: AwsContext, poll_s: float = 5.0) -> None:
        self.ctx = ctx
        self.poll_s = poll_s

    def _arn(self, region: str) -> str:
        r = self.ctx.aws_region(region)
        return self.ctx.names.arn("rds", r, f"cluster:{self.ctx.names.db_cluster(r)}")

    def _regions(self, first: str | None) -> list[str]:
        """AWS Regions to ask, the given region's first (the survivor, when promoting)."""
        order = [r.aws_region for r in self.ctx.view.regions]
        if first is not None:
            preferred = self.ctx.aws_region(first)
            order.remove(preferred)
            order.insert(0, preferred)
        return order

    def _members(self, near: str | None = None) -> list[dict[str, Any]]:
        errors = []
        for r in self._regions(near):
            with best_effort() as failed:  # then ask the other Region
                out = self.ctx.clients.get("rds", r).describe_global_clusters(
                    GlobalClusterIdentifier=self.ctx.names.global_cluster())
            if failed:
                errors.append(f"{r}: {failed.detail}")
                continue
            clusters = out.get("GlobalClusters", [])
            members: list[dict[str, Any]] = clusters[0].get("GlobalClusterMembers", []) \
                if clusters else []
            return members
        raise ProviderError(f"describe_global_clusters: {'; '.join(errors)}")

    def _writer(self, near: str | None = None) -> str | None:
        for m in self._members(near):
            if m.get("IsWriter"):
                return str(m["DBClusterArn"])
        return None

    def _cluster_status(self, region: str) -> str | None:
        r = self.ctx.aws_region(region)
        with best_effort() as failed:  # None: `status` says the cluster is unreachable
            out = self.ctx.clients.get("rds", r).describe_db_clusters(
                DBClusterIdentifier=self.ctx.names.db_cluster(r))
        if failed:
            return None
        clusters = out.get("DBClusters", [])
        return str(clusters[0].get("Status")) if clusters else None

    def status(self, region: str) -> DbStatus:
        cluster = self._cluster_status(region)
        if cluster is None:
            return DbStatus(region, up=False, error="cluster unreachable")
        try:
            writer = self._writer(region)
        except ProviderError as exc:
            return DbStatus(region, up=False, error=str(exc))
        secondary = writer != self._arn(region)
        r = self.ctx.aws_region(region)
        points = lag_points(  # milliseconds, in the secondary's Region
            self.ctx, r, "AuroraGlobalDBReplicationLag",
            ("DBClusterIdentifier", self.ctx.names.db_cluster(r)), 0.001) if secondary else ()
        return DbStatus(region, up=cluster == "available", in_recovery=secondary,
                        lag_s=(points[-1][1] if points else None) if secondary else 0.0,
                        lag_points=points,
                        streaming=True if secondary else None,
                        error=None if cluster == "available" else f"status {cluster}")

    def fence(self, region: str) -> FenceResult:
        return FenceResult(region, False, (), (
            "Aurora demotes the old writer itself during switchover or failover; while it is "
            "unreachable nothing more can be done from here",))

    def promote(self, region: str, epoch: int, timeout_s: float, planned: bool = False) -> None:
        target = self._arn(region)
        if self._writer(region) == target:
            return
        rds = self.ctx.clients.get("rds", self.ctx.aws_region(region))
        # a failover already in progress (a resumed step) is waited for below
        with expected(f"promote {region}", "InvalidGlobalClusterStateFault"):
            if planned:
                rds.switchover_global_cluster(
                    GlobalClusterIdentifier=self.ctx.names.global_cluster(),
                    TargetDbClusterIdentifier=target)
            else:
                rds.failover_global_cluster(
                    GlobalClusterIdentifier=self.ctx.names.global_cluster(),
                    TargetDbClusterIdentifier=target, AllowDataLoss=True)
        clock = self.ctx.clock
        deadline = clock.monotonic() + timeout_s
        while self._writer(region) != target:
            if clock.monotonic() > deadline:
                raise ProviderError(f"{region} is not the global writer after {timeout_s:g} s")
            clock.sleep(self.poll_s)

    def stop_writes(self, region: str, timeout_s: float) -> int:
        return 0  # the managed switchover drains the writer itself

    def wait_replayed(self, region: str, lsn: int, timeout_s: float) -> int:
        return lsn  # ditto: SwitchoverGlobalCluster waits for the secondary to catch up

    def rebuild_as_standby(self, region: str, of: str, timeout_s: float) -> str:
        clock = self.ctx.clock
        deadline = clock.monotonic() + timeout_s
        while self._cluster_status(region) != "available":
            if clock.monotonic() > deadline:
                raise ProviderError(f"{region} has not rejoined the global cluster")
            clock.sleep(self.poll_s)
        return "aurora rejoin"

    def set_sync_standby(self, primary: str, standby: str | None) -> bool:
        return False  # Aurora global replication is storage-level and asynchronous

    def confirm_sync(self, primary: str, standby: str, timeout_s: float) -> int:
        raise UnsafeOperation("no synchronous standby to confirm: Aurora global replication "
                              "is storage-level and asynchronous")

    def stamp_epoch(self, region: str, epoch: int) -> None:
        return None  # on AWS the token is the arbiter's writer_epoch (the write lease)
