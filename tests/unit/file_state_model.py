"""The schema of `state.json`, typed: what the sandbox, the front door, the app processes and
the engine keep there, and what each may rely on finding.

`LocalStateStore.read` validates every file against it, so a file that parses but is not a
sandbox's state (a field missing or of the wrong type, by a hand edit or another version) is a
one-line error naming the field, never a KeyError three modules away. The modules read their
parts through the typed views (`ports_of`, `processes_of`, `route_of`); they still write the
plain dict, which this model accepts unchanged (unknown keys are kept: forward compatible).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from regionguard.config import Role


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class RegionPorts(_Part):
    db: int = Field(ge=1, le=65535)
    slots: list[int] = Field(default_factory=list)  # app process slots, 1-based by position


class PortMap(_Part):
    frontdoor: int = Field(ge=1, le=65535)
    regions: dict[str, RegionPorts]


class ProcessEntry(_Part):
    pid: int = Field(ge=1)
    started_at: float  # seconds after boot (proctrack.ProcessRef): with the pid, this process


class Processes(_Part):
    apps: dict[str, dict[str, ProcessEntry]] = Field(default_factory=dict)  # region -> slot
    haproxy: ProcessEntry | None = None
    supervisor: ProcessEntry | None = None


class Route(_Part):
    weights: dict[str, int] = Field(default_factory=dict)
    writer: str | None = None
    epoch: int | None = None


class SyncDegraded(_Part):
    since_lsn: int = Field(ge=0)


class SandboxState(_Part):
    """A sandbox's state.json. Every field is optional until `up` has written it."""

    version: int | None = None
    app: str | None = None
    epoch: int = Field(1, ge=1)
    roles: dict[str, Role] = Field(default_factory=dict)
    ports: PortMap | None = None
    processes: Processes = Field(default_factory=Processes)
    route: Route | None = None
    plan: dict[str, Any] | None = None
    sync_degraded: SyncDegraded | None = None
    last_plan: str | None = None

    @field_validator("roles")
    @classmethod
    def _one_primary(cls, roles: dict[str, Role]) -> dict[str, Role]:
        primaries = [r for r, role in roles.items() if role is Role.PRIMARY]
        if roles and len(primaries) != 1:
            raise ValueError(f"exactly one region must be primary, found {primaries or 'none'}")
        return roles


def validate(data: Mapping[str, Any]) -> SandboxState:
    """The typed view of `data`; ValueError with one line naming the first bad field."""
    try:
        return SandboxState.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ValueError(f"field {where}: {first['msg']}") from None


def ports_of(state: Mapping[str, Any]) -> PortMap:
    ports = validate(state).ports
    if ports is None:
        raise ValueError("field ports: missing (the sandbox was never brought up)")
    return ports


def processes_of(state: Mapping[str, Any]) -> Processes:
    return validate(state).processes


def route_of(state: Mapping[str, Any]) -> Route:
    return validate(state).route or Route()
