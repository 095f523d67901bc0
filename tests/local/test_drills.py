"""Every fault in the catalog under load against the real local world, with measures checked
for sense; and the split-brain checker shown to fire on an injected split brain."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from regionguard.config import load_topology
from regionguard.drill.load import LoadGenerator
from regionguard.drill.measures import Fence, split_brain
from regionguard.errors import ProviderError
from regionguard.orchestrator.journal import FileSink, Journal
from regionguard.providers.local.netutil import free_port
from regionguard.providers.local.proctrack import terminate
from regionguard.providers.local.sandbox import Sandbox

from .sandbox_helpers import (
    assert_a_report_for_every_plan,
    cli,
    peek_status,
    region,
    status,
    wait_for,
    write_topology,
)

pytestmark = pytest.mark.local


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One sandbox for every drill: each drill heals it back to east as primary."""
    path = write_topology(tmp_path_factory.mktemp("drills"))
    cli(path, "up", "--embedded")
    try:
        yield path
        assert assert_a_report_for_every_plan(path)  # each drill's failover and heal
    finally:
        print(cli(path, "events", "--last", "40", check=False).stdout)
        cli(path, "down", "--purge", check=False)


FAULTS = ["kill-region", "kill-db", "kill-app", "freeze-region", "partition-region",
          "kill-controller"]


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_under_load_is_measured_and_healed(config: Path, tmp_path: Path,
                                                 fault: str) -> None:
    epoch_before = status(config)["epoch"]
    proc = cli(config, "drill", "--fault", fault, "--duration", "7s", "--rate", "60",
               "--workers", "3", "--freeze", "3", "--out", str(tmp_path), timeout=180)
    run = json.loads((tmp_path / "drill-report.json").read_text())["runs"][0]
    assert run["fault"] == fault and run["region"] == "east"
    # availability is computed from the client's real counts
    assert run["requests"] > 100 and run["ok"] + run["failed"] == run["requests"]
    assert run["availability"] == pytest.approx(run["ok"] / run["requests"])
    assert run["failed"] > 0, "the fault did not disturb anything; it tests nothing"
    # RTO: positive and below the drill's deadline
    assert run["rto_s"] is not None and 0 < run["rto_s"] < 7, proc.stdout
    # sync replication: no acknowledged write is lost; no split brain, no phantom
    assert run["acked_writes"] > 50
    assert run["rpo_count"] == 0 and run["rpo_lost"] == []
    assert run["split_brain"] == [] and run["phantoms"] == [] and run["mismatched"] == []
    if fault == "kill-app":
        assert run["failover"] is False and run["engine"] is None
    else:
        assert run["failover"] is True and run["new_primary"] == "west"
        assert 0 < run["engine"]["rto_s"] < 7
        assert {"detect", "fence", "promote", "route"} <= set(run["engine"]["steps"])
    html = (tmp_path / "drill-report.html").read_text()
    assert "<svg" in html and "src=" not in html and "<script" not in html
    # healed: east is the primary again, every region healthy, the controller running
    after = status(config)
    east, west = region(after, "east"), region(after, "west")
    assert east["role"] == "primary" and east["compute"]["ready"] == 2
    assert west["db"]["up"] and west["db"]["in_recovery"]
    assert after["controller"]["running"] and east["traffic_share"] == 1.0
    assert after["epoch"] == epoch_before + (0 if fault == "kill-app" else 2)


def test_split_brain_checker_fires_on_an_injected_split_brain(config: Path) -> None:
    """A fenced old primary brought back as a primary (fencing bypassed on purpose) with a
    rogue app writing to it, while the real front door writes to the new primary."""
    sandbox = Sandbox(load_topology(config))
    journal = Journal(FileSink(sandbox.state_dir / "journal.jsonl"))
    url = status(config)["front_door"]["url"]
    load = LoadGenerator(url, rate=40, workers=2, duration_s=60).start()
    rogue_ref = None
    try:
        deadline = time.monotonic() + 20
        while len(load.result.acked_writes) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        since = time.monotonic_ns()
        east = region(status(config), "east")
        zombie_epoch = east["db"]["epoch"]  # earlier tests of this module moved it past 1
        for pid in east["db"]["pids"] + east["compute"]["pids"]:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and region(peek_status(config),
                                                     "west")["role"] != "primary":
            time.sleep(0.1)
        time.sleep(0.5)
        fences = [Fence("east", e["mono_ns"]) for e in journal.entries()
                  if e["mono_ns"] >= since and e.get("step") == "fence"
                  and e.get("outcome") == "done"]
        assert fences, "no fence step in the journal"
        clean = split_brain(load.result.acked_writes, fences)
        assert clean == [], clean  # the checker does not fire on a clean history

        # the injection: restart the crashed old primary (it comes back writable) and a
        # rogue app process that only knows that database
        state = sandbox.store.read()
        old = sandbox.cluster(state, "east")
        wait_for("the killed old primary's processes to be gone",
                 lambda: not old.processes(), timeout_s=15)
        try:
            old.start()
        except ProviderError as exc:  # say why: the log's last lines
            tail = old.log_file.read_text(errors="replace").splitlines()[-15:]
            raise AssertionError(f"{exc}\n" + "\n".join(tail)) from exc
        # with synchronous replication the zombie cannot acknowledge anything (its sync
        # standby is gone): that protection is switched off too, or nothing is injected
        old.set_sync_standby(None)
        apps = sandbox.apps(state)
        apps.dsns = {"east": old.dsn()}
        # outside the sandbox: no state store to learn the live route from (an app that does
        # know it refuses a header older than the route, which is what fencing is for)
        apps.state_dir = Path(tempfile.mkdtemp(prefix="rogue-", dir=config.parent))
        port = free_port()
        rogue_ref = apps._start("east", 99, port)
        rogue_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{rogue_url}/health/deep", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        # and a rogue client presenting the zombie's own stale token: the one
        # combination fencing cannot stop once the old primary runs writable again
        rogue = LoadGenerator(rogue_url, rate=20, workers=1, duration_s=1.5,
                              write_ratio=1.0, headers={"X-Regionguard-Epoch": str(zombie_epoch),
                                                        "X-Regionguard-Writer": "east"}).run()
        assert rogue.acked_writes, "the rogue primary accepted no write; nothing injected"
        findings = split_brain(load.stop().acked_writes + rogue.acked_writes, fences)
        assert any("acknowledged by fenced region east" in f for f in findings), findings
    finally:
        load.stop()
        if rogue_ref is not None and (proc := rogue_ref.process()):
            terminate([proc])
        state = sandbox.store.read()
        sandbox.cluster(state, "east").stop("immediate")
        cli(config, "failback", "--yes", timeout=240)
