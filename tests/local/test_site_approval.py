"""A person in the loop on the self-managed sites (`failover.approval = "manual"`): the sandbox's
sites (`regionguard up`), east's site killed. The failover target's agent opens one request in
etcd instead of failing over; `status` shows it, `reject` of another plan id is refused in one
line, `approve` lets west's agent run the plan, and its report says who approved it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from regionguard.agent.site import Site
from regionguard.cli import app
from regionguard.lab.lab import Lab
from regionguard.lab.layout import sample_topology

from .sandbox_helpers import wait_for

pytestmark = [pytest.mark.local, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Lab]]:
    root = tmp_path_factory.mktemp("approval")
    config = root / "topology.toml"
    config.write_text(f'state_dir = "{root / "state"}"\n' + sample_topology("sync").replace(
        'mode = "automatic"\n', 'mode = "automatic"\napproval = "manual"\n'))
    started = CliRunner().invoke(app, ["-c", str(config), "up", "--wait", "90"])
    try:
        assert started.exit_code == 0, started.output
        yield config, Lab.existing(root / "state" / "sites")
    finally:
        stopped = CliRunner().invoke(app, ["-c", str(config), "down"])
        assert stopped.exit_code == 0 and "nothing left" in stopped.output, stopped.output


def _cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["-c", str(config), *args])


def _waiting(config: Path) -> dict[str, object] | None:
    found = json.loads(_cli(config, "status", "--json").stdout).get("approval")
    return found if isinstance(found, dict) else None


def test_a_killed_primary_waits_for_a_person_and_fails_over_once_approved(
        sites: tuple[Path, Lab]) -> None:
    config, lab = sites
    store = Site(lab.topology, "witness").store()
    lab.kill("east")
    wait_for("a request for approval in etcd", lambda: _waiting(config) is not None,
             timeout_s=30)
    request = _waiting(config)
    assert request is not None and request["target"] == "west" and not request.get("decision")
    plan_id = str(request["plan_id"])
    assert f"waiting for approval: {plan_id}" in _cli(config, "status").output
    west = f"http://{lab.topology.site_host('west')}:{lab.topology.arbiter.agent_port}"
    metrics = httpx.get(f"{west}/metrics", timeout=3, trust_env=False).text
    assert 'regionguard_plan_state{state="awaiting_approval"} 1.0' in metrics
    # nobody runs it meanwhile: past the old lease (4 s), west is still not the primary
    wait_for("the old lease to end", lambda: store.writer() is None, timeout_s=15)
    assert store.load().primary == "east" and store.load().plan is None
    wrong = _cli(config, "reject", "failover-0000000000", "--by", "tester")
    assert wrong.exit_code == 2 and "no failover waits for approval" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    approved = _cli(config, "approve", plan_id, "--by", "tester")
    assert approved.exit_code == 0, approved.output
    wait_for("west to take writes", lambda: store.load().primary == "west"
             and store.load().plan is None, timeout_s=60)
    report = json.loads(_cli(config, "report", plan_id, "--json").stdout)
    assert report["outcome"] == "done", report
    assert any(a.get("outcome") == "approved" and a.get("by") == "tester"
               for a in report["approvals"]), report["approvals"]
