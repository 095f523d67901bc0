"""The fault proxy: AWS, and each region's app, behind one loopback endpoint per (caller, Region).

Every caller (each of the three sites, and the internet) gets its own endpoint for every
Region's AWS APIs and every app region's entry point, so the proxy knows who calls whom without
trusting the caller: a process in us-west-2 is simply configured with us-west-2's endpoints.
Each request is decided by the failure domains, and every one is logged (world time, caller,
Region, service, operation, outcome):

- a Region that is out resets every connection at once (a refused connection, but read first,
  so that the request is logged and counted) or, chosen per fault, swallows requests and drops
  them after the callers' connect timeout (what a silent host costs an AWS client);
- a partition does the same to requests crossing between the cut-off Region and the others;
- a control-plane outage answers mutating control-plane calls with AWS's 503 error;
- a request to the arbiter table (DynamoDB MRSC) on a replica that cannot reach one more site
  gets a 500 `InternalServerError` (AWS documents only that such requests "return errors": the
  code is the emulator's choice).

Answered requests are relayed to moto's server (AWS) or to the region's app server.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from regionguard.clock import ScaledClock
from regionguard.emulated.domains import INTERNET, Block, FailMode, FailureDomains, Fault
from regionguard.emulated.global_tables import GlobalTables
from regionguard.emulated.models import LatencyModel
from regionguard.emulated.operations import Call, classify
from regionguard.emulated.worker import PAUSE_HOLDER_HEADER

log = logging.getLogger("regionguard.emulated.proxy")

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "content-length"}
# A swallowed request is dropped after the callers' connect timeout (world seconds): what a
# connection to a host that never answers costs an AWS client, whatever its read timeout.
HOLD_S = 2.0


@dataclass(frozen=True, slots=True)
class Route:
    caller: str
    target: str  # an AWS Region
    kind: str  # "aws" or "app"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, port: int, proxy: FaultProxy, route: Route) -> None:
        self.proxy = proxy
        self.route = route
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            self.server.proxy.handle(self, body)
        except (BrokenPipeError, ConnectionResetError):  # the caller gave up (its timeout)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _relay


class FaultProxy:
    def __init__(self, domains: FailureDomains, clock: ScaledClock,
                 aws_upstream: tuple[str, int],
                 mrsc_tables: Iterable[str] = (), log_path: Path | None = None,
                 model: LatencyModel | None = None) -> None:
        self.domains = domains
        self.model = model or LatencyModel()
        self.clock = clock
        self.aws_upstream = aws_upstream
        self.app_upstreams: dict[str, tuple[str, int]] = {}
        self.mrsc_tables = set(mrsc_tables)
        self.log_path = log_path
        self.records: list[dict[str, Any]] = []
        self._records_lock = threading.Lock()
        self._servers: dict[Route, _Server] = {}
        self._ports: dict[Route, int] = {}
        # faults injected so far: each request is logged with the count it was admitted under,
        # since world time stands still while the emulator works and an instant's timestamps
        # cannot tell a request admitted before a fault from one admitted after it
        self.faults_injected = 0
        # DynamoDB global tables' replication sees every write this relays to a replica
        self.global_tables: GlobalTables | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, app_regions: Iterable[str]) -> None:
        callers = [*self.domains.sites, INTERNET]
        routes = [Route(c, t, "aws") for c in callers for t in self.domains.sites]
        routes += [Route(c, t, "app") for c in callers for t in app_regions]
        for route in routes:
            server = _Server(0, self, route)
            self._servers[route] = server
            self._ports[route] = server.server_address[1]
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True, name=f"proxy-{route.caller}-{route.target}").start()

    def stop(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        self._servers.clear()
        self.flush()

    def set_app_upstream(self, region: str, address: tuple[str, int]) -> None:
        self.app_upstreams[region] = address

    def endpoints_for(self, caller: str, kind: str = "aws") -> dict[str, str]:
        """What a process at `caller` is configured with: {Region: its URL for that Region}."""
        return {r.target: f"http://127.0.0.1:{port}" for r, port in self._ports.items()
                if r.caller == caller and r.kind == kind}

    # -- faults -----------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        with self._records_lock:
            self.domains.inject(fault)
            self.faults_injected += 1

    def heal(self, region: str | None = None) -> None:
        self.domains.heal(region)

    # -- one request ------------------------------------------------------------------------

    def handle(self, h: _Handler, body: bytes) -> None:
        received = self.clock.time()  # the log says when a request arrived, not when it ended
        with self._records_lock:
            admitted = self.faults_injected
        route = h.server.route
        headers = {k.lower(): v for k, v in h.headers.items()}
        if route.kind == "aws":
            call = classify(h.command, h.path, headers, body)
        else:
            call = Call("app", f"{h.command} {h.path.split('?')[0]}", route.target)
        block = self.domains.check(route.caller, route.target, call.control_mutation)
        arbiter = route.kind == "aws" and self._arbiter_call(call, body)
        if block is None and arbiter and not self.domains.quorum(route.target):
            block = Block(FailMode.ERROR, f"arbiter replica {route.target} has no quorum")
            self._record(received, admitted, route, call, "no-quorum", 500, block.reason)
            self._error(h, 500, "InternalServerError", block.reason, call, headers)
            return
        if block is not None:
            self._record(received, admitted, route, call, block.mode.value, None, block.reason)
            if block.mode is FailMode.ERROR:
                self._error(h, 503, "ServiceUnavailable", block.reason, call, headers)
            elif block.mode is FailMode.REFUSED:
                self._reset(h)
            else:
                with self._caller_waits(headers):
                    self._hold(h, route)
            return
        upstream = self.aws_upstream if route.kind == "aws" else self.app_upstreams.get(
            route.target)
        if upstream is None:
            self._record(received, admitted, route, call, "refused", None, "no app server")
            self._reset(h)
            return
        # moto's work stands world time still; an app's is the app's (and its caller waits):
        # an app may itself wait on world time (a lease read the proxy holds, in a
        # partition), which a pause held meanwhile would never let pass
        working = self.clock.pause() if route.kind == "aws" else self._caller_waits(headers)
        replicated = self.global_tables if route.kind == "aws" else None
        try:
            with (replicated.serialize(call, body) if replicated else contextlib.nullcontext()):
                with working:
                    status, reason, out_headers, data = _forward(upstream, h.command, h.path,
                                                                 h.headers.items(), body)
                if replicated is not None:
                    replicated.observe(route.target, call, body, status)
        except OSError as exc:
            self._record(received, admitted, route, call, "upstream-error", 502, str(exc))
            self._error(h, 502, "BadGateway", str(exc), call, headers)
            return
        self._record(received, admitted, route, call, "ok" if status < 500 else "error", status, "")
        if route.kind == "aws":  # what the call costs in AWS, the emulator's own time aside
            with self._caller_waits(headers):
                self.clock.sleep(self.model.call_s(call.service, call.operation, arbiter,
                                                   body))
        h.send_response(status, reason)
        for k, v in out_headers:
            if k.lower() not in HOP_HEADERS:
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def _caller_waits(self, headers: dict[str, str]) -> contextlib.AbstractContextManager[None]:
        """A caller that runs with world time paused (a guard function: see emulated/worker)
        names itself; while the proxy models a wait for it, its pause is lifted."""
        holder = headers.get(PAUSE_HOLDER_HEADER, "")
        return self.clock.lifted_for(int(holder) if holder.isdigit() else None)

    def _arbiter_call(self, call: Call, body: bytes) -> bool:
        if call.service != "dynamodb" or not self.mrsc_tables:
            return False
        return any(f'"{t}"'.encode() in body for t in self.mrsc_tables)

    def _reset(self, h: _Handler) -> None:
        """Close with RST: the caller gets no answer, only a connection error."""
        with contextlib.suppress(OSError):
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
        h.close_connection = True

    def _hold(self, h: _Handler, route: Route) -> None:
        """Never answer: hold the request for the callers' connect timeout, then drop it."""
        self.clock.sleep(HOLD_S)  # world time: it runs while the caller's pause is lifted
        self._reset(h)

    def _error(self, h: _Handler, status: int, code: str, message: str, call: Call,
               headers: dict[str, str]) -> None:
        if "x-amz-target" in headers:
            ctype = "application/x-amz-json-1.0"
            data = json.dumps({"__type": f"com.amazonaws.{call.service}#{code}",
                               "message": message}).encode()
        elif call.service in ("lambda", "app"):
            ctype = "application/json"
            data = json.dumps({"message": message}).encode()
        elif call.service == "ec2":
            ctype = "text/xml"
            data = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
                    "</Error></Errors><RequestID>regionguard</RequestID></Response>").encode()
        else:
            ctype = "text/xml"
            data = (f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>"
                    f"{message}</Message></Error><RequestId>regionguard</RequestId>"
                    "</ErrorResponse>").encode()
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("x-amzn-ErrorType", code)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    # -- the request log --------------------------------------------------------------------

    def _record(self, t: float, admitted: int, route: Route, call: Call, outcome: str,
                status: int | None, reason: str) -> None:
        entry = {"t": round(t, 3), "faults": admitted, "caller": route.caller,
                 "region": route.target, "kind": route.kind, "service": call.service,
                 "operation": call.operation, "outcome": outcome, "status": status}
        if reason:
            entry["reason"] = reason
        with self._records_lock:
            self.records.append(entry)

    def flush(self) -> None:
        if self.log_path is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._records_lock, self.log_path.open("w") as f:
            for entry in self.records:
                f.write(json.dumps(entry) + "\n")

    def calls_since(self, faults: int, kind: str = "aws") -> dict[str, dict[str, int]]:
        """Per Region: requests attempted and succeeded (answered below 500) that were
        admitted once `faults` faults had been injected."""
        attempted: Counter[str] = Counter()
        succeeded: Counter[str] = Counter()
        with self._records_lock:
            for e in self.records:
                if e["faults"] >= faults and e["kind"] == kind:
                    attempted[e["region"]] += 1
                    succeeded[e["region"]] += e["outcome"] == "ok"
        return {r: {"attempted": attempted[r], "succeeded": succeeded[r]}
                for r in sorted(set(attempted) | set(self.domains.sites))}


def _forward(upstream: tuple[str, int], method: str, path: str,
             headers: Iterable[tuple[str, str]], body: bytes
             ) -> tuple[int, str, list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection(*upstream, timeout=60)
    try:
        out = {k: v for k, v in headers if k.lower() not in HOP_HEADERS}
        conn.request(method, path, body=body or None, headers=out)
        resp = conn.getresponse()
        return resp.status, resp.reason, resp.getheaders(), resp.read()
    finally:
        conn.close()
