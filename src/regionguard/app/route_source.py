"""The route the front door was last given, read from the sandbox's state store.

A write that comes through the front door carries its fencing token (`X-Regionguard-Epoch`,
`X-Regionguard-Writer`). One that does not (a client calling an app process directly, a script,
a health checker gone wrong) is never waved through: it gets the writer and epoch of the live
route from the state store (`RG_STATE_FILE`), and the database must hold that epoch. A zombie
primary, restarted writable after it was fenced, holds an older epoch and refuses it.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Route:
    writer: str
    epoch: int


class StateFileRoute:
    """Reads `route` from state.json, again only when the file changed (it is replaced
    atomically, so a read never sees half a file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._route: Route | None = None
        self._lock = threading.Lock()

    def current(self) -> Route | None:
        """The live route, or None when there is none (no state, or nothing routed yet)."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_ino)
        with self._lock:
            if stamp != self._seen:
                self._route = self._read()
                self._seen = stamp
            return self._route

    def _read(self) -> Route | None:
        try:
            route = json.loads(self.path.read_text()).get("route") or {}
            return Route(str(route["writer"]), int(route["epoch"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
