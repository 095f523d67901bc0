"""Approval requests in the AWS world: one item in the arbiter (`pk = approval`), so the
request outlives any Lambda run, every site reads the same answer, and a person answers with
`regionguard --world aws approve|reject PLAN_ID` against the nearest replica. Changes are
conditional on the item's version (the version `VersionedApprovals` keeps its rules with)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from regionguard.orchestrator.approval import VersionedApprovals
from regionguard.providers.aws.arbiter import ConditionFailed
from regionguard.providers.aws.state import DynamoDBStateStore

KEY = "approval"


class ArbiterApprovals(VersionedApprovals):
    where = "regionguard --world aws status"

    def __init__(self, store: DynamoDBStateStore) -> None:
        self.store = store

    def read(self) -> tuple[dict[str, Any], int] | None:
        item = self.store.arbiter.get(KEY)
        if item is None:
            return None
        return json.loads(item["request"]["S"]), int(item["version"]["N"])

    def create(self, request: Mapping[str, Any]) -> bool:
        try:
            self.store.arbiter.put(KEY, {
                "request": {"S": json.dumps(dict(request), default=str)},
                "version": {"N": "1"}}, condition="attribute_not_exists(pk)")
        except ConditionFailed:
            return False
        return True

    def replace(self, request: Mapping[str, Any], version: int) -> bool:
        try:
            self.store.arbiter.put(KEY, {
                "request": {"S": json.dumps(dict(request), default=str)},
                "version": {"N": str(version + 1)}},
                condition="version = :v", values={":v": {"N": str(version)}})
        except ConditionFailed:
            return False
        return True

    def close(self) -> None:
        self.store.arbiter.delete(KEY)
