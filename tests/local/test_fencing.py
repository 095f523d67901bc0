"""A zombie primary never takes a write: the fenced old primary is restarted as a writable
database, the new primary blips, and writes sent straight to the app processes (no front door,
so no fencing token in headers) are refused instead of landing on the zombie."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from regionguard.config import load_topology
from regionguard.providers.local.sandbox import Sandbox

from .sandbox_helpers import cli, region, running_sandbox, status

pytestmark = pytest.mark.local


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    # manual mode: the controller only alerts, so the test alone decides what runs
    with running_sandbox(tmp_path, **{'mode = "automatic"': 'mode = "manual"'}) as path:
        yield path


def test_writes_without_a_token_never_land_on_a_zombie_primary(config: Path) -> None:
    cli(config, "failover", "--to", "west", "--force", "--yes")
    sandbox = Sandbox(load_topology(config))
    state = sandbox.store.read()
    assert state["epoch"] == 2 and state["route"]["writer"] == "west"
    zombie = sandbox.cluster(state, "east")
    zombie.start()  # the fenced old primary comes back, writable, holding epoch 1
    with zombie.connect() as conn:
        row = conn.execute("SELECT pg_is_in_recovery(),"
                           " (SELECT epoch FROM regionguard_epoch)").fetchone()
    assert row == (False, 1)
    urls = region(status(config), "west")["compute"]["urls"]
    assert urls
    sandbox.cluster(state, "west").stop("immediate")  # the new primary blips
    sent: list[str] = []
    answers: set[int | str] = set()
    deadline = time.monotonic() + 3.0  # long past the apps' writer discovery (every 0.5 s)
    # no token at all, and a token forged to match the zombie (an app port is reachable
    # without the front door, so headers prove nothing: the app knows the live route's epoch)
    forged = {"X-Regionguard-Epoch": "1", "X-Regionguard-Writer": "east"}
    while time.monotonic() < deadline:
        for url, headers in itertools.product(urls, (None, forged)):
            rid = f"zombie-{uuid.uuid4().hex[:10]}"
            sent.append(rid)
            try:
                answers.add(httpx.post(f"{url}/orders", timeout=2, headers=headers, json={
                    "request_id": rid, "customer": "ada", "item": "widget",
                    "quantity": 1}).status_code)
            except httpx.ReadTimeout:  # a write the zombie took (it then waits for its
                answers.add("timeout")  # sync standby, which follows west now)
    assert answers == {503}, answers
    with zombie.connect() as conn:
        landed = conn.execute("SELECT count(*) FROM orders WHERE request_id = ANY(%s)",
                              (sent,)).fetchone()
    assert landed == (0,), f"{landed} writes landed on the zombie"
    sandbox.cluster(state, "west").start()
