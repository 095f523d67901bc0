"""The primary's side of the write lease: hold the writer key on an etcd lease, renew it, and
know, on this host's own clock, until when it may still act on it.

The holder's deadline is counted from when a renewal was *sent*: etcd restarts the lease's TTL
when the renewal arrives, which is later, so etcd's expiry is never earlier than the holder's
own deadline. The holder fences itself `margin_s` before that deadline (its agent makes
PostgreSQL read-only and stops it; its apps refuse writes), so by the time etcd expires the
lease and a survivor may promote, this site has stopped writing: no site signals another.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from regionguard.clock import SYSTEM_CLOCK, Clock
from regionguard.errors import ProviderError
from regionguard.providers.etcd.state import EtcdStateStore


class LeaseLost(ProviderError):
    """The writer key is no longer this holder's: etcd expired the lease, or another plan
    revoked it. The holder must fence itself now, not at its deadline. `plan`: the state
    document's record of the plan that revoked it, when one did (a switchover's old primary
    hands over instead of stopping at once: agent/planned.py)."""

    def __init__(self, message: str, plan: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.plan = plan


@dataclass(frozen=True, slots=True)
class Holding:
    region: str
    epoch: int
    lease: int
    valid_until: float  # this host's monotonic clock: the last renewal sent + the TTL granted


class WriterLease:
    """Take, renew and release the writer key for one region (its agent's job)."""

    def __init__(self, store: EtcdStateStore, *, ttl_s: int, margin_s: float,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        if margin_s >= ttl_s:
            raise ValueError(f"margin_s ({margin_s}) must be below ttl_s ({ttl_s})")
        self.store = store
        self.ttl_s = ttl_s
        self.margin_s = margin_s
        self.clock = clock
        self.holding: Holding | None = None

    def acquire(self, region: str, epoch: int) -> Holding:
        """Take the writer key for `region` at `epoch`, in one Txn that also checks the state
        document: `region` is the live primary at exactly that epoch and was not revoked, and
        no other holder's key exists (it must have expired or been released first). Raises
        LeaseLost when the arbiter says no."""
        doc, revision = self.store.read_state()
        if int(doc["epoch"]) != epoch or doc["roles"].get(region) != "primary":
            raise LeaseLost(f"{region} is not the primary at epoch {epoch} in etcd (epoch "
                            f"{doc['epoch']}, roles {doc['roles']}); not taking writes")
        if doc.get("revoked") == {"region": region, "epoch": epoch}:
            raise LeaseLost(f"{region}'s write lease was revoked at epoch {epoch}; it takes "
                            "writes again only once a later plan makes it primary")
        held = self.store.writer()
        if held is not None:
            raise LeaseLost(f"the writer key is held by {held.json().get('region')} (lease "
                            f"{held.lease}); waiting for it to be released or to expire")
        sent = self.clock.monotonic()
        lease = self.store.arbiter.grant(self.ttl_s)
        body = json.dumps({"region": region, "epoch": epoch}).encode()
        if not self.store.arbiter.txn(
                f"writer key for {region}",
                {self.store.key("state"): revision, self.store.key("writer"): 0},
                {self.store.key("writer"): body}, lease=lease):
            with contextlib.suppress(ProviderError):
                self.store.arbiter.revoke(lease)
            raise LeaseLost(f"the writer key or the state changed while {region} took it; "
                            "re-read and try again")
        self.holding = Holding(region, epoch, lease, sent + self.ttl_s)
        return self.holding

    def renew(self) -> Holding:
        """Renew the lease; LeaseLost when etcd expired it or a plan revoked this region
        (then it is released at once, so a survivor need not wait out the TTL). A
        ProviderError (etcd unreachable) leaves the deadline where it was."""
        holding = self._held()
        sent = self.clock.monotonic()
        ttl = self.store.arbiter.keepalive(holding.lease)
        if ttl < 0:
            self.holding = None
            raise LeaseLost(f"etcd expired {holding.region}'s write lease")
        doc, _ = self.store.read_state()
        revoked = doc.get("revoked") == {"region": holding.region, "epoch": holding.epoch}
        if revoked or int(doc["epoch"]) != holding.epoch:
            with contextlib.suppress(ProviderError):  # lost either way: the holder fences
                self.release()
            raise LeaseLost(f"{holding.region}'s write lease was revoked (epoch "
                            f"{doc['epoch']}); released", plan=doc.get("plan"))
        self.holding = Holding(holding.region, holding.epoch, holding.lease, sent + ttl)
        return self.holding

    def release(self) -> None:
        """Give the key up now (a planned step-down, or a revoke seen while still connected)."""
        holding, self.holding = self.holding, None
        if holding is not None:
            self.store.arbiter.revoke(holding.lease)

    def fence_deadline(self) -> float | None:
        """When this holder must have stopped writing (monotonic): its deadline less the
        margin. None while it holds nothing."""
        return None if self.holding is None else self.holding.valid_until - self.margin_s

    def may_write(self) -> bool:
        deadline = self.fence_deadline()
        return deadline is not None and self.clock.monotonic() < deadline

    def _held(self) -> Holding:
        if self.holding is None:
            raise LeaseLost("no write lease is held")
        return self.holding
