"""The Traffic port over Route 53 failover (or latency) records.

Choice: the engine *upserts* the two failover records of `<domain>` in one change batch, making
the target region's record PRIMARY (with the engine-controlled health check) and the other
SECONDARY, then waits for `INSYNC`. Rewriting the records, rather than inverting a health check,
makes where traffic goes readable in the zone itself, takes effect without waiting for a
CloudWatch-metric health check to re-evaluate (~30 s), and `GetChange` tells when every Route 53
server has it. The regional records (`<region>.<domain>`) say where each region's endpoint is.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from botocore.exceptions import ClientError

from regionguard.errors import ProviderError
from regionguard.orchestrator.ports import RouteTable, VerifyResult
from regionguard.providers.aws.context import AwsContext


class Route53Traffic:
    def __init__(self, ctx: AwsContext, poll_s: float = 2.0, canary: bool = True) -> None:
        self.ctx = ctx
        self.poll_s = poll_s
        self.canary = canary
        self._epoch: int | None = None

    @property
    def _zone(self) -> str:
        return self.ctx.view.settings.hosted_zone_id

    def _r53(self) -> Any:
        return self.ctx.clients.get("route53", "us-east-1")

    def _records(self, name: str) -> list[dict[str, Any]]:
        fqdn = name.rstrip(".") + "."
        try:
            out = self._r53().list_resource_record_sets(
                HostedZoneId=self._zone, StartRecordName=fqdn, StartRecordType="A")
        except ClientError as exc:
            raise ProviderError(f"list_resource_record_sets: {exc}") from exc
        return [r for r in out["ResourceRecordSets"] if r["Name"] == fqdn and r["Type"] == "A"]

    def _regional_target(self, region: str) -> dict[str, Any]:
        host = self.ctx.names.region_host(self.ctx.aws_region(region))
        found = self._records(host)
        if not found:
            raise ProviderError(f"no A record for {host}; deploy the {region} Compute stack")
        return found[0]

    def _failover_records(self) -> dict[str, dict[str, Any]]:
        return {r["SetIdentifier"]: r for r in self._records(self.ctx.view.settings.domain)
                if "SetIdentifier" in r}

    def _record(self, region: str, role: str, health_check: str | None) -> dict[str, Any]:
        regional = self._regional_target(region)
        rec: dict[str, Any] = {"Name": self.ctx.view.settings.domain + ".", "Type": "A",
                               "SetIdentifier": region, "Failover": role}
        if "AliasTarget" in regional:
            rec["AliasTarget"] = {**regional["AliasTarget"], "EvaluateTargetHealth": True}
        else:
            rec["TTL"] = regional.get("TTL", 60)
            rec["ResourceRecords"] = regional["ResourceRecords"]
        if health_check:
            rec["HealthCheckId"] = health_check
        return rec

    def primary_region(self) -> str | None:
        for set_id, rec in self._failover_records().items():
            if rec.get("Failover") == "PRIMARY":
                return set_id
        return None

    def _change(self, changes: list[dict[str, Any]], timeout_s: float = 120.0) -> None:
        try:
            change = self._r53().change_resource_record_sets(
                HostedZoneId=self._zone, ChangeBatch={"Comment": "regionguard", "Changes": changes})
        except ClientError as exc:
            raise ProviderError(f"change_resource_record_sets: {exc}") from exc
        change_id = change["ChangeInfo"]["Id"]
        deadline = time.monotonic() + timeout_s
        while change["ChangeInfo"]["Status"] != "INSYNC":
            if time.monotonic() > deadline:
                raise ProviderError(f"Route 53 change {change_id} not INSYNC after {timeout_s} s")
            time.sleep(self.poll_s)
            change = self._r53().get_change(Id=change_id)

    def _make_primary(self, target: str) -> None:
        if self.ctx.view.routing == "latency":
            return  # latency records stay; the engine moves writes, not reads
        if self.primary_region() == target:
            return  # already routed: idempotent
        current = self._failover_records()
        health = next((r.get("HealthCheckId") for r in current.values()
                       if r.get("Failover") == "PRIMARY"), None)
        other = next(r.name for r in self.ctx.view.regions if r.name != target)
        changes = [{"Action": "UPSERT", "ResourceRecordSet": self._record(target, "PRIMARY",
                                                                          health)},
                   {"Action": "UPSERT", "ResourceRecordSet": self._record(other, "SECONDARY",
                                                                          None)}]
        self._change(changes)

    def cut(self, region: str) -> None:
        """DNS keeps exactly one PRIMARY: cutting the primary region means the other region's
        record becomes PRIMARY now (it serves errors until scaled, as the cut region would)."""
        if self.primary_region() == region:
            self._make_primary(next(r.name for r in self.ctx.view.regions if r.name != region))

    def route(self, table: RouteTable) -> None:
        self._make_primary(table.writer)
        self._epoch = table.epoch

    def shares(self) -> dict[str, float]:
        primary = self.primary_region()
        if self.ctx.view.routing == "latency":
            return {r.name: 0.5 for r in self.ctx.view.regions}
        return {r.name: 1.0 if r.name == primary else 0.0 for r in self.ctx.view.regions}

    def verify(self, timeout_s: float) -> VerifyResult:
        """Control plane: `<domain>` routes to the writer. With `canary`, also a real write
        through the writer's regional endpoint into the canary table."""
        started = time.monotonic()
        primary = self.primary_region()
        if primary is None:
            return VerifyResult(False, None, self._epoch, 0.0, "no PRIMARY record")
        if not self.canary:
            return VerifyResult(True, primary, self._epoch, time.monotonic() - started,
                                "records INSYNC")
        host = self.ctx.names.region_host(self.ctx.aws_region(primary))
        try:
            r = httpx.post(f"https://{host}/_regionguard/canary",
                           json={"token": f"verify-{uuid.uuid4().hex}"}, timeout=timeout_s)
            body = r.json() if r.status_code == 200 else {}
        except httpx.HTTPError as exc:
            return VerifyResult(False, None, None, time.monotonic() - started, str(exc))
        # the AWS world's fencing token is the state table's epoch (RDS is not written to)
        return VerifyResult(r.status_code == 200 and "region" in body, primary, self._epoch,
                            time.monotonic() - started, f"HTTP {r.status_code}")
