"""What a world declares: `World`, and how its drills run (`LabDrills`, `EmulatedDrills`).

A world is where the engine's ports lead: the loopback sandbox, AWS, the emulated AWS (and, to
come, a lab of network-namespace sites). The CLI asks the world it was given with `--world`
instead of comparing names, so a world added here is a world every command knows about, and a
command a world lacks is refused in one line naming the worlds that have it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from regionguard.config import Topology
from regionguard.orchestrator.approval import Approvals
from regionguard.orchestrator.ports import Ports


@dataclass(frozen=True, slots=True)
class LabDrills:
    """Drills on self-managed sites this machine runs: the sandbox's (`regionguard up`) or a
    lab's (`--lab DIR`), through lab/drill.py: the fault hits a site, the agents heal it."""

    faults: Mapping[str, str]  # name -> what it does (`drill --list`)


@dataclass(frozen=True, slots=True)
class EmulatedDrills:
    """Drills that bring a whole emulated world up for each drill and tear it down after
    (emulated/drill.py): the fault hits a failure domain, not a process."""

    faults: Mapping[str, str]  # name -> what it does (`drill --list`)


Drills = LabDrills | EmulatedDrills


class World(Protocol):
    """One world: its wiring, its status, where approvals wait, and what runs in it."""

    @property
    def name(self) -> str:
        """What `--world` takes."""
        ...

    @property
    def summary(self) -> str:
        """A few words for `--world`'s help."""
        ...

    @property
    def commands(self) -> frozenset[str]:
        """The commands that run in this world; any other is refused (exit 2)."""
        ...

    @property
    def examples(self) -> Mapping[str, str]:
        """command -> how it is typed in this world, when the bare name would not run
        (`backup` -> `backup status`): shown when another world's refusal points here."""
        ...

    @property
    def drills(self) -> Drills | None:
        """How drills run here; None when they do not."""
        ...

    def build_ports(self, topology: Topology) -> Ports:
        """The world's one wiring function (the guard's, a person's command's, `events`')."""
        ...

    def engine_ports(self, topology: Topology) -> Ports:
        """The ports for a person's plan or report: exit 4 (NotAvailable) when there is
        nothing to act on (no sandbox) or the world's extra is not installed."""
        ...

    def status(self, topology: Topology) -> dict[str, Any]:
        """The world's status as a JSON-able dict; changes nothing."""
        ...

    def approvals(self, topology: Topology) -> Approvals:
        """Where an automatic failover waits for a person (`approve`, `reject`)."""
        ...
