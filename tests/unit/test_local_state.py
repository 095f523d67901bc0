"""The local state store under failure: the epoch claim is one atomic write (a crash leaves
neither half), a corrupt or unwritable state is one clear error and nothing is changed, and a
backend error inside a local provider reaches the engine as a ProviderError it can retry."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psycopg
import pytest

from regionguard.errors import ProviderError, StateError
from regionguard.orchestrator.records import PlanRecord, PlanStatus
from regionguard.providers.local import boundary
from regionguard.providers.local.state import LocalStateStore

from ..plan_helpers import bare_plan

pytestmark = pytest.mark.unit


def store(tmp_path: Path) -> LocalStateStore:
    s = LocalStateStore(tmp_path / "state")
    with s.update() as data:
        data.update({"epoch": 1, "roles": {"east": "primary", "west": "standby"}})
    return s


def test_the_epoch_and_the_plan_are_claimed_in_one_write(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    s = store(tmp_path)
    before = s.path.read_text()

    def crash(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)  # the process dies (or the disk fills) mid-claim
    with pytest.raises(StateError, match="No space left on device; nothing was changed"):
        s.claim_epoch(1, bare_plan("failover-a", "failover"))
    monkeypatch.undo()
    assert s.path.read_text() == before  # neither the epoch nor the plan moved
    assert s.claim_epoch(1, bare_plan("failover-a", "failover")) == 2
    data = json.loads(s.path.read_text())
    assert data["epoch"] == 2 and data["plan"]["epoch"] == 2  # together, in one file
    assert not (s.dir / "plan.json").exists()


def test_a_corrupt_state_file_is_one_line_and_is_never_guessed_back(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.path.write_text('{"epoch": 7, "roles": ')  # torn by hand (a crash cannot: atomic replace)
    for read in (s.load, s.read_plan, lambda: s.claim_epoch(7, bare_plan("x"))):
        with pytest.raises(StateError) as info:
            read()
        message = str(info.value)
        assert "not valid JSON" in message and "\n" not in message
    assert s.path.read_text() == '{"epoch": 7, "roles": '  # untouched, for a human to fix


def test_a_state_dir_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    blocked = tmp_path / "state"
    blocked.mkdir()
    (blocked / "state.lock").mkdir()  # cannot be opened for writing, even by root
    with pytest.raises(StateError, match=r"cannot lock .*state\.lock"), \
            LocalStateStore(blocked).update():
        pass


def test_backend_errors_of_local_providers_become_provider_errors() -> None:
    @boundary.provider_boundary
    class Flaky:
        def status(self) -> None:
            raise psycopg.OperationalError("connection to server at 127.0.0.1 failed\nmore")

        def scale(self) -> None:
            raise OSError(24, "Too many open files")

    with pytest.raises(ProviderError, match=r"Flaky.status: OperationalError: connection"):
        Flaky().status()
    with pytest.raises(ProviderError, match="Too many open files"):
        Flaky().scale()


@pytest.mark.parametrize(("edit", "field"), [
    (lambda s: s.update(epoch="three"), "epoch"),
    (lambda s: s.update(roles={"east": "primary", "west": "primary"}), "roles"),
    (lambda s: s["ports"]["regions"]["east"].pop("db"), "ports.regions.east.db"),
    (lambda s: s["processes"]["apps"]["east"].update({"1": {"pid": "x"}}),
     "processes.apps.east.1.pid"),
])
def test_a_state_file_that_parses_but_is_not_a_sandbox_state_names_the_field(
        tmp_path: Path, edit: Any, field: str) -> None:
    store = LocalStateStore(tmp_path)
    state = {"epoch": 2, "roles": {"east": "primary", "west": "standby"},
             "ports": {"frontdoor": 8000, "regions": {"east": {"db": 5432, "slots": [8001]},
                                                      "west": {"db": 5433, "slots": [8002]}}},
             "processes": {"apps": {"east": {"1": {"pid": 10, "started_at": 1.5}}}}}
    store.path.write_text(json.dumps(state))
    assert store.load().epoch == 2  # the well-formed file reads
    edit(state)
    store.path.write_text(json.dumps(state))
    with pytest.raises(StateError, match=f"field {field}") as caught:
        store.read()
    assert "\n" not in str(caught.value) and "nothing was changed" in str(caught.value)


def test_a_change_the_next_read_would_refuse_is_never_saved(tmp_path: Path) -> None:
    s = store(tmp_path)
    before = s.path.read_text()
    with (pytest.raises(StateError, match=r"not saving .*field epoch.*nothing was changed"),
          s.update() as data):
        data["epoch"] = "two"  # a bug in a caller
    assert s.path.read_text() == before
    assert s.load().epoch == 1


def test_plan_records_change_only_for_the_current_plan_and_never_come_back_to_life(
        tmp_path: Path) -> None:
    """The port's contract, as the AWS arbiter keeps it: a runner that lost its plan (a
    newer plan claimed the epoch) cannot overwrite its record or move the roles, and a
    finished plan is never saved back to running."""
    from regionguard.config import Role
    from regionguard.errors import PlanConflict

    s = store(tmp_path)
    s.claim_epoch(1, bare_plan("p1", "failover"))
    p1 = bare_plan("p1")
    s.save_plan(PlanRecord(p1, 2, done=(0,)))
    s.set_roles({"west": Role.PRIMARY, "east": Role.STANDBY}, plan_id="p1")
    s.finish_plan("p1", {"west": Role.PRIMARY, "east": Role.STANDBY}, 0.0)
    with pytest.raises(PlanConflict, match="p1 is done, not running"):
        s.save_plan(PlanRecord(p1, 2))  # a stalled runner wakes
    with pytest.raises(PlanConflict, match="p1 is done"):
        s.set_roles({"east": Role.PRIMARY}, plan_id="p1")
    s.claim_epoch(2, bare_plan("p2", "failback"))
    with pytest.raises(PlanConflict, match=r"p1 is no longer the current plan \(p2 is"):
        s.save_plan(PlanRecord(p1, 2, PlanStatus.DONE))  # nor touch a newer plan's record
    current = s.read_plan()
    assert current is not None and current.id == "p2" and s.load().roles["west"] is Role.PRIMARY
    s.set_roles({"west": Role.PRIMARY}, plan_id=None)  # without a plan: always (repair)


def test_the_state_file_rename_is_made_durable_with_its_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rename is a change to the directory: until the directory is fsynced, a power loss
    can bring the old state.json (an older epoch) back."""
    s = store(tmp_path)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    s.claim_epoch(1, bare_plan("p1", "failover"))
    assert str(s.dir) in synced  # the directory, after the file
    assert synced.index(str(s.dir)) > next(i for i, p in enumerate(synced)
                                           if p.startswith(str(s.dir / ".state.json")))
