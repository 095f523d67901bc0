"""The local world's StateStore: `state.json` (live roles, epoch, ports, pids) and `plan.json`.

Every read-modify-write happens under an exclusive flock on `state.lock`, and files are replaced
atomically (write + fsync + rename), so a crash mid-write leaves the previous version. This is the
compare-and-set the engine's epoch relies on: "set E+1 if still E" is one locked update.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from regionguard.config import Role
from regionguard.errors import PlanConflict
from regionguard.orchestrator.ports import LiveState

STATE_FILE = "state.json"
PLAN_FILE = "plan.json"
LOCK_FILE = "state.lock"
PLAN_LOCK_FILE = "plan.lock"
SCHEMA_VERSION = 1


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class LocalStateStore:
    """State of one sandbox, shared by the CLI, the controller and the supervisor."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir

    @property
    def path(self) -> Path:
        return self.dir / STATE_FILE

    def exists(self) -> bool:
        return self.path.exists()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / LOCK_FILE, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return data

    @contextlib.contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write under the lock; the dict yielded is saved when the block exits."""
        with self.locked():
            data = self.read()
            yield data
            data["version"] = SCHEMA_VERSION
            write_json_atomic(self.path, data)

    # -- the StateStore port -----------------------------------------------------------------

    def load(self) -> LiveState:
        data = self.read()
        plan = self.read_plan()
        return LiveState(
            epoch=int(data.get("epoch", 1)),
            roles={k: Role(v) for k, v in data.get("roles", {}).items()},
            plan=plan if plan and plan.get("status") == "running" else None,
        )

    def read_plan(self) -> dict[str, Any] | None:
        try:
            plan: dict[str, Any] = json.loads((self.dir / PLAN_FILE).read_text())
        except FileNotFoundError:
            return None
        return plan

    def claim_epoch(self, expected: int, plan: Mapping[str, Any]) -> int:
        with self.update() as data:
            current = int(data.get("epoch", 1))
            running = self.read_plan()
            if running and running.get("status") == "running":
                if running.get("id") == plan["id"]:
                    return int(running["epoch"])  # our own claim, replayed
                raise PlanConflict(
                    f"plan {running.get('name')} ({running.get('id')}) is already running; "
                    "wait for it or let the controller resume it"
                )
            if current != expected:
                raise PlanConflict(
                    f"epoch moved from {expected} to {current} while planning; re-read the state"
                )
            data["epoch"] = current + 1
            write_json_atomic(
                self.dir / PLAN_FILE, {**plan, "epoch": current + 1, "status": "running"}
            )
            return current + 1

    def save_plan(self, plan: Mapping[str, Any]) -> None:
        with self.locked():
            write_json_atomic(self.dir / PLAN_FILE, dict(plan))

    def set_roles(self, roles: Mapping[str, Role], plan_id: str | None = None) -> None:
        with self.update() as data:
            data["roles"] = {**data.get("roles", {}), **{k: str(v) for k, v in roles.items()}}

    def revoke_writer(self, region: str) -> float | None:
        return None  # the front door's `maint` and SIGKILL fence at once; no lease to wait out

    @contextlib.contextmanager
    def plan_lock(self) -> Iterator[bool]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / PLAN_LOCK_FILE, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def finish_plan(self, plan_id: str, roles: Mapping[str, Role]) -> None:
        with self.update() as data:
            plan = self.read_plan() or {}
            if plan.get("id") == plan_id:
                plan["status"] = "done"
                write_json_atomic(self.dir / PLAN_FILE, plan)
            data["roles"] = {k: str(v) for k, v in roles.items()}
            data["last_plan"] = plan_id
