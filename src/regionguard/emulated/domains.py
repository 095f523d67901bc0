"""Failure domains: which Region is out, cut off, or without its control plane, and what that
means for one request from a caller to a target.

- `region-outage`: the Region is gone, control and data planes alike, global services homed
  there included: every request to it fails (refused or timing out, chosen per fault), and its
  own processes make no calls either.
- `partition`: the Region runs and answers the internet, but no packet crosses between it and
  the other Regions (both directions); within the Region calls work.
- `control-plane-outage`: mutating control-plane calls to the Region fail (503); reads and data
  planes (DynamoDB items, CloudWatch metrics, SNS publish, app traffic) work.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum

INTERNET = "internet"  # clients, Route 53's health checkers: outside every Region


class FaultKind(StrEnum):
    REGION_OUTAGE = "region-outage"
    PARTITION = "partition"
    CONTROL_PLANE_OUTAGE = "control-plane-outage"


class FailMode(StrEnum):
    REFUSED = "refused"  # connection refused (or reset on an open connection)
    TIMEOUT = "timeout"  # accepted, never answered: the caller's read timeout fires
    ERROR = "error"  # an AWS error response (503 ServiceUnavailable)


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    region: str
    mode: FailMode
    at: float  # world time it began


@dataclass(frozen=True, slots=True)
class Block:
    mode: FailMode
    reason: str


class FailureDomains:
    def __init__(self, sites: tuple[str, ...]) -> None:
        self.sites = sites
        self._faults: dict[str, Fault] = {}
        self._lock = threading.Lock()

    def inject(self, fault: Fault) -> None:
        if fault.region not in self.sites:
            raise ValueError(f"{fault.region} is not one of {', '.join(self.sites)}")
        with self._lock:
            self._faults[fault.region] = fault

    def heal(self, region: str | None = None) -> None:
        with self._lock:
            if region is None:
                self._faults.clear()
            else:
                self._faults.pop(region, None)

    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults.values())

    def _kind(self, region: str) -> Fault | None:
        return self._faults.get(region)

    def is_down(self, region: str) -> bool:
        f = self._kind(region)
        return f is not None and f.kind is FaultKind.REGION_OUTAGE

    def link_ok(self, a: str, b: str) -> bool:
        """Can a packet go between `a` and `b` (Regions, or the internet)?"""
        if a == b:
            return not self.is_down(a)
        if self.is_down(a) or self.is_down(b):
            return False
        if INTERNET in (a, b):
            return True
        return not any((f := self._kind(r)) is not None and f.kind is FaultKind.PARTITION
                       for r in (a, b))

    def check(self, caller: str, target: str, control_mutation: bool) -> Block | None:
        """Why a request from `caller` to `target` fails, or None when it goes through."""
        target_fault, caller_fault = self._kind(target), self._kind(caller)
        if target_fault is not None and target_fault.kind is FaultKind.REGION_OUTAGE:
            return Block(target_fault.mode, f"{target} is out")
        if caller_fault is not None and caller_fault.kind is FaultKind.REGION_OUTAGE:
            return Block(caller_fault.mode, f"caller {caller} is out")
        if not self.link_ok(caller, target):
            fault = target_fault or caller_fault
            return Block(fault.mode if fault else FailMode.TIMEOUT,
                         f"{caller} and {target} are partitioned")
        if (control_mutation and target_fault is not None
                and target_fault.kind is FaultKind.CONTROL_PLANE_OUTAGE):
            return Block(FailMode.ERROR, f"{target}'s control plane is out")
        return None

    def quorum(self, replica: str) -> bool:
        """An MRSC replica serves writes and strong reads only while it reaches one more of
        the three sites (a replica or the witness)."""
        return any(self.link_ok(replica, other) for other in self.sites if other != replica)
