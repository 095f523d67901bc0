"""The Database port for an Aurora PostgreSQL Global Database.

`promote` does what the engine decided: a managed switchover (`SwitchoverGlobalCluster`, no data
loss) for a planned swap, a failover (`FailoverGlobalCluster` with `AllowDataLoss`) otherwise,
then polls the global cluster's members until the target is the writer. Aurora rejoins the old
primary as a secondary by itself, so `rebuild_as_standby` only waits for that.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from regionguard.errors import ProviderError
from regionguard.orchestrator.ports import DbStatus, FenceResult
from regionguard.providers.aws.context import AwsContext


class AuroraGlobalDatabase:
    zero_loss_switchover = True

    def __init__(self, ctx: AwsContext, poll_s: float = 5.0) -> None:
        self.ctx = ctx
        self.poll_s = poll_s

    def _arn(self, region: str) -> str:
        r = self.ctx.aws_region(region)
        return self.ctx.names.arn("rds", r, f"cluster:{self.ctx.names.db_cluster(r)}")

    def _members(self) -> list[dict[str, Any]]:
        home = self.ctx.view.primary.aws_region
        try:
            out = self.ctx.clients.get("rds", home).describe_global_clusters(
                GlobalClusterIdentifier=self.ctx.names.global_cluster())
        except ClientError as exc:
            raise ProviderError(f"describe_global_clusters: {exc}") from exc
        clusters = out.get("GlobalClusters", [])
        if not clusters:
            return []
        members: list[dict[str, Any]] = clusters[0].get("GlobalClusterMembers", [])
        return members

    def _writer(self) -> str | None:
        for m in self._members():
            if m.get("IsWriter"):
                return str(m["DBClusterArn"])
        return None

    def _cluster_available(self, region: str) -> bool:
        r = self.ctx.aws_region(region)
        try:
            out = self.ctx.clients.get("rds", r).describe_db_clusters(
                DBClusterIdentifier=self.ctx.names.db_cluster(r))
        except ClientError:
            return False
        clusters = out.get("DBClusters", [])
        return bool(clusters) and clusters[0].get("Status") == "available"

    def status(self, region: str) -> DbStatus:
        try:
            writer = self._writer()
        except ProviderError as exc:
            return DbStatus(region, up=False, error=str(exc))
        up = self._cluster_available(region)
        return DbStatus(region, up=up, in_recovery=writer != self._arn(region),
                        streaming=True if writer != self._arn(region) else None)

    def fence(self, region: str) -> FenceResult:
        return FenceResult(region, False, (), (
            "Aurora demotes the old writer itself during switchover or failover; while it is "
            "unreachable nothing more can be done from here",))

    def promote(self, region: str, epoch: int, timeout_s: float, planned: bool = False) -> None:
        target = self._arn(region)
        if self._writer() == target:
            return
        rds = self.ctx.clients.get("rds", self.ctx.view.primary.aws_region)
        try:
            if planned:
                rds.switchover_global_cluster(
                    GlobalClusterIdentifier=self.ctx.names.global_cluster(),
                    TargetDbClusterIdentifier=target)
            else:
                rds.failover_global_cluster(
                    GlobalClusterIdentifier=self.ctx.names.global_cluster(),
                    TargetDbClusterIdentifier=target, AllowDataLoss=True)
        except ClientError as exc:
            raise ProviderError(f"promote {region}: {exc}") from exc
        deadline = time.monotonic() + timeout_s
        while self._writer() != target:
            if time.monotonic() > deadline:
                raise ProviderError(f"{region} is not the global writer after {timeout_s:g} s")
            time.sleep(self.poll_s)

    def stop_writes(self, region: str, timeout_s: float) -> int:
        return 0  # the managed switchover drains the writer itself

    def wait_replayed(self, region: str, lsn: int, timeout_s: float) -> int:
        return lsn  # ditto: SwitchoverGlobalCluster waits for the secondary to catch up

    def rebuild_as_standby(self, region: str, of: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while not self._cluster_available(region):
            if time.monotonic() > deadline:
                raise ProviderError(f"{region} has not rejoined the global cluster")
            time.sleep(self.poll_s)
        return "aurora rejoin"

    def set_sync_standby(self, primary: str, standby: str | None) -> None:
        return None  # Aurora global replication is storage-level and asynchronous
