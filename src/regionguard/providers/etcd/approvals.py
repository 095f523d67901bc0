"""Approval requests on the self-managed sites (`failover.approval = "manual"`): one key in
etcd, `<prefix>/approval`, as the AWS world keeps one arbiter item. The request outlives any
agent, every site reads the same answer, and a person answers with `regionguard approve|reject
PLAN_ID` from any host that reaches etcd. Every change is a compare-and-set on the key's
`mod_revision` (the version `VersionedApprovals` keeps its rules with)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from regionguard.orchestrator.approval import VersionedApprovals
from regionguard.providers.etcd.state import EtcdStateStore


class EtcdApprovals(VersionedApprovals):
    def __init__(self, store: EtcdStateStore) -> None:
        self.store = store
        self.key = store.key("approval")

    def read(self) -> tuple[dict[str, Any], int] | None:
        entry = self.store.arbiter.get(self.key)
        if entry is None:
            return None
        try:
            found = entry.json()
        except ValueError:
            found = None
        # an unreadable value is a request no runner can match: the gate withdraws it (and
        # can open its own), rather than finding the key taken forever
        return (found if isinstance(found, dict) else {"unreadable": True}), entry.mod_revision

    def create(self, request: Mapping[str, Any]) -> bool:
        return self.replace(request, 0)  # revision 0: the key does not exist

    def replace(self, request: Mapping[str, Any], version: int) -> bool:
        return self.store.arbiter.txn("approval", {self.key: version},
                                      {self.key: json.dumps(dict(request), default=str).encode()})

    def close(self) -> None:
        self.store.arbiter.delete(self.key)
