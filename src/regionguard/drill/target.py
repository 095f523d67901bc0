"""What a drill needs from the world it runs in: `DrillTarget`.

The drill runner, the campaign, its actions and the fault catalog are written against this
interface only, never against a provider, so a world other than the loopback sandbox (a lab of
network-namespace sites, each with its own PID namespace) reuses them by implementing it: its
own status, its own way to find and signal a region's processes, to cut a region off, to hold
and kill the controller, and to repair itself. The sandbox's implementation lives with its
world (`regionguard/worlds/local.py`).

Everything here acts only on processes and rules the world itself started or recorded: a drill
never signals a process it cannot prove is the world's own.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Protocol

from regionguard.config import Topology
from regionguard.orchestrator.ports import DbStatus, Ports


class DrillTarget(Protocol):
    """A running world with its controller (the thing under test), seen and hurt by a drill."""

    @property
    def topology(self) -> Topology: ...

    @property
    def ports(self) -> Ports:
        """The engine's ports for this world: its journal, its state store (live roles, the
        epoch, the running plan) and the front door's canary (`traffic.verify`)."""
        ...

    @property
    def journal_path(self) -> Path:
        """The journal as a file a drill can tail while the controller appends to it."""
        ...

    # -- reading it ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The `status --json` contract (README): regions, databases, processes, front door,
        controller. Raises NotAvailable when nothing is up."""
        ...

    def front_door_url(self) -> str:
        """Where the drill's client sends its load."""
        ...

    def database(self, region: str) -> DbStatus:
        """The region's database now, without asking the other region (it may be dead)."""
        ...

    def orders(self, region: str, prefix: str, timeout_s: float) -> list[tuple[str, int, int]]:
        """(request_id, order id, quantity) of every order whose request_id starts with
        `prefix`, read on `region`'s database; retried within `timeout_s`, then ProviderError."""
        ...

    def timelines(self, region: str) -> tuple[int, dict[int, str]] | None:
        """`region`'s timeline now and where each earlier timeline of its history ended
        (`queries.timeline_history`); None when the world's database has no such history."""
        ...

    def repair(self) -> None:
        """Restart whatever is dead, in its live role (idempotent; never a second primary)."""
        ...

    # -- hurting it ---------------------------------------------------------------------------

    def signal_region(self, region: str, sig: signal.Signals, *, db: bool,
                      apps: bool) -> list[int]:
        """Send `sig` to the region's database processes (postmaster and every child) and/or
        its app processes, found directly rather than through `status` (which waits on dead
        databases: a fault must land when the drill says). Returns the pids signalled."""
        ...

    def signal_pids(self, pids: list[int], sig: signal.Signals) -> list[int]:
        """Send `sig` to pids an earlier `signal_region` returned (to thaw what it froze);
        those already gone are skipped. Returns the pids signalled."""
        ...

    def kill_controller(self) -> int | None:
        """SIGKILL the controller (its supervisor restarts it); its pid, None when none ran."""
        ...

    def check_partition(self) -> None:
        """Raise NotAvailable, saying why, when this world cannot cut a region off here."""
        ...

    def partition(self, region: str) -> str:
        """Cut the region off from the front door, the controller and the other region;
        returns what was done, for the journal."""
        ...

    def unpartition(self) -> str | None:
        """Lift the partition (idempotent); what was done, or None when there was none."""
        ...

    def hold_controller(self, after_step: str, hold_s: float) -> None:
        """Make the controller pause `hold_s` after it finishes `after_step` (it journals
        `paused`), so a drill can kill it at that exact point of a plan."""
        ...

    def release_controller(self) -> None:
        """Undo `hold_controller` (idempotent)."""
        ...
