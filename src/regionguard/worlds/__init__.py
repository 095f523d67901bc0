"""The registry of worlds (`--world`): each declares its wiring, status, approvals store, the
commands it runs and how its drills run (worlds/world.py); the CLI asks here, never compares
world names."""

from __future__ import annotations

from regionguard.errors import UsageError
from regionguard.worlds.aws import AwsWorld
from regionguard.worlds.aws_emulated import EmulatedAwsWorld
from regionguard.worlds.local import LocalWorld
from regionguard.worlds.world import Drills, EmulatedDrills, LabDrills, World

__all__ = ["DEFAULT", "Drills", "EmulatedDrills", "LabDrills", "World", "get", "names",
           "refusal", "running"]

REGISTRY: dict[str, World] = {w.name: w for w in (LocalWorld(), AwsWorld(), EmulatedAwsWorld())}
DEFAULT = "local"


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get(name: str) -> World:
    """The world `--world` names; UsageError listing the worlds when there is none."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(f"--world: {name!r} is not a world; use {', '.join(REGISTRY)}") from None


def running(command: str) -> list[World]:
    """The worlds `command` runs in, in registry order."""
    return [w for w in REGISTRY.values() if command in w.commands]


def refusal(world: World, command: str) -> str | None:
    """None when `command` runs in `world`; else the one line that says where it runs."""
    if command in world.commands:
        return None
    others = running(command)
    line = (f"`{command}` is not available with --world {world.name}; it runs with: "
            f"{', '.join(w.name for w in others) or 'no world'}")
    if len(others) == 1 and command in others[0].examples:
        line += f" (`regionguard --world {others[0].name} {others[0].examples[command]}`)"
    return line
