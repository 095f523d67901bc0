"""A manual-approval failover on a real sandbox: the controller stops after the verdict and
waits; `regionguard approve` runs exactly the plan it showed, and its execution report names
who approved it. (Rejection, expiry and the anti-flap delay: tests/unit/test_ops.py.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .sandbox_helpers import (
    cli,
    kill_region,
    peek_status,
    running_sandbox,
    state_dir,
    status,
    wait_for,
    write_topology,
)

pytestmark = pytest.mark.local


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    with running_sandbox(tmp_path, **{'mode = "automatic"': 'mode = "automatic"\n'
                                       'approval = "manual"\napproval_timeout_s = 120'}) as path:
        yield path


def test_a_manual_approval_failover_waits_then_runs_on_approve(config: Path) -> None:
    kill_region(config, "east")
    wait_for("the approval request",
             lambda: peek_status(config)["awaiting_approval"] is not None)
    waiting = status(config)["awaiting_approval"]
    assert (waiting["kind"], waiting["target"]) == ("failover", "west")
    assert "regionguard approve" in cli(config, "status").stdout
    # nothing ran while it waits: east is still the live primary, the epoch unchanged
    now = status(config)
    assert now["epoch"] == 1 and now["regions"][0]["role"] == "primary"
    refused = cli(config, "approve", "failover-nope", check=False)
    assert refused.returncode != 0 and "no failover waits for approval" in refused.stderr

    cli(config, "approve", waiting["plan_id"], "--by", "ada@ops")
    wait_for("the approved failover", lambda: peek_status(config)["epoch"] == 2)
    wait_for("the request to close", lambda: peek_status(config)["awaiting_approval"] is None)
    written = state_dir(config) / "reports" / f"{waiting['plan_id']}.json"
    wait_for("the plan's execution report", written.exists)
    report = json.loads(written.read_text())
    assert report["outcome"] == "done" and report["target"] == "west"
    assert [(a["outcome"], a.get("by")) for a in report["approvals"]] == [
        ("requested", None), ("approved", "ada@ops")]


@pytest.fixture
def manual_mode(tmp_path: Path) -> Iterator[Path]:
    path = write_topology(tmp_path, **{'mode = "automatic"': 'mode = "manual"'})
    cli(path, "up", "--embedded")
    try:
        yield path
    finally:
        cli(path, "down", "--purge", check=False)


def test_a_graceful_switchover_that_cannot_finish_runs_ungracefully_on_request(
        manual_mode: Path) -> None:
    config = manual_mode  # the controller only alerts: a person decides
    kill_region(config, "east")
    graceful = cli(config, "switchover", "--to", "west", "--yes", check=False)
    assert graceful.returncode != 0 and status(config)["epoch"] == 1  # it cannot drain east
    done = cli(config, "switchover", "--to", "west", "--ungraceful", "--by", "ada@ops", "--yes",
               timeout=240)
    after = status(config)
    assert after["epoch"] == 2
    assert next(r for r in after["regions"] if r["name"] == "west")["role"] == "primary"
    plan_id = after["last_failover"]["plan_id"]
    # the plan's id, which `report` needs, at the end of the command and in `status`
    assert f"plan {plan_id}: its steps, RTO and trigger with `regionguard report {plan_id}`" \
        in done.stdout, done.stdout
    assert f"`regionguard report {plan_id}`" in cli(config, "status").stdout
    report = json.loads((state_dir(config) / "reports" / f"{plan_id}.json").read_text())
    assert report["kind"] == "failover" and report["asked_by"] == ["ada@ops"]
    assert report["reason"] == "ungraceful switchover to west, asked by ada@ops"
