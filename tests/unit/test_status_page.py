"""Each agent's endpoint serves the sites' live page, self-contained (nothing loaded from
elsewhere), the JSON views it polls, and the metrics."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any, ClassVar

import pytest
from prometheus_client import CollectorRegistry, Counter

from regionguard.agent.ops import sites_page
from regionguard.ops.server import OpsServer

pytestmark = pytest.mark.unit

STUB: dict[str, Any] = {
    "generated_at": "2024-05-01T12:00:00.000+00:00", "app": "orders", "epoch": 3,
    "primary": "east",
    "regions": [{"name": "east", "home_role": "primary", "role": "primary",
                 "db": {"up": True, "in_recovery": False}, "compute": {"ready": 2, "desired": 2},
                 "traffic_share": 1.0}],
    "plan": None, "awaiting_approval": None, "last_failover": None, "readiness": [],
    "events": [], "metrics_url": "/metrics",
}


@pytest.fixture(scope="module")
def server() -> Iterator[OpsServer]:
    registry = CollectorRegistry()
    Counter("rg_test_total", "a counter of the test", registry=registry).inc()
    ops = OpsServer(registry, lambda: STUB, page=sites_page,
                    api={"/api/sites": lambda: STUB}).start()
    try:
        yield ops
    finally:
        ops.stop()


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=5) as resp:  # loopback only
        return resp.status, resp.headers.get("Content-Type", ""), resp.read()


class Refs(HTMLParser):
    """Every attribute that makes a browser load or link something, and every tag."""

    LOADING: ClassVar[frozenset[str]] = frozenset({
        "src", "href", "srcset", "action", "formaction", "data", "poster", "background",
        "xlink:href"})

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.refs += [(tag, k, v or "") for k, v in attrs if k in self.LOADING]


def test_the_page_is_self_contained(server: OpsServer) -> None:
    code, ctype, body = get(server.url + "/")
    assert code == 200 and ctype.startswith("text/html")
    assert body == sites_page()
    page = body.decode()
    parser = Refs()
    parser.feed(page)
    # no src=/href= to anything but this origin's relative paths or in-page anchors
    for tag, attr, value in parser.refs:
        relative = bool(re.fullmatch(r"[A-Za-z0-9_./-]+", value)) and not value.startswith("//")
        assert value.startswith("#") or relative, f"<{tag} {attr}={value!r}>"
    assert not re.search(r"\b(src|href)\s*=\s*[\"']?\s*(https?:|//|data:|javascript:)",
                         page, re.I)
    # no URL of any scheme at all: no CDN, no web fonts, no @import, no url(...)
    assert not re.search(r"(?i)https?:|wss?:|ftp:", page)
    styles = "".join(re.findall(r"<style>(.*?)</style>", page, re.S))
    assert "@import" not in styles and "url(" not in styles and "@font-face" not in styles
    assert {"link", "iframe", "img", "object", "embed"}.isdisjoint(parser.tags)
    # one inline script (no src), which polls the relative URL of the sites' view
    scripts = re.findall(r"<script\b([^>]*)>", page)
    assert scripts == [""]
    assert re.search(r"""fetch\(\s*["']api/sites["']""", page)
    # the test hooks are there
    for hook in ('id="writer"', 'id="epoch"', 'id="plan"', 'id="agents"', 'id="events"',
                 'id="updated"', '"data-region"', '"data-role"', '"data-site"'):
        assert hook in page, hook


def test_the_page_inserts_data_as_text_only(server: OpsServer) -> None:
    page = sites_page().decode()
    script = page.split("<script>", 1)[1]
    assert "innerHTML" not in script
    assert "outerHTML" not in script and "insertAdjacentHTML" not in script
    assert "document.write" not in script and "eval(" not in script


def test_api_status_returns_the_status_json(server: OpsServer) -> None:
    code, ctype, body = get(server.url + "/api/status")
    assert code == 200 and ctype == "application/json"
    assert json.loads(body) == STUB
    code, _, body = get(server.url + "/api/sites")
    assert code == 200 and json.loads(body) == STUB


def test_metrics_answer(server: OpsServer) -> None:
    code, ctype, body = get(server.url + "/metrics")
    assert code == 200 and ctype.startswith("text/plain")
    assert b"rg_test_total 1.0" in body
