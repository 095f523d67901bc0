"""The front door's request and 5xx totals, read from a real HAProxy over its stats socket."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from regionguard.agent.front_door_stats import parse_show_stat, read_counts, socket_usable
from regionguard.providers.local.haproxy import haproxy_binary
from regionguard.providers.local.netutil import free_port

pytestmark = pytest.mark.local


@pytest.fixture
def front_door(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """HAProxy with one frontend and a backend with no servers: every request is a 503."""
    sock, port = tmp_path / "haproxy.sock", free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text("\n".join([
        "global", f"    stats socket {sock} mode 600 level user", "",
        "defaults", "    mode http", "    timeout connect 500ms", "    timeout client 5s",
        "    timeout server 5s", "",
        "frontend front_door", f"    bind 127.0.0.1:{port}", "    default_backend apps", "",
        "backend apps", ""]))
    proc = subprocess.Popen([haproxy_binary(), "-db", "-f", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while read_counts(sock, "front_door") is None:
            assert proc.poll() is None and time.monotonic() < deadline, "HAProxy did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}", sock
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_totals_count_requests_and_the_5xx_answers_clients_got(
        front_door: tuple[str, Path]) -> None:
    url, sock = front_door
    before = read_counts(sock, "front_door")
    assert before is not None
    with httpx.Client(timeout=3, trust_env=False) as http:
        codes = [http.get(f"{url}/orders").status_code for _ in range(3)]
    assert codes == [503] * 3
    after = read_counts(sock, "front_door")
    assert after is not None
    assert (after.requests - before.requests, after.errors_5xx - before.errors_5xx) == (3, 3)
    assert read_counts(sock, "no_such_frontend") is None


def test_no_answer_is_none_never_an_error(tmp_path: Path) -> None:
    assert read_counts(tmp_path / "absent.sock", "front_door") is None
    assert not socket_usable(tmp_path / ("x" * 120))
    assert read_counts(tmp_path / ("x" * 120), "front_door") is None
    assert parse_show_stat("# pxname,svname,req_tot,hrsp_5xx\nfront_door,FRONTEND,,\n",
                           "front_door") is not None
    assert parse_show_stat("garbage", "front_door") is None
