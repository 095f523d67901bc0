"""A person's planned plans on the self-managed sites, through etcd: asked, answered, and the
handover between the two agents a planned plan needs.

On the sites no process runs every step of a plan: each agent acts on its own site only. A
switchover (or a failback) is therefore asked in etcd and run by the target's agent, and the
one step that is the old primary's (stop its writes cleanly and say where its WAL ends) is
done by the old primary's own agent, which writes the handover:

- `<prefix>/request`: the one plan asked (kind, target, who, the epoch it was asked at, an
  id), on a lease of `REQUEST_TTL_S`: a request its asker stopped waiting for goes by itself
  and never runs hours later. The target's agent takes it while the roles are still those of
  that epoch; a request from before the roles last moved is dropped, never run against a
  different pair.
- `<prefix>/answer/<id>`: what became of it (the plan's id and outcome, or why it was refused),
  for the person's command to print; on a lease of an hour, so old answers go by themselves.
- `<prefix>/handover/<plan id>`: the old primary's agent stopped its database cleanly at this
  LSN (a clean shutdown sends every WAL record to the connected standby first), then gave up
  its write lease. The target waits for this record before it replays to that LSN and
  promotes: nothing was written after it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from regionguard.providers.etcd.state import EtcdStateStore

ANSWER_TTL_S = 3600
REQUEST_TTL_S = 15  # an agent looks every health interval; its asker waits 10 s for it


@dataclass(frozen=True, slots=True)
class PlanAsk:
    id: str
    kind: str  # "switchover" (the one planned plan the agents run; a failback is a rejoin
    # and a switchover, cli/site_plans.py)
    target: str  # the region whose agent runs it
    by: str
    epoch: int
    asked_at: float

    def to_json(self) -> bytes:
        return json.dumps({"id": self.id, "kind": self.kind, "target": self.target,
                           "by": self.by, "epoch": self.epoch,
                           "asked_at": self.asked_at}).encode()


class SiteRequests:
    def __init__(self, store: EtcdStateStore) -> None:
        self.store = store

    # -- the request ---------------------------------------------------------------------------

    def ask(self, kind: str, target: str, by: str, epoch: int) -> PlanAsk:
        ask = PlanAsk(uuid.uuid4().hex[:12], kind, target, by, epoch, self.store.clock.time())
        lease = self.store.arbiter.grant(REQUEST_TTL_S)
        self.store.arbiter.txn("a plan request", {}, {self.store.key("request"): ask.to_json()},
                               lease=lease)
        return ask

    def asked(self) -> PlanAsk | None:
        entry = self.store.arbiter.get(self.store.key("request"))
        if entry is None:
            return None
        try:
            raw = entry.json()
            return PlanAsk(str(raw["id"]), str(raw["kind"]), str(raw["target"]),
                           str(raw["by"]), int(raw["epoch"]), float(raw["asked_at"]))
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: its lease ends it

    def take(self, ask_id: str) -> bool:
        """Remove the request if it is still `ask_id`; True when this call removed it, so
        exactly one agent runs it (or its asker withdrew it first)."""
        key = self.store.key("request")
        entry = self.store.arbiter.get(key)
        if entry is None:
            return False
        try:
            found = entry.json().get("id")
        except (ValueError, AttributeError):
            found = None
        if found != ask_id:
            return False
        return self.store.arbiter.txn("take a plan request", {key: entry.mod_revision},
                                      deletes=(key,))

    # -- the answer ----------------------------------------------------------------------------

    def answer(self, ask_id: str, outcome: str, detail: str, plan: str | None = None,
               summary: dict[str, Any] | None = None) -> None:
        self._put_for_an_hour(f"answer/{ask_id}", {
            "outcome": outcome, "detail": detail, "plan": plan, "summary": summary or {},
            "at": self.store.clock.time()})

    def _put_for_an_hour(self, name: str, body: dict[str, Any]) -> None:
        lease = self.store.arbiter.grant(ANSWER_TTL_S)
        self.store.arbiter.txn(f"write of {name}", {}, {self.store.key(name):
                                                        json.dumps(body).encode()}, lease=lease)

    def answered(self, ask_id: str) -> dict[str, Any] | None:
        entry = self.store.arbiter.get(self.store.key(f"answer/{ask_id}"))
        if entry is None:
            return None
        try:
            found: dict[str, Any] = entry.json()
        except ValueError:
            return {"outcome": "unreadable", "detail": ""}
        return found

    # -- the handover --------------------------------------------------------------------------

    def hand_over(self, plan_id: str, region: str, lsn: int) -> None:
        self._put_for_an_hour(f"handover/{plan_id}", {
            "region": region, "lsn": lsn, "at": self.store.clock.time()})

    def handed_over(self, plan_id: str, region: str) -> int | None:
        """The LSN `region` stopped its writes at for `plan_id`, once it did."""
        entry = self.store.arbiter.get(self.store.key(f"handover/{plan_id}"))
        if entry is None:
            return None
        try:
            raw = entry.json()
            return int(raw["lsn"]) if raw.get("region") == region else None
        except (ValueError, KeyError, TypeError):
            return None
