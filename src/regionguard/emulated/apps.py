"""Each app region's entry point in the emulated AWS: the ALB and its instances (or API Gateway
and the app function), modelled; its write gate, real.

What is real: the write lease. Each region's app runs the app's own `LeaseGuard`, reading the
arbiter through the fault proxy from its own Region, so it loses the lease exactly when that
Region cannot reach a quorum of the arbiter's sites, and refuses writes the way the app does.
What is modelled: capacity (the ALB serves while its target group has a healthy target in
moto, with the boot model; Lambda is on-demand and always serves) and the database (writable
while moto's instance is an available non-replica, or the Aurora cluster is the global writer).
Acknowledged writes are logged with their region and epoch for the split-brain check.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3

from regionguard.app.errors import Unavailable
from regionguard.app.lease import LeaseGuard, dynamodb_reader
from regionguard.clock import Clock
from regionguard.infra.view import AwsRegion, AwsView
from regionguard.providers.aws.clients import AwsClients

log = logging.getLogger("regionguard.emulated.apps")

STATE_POLL_S = 10.0  # world seconds between looks at capacity and database (an ALB's check)
DB_RECHECK_S = 1.0  # at most this often, a refused write looks at the database again


@dataclass(frozen=True, slots=True)
class Ack:
    t: float  # world time the write was acknowledged
    region: str
    epoch: int
    request_id: str


class WriteLog:
    def __init__(self) -> None:
        self.acks: list[Ack] = []
        self._lock = threading.Lock()

    def add(self, ack: Ack) -> None:
        with self._lock:
            self.acks.append(ack)

    def snapshot(self) -> list[Ack]:
        with self._lock:
            return list(self.acks)


class RegionalApp:
    def __init__(self, view: AwsView, region: AwsRegion, moto_url: str,
                 arbiter_endpoints: dict[str, str], clock: Clock, writes: WriteLog,
                 lease_s: float | None = None) -> None:
        self.view = view
        self.region = region
        self.clock = clock
        self.writes = writes
        self.moto = boto3.session.Session(aws_access_key_id="emulated",
                                          aws_secret_access_key="emulated")
        self.moto_url = moto_url
        replicas = [region.aws_region] + [r for r in view.replica_regions
                                          if r != region.aws_region]
        lease_s = lease_s or view.settings.lease_s
        read = dynamodb_reader(view.names.state_table(), replicas, region.name, lease_s, clock,
                               clients=AwsClients(self.moto, arbiter_endpoints, clock))
        self.lease = LeaseGuard(region.name, read, lease_s, clock=clock)
        self.capacity = 0
        self.db_up = False
        self.db_writable = False
        self._db_checked_at = float("-inf")
        self._stop = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), json_http_handler(self.answer))
        self.server.daemon_threads = True

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self.refresh()
        self.lease.start()
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True, name=f"app-{self.region.name}").start()
        threading.Thread(target=self._poll, daemon=True,
                         name=f"app-state-{self.region.name}").start()

    def started(self) -> bool:
        return True  # serving from `start` on

    def stop(self) -> None:
        self._stop.set()
        self.lease.stop()
        self.server.shutdown()
        self.server.server_close()

    # -- the modelled parts: capacity and database ------------------------------------------

    def _client(self, service: str) -> Any:
        return self.moto.client(service, region_name=self.region.aws_region,
                                endpoint_url=self.moto_url)

    def _poll(self) -> None:
        while not self._stop.wait(STATE_POLL_S * self.clock.factor):
            try:
                self.refresh()
            except Exception as exc:  # the region's view of itself; keep the last one
                log.debug("state poll of %s failed: %s", self.region.name, exc)

    def refresh(self) -> None:
        self.capacity = self._capacity()
        self._refresh_database()

    def _refresh_database(self) -> None:
        self._db_checked_at = self.clock.monotonic()
        self.db_up, self.db_writable = self._database()

    def _capacity(self) -> int:
        if self.view.serverless:
            return 1  # on-demand Lambda behind API Gateway serves at once
        elb = self._client("elbv2")
        healthy = 0
        for tg in elb.describe_target_groups()["TargetGroups"]:
            health = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
            healthy += sum(1 for t in health["TargetHealthDescriptions"]
                           if t["TargetHealth"]["State"] == "healthy")
        return healthy

    def _database(self) -> tuple[bool, bool]:
        n, r = self.view.names, self.region.aws_region
        rds = self._client("rds")
        if self.view.settings.database == "aurora-global":
            clusters = rds.describe_db_clusters(DBClusterIdentifier=n.db_cluster(r))
            cluster = clusters["DBClusters"][0]
            members = rds.describe_global_clusters(
                GlobalClusterIdentifier=n.global_cluster())["GlobalClusters"][0]
            writer = any(m["IsWriter"] and m["DBClusterArn"] == cluster["DBClusterArn"]
                         for m in members["GlobalClusterMembers"])
            up = cluster["Status"] == "available"
            return up, up and writer and members.get("Status", "available") == "available"
        inst = rds.describe_db_instances(DBInstanceIdentifier=n.db_instance(r))["DBInstances"][0]
        up = inst["DBInstanceStatus"] == "available"
        return up, up and not inst.get("ReadReplicaSourceDBInstanceIdentifier")

    # -- requests ---------------------------------------------------------------------------

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = self.region.name
        if self.capacity <= 0:
            return 503, {"detail": f"{name}: no healthy target"}
        if method == "GET" and path == "/health":
            return 200, {"status": "ok", "region": name}
        if method == "GET" and path == "/health/deep":
            code = 200 if self.db_up else 503
            return code, {"region": name, "db_up": self.db_up, "writable": self.db_writable}
        if method == "GET" and path == "/health/route":  # as the app: the lease it holds
            state = self.lease.describe(refresh=False)  # the last confirmation, as the app
            # a writer whose database still promotes takes traffic: DNS moves meanwhile, and
            # its writes are answered 503 + Retry-After until the promotion ends
            state["writable"] = bool(state["holds_lease"]) and self.db_writable
            return (200 if state["holds_lease"] else 503), state
        if method == "POST" and path in ("/orders", "/_regionguard/canary"):
            return self.write(path, body)
        return 404, {"detail": "not found"}

    def write(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The write path: the lease first (the real gate), then a writable database."""
        name = self.region.name
        try:
            epoch = self.lease.require_write().epoch
        except Unavailable as exc:
            return 503, {"detail": exc.reason, "region": name,
                         "retry_after_s": exc.retry_after_s}
        if not self.db_writable and \
                self.clock.monotonic() - self._db_checked_at >= DB_RECHECK_S:
            # the app learns its database was promoted from the next write, not from a poll
            try:
                self._refresh_database()
            except Exception as exc:  # moto unreachable: as not writable
                log.debug("database look of %s failed: %s", name, exc)
        if not self.db_writable:  # a replica still promoting
            return 503, {"detail": f"database {name} is not writable (yet); retry",
                         "region": name}
        token = str(body.get("request_id") or body.get("token") or "")
        if path == "/orders":
            self.writes.add(Ack(self.clock.time(), name, epoch, token))
            return 201, {"request_id": token, "region": name, "epoch": epoch}
        return 200, {"token": token, "region": name, "epoch": epoch, "served_by": name}


Answer = Callable[[str, str, dict[str, Any]], tuple[int, dict[str, Any]]]


def json_http_handler(answer: Answer) -> type[BaseHTTPRequestHandler]:
    """A quiet HTTP/1.1 handler that hands (method, path, JSON body) to `answer` and writes
    its (status, JSON payload) back: each emulated entry point is one of these."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                body = {}
            code, payload = answer(self.command, self.path.split("?")[0],
                                   body if isinstance(body, dict) else {})
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if code == 503:  # the app's refusals say when to try again
                self.send_header("Retry-After", str(payload.get("retry_after_s", 1)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

    return Handler
