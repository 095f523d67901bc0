"""Readiness on a real sandbox: `regionguard readiness --json` and the controller's own
evaluation (exported as metrics) catch a topology/state drift and a stopped standby, and say
that no drill ran yet; the drill-age and lag checks' thresholds are unit-tested
(tests/unit/test_ops.py)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .sandbox_helpers import cli, metrics, region, status, write_topology

pytestmark = pytest.mark.local


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    path = write_topology(tmp_path)
    text = path.read_text() + "\n[readiness]\ninterval_s = 1\n"
    path.write_text(text)
    cli(path, "up", "--embedded")
    try:
        yield path
    finally:
        cli(path, "down", "--purge", check=False)


def readiness(config: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    proc = cli(config, "readiness", "--json", check=False)
    data = json.loads(proc.stdout)
    return proc.returncode, {c["name"]: c for c in data["checks"]}


def wait_for_metric(config: Path, key: tuple[str, tuple[tuple[str, str], ...]],
                    value: float, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while metrics(config).get(key) != value:
        if time.monotonic() > deadline:
            raise AssertionError(f"{key} did not become {value} within {timeout_s} s")
        time.sleep(0.2)


def test_readiness_catches_drift_and_a_stopped_standby_and_the_controller_exports_it(
        config: Path) -> None:
    code, checks = readiness(config)
    assert checks["standby_replication"]["status"] == "pass", checks
    assert checks["configuration_drift"]["status"] == "pass", checks
    assert checks["standby_capacity"]["status"] == "pass", checks
    assert checks["last_drill"]["status"] == "fail" and code == 1  # no drill yet

    # drift: the topology now wants 3 app processes in the primary; the sandbox runs 2
    config.write_text(config.read_text().replace("capacity = 2", "capacity = 3", 1))
    code, checks = readiness(config)
    drift = checks["configuration_drift"]
    assert drift["status"] == "fail" and "runs 2 app processes" in drift["observed"]
    assert "wants 3" in drift["observed"] and drift["action"]
    config.write_text(config.read_text().replace("capacity = 3", "capacity = 2", 1))

    # a stopped standby
    for pid in region(status(config), "west")["db"]["pids"]:
        os.kill(pid, signal.SIGKILL)
    code, checks = readiness(config)
    assert checks["standby_replication"]["status"] == "fail" and code == 1
    assert "down" in checks["standby_replication"]["observed"]
    # the controller evaluates on its own (interval_s = 1) and exports it
    wait_for_metric(config, ("regionguard_readiness", (("check", "standby_replication"),
                                                        ("status", "fail"))), 1.0)
    events = [json.loads(line) for line in
              cli(config, "events", "--json", "--last", "0").stdout.splitlines()]
    assert any(e["event"] == "readiness" and e.get("outcome") == "fail" for e in events)
