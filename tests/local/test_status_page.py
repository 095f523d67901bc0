"""The live status page in a real (headless) Chromium: it renders what `/api/status` says, loads
nothing from anywhere else, shows a lost connection without dropping its data, and follows a
failover of a whole sandbox by itself (no reload).

Chromium is Debian's (/usr/bin/chromium, installed by scripts/install-system-deps.sh), driven by
Playwright without any browser download. Set RG_STATUS_PAGE_SCREENSHOT=/some/file.png to keep a
screenshot of the page after the sandbox's failover."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, expect, sync_playwright
from prometheus_client import CollectorRegistry

from regionguard.ops.server import OpsServer

from .sandbox_helpers import kill_region, peek_status, running_sandbox, wait_for

pytestmark = [
    pytest.mark.local,
    pytest.mark.skipif(not os.access("/usr/bin/chromium", os.X_OK),
                       reason="needs Chromium at /usr/bin/chromium (Debian's `chromium` "
                              "package; `make test` installs it via "
                              "scripts/install-system-deps.sh)"),
]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Chromium refuses to start its sandbox as root
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page and every request it made."""

    def __init__(self, browser: Browser) -> None:
        self.context = browser.new_context(viewport={"width": 1360, "height": 900},
                                           service_workers="block")
        self.page: Page = self.context.new_page()
        self.requests: list[Request] = []
        self.errors: list[str] = []
        self.page.on("request", lambda req: self.requests.append(req))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def foreign(self, origin: str) -> list[str]:
        return [r.url for r in self.requests if not r.url.startswith(origin + "/")]

    def documents(self) -> list[str]:
        return [r.url for r in self.requests if r.resource_type == "document"]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    w = Watched(browser)
    try:
        yield w
    finally:
        w.close()


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# -- against a stub status source: rendering, escaping, connection lost ---------------------------

HOSTILE = '<img src=x onerror="window.__pwned=1">'
SVG = ('<svg width="300" height="40" viewBox="0 0 300 40" onload="window.__pwned=2">'
       '<script>window.__pwned=3</script>'
       '<rect x="0" y="10" width="120" height="14" fill="#2c6fbb"><title>promote</title></rect>'
       '<text x="130" y="22">promote 0.120 s</text></svg>')


def stub_status() -> dict[str, Any]:
    def reg(name: str, role: str, home: str, share: float) -> dict[str, Any]:
        return {"name": name, "home_role": home, "role": role,
                "db": {"up": True, "in_recovery": role != "primary", "lag_bytes": 2048,
                       "lag_s": 0.25, "pids": [1], "timeline": 2, "lsn": "0/3000148",
                       "epoch": 2},
                "compute": {"ready": 2, "desired": 2, "pids": [2, 3], "urls": []},
                "traffic_share": share}

    return {
        "generated_at": "2024-05-01T12:00:00.000+00:00", "app": "orders", "epoch": 2,
        "primary": "west",
        "regions": [reg("east", "standby", "primary", 0.0), reg("west", "primary", "standby", 1.0)],
        "front_door": {"url": "http://127.0.0.1:1/", "running": True},
        "controller": {"running": True, "pid": 4, "mode": "manual"},
        "plan": {"id": "p-2", "kind": "failback", "source": "west", "target": "east",
                 "status": "running", "steps": ["fence", "promote", "route"],
                 "done": ["fence"], "current_step": "promote"},
        "awaiting_approval": {"plan_id": "p-3", "target": "east", "reason": HOSTILE,
                              "expires_at": time.time() + 120},
        "last_failover": {"plan": "failover", "plan_id": "p-1", "to": "west", "from": "east",
                          "rto_s": 3.456, "steps": {"detect": 2.1, "promote": 0.12},
                          "other_s": 0.2},
        "last_plan_id": "p-1", "last_failover_svg": SVG, "last_report_url": "/api/report/p-1",
        "readiness": [
            {"name": "replication lag", "status": "pass", "observed": "0 B", "action": ""},
            {"name": "standby capacity", "status": "warn", "observed": "1/2", "action": "scale"},
            {"name": HOSTILE, "status": "fail", "observed": HOSTILE, "action": HOSTILE},
        ],
        "events": [
            {"ts": "2024-05-01T12:00:00.000+00:00", "event": "plan", "plan": "p-1",
             "outcome": "started"},
            {"ts": "2024-05-01T12:00:03.000+00:00", "event": "step", "plan": "p-1",
             "step": "promote", "outcome": "done", "detail": HOSTILE},
        ],
        "metrics_url": "/metrics",
    }


def test_page_renders_the_status_escapes_it_and_shows_a_lost_connection(
    watched: Watched,
) -> None:
    data = stub_status()
    server = OpsServer(CollectorRegistry(), lambda: copy.deepcopy(data)).start()
    url, page = server.url, watched.page
    try:
        page.goto(url + "/")
        expect(page.locator("#primary")).to_have_text("west", timeout=10_000)
        expect(page.locator("#epoch")).to_have_text("2")
        rows = page.locator("tr[data-region]")
        expect(rows).to_have_count(2)
        assert page.locator('tr[data-region="west"]').get_attribute("data-role") == "primary"
        assert page.locator('tr[data-region="east"]').get_attribute("data-role") == "standby"
        expect(page.locator('tr[data-region="east"]')).to_contain_text("home: primary")
        expect(page.locator('tr[data-region="west"]')).to_contain_text("2.0 KiB")
        expect(page.locator('tr[data-region="west"]')).to_contain_text("100 %")
        expect(page.locator("#plan")).to_have_attribute("data-current-step", "promote")
        expect(page.locator("#plan")).to_contain_text("failback")
        approval = page.locator("#approval")
        expect(approval).to_be_visible()
        expect(approval).to_contain_text("regionguard approve p-3")
        expect(approval).to_contain_text("regionguard reject p-3")
        expect(approval).to_contain_text(HOSTILE)  # shown as text, not parsed
        expect(page.locator("#last-failover")).to_contain_text("RTO 3.46 s")
        expect(page.locator("#report-link")).to_have_attribute("href", "/api/report/p-1")
        expect(page.locator("#waterfall svg rect")).to_have_count(1)
        expect(page.locator("#waterfall svg script")).to_have_count(0)
        assert page.locator("#waterfall svg").get_attribute("onload") is None
        statuses = page.locator("#readiness li").evaluate_all(
            "els => els.map(e => e.dataset.status)")
        assert statuses == ["pass", "warn", "fail"]
        colours = page.locator("#readiness li .badge").evaluate_all(
            "els => els.map(e => getComputedStyle(e).color)")
        assert len(set(colours)) == 3  # pass, warn and fail each have their own colour
        events = page.locator("#events tbody tr").evaluate_all(
            "els => els.map(e => e.dataset.event)")
        assert events == ["step", "plan"]  # newest first
        expect(page.locator("#events")).to_contain_text(HOSTILE)
        assert page.locator("img").count() == 0
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#updated").text_content() != "never"

        # it refreshes by itself
        data["epoch"], data["awaiting_approval"] = 3, None
        data["plan"] = {**data["plan"], "status": "done", "current_step": None}
        expect(page.locator("#epoch")).to_have_text("3", timeout=5_000)
        expect(approval).to_be_hidden()
        expect(page.locator("#plan")).to_contain_text("no plan running")  # finished
        expect(page.locator("#plan")).to_contain_text("last plan: failback p-2")
        data["plan"] = None
        expect(page.locator("#plan")).to_have_text("no plan running", timeout=5_000)

        # the controller goes away: the page says so and keeps the last data
        port = int(urlsplit(url).port or 0)
        server.stop()
        expect(page.locator("#connection")).to_be_visible(timeout=5_000)
        expect(page.locator("#connection")).to_contain_text("connection lost")
        assert page.locator("body").get_attribute("data-conn") == "lost"
        expect(page.locator("#primary")).to_have_text("west")
        expect(page.locator("tr[data-region]")).to_have_count(2)

        # and it comes back
        data["primary"] = "east"
        server = OpsServer(CollectorRegistry(), lambda: copy.deepcopy(data), port=port).start()
        expect(page.locator("#primary")).to_have_text("east", timeout=5_000)
        expect(page.locator("#connection")).to_be_hidden()
    finally:
        server.stop()
    assert watched.foreign(origin_of(url)) == []
    assert watched.documents() == [url + "/"]
    assert watched.errors == []


# -- a whole sandbox: the page follows a failover by itself -----------------------------------

@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    with running_sandbox(tmp_path) as path:
        yield path


def ops_urls(config: Path) -> dict[str, str]:
    found: dict[str, str] = {}

    def ready() -> bool:
        ops = peek_status(config).get("ops")
        if ops:
            found.update(ops)
        return bool(ops)

    wait_for("the controller's ops endpoint in `status --json`", ready, timeout_s=30)
    return found


def test_status_page_follows_a_failover_without_reloading(
    config: Path, watched: Watched,
) -> None:
    ops = ops_urls(config)
    url, page = ops["status_url"], watched.page
    origin = origin_of(url)
    assert origin == ops["url"] and url.startswith(origin + "/")
    page.goto(url)
    expect(page.locator("#primary")).to_have_text("east", timeout=20_000)
    expect(page.locator("tr[data-region]")).to_have_count(2)
    expect(page.locator('tr[data-region="east"]')).to_have_attribute("data-role", "primary")
    expect(page.locator('tr[data-region="west"]')).to_have_attribute("data-role", "standby")
    expect(page.locator('tr[data-region="west"]')).to_contain_text("standby")
    expect(page.locator("#plan")).to_contain_text("no plan running")
    epoch = int(page.locator("#epoch").text_content() or "")
    page.evaluate("window.__loaded_once = true")  # gone if the page were reloaded

    killed_at = time.monotonic()
    kill_region(config, "east")
    expect(page.locator("#primary")).to_have_text("west", timeout=20_000)
    print(f"the page showed west as primary {time.monotonic() - killed_at:.1f} s after the kill")
    assert int(page.locator("#epoch").text_content() or "") > epoch
    expect(page.locator('tr[data-region="west"]')).to_have_attribute("data-role", "primary")
    expect(page.locator('tr[data-region="east"]')).to_have_attribute("data-role", "standby")
    expect(page.locator("#last-failover")).to_contain_text("RTO", timeout=20_000)
    expect(page.locator("#waterfall svg")).to_have_count(1, timeout=20_000)
    expect(page.locator("#events tbody tr[data-event]").first).to_be_visible()
    assert page.evaluate("window.__loaded_once") is True
    assert page.locator("body").get_attribute("data-conn") == "ok"

    shot = os.environ.get("RG_STATUS_PAGE_SCREENSHOT")
    if shot:
        Path(shot).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=shot, full_page=True)

    # nothing but the ops endpoint, and the page itself loaded once
    assert watched.foreign(origin) == []
    assert watched.documents() == [url]
    assert any(r.url == origin + "/api/status" for r in watched.requests)
    assert watched.errors == []
