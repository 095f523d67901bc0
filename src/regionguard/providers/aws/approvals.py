"""Approval requests in the AWS world: one item in the arbiter (`pk = approval`), so the
request outlives any Lambda run, every site reads the same answer, and a person answers with
`regionguard --world aws approve|reject PLAN_ID` against the nearest replica. Changes are
conditional on the item's version: a late answer and the default can never both win."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from regionguard.errors import UsageError
from regionguard.orchestrator.approval import Outcome, answered, defaulted
from regionguard.providers.aws.arbiter import ConditionFailed
from regionguard.providers.aws.state import DynamoDBStateStore

KEY = "approval"


class ArbiterApprovals:
    def __init__(self, store: DynamoDBStateStore) -> None:
        self.store = store

    def _read(self) -> tuple[dict[str, Any], int] | None:
        item = self.store.arbiter.get(KEY)
        if item is None:
            return None
        return json.loads(item["request"]["S"]), int(item["version"]["N"])

    def _write(self, request: Mapping[str, Any], version: int) -> None:
        """Replace the request if it is still at `version` (ConditionFailed otherwise)."""
        self.store.arbiter.put(KEY, {
            "request": {"S": json.dumps(request, default=str)},
            "version": {"N": str(version + 1)}},
            condition="version = :v", values={":v": {"N": str(version)}})

    def pending(self) -> dict[str, Any] | None:
        found = self._read()
        return found[0] if found else None

    def open(self, request: Mapping[str, Any]) -> bool:
        try:
            self.store.arbiter.put(KEY, {
                "request": {"S": json.dumps(dict(request), default=str)},
                "version": {"N": "1"}}, condition="attribute_not_exists(pk)")
        except ConditionFailed:
            return False
        return True

    def decide(self, plan_id: str, outcome: Outcome, by: str, at: float) -> dict[str, Any]:
        found = self._read()
        request = answered(found[0] if found else None, plan_id, outcome, by, at,
                           "regionguard --world aws status")
        assert found is not None
        try:
            self._write(request, found[1])
        except ConditionFailed:
            raise UsageError(f"plan {plan_id}'s request changed meanwhile (the guard acted on "
                             "it); look again") from None
        return request

    def resolve(self, now: float, default: Literal["approve", "reject"]
                ) -> dict[str, Any] | None:
        found = self._read()
        if found is None:
            return None
        request, version = found
        decided = defaulted(request, now, default)
        if decided is None:
            return request
        try:
            self._write(decided, version)
        except ConditionFailed:  # a person answered first: theirs stands
            return self.pending()
        return decided

    def mark_handled(self) -> None:
        found = self._read()
        if found is None or not found[0].get("decision"):
            return
        found[0]["decision"]["handled"] = True
        try:
            self._write(*found)
        except ConditionFailed:
            return  # changed meanwhile: the next run looks again

    def close(self) -> None:
        self.store.arbiter.delete(KEY)
