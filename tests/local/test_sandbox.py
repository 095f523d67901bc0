"""The local world through the real CLI: up, write through the front door, read it on the
standby, scale, route, down — each step a new process, as an operator in a new shell."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from regionguard.config import load_topology
from regionguard.orchestrator.ports import RouteTable
from regionguard.providers.local import pgbin
from regionguard.providers.local.sandbox import Sandbox
from regionguard.providers.local.state import LocalStateStore

from ..plan_helpers import bare_plan
from .sandbox_helpers import all_pids, cli, region, status, write_topology

pytestmark = pytest.mark.local


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    path = write_topology(tmp_path)
    try:
        yield path
    finally:
        cli(path, "down", "--purge", check=False)


def test_up_write_read_on_standby_route_and_down_leaves_nothing(config: Path) -> None:
    first = cli(config, "up", "--embedded")
    assert "front door http://127.0.0.1:" in first.stdout
    data = status(config)
    url = data["front_door"]["url"]
    east, west = region(data, "east"), region(data, "west")
    assert (east["role"], west["role"]) == ("primary", "standby")
    assert east["db"]["up"] and not east["db"]["in_recovery"]
    assert west["db"]["up"] and west["db"]["in_recovery"]
    assert east["compute"] == {**east["compute"], "ready": 2, "desired": 2}
    assert west["compute"]["desired"] == 0 and west["compute"]["pids"] == []
    assert (east["traffic_share"], west["traffic_share"]) == (1.0, 0.0)

    created = httpx.post(f"{url}/orders", json={
        "request_id": "sandbox-1", "customer": "ada", "item": "widget", "quantity": 3})
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["region"] == "east" and order["epoch"] == 1
    # sync replication (remote_apply): the acknowledged row is on the standby already
    with psycopg.connect(west["db"]["dsn"], connect_timeout=3) as conn:
        row = conn.execute("SELECT pg_is_in_recovery(), request_id FROM orders WHERE id = %s",
                           (order["id"],)).fetchone()
    assert row == (True, "sandbox-1")

    # up again (a new process) repairs nothing and starts no duplicates
    before = all_pids(data)
    cli(config, "up", "--embedded")
    assert all_pids(status(config)) == before

    # route to the standby region: its app processes serve reads locally, writes go to east
    sandbox = Sandbox(load_topology(config))
    sandbox.scale("west", 2)
    sandbox.apps(sandbox.store.read()).wait_ready(sandbox.store.read, "west", 2, 30)
    sandbox.route(RouteTable(weights={"east": 0, "west": 1}, writer="east", epoch=1))
    after_route = status(config)
    assert region(after_route, "west")["traffic_share"] == 1.0
    assert region(after_route, "east")["traffic_share"] == 0.0
    read = httpx.get(f"{url}/orders/{order['id']}")
    assert read.status_code == 200
    write = httpx.post(f"{url}/orders", json={
        "request_id": "sandbox-2", "customer": "ada", "item": "widget", "quantity": 1}).json()
    assert (write["served_by"], write["region"]) == ("west", "east")

    pids = all_pids(status(config))
    down = cli(config, "down")
    assert "stopped" in down.stdout
    assert not [p for p in pids if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert "nothing is up" in cli(config, "down").stdout


def test_scale_standby_from_0_to_2_and_back_to_0(config: Path) -> None:
    cli(config, "up", "--embedded")
    sandbox = Sandbox(load_topology(config))
    assert sandbox.scale("west", 2) == [1, 2]
    assert sandbox.scale("west", 2) == []  # idempotent
    sandbox.apps(sandbox.store.read()).wait_ready(sandbox.store.read, "west", 2, 30)
    west = region(status(config), "west")
    assert west["compute"]["ready"] == 2 and len(west["compute"]["pids"]) == 2
    pids = west["compute"]["pids"]
    sandbox.scale("west", 0)
    assert region(status(config), "west")["compute"]["pids"] == []
    assert not [p for p in pids if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_up_repairs_a_killed_app_process_without_duplicates(config: Path) -> None:
    cli(config, "up", "--embedded")
    east = region(status(config), "east")
    victim = east["compute"]["pids"][0]
    proc = psutil.Process(victim)
    proc.kill()
    proc.wait(timeout=5)
    cli(config, "up", "--embedded")
    repaired = region(status(config), "east")["compute"]
    assert repaired["ready"] == 2 and len(repaired["pids"]) == 2
    assert victim not in repaired["pids"]


def test_a_repeated_promote_keeps_a_streaming_sync_standby_only(config: Path) -> None:
    """A resumed plan re-asserts promote on a database that is already the primary; by then
    its standby may have rejoined as a sync standby, which the repeat must not drop."""
    cli(config, "up", "--embedded")
    sandbox = Sandbox(load_topology(config))
    east = sandbox.clusters(sandbox.store.read())["east"]

    def sync_names() -> str:
        with east.connect("postgres") as conn:
            row = conn.execute("SELECT current_setting('synchronous_standby_names')").fetchone()
        return str(row[0]) if row else ""

    assert sync_names() == '"west"'
    east.promote(1, 10)
    assert sync_names() == '"west"'

    # a sync standby that does not stream (the campaign, seed 27: a promoted region inherited
    # a config naming the old primary) would block every commit, with no timeout at all
    east.set_sync_standby("nowhere")
    stamp = threading.Thread(target=east.write_epoch, args=(2,), daemon=True)
    stamp.start()
    stamp.join(10)
    blocked = stamp.is_alive()
    east.promote(3, 10)  # re-asserted: drops it (and so releases a commit that waits)
    assert not blocked, "the fencing token's commit waited for a sync standby"
    assert sync_names() == ""


def test_status_and_down_without_a_sandbox(tmp_path: Path) -> None:
    config = write_topology(tmp_path)
    missing = cli(config, "status", check=False)
    assert missing.returncode == 4 and "regionguard up" in missing.stderr
    assert "nothing is up" in cli(config, "down").stdout


def test_a_taken_database_port_is_refused_naming_the_holder(config: Path) -> None:
    import socket

    cli(config, "up", "--embedded")
    west = region(status(config), "west")
    cli(config, "down")
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", west["db"]["port"]))
    squatter.listen()
    try:
        refused = cli(config, "up", "--embedded", check=False)
    finally:
        squatter.close()
    assert refused.returncode == 1
    assert f"west database: port 127.0.0.1:{west['db']['port']} is taken by pid" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_up_and_down_wait_for_a_running_plan_and_refuse_in_one_line(tmp_path: Path) -> None:
    """Between fence and promote a repair could restart the fenced primary as primary: `up`
    and `down` take the plan lock, waiting a bounded time, and say which plan holds it."""
    config = write_topology(tmp_path)
    store = LocalStateStore(tmp_path / "state")
    store.claim_epoch(1, bare_plan("failover-held"))
    with store.plan_lock() as held:  # the controller is running the plan
        assert held
        for command in (("up", "--embedded"), ("down",)):
            proc = cli(config, *command, "--plan-wait", "0.5", check=False)
            assert proc.returncode == 3, proc.stderr
            line = proc.stderr.strip()
            assert "failover-held" in line and "\n" not in line and "Traceback" not in line
    assert "ports" not in store.read()  # `up` refused before touching anything


def test_the_front_doors_admin_socket_is_a_private_unix_socket(config: Path) -> None:
    cli(config, "up", "--embedded")
    sandbox = Sandbox(load_topology(config))
    sock = sandbox.frontdoor.admin_socket
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600  # no other local user may `set map`
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    assert "Name: HAProxy" in sandbox.frontdoor.runtime(sandbox.store.read(), "show info")
    assert "admin" not in sandbox.store.read()["ports"]  # no TCP admin port any more


def test_a_planted_data_dir_is_refused_in_one_line(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the data root below /var/tmp is used only when running as root")
    config = write_topology(tmp_path)
    planted = pgbin.data_root(tmp_path / "state")
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.symlink_to("/etc")  # another user got there first
    try:
        proc = cli(config, "up", "--embedded", check=False)
        assert proc.returncode == 1 and "is a symlink" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    finally:
        planted.unlink()
    planted.mkdir()
    nobody = pwd.getpwnam("nobody").pw_uid
    os.chown(planted, nobody, nobody)  # a real directory, but someone else's
    try:
        proc = cli(config, "up", "--embedded", check=False)
        assert proc.returncode == 1 and f"owned by uid {nobody}" in proc.stderr
    finally:
        shutil.rmtree(planted)
