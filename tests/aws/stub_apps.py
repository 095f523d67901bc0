"""Each region's app endpoint for in-process moto tests: a region the test takes down answers
503 to everything; otherwise `/health/route` (what the guards probe) and the canary answer from
the arbiter's writer, as the app's write lease does. A real HTTP server on loopback, so the
providers make real requests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from typing import Any

import boto3

from regionguard.emulated.apps import json_http_handler


class StubApps:
    def __init__(self, table: str, regions: dict[str, str]) -> None:
        self.table = table
        self.regions = regions  # AWS region -> topology region name
        self.up = dict.fromkeys(regions, True)
        self.servers: dict[str, ThreadingHTTPServer] = {}

    def endpoints(self) -> dict[str, str]:
        return {r: f"http://127.0.0.1:{s.server_address[1]}" for r, s in self.servers.items()}

    def _arbiter(self) -> tuple[int, str]:
        item = boto3.client("dynamodb", region_name="us-west-2").get_item(
            TableName=self.table, Key={"pk": {"S": "state"}}).get("Item", {})
        token = item.get("writer_epoch", item.get("epoch", {"N": "1"}))
        return int(token["N"]), item.get("writer", {}).get("S", "")

    def answer(self, aws_region: str, method: str, path: str) -> tuple[int, dict[str, Any]]:
        name = self.regions[aws_region]
        if not self.up[aws_region]:
            return 503, {"detail": "down"}
        if path == "/health/deep":
            return 200, {"region": name}
        epoch, writer = self._arbiter()
        if writer != name:
            return 503, {"region": name, "writer": writer}
        if path == "/health/route":
            return 200, {"region": name, "epoch": epoch, "holds_lease": True, "writable": True}
        if method == "POST" and path == "/_regionguard/canary":
            return 200, {"region": name, "epoch": epoch}
        return 404, {}

    @contextmanager
    def running(self) -> Iterator[StubApps]:
        for aws_region in self.regions:
            self.servers[aws_region] = ThreadingHTTPServer(
                ("127.0.0.1", 0), json_http_handler(
                    lambda method, path, _body, r=aws_region: self.answer(r, method, path)))
            threading.Thread(target=self.servers[aws_region].serve_forever, daemon=True).start()
        try:
            yield self
        finally:
            for server in self.servers.values():
                server.shutdown()
                server.server_close()
