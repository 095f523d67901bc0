"""Approval requests on the self-managed sites (`failover.approval = "manual"`): one key in
etcd, `<prefix>/approval`, as the AWS world keeps one arbiter item. The request outlives any
agent, every site reads the same answer, and a person answers with `regionguard approve|reject
PLAN_ID` from any host that reaches etcd. Every change is a compare-and-set on the key's
`mod_revision`: a person's late answer and the default can never both win, and two agents that
judge the primary down at once open one request."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from regionguard.errors import UsageError
from regionguard.orchestrator.approval import Outcome, answered, defaulted
from regionguard.providers.etcd.state import EtcdStateStore


class EtcdApprovals:
    def __init__(self, store: EtcdStateStore) -> None:
        self.store = store
        self.key = store.key("approval")

    def _read(self) -> tuple[dict[str, Any], int] | None:
        entry = self.store.arbiter.get(self.key)
        if entry is None:
            return None
        found = entry.json()
        return (found, entry.mod_revision) if isinstance(found, dict) else None

    def _write(self, request: Mapping[str, Any], revision: int) -> bool:
        """Replace the request if it is still at `revision` (0: absent); False otherwise."""
        return self.store.arbiter.txn("approval", {self.key: revision},
                                      {self.key: json.dumps(dict(request), default=str).encode()})

    def pending(self) -> dict[str, Any] | None:
        found = self._read()
        return found[0] if found else None

    def open(self, request: Mapping[str, Any]) -> bool:
        return self._write(request, 0)

    def decide(self, plan_id: str, outcome: Outcome, by: str, at: float) -> dict[str, Any]:
        found = self._read()
        request = answered(found[0] if found else None, plan_id, outcome, by, at,
                           "regionguard status")
        assert found is not None  # answered() refuses a missing request
        if not self._write(request, found[1]):
            raise UsageError(f"plan {plan_id}'s request changed meanwhile (an agent acted on "
                             "it); look again with `regionguard status`")
        return request

    def resolve(self, now: float, default: Literal["approve", "reject"]
                ) -> dict[str, Any] | None:
        found = self._read()
        if found is None:
            return None
        request, revision = found
        decided = defaulted(request, now, default)
        if decided is None:
            return request
        if not self._write(decided, revision):  # a person answered first: theirs stands
            return self.pending()
        return decided

    def mark_handled(self) -> None:
        found = self._read()
        if found is None or not found[0].get("decision"):
            return
        found[0]["decision"]["handled"] = True
        self._write(*found)  # changed meanwhile: the next cycle looks again

    def close(self) -> None:
        self.store.arbiter.delete(self.key)
