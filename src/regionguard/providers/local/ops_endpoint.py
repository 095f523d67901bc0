"""The local controller's ops endpoint: metrics, the status page and execution reports, on a
free loopback port, named in `<state>/controller/ops.json` for `status --json` to report."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prometheus_client.registry import CollectorRegistry

from regionguard.ops.metrics import EngineCollector
from regionguard.ops.server import OpsServer
from regionguard.orchestrator.view import TickView
from regionguard.providers.local.ops_file import ops_file
from regionguard.providers.local.ops_status import ops_status
from regionguard.providers.local.sandbox import Sandbox
from regionguard.providers.local.state import write_json_atomic


def start_ops(sb: Sandbox, tick: Callable[[], TickView],
              report_html: Callable[[str], str | None],
              waterfall: Callable[[Sequence[Mapping[str, Any]], str], str | None],
              port: int = 0) -> OpsServer:
    registry = CollectorRegistry(auto_describe=False)

    def live() -> dict[str, Any]:
        state = sb.store.load()  # its plan is the running one (None once a plan ended)
        return {"epoch": state.epoch, "plan": state.plan}

    registry.register(EngineCollector(sb.state_dir / "journal.jsonl", live, tick))

    def status() -> dict[str, Any]:
        view = tick()
        return ops_status(sb, readiness=lambda: list(view.readiness),
                          awaiting=lambda: view.awaiting_approval, waterfall=waterfall)

    server = OpsServer(registry, status, report_html, port=port).start()
    write_json_atomic(ops_file(sb.state_dir), {
        "url": server.url, "metrics_url": f"{server.url}/metrics",
        "status_url": f"{server.url}/", "api_url": f"{server.url}/api/status"})
    return server
