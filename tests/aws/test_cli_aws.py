"""`regionguard --world aws` against the in-process moto estate, through the Typer app and the
world registry end to end: a person answers the failover that waits in the arbiter with
`approve` or `reject` (the documentation shows both; the CLI used to refuse them), reads the plan's
report, and a command the AWS world lacks is refused in one line naming the world that has it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("moto", reason="the aws extra is not installed")

from typer.testing import CliRunner, Result

from regionguard.cli import app
from regionguard.config import load_topology

from .estate import EAST, WEST, alarm_sns_event
from .test_failover_lambda import WITNESS, World, make_world, snapshot

pytestmark = pytest.mark.aws

REPO = Path(__file__).resolve().parents[2]


def write_config(world: World, folder: Path) -> Path:
    """The estate's topology as the file a person passes with -c (the example file, with
    manual approval and the estate's hosted zone), checked to be the one the guards run."""
    text = (REPO / "regionguard.toml").read_text()
    for old, new in (("[failover]\n", '[failover]\napproval = "manual"\n'),
                     ('hosted_zone_id = "Z0000000000000"',
                      f'hosted_zone_id = "{world.estate.zone_id}"')):
        assert old in text, old
        text = text.replace(old, new)
    config = folder / "regionguard.toml"
    config.write_text(text)
    mine, theirs = load_topology(config), world.estate.topology
    assert mine.model_dump(exclude={"state_dir"}) == theirs.model_dump(exclude={"state_dir"})
    return config


def rg(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["-c", str(config), "--world", "aws", *args])


def waiting_plan(world: World, config: Path) -> str:
    """The primary's endpoint dies, both outside vantage points agree, and the standby's guard
    opens an approval request instead of failing over; `status` shows it."""
    world.apps.up[EAST] = False
    world.seed_down(WITNESS, 3)
    world.seed_down(WEST, 2)
    result = world.run_in(WEST, alarm_sns_event())
    assert result["cycle"] == "down_seen" and "approval" in result["detail"], result
    status = rg(config, "status")
    assert status.exit_code == 0, status.output
    waiting = json.loads(status.stdout)["awaiting_approval"]
    assert (waiting["source"], waiting["target"]) == ("east", "west"), waiting
    return str(waiting["plan_id"])


def test_aws_approve_answers_the_arbiter_and_the_guard_runs_that_plan(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with make_world(monkeypatch, failover={"approval": "manual"}) as world:
        config = write_config(world, tmp_path)
        plan_id = waiting_plan(world, config)

        refused = rg(config, "failback", "--yes")
        assert refused.exit_code == 2
        assert refused.stderr.strip().splitlines() == [
            "error: `failback` is not available with --world aws; it runs with: local"]

        approved = rg(config, "approve", plan_id, "--by", "ada@ops")
        assert approved.exit_code == 0, approved.output
        assert f"approved {plan_id}" in approved.stdout
        again = rg(config, "approve", plan_id)
        assert again.exit_code == 2 and "already approved by ada@ops" in again.stderr, again.output
        assert snapshot(world.estate)["epoch"] == 1  # a person's answer runs nothing by itself

        world.seed_down(WITNESS, 4)
        world.seed_down(WEST, 3)
        world.monkeypatch.setenv("RG_GUARD_RUN_S", "1")
        ran = world.run_in(WEST, {"regionguard": "guard"})
        assert ran["cycle"] == "failover" and ran["outcome"]["result"] == "done", ran
        assert ran["outcome"]["plan"] == plan_id
        assert snapshot(world.estate)["writer"] == "west"

        report = rg(config, "report", plan_id, "--json")
        assert report.exit_code == 0, report.output
        data = json.loads(report.stdout)
        assert data["outcome"] == "done" and data["target"] == "west", data
        assert any(a.get("by") == "ada@ops" for a in data["approvals"]), data["approvals"]


def test_aws_reject_answers_the_arbiter_and_nothing_runs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with make_world(monkeypatch, failover={"approval": "manual"}) as world:
        config = write_config(world, tmp_path)
        plan_id = waiting_plan(world, config)
        unknown = rg(config, "reject", "no-such-plan")
        assert unknown.exit_code == 2 and f"(waiting: {plan_id})" in unknown.stderr

        rejected = rg(config, "reject", plan_id, "--by", "ada@ops")
        assert rejected.exit_code == 0, rejected.output
        assert f"rejected {plan_id}" in rejected.stdout

        world.seed_down(WITNESS, 4)
        world.seed_down(WEST, 3)
        world.monkeypatch.setenv("RG_GUARD_RUN_S", "1")
        ran = world.run_in(WEST, {"regionguard": "guard"})
        assert ran["cycle"] != "failover", ran
        after = snapshot(world.estate)
        assert after["epoch"] == 1 and after["writer"] != "west", after
