"""The app's write lease never outlives what the arbiter guarantees: a confirmation lasts
`lease_s`, or less when the arbiter says its guarantee ends sooner (etcd: the writer key's
TTL left), counted from when the confirming read started."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from regionguard.app.errors import Unavailable
from regionguard.app.lease import LeaseGuard

pytestmark = pytest.mark.unit


@dataclass
class ManualClock:
    now: float = 100.0
    factor: float = 1.0

    def monotonic(self) -> float:
        return self.now

    def monotonic_ns(self) -> int:
        return int(self.now * 1e9)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_confirmation_lasts_no_longer_than_the_arbiters_guarantee() -> None:
    clock = ManualClock()
    guard = LeaseGuard("east", lambda: (7, "east", 1.0), lease_s=3.0, clock=clock)
    assert guard.refresh() is not None
    clock.sleep(0.9)
    view = guard.require_write()
    assert view.epoch == 7 and guard.remaining_s(view) == pytest.approx(0.1)
    clock.sleep(0.2)  # past etcd's TTL left, well within lease_s
    assert guard.holds() is None
    with pytest.raises(Unavailable, match=r"not confirmed for 1\.1 s"):
        guard.require_write()


def test_without_a_guarantee_the_lease_lasts_lease_s() -> None:
    clock = ManualClock()
    guard = LeaseGuard("east", lambda: (7, "east"), lease_s=3.0, clock=clock)
    guard.refresh()
    clock.sleep(2.9)
    assert guard.holds() is not None
    clock.sleep(0.2)
    assert guard.holds() is None
