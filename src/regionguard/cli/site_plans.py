"""`switchover` and `failback` on the self-managed sites: asked in etcd, run by the target's
agent (agent/planned.py), followed here until its answer.

No command runs a plan's steps itself on the sites: each agent acts on its own site only. The
command asks, shows the plan's steps as the target's agent reports them in etcd, and prints
the outcome, or says in one line why there was none (refused, failed, or no agent took it).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from regionguard.agent.site_status import person_site
from regionguard.cli.common import out
from regionguard.config import Topology
from regionguard.errors import (
    NotAvailable,
    RegionGuardError,
    UnsafeOperation,
    UsageError,
)
from regionguard.providers.etcd.requests import SiteRequests
from regionguard.providers.etcd.state import EtcdStateStore

POLL_S = 0.2
TAKEN_WITHIN_S = 10.0  # an agent looks every health interval: a request waits this long
REFUSED_RETRY_S = 1.0  # a failback's switchover asked again while the standby catches up


def sites_store(topology: Topology, command: str) -> EtcdStateStore:
    """The sites' arbiter, as a person's command on this host reaches it (with the identity of
    the site whose TLS files are here), or one line on why there is none."""
    try:
        return person_site(topology).store()
    except UsageError as exc:
        raise UsageError(f"{command}: {exc}") from None


def _check_target(topology: Topology, store: EtcdStateStore, to: str) -> int:
    if to not in topology.regions:
        raise UsageError(f"--to {to}: not a region; choose one of {', '.join(topology.regions)}")
    live = store.load()
    if live.plan is not None:
        raise UnsafeOperation(f"plan {live.plan.plan.kind.value} ({live.plan.id}) is running; "
                              "wait for it to end (the agents' logs say how it goes)")
    if live.primary == to:
        raise UsageError(f"{to} is already the primary; nothing to switch over")
    return live.epoch


def switchover(topology: Topology, to: str, by: str, wait_s: float) -> dict[str, Any]:
    """Ask `to`'s agent for a switchover and follow it to its answer."""
    store = sites_store(topology, "switchover")
    epoch = _check_target(topology, store, to)
    answer = _ask_and_follow(store, to, by, epoch, wait_s)
    if answer["outcome"] == "refused":
        raise UnsafeOperation(f"switchover to {to} refused by its agent: {answer['detail']}")
    if answer["outcome"] != "done":
        raise UnsafeOperation(f"switchover to {to} {answer['outcome']}: {answer['detail']} (a "
                              "plan that failed before its promote leaves the old primary "
                              "fenced: the agents then fail over to the standby)")
    return answer


def failback(topology: Topology, by: str, wait_s: float) -> dict[str, Any]:
    """Home again: its agent rebuilds it as a standby of the live primary (`rejoin`), then a
    switchover to it, asked again while it catches up (the switchover refuses a standby that
    does not stream, or lags)."""
    store = sites_store(topology, "failback")
    home = topology.home_primary
    live = store.load()
    if live.primary == home:
        other = topology.other_region(home)
        raise UsageError(f"nothing to fail back: {home} is the primary; to rebuild {other} as "
                         f"its standby, run `regionguard rejoin {other}`")
    _check_target(topology, store, home)
    store.request_rejoin(home, by, live.epoch)
    out.print(f"{home}: asked its agent to rebuild it as a standby of {live.primary} "
              "(pg_rewind, else a copy), then to switch over to it", highlight=False)
    deadline = time.monotonic() + wait_s
    started = time.monotonic()
    while store.rejoin_requested(home) is not None:  # its agent clears it once a standby
        if time.monotonic() >= deadline:
            raise NotAvailable(f"{home}'s agent has not rebuilt it in {wait_s:g} s; see its "
                               "log (is it running?)")
        time.sleep(POLL_S)
    out.print(f"  {home} is a standby of {live.primary} "
              f"({time.monotonic() - started:.1f} s)", highlight=False)
    while True:
        answer = _ask_and_follow(store, home, by, live.epoch, deadline - time.monotonic())
        if answer["outcome"] == "done":
            return answer
        left = deadline - time.monotonic()
        if answer["outcome"] != "refused" or left < REFUSED_RETRY_S:
            raise UnsafeOperation(f"failback to {home}: {answer['outcome']}: "
                                  f"{answer['detail']}")
        time.sleep(REFUSED_RETRY_S)  # the standby is still being rebuilt or catching up


def _ask_and_follow(store: EtcdStateStore, to: str, by: str, epoch: int,
                    wait_s: float) -> dict[str, Any]:
    requests = SiteRequests(store)
    ask = requests.ask("switchover", to, by, epoch)
    try:
        return _follow(store, requests, ask.id, to, wait_s)
    finally:  # answered, or given up on (Ctrl-C too): never left to run later
        with contextlib.suppress(RegionGuardError):
            requests.take(ask.id)


def _follow(store: EtcdStateStore, requests: SiteRequests, ask_id: str, to: str,
            wait_s: float) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + max(wait_s, TAKEN_WITHIN_S)
    shown: set[str] = set()
    while True:
        answer = requests.answered(ask_id)
        if answer is not None:
            return answer
        record = store.read_plan()
        if record is not None and record.running:
            for index in sorted(record.done):
                name = record.plan.steps[index].name
                if name not in shown:
                    out.print(f"  {name} done ({time.monotonic() - started:.1f} s)",
                              highlight=False)
                    shown.add(name)
        elif time.monotonic() - started > TAKEN_WITHIN_S and requests.take(ask_id):
            raise NotAvailable(f"{to}'s agent did not take the switchover request in "
                               f"{TAKEN_WITHIN_S:g} s; is it running? (`systemctl status "
                               "regionguard-agent` there, or `regionguard lab status`)")
        if time.monotonic() >= deadline:
            raise NotAvailable(f"no answer from {to}'s agent in {wait_s:g} s; the plan may "
                               "still be running: see `regionguard lab status` or its journal")
        time.sleep(POLL_S)
