"""The ops HTTP endpoint of a site's agent: `/metrics` (Prometheus), `/` (the sites' live
page, `agent/sites_page.html`), `/api/status` and the other JSON views the page polls,
`/health`, and `/api/report/<plan id>` (a plan's execution report, HTML) when given one.

It listens on loopback unless `exposed` (an agent's, on its site's address: Prometheus scrapes
it from another host). Read-only: it changes nothing, so it needs no credential (as Patroni's
GET endpoints). A thread of its process; a slow or failing status source answers 503 for that
request and never touches the process's loop.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

log = logging.getLogger("regionguard.ops")

PLAN_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class OpsServer:
    def __init__(self, registry: CollectorRegistry, status: Callable[[], Mapping[str, Any]],
                 report_html: Callable[[str], str | None] | None = None,
                 host: str = "127.0.0.1", port: int = 0, *, exposed: bool = False,
                 health: Callable[[], bool] | None = None,
                 page: Callable[[], bytes],
                 api: Mapping[str, Callable[[], Any]] | None = None) -> None:
        if not host.startswith("127.") and not exposed:
            raise ValueError(f"the ops endpoint listens on loopback only, not {host}")
        self.registry = registry
        self.status = status
        self.report_html = report_html
        self.page = page  # `/`: the sites' page
        self.health = health
        self.api = dict(api or {})  # more JSON views, by path
        handler = self._handler()
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{name}:{port}"

    def start(self) -> OpsServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="rg-ops-http")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        ops = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:  # no access log on stderr
                return

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _json(self, code: int, data: Any) -> None:
                self._send(code, json.dumps(data, default=str).encode(), "application/json")

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                try:
                    if path == "/metrics":
                        self._send(200, generate_latest(ops.registry), CONTENT_TYPE_LATEST)
                    elif path in ("/", "/index.html"):
                        self._send(200, ops.page(), "text/html; charset=utf-8")
                    elif path == "/health" and ops.health is not None:
                        ok = ops.health()
                        self._json(200 if ok else 503, {"healthy": ok})
                    elif path == "/api/status":
                        self._json(200, ops.status())
                    elif path in ops.api:
                        self._json(200, ops.api[path]())
                    elif path.startswith("/api/report/") and ops.report_html is not None:
                        plan = path.removeprefix("/api/report/")
                        page = ops.report_html(plan) if PLAN_ID.match(plan) else None
                        if page is None:
                            self._json(404, {"detail": f"no report for plan {plan!r}"})
                        else:
                            self._send(200, page.encode(), "text/html; charset=utf-8")
                    else:
                        self._json(404, {"detail": f"no such page: {path}"})
                except Exception as exc:  # a status source failed: this request only
                    log.warning("ops endpoint %s failed: %s", path, exc)
                    self._json(503, {"detail": f"{type(exc).__name__}: {exc}"})

        return Handler
