"""The unit tests' StateStore: `state.json` (live roles, epoch, the current plan's record),
the arbiter of the retired single-host sandbox, kept as the in-memory world's store (fakes.py):
a real compare-and-set, under a file lock, with none of etcd's processes.

Every read-modify-write happens under an exclusive flock on `state.lock`, and the file is
replaced atomically (write + fsync + rename), so a crash mid-write leaves the previous version.
This is the compare-and-set the engine's epoch relies on: "set E+1 if still E, and record the
plan" is one locked update of one file, so no crash can leave the epoch and the plan apart.
A state file that cannot be read or written is a one-line `StateError`, never a traceback, and
is never "repaired" by guessing: an older epoch must not come back.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from regionguard.config import Role
from regionguard.errors import PlanConflict, StateError, UnsafeOperation
from regionguard.orchestrator.plans import Plan
from regionguard.orchestrator.ports import LiveState
from regionguard.orchestrator.records import PlanRecord, PlanStatus

from . import file_state_model as state_model

STATE_FILE = "state.json"
PLAN_FILE = "plan.json"  # where versions before 0.2 kept the plan; read once, then moved
LOCK_FILE = "state.lock"
PLAN_LOCK_FILE = "plan.lock"
SCHEMA_VERSION = 1


def write_json_atomic(path: Path, data: Any) -> None:
    """Write, fsync, rename into place, then fsync the directory: the rename itself is a
    change to the directory, and until that reaches the disk a power loss can bring the old
    file back (an epoch that rolls back)."""
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
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class LocalStateStore:
    """The arbiter of the in-memory world's tests (fakes.py)."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir

    @property
    def path(self) -> Path:
        return self.dir / STATE_FILE

    def exists(self) -> bool:
        return self.path.exists()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            lock = open(self.dir / LOCK_FILE, "a+")  # noqa: SIM115 (held across the yield)
        except OSError as exc:
            raise StateError(f"cannot lock {self.dir / LOCK_FILE}: {exc.strerror}; check the "
                             "state dir's permissions and free space") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror}; check its "
                             "permissions") from None
        except ValueError as exc:
            raise StateError(
                f"{self.path} is not valid JSON ({exc}); nothing was changed. Restore it "
                "from a backup, or stop everything with `regionguard down --purge` and start "
                "afresh") from None
        if not isinstance(data, dict):
            raise StateError(f"{self.path} holds no state object; restore it from a backup")
        try:
            state_model.validate(data)
        except ValueError as exc:
            raise StateError(
                f"{self.path}: {exc}; nothing was changed. Restore it from a backup, or stop "
                "everything with `regionguard down --purge` and start afresh") from None
        if "plan" not in data:
            legacy = self._legacy_plan()
            if legacy is not None:
                data["plan"] = legacy
        return data

    def _legacy_plan(self) -> dict[str, Any] | None:
        try:
            plan: dict[str, Any] = json.loads((self.dir / PLAN_FILE).read_text())
        except (OSError, ValueError):
            return None
        return plan

    @contextlib.contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write under the lock; the dict yielded is saved when the block exits."""
        with self.locked():
            data = self.read()
            yield data
            data["version"] = SCHEMA_VERSION
            try:  # a bug must not write what the next read refuses (a wedged sandbox)
                state_model.validate(data)
            except ValueError as exc:
                raise StateError(f"not saving {self.path}: {exc}; nothing was changed "
                                 "(this is a bug in regionguard: please report it)") from None
            try:
                write_json_atomic(self.path, data)
            except OSError as exc:
                raise StateError(f"cannot write {self.path}: {exc.strerror}; nothing was "
                                 "changed; free space or fix permissions, then retry") from None
            (self.dir / PLAN_FILE).unlink(missing_ok=True)  # moved into state.json

    # -- the StateStore port -----------------------------------------------------------------

    def load(self) -> LiveState:
        data = self.read()
        plan = self._record(data)
        degraded = data.get("sync_degraded") or {}
        return LiveState(
            epoch=int(data.get("epoch", 1)),
            roles={k: Role(v) for k, v in data.get("roles", {}).items()},
            plan=plan if plan is not None and plan.running else None,
            sync_degraded_lsn=int(degraded["since_lsn"]) if "since_lsn" in degraded else None,
        )

    def read_plan(self) -> PlanRecord | None:
        return self._record(self.read())

    def _record(self, data: Mapping[str, Any]) -> PlanRecord | None:
        raw = data.get("plan")
        if raw is None:
            return None
        try:
            return PlanRecord.from_dict(raw)
        except (KeyError, ValueError, TypeError) as exc:
            raise StateError(
                f"{self.path}: field plan: not a plan record ({type(exc).__name__}: {exc}); "
                "nothing was changed. Restore it from a backup, or stop everything with "
                "`regionguard down --purge` and start afresh") from None

    def claim_epoch(self, expected: int, plan: Plan) -> int:
        with self.update() as data:
            current = int(data.get("epoch", 1))
            running = self._record(data)
            if running is not None and running.running:
                if running.id == plan.id:
                    return running.epoch  # our own claim, replayed
                raise PlanConflict(
                    f"plan {running.plan.kind.value} ({running.id}) is already running; "
                    "wait for it or let its runner resume it"
                )
            if current != expected:
                raise PlanConflict(
                    f"epoch moved from {expected} to {current} while planning; re-read the state"
                )
            data["epoch"] = current + 1  # the epoch and the plan: one atomic write
            data["plan"] = PlanRecord(plan, current + 1).to_dict()
            return current + 1

    def save_plan(self, record: PlanRecord) -> None:
        """Only the current plan's record, and a finished one never back to running (as the
        AWS arbiter's conditional update): a runner that lost its plan cannot undo it."""
        with self.update() as data:
            _require_current(data, record.id, PlanStatus.DONE
                             if record.status is PlanStatus.DONE else PlanStatus.RUNNING)
            data["plan"] = record.to_dict()

    def set_roles(self, roles: Mapping[str, Role], plan_id: str | None = None) -> None:
        with self.update() as data:
            if plan_id is not None:
                _require_current(data, plan_id, PlanStatus.RUNNING)
            data["roles"] = {**data.get("roles", {}), **{k: str(v) for k, v in roles.items()}}

    def set_sync_degraded(self, lsn: int | None) -> None:
        with self.update() as data:
            if lsn is None:
                data.pop("sync_degraded", None)
            else:
                data["sync_degraded"] = {"since_lsn": lsn}

    def note_sync_degraded(self, lsn: int) -> int:
        with self.update() as data:
            standing = (data.get("sync_degraded") or {}).get("since_lsn")
            if standing is not None:  # the first degrade point is the one that counts
                return int(standing)
            data["sync_degraded"] = {"since_lsn": lsn}
            return lsn

    def clear_sync_degraded(self, since_lsn: int) -> bool:
        with self.update() as data:
            standing = (data.get("sync_degraded") or {}).get("since_lsn")
            if standing is None or int(standing) != since_lsn:
                return False
            data.pop("sync_degraded", None)
            return True

    def revoke_writer(self, region: str) -> float | None:
        return None  # the front door's `maint` and SIGKILL fence at once; no lease to wait out

    def writer_lease_ended(self, region: str) -> bool:
        return True  # no lease in this world

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

    @contextlib.contextmanager
    def plan_lock_waiting(self, timeout_s: float, doing: str) -> Iterator[None]:
        """The plan lock for a maintenance command (`up`, `down`): waits up to `timeout_s`
        for a running plan to end, then refuses in one line naming it. Holding it, no plan
        can start, and nothing the command does can race one (restart a fenced primary)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self.plan_lock() as held:
                if held:
                    yield
                    return
            if time.monotonic() >= deadline:
                plan = self.read_plan()
                what = (f"plan {plan.plan.kind.value} ({plan.id})"
                        if plan is not None and plan.running else "another command")
                raise UnsafeOperation(
                    f"refusing to {doing}: {what} holds the plan lock after {timeout_s:g} s; "
                    "wait for it to finish (`regionguard events`), then retry")
            time.sleep(0.1)

    def finish_plan(self, plan_id: str, roles: Mapping[str, Role], finished_at: float) -> None:
        with self.update() as data:
            _require_current(data, plan_id, PlanStatus.RUNNING)
            plan = dict(data["plan"])
            plan["status"] = PlanStatus.DONE.value
            plan["finished_at"] = finished_at
            data["plan"] = plan
            data["roles"] = {k: str(v) for k, v in roles.items()}
            data["last_plan"] = plan_id


def _require_current(data: Mapping[str, Any], plan_id: str, status: PlanStatus) -> None:
    """PlanConflict unless `plan_id`'s record is the current one, in `status`."""
    current = data.get("plan") or {}
    if current.get("id") != plan_id:
        raise PlanConflict(f"plan {plan_id} is no longer the current plan "
                           f"({current.get('id') or 'none'} is); not changing its record")
    if current.get("status", "running") != status:
        raise PlanConflict(f"plan {plan_id} is {current.get('status')}, not {status}; "
                           "not changing its record")
