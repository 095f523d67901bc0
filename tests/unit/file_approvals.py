"""Approval requests of a local sandbox: `<state>/approval.json`, changed under a file lock
(the guard opens and closes it, a person's `approve`/`reject` answers it)."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from regionguard.orchestrator.approval import Outcome, answered, defaulted

from .file_state import write_json_atomic


class FileApprovals:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "approval.json"
        self.lock_path = state_dir / "approval.lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def pending(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def open(self, request: Mapping[str, Any]) -> bool:
        with self._locked():
            if self.pending() is not None:
                return False
            write_json_atomic(self.path, dict(request))
            return True

    def decide(self, plan_id: str, outcome: Outcome, by: str, at: float) -> dict[str, Any]:
        with self._locked():
            request = answered(self.pending(), plan_id, outcome, by, at, "regionguard status")
            write_json_atomic(self.path, request)
            return request

    def resolve(self, now: float, default: Literal["approve", "reject"]
                ) -> dict[str, Any] | None:
        with self._locked():
            request = self.pending()
            decided = defaulted(request, now, default) if request is not None else None
            if decided is None:
                return request
            write_json_atomic(self.path, decided)
            return decided

    def mark_handled(self) -> None:
        with self._locked():
            request = self.pending()
            if request is not None and request.get("decision"):
                request["decision"]["handled"] = True
                write_json_atomic(self.path, request)

    def close(self) -> None:
        with self._locked():
            self.path.unlink(missing_ok=True)
