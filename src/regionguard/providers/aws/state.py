"""The StateStore port over the DynamoDB global table.

Every compare-and-set (claim the epoch, take the plan lease) goes to the arbiter region's
replica with a ConditionExpression, and every read there is strongly consistent: global tables
replicate last-writer-wins, so conditional writes made in two regions could both succeed.
Items: `state` (epoch, live roles, running plan) and `lock` (the plan lease).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from regionguard.config import Role
from regionguard.errors import ProviderError, UnsafeOperation
from regionguard.orchestrator.ports import LiveState
from regionguard.providers.aws.context import AwsContext

LEASE_S = 900  # longer than the Lambda's timeout: a crashed run's lease expires by itself


class DynamoDBStateStore:
    def __init__(self, ctx: AwsContext) -> None:
        self.ctx = ctx
        self.table = ctx.names.state_table()
        self.owner = f"{os.environ.get('AWS_LAMBDA_LOG_STREAM_NAME', 'cli')}-{uuid.uuid4().hex[:8]}"

    def _ddb(self) -> Any:
        return self.ctx.clients.get("dynamodb", self.ctx.view.arbiter_region)

    def _get(self) -> dict[str, Any]:
        try:
            item = self._ddb().get_item(TableName=self.table, Key={"pk": {"S": "state"}},
                                        ConsistentRead=True).get("Item")
        except ClientError as exc:
            raise ProviderError(f"state table {self.table}: {exc}") from exc
        if item is None:
            return self._initialise()
        return {"epoch": int(item["epoch"]["N"]),
                "roles": json.loads(item["roles"]["S"]),
                "plan": json.loads(item["plan"]["S"]) if "plan" in item else None}

    def _initialise(self) -> dict[str, Any]:
        roles = {r.name: r.home_role.value for r in self.ctx.view.regions}
        with contextlib.suppress(ClientError):  # another writer created it first: fine
            self._ddb().put_item(
                TableName=self.table,
                Item={"pk": {"S": "state"}, "epoch": {"N": "1"},
                      "roles": {"S": json.dumps(roles)}},
                ConditionExpression="attribute_not_exists(pk)")
        return self._get()

    def load(self) -> LiveState:
        data = self._get()
        plan = data["plan"]
        return LiveState(epoch=data["epoch"],
                         roles={k: Role(v) for k, v in data["roles"].items()},
                         plan=plan if plan and plan.get("status") == "running" else None)

    def read_plan(self) -> dict[str, Any] | None:
        plan: dict[str, Any] | None = self._get()["plan"]
        return plan

    def claim_epoch(self, expected: int, plan: Mapping[str, Any]) -> int:
        record = {**plan, "epoch": expected + 1, "status": "running"}
        try:
            self._ddb().update_item(
                TableName=self.table, Key={"pk": {"S": "state"}},
                UpdateExpression="SET epoch = :next, #plan = :plan, plan_status = :running",
                ConditionExpression="epoch = :expected AND (attribute_not_exists(plan_status)"
                                    " OR plan_status <> :running)",
                ExpressionAttributeNames={"#plan": "plan"},
                ExpressionAttributeValues={":next": {"N": str(expected + 1)},
                                           ":expected": {"N": str(expected)},
                                           ":plan": {"S": json.dumps(record, default=str)},
                                           ":running": {"S": "running"}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise ProviderError(f"claim epoch: {exc}") from exc
            current = self._get()
            running = current["plan"] or {}
            if running.get("id") == plan["id"] and running.get("status") == "running":
                return int(running["epoch"])
            if running.get("status") == "running":
                raise UnsafeOperation(f"plan {running.get('name')} ({running.get('id')}) is "
                                      "already running") from None
            raise UnsafeOperation(f"epoch moved from {expected} to {current['epoch']} while "
                                  "planning; re-read the state") from None
        return expected + 1

    def save_plan(self, plan: Mapping[str, Any]) -> None:
        self._update("SET #plan = :plan, plan_status = :status",
                     {":plan": {"S": json.dumps(dict(plan), default=str)},
                      ":status": {"S": str(plan.get("status", "running"))}})

    def set_roles(self, roles: Mapping[str, Role]) -> None:
        merged = {**self._get()["roles"], **{k: str(v) for k, v in roles.items()}}
        self._update("SET #roles = :roles", {":roles": {"S": json.dumps(merged)}},
                     names={"#roles": "roles"})

    def finish_plan(self, plan_id: str, roles: Mapping[str, Role]) -> None:
        plan = self._get()["plan"] or {}
        if plan.get("id") == plan_id:
            plan["status"] = "done"
        self._update("SET #plan = :plan, plan_status = :done, #roles = :roles, last_plan = :id",
                     {":plan": {"S": json.dumps(plan, default=str)}, ":done": {"S": "done"},
                      ":roles": {"S": json.dumps({k: str(v) for k, v in roles.items()})},
                      ":id": {"S": plan_id}}, names={"#roles": "roles"})

    def _update(self, expression: str, values: dict[str, Any],
                names: dict[str, str] | None = None) -> None:
        attr_names = dict(names or {})
        if "#plan" in expression:
            attr_names["#plan"] = "plan"  # PLAN is a DynamoDB reserved word
        kwargs: dict[str, Any] = {"ExpressionAttributeNames": attr_names} if attr_names else {}
        try:
            self._ddb().update_item(
                TableName=self.table, Key={"pk": {"S": "state"}}, UpdateExpression=expression,
                ExpressionAttributeValues=values, **kwargs)
        except ClientError as exc:
            raise ProviderError(f"state table update: {exc}") from exc

    @contextlib.contextmanager
    def plan_lock(self) -> Iterator[bool]:
        now = int(time.time())
        try:
            self._ddb().put_item(
                TableName=self.table,
                Item={"pk": {"S": "lock"}, "owner": {"S": self.owner},
                      "expires_at": {"N": str(now + LEASE_S)}},
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR #o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":me": {"S": self.owner}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                yield False
                return
            raise ProviderError(f"plan lease: {exc}") from exc
        try:
            yield True
        finally:
            with contextlib.suppress(ClientError):
                self._ddb().delete_item(
                    TableName=self.table, Key={"pk": {"S": "lock"}},
                    ConditionExpression="#o = :me", ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":me": {"S": self.owner}})
