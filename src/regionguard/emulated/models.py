"""What moto lacks, emulated after AWS's documented contract, in moto's own server process.

Every modelled duration is in world seconds (scaled by the clock's factor) and comes from AWS
documentation where AWS states one; where it does not, the figure is ours and says so. The
documentation's "Emulated AWS" page (docs/emulated.md) lists each with its source.

- RDS `PromoteReadReplica`: moto promotes at once. AWS: "RDS reboots the DB instance before
  making it available. The promotion process can take several minutes or longer to complete,
  depending on the size of the read replica" (RDS User Guide, Promoting a read replica). We
  model 5 minutes in `modifying`; a second call meanwhile gets `InvalidDBInstanceState`.
- Aurora `FailoverGlobalCluster` / `SwitchoverGlobalCluster`: absent from moto. AWS: "A
  database in a secondary Region can be promoted to full read/write capabilities in less than
  1 minute" (AWS Prescriptive Guidance, Aurora replication options). We model 1 minute in
  `failing-over` / `switching-over`, then swap the writer.
- EC2 boot behind an ALB: moto reports a registered instance healthy at once. AWS states no boot
  time; a target "must pass one health check to be considered healthy" after registration, and
  an ALB target group checks every 30 s by default. We model 120 s to boot and start the app
  (our figure) plus one 30 s health-check interval: healthy 150 s after launch. Instances the
  deployment launched (before the emulator's `booted_before` mark) have long been running.
- DynamoDB multi-Region strong consistency: moto has single-Region tables. A table created with
  the tag `regionguard:mrsc-replicas` (comma-separated Regions) is one table object shared by
  every listed Region, and every item operation on it runs under one lock (moto's server
  serves requests concurrently and checks a condition apart from applying the write): one
  linearizable store. Which replica may answer (quorum) is decided by the fault proxy, which
  knows the failure domains.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from regionguard.clock import Clock, clock_from_env

log = logging.getLogger("regionguard.emulated.models")

MODELS_ENV = "RG_LATENCY_MODELS"
CONTROL_ENV = "RG_EMULATOR_CONTROL"  # a JSON file the emulator writes: {"booted_before": wall}
MRSC_TAG = "regionguard:mrsc-replicas"


DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem",
                             "TransactWriteItems"})


@dataclass(frozen=True, slots=True)
class LatencyModel:
    rds_promote_s: float = 300.0
    aurora_failover_s: float = 60.0
    aurora_switchover_s: float = 60.0
    ec2_boot_s: float = 120.0
    alb_check_interval_s: float = 30.0
    # What one answered call costs its caller, in place of the emulator's own time (which
    # stands still: clock.PausedTime). AWS publishes none of these; each is a parameter with
    # the range docs/emulated.md gives, and benchmarks.emulated_rto reports the RTO at its ends.
    dynamodb_call_s: float = 0.01  # an item call in the caller's own Region (0.005-0.02)
    mrsc_rtt_s: float = 0.07  # added to an MRSC write or strong read: the round trip to the
    #                           nearest other replica or witness (0.01-0.2, by Region pair)
    api_call_s: float = 0.1  # any other AWS API call: a control plane's answer (0.05-0.5)
    route53_checkers: int = 8  # Route 53's checkers per health check (one per default Region)
    # a DynamoDB global table (MREC): a write reaches the other replicas "typically ... within
    # a second" (DynamoDB developer guide); a parameter, range 0.1-10 (docs/emulated.md)
    global_table_replication_s: float = 1.0

    def call_s(self, service: str, operation: str, arbiter: bool, body: bytes) -> float:
        """The modelled time of one answered call to AWS."""
        if service != "dynamodb":
            return self.api_call_s
        strong = operation in DYNAMODB_WRITES or b'"ConsistentRead": true' in body \
            or b'"ConsistentRead":true' in body
        return self.dynamodb_call_s + (self.mrsc_rtt_s if arbiter and strong else 0.0)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> LatencyModel:
        raw = (os.environ if env is None else env).get(MODELS_ENV)
        return cls(**json.loads(raw)) if raw else cls()


def _later(clock: Clock, world_s: float, action: Any) -> None:
    """Run `action` after `world_s` of world time (which stands still while paused)."""

    def run() -> None:
        clock.sleep(world_s)
        action()

    threading.Thread(target=run, daemon=True, name="model-timer").start()


def install(model: LatencyModel, clock: Clock | None = None) -> None:
    """Patch moto's backends in this process (moto's server process) with the models above."""
    clock = clock or clock_from_env()
    _rds_promotion(model, clock)
    _aurora_global_failover(model, clock)
    _ec2_boot(model, clock)
    _mrsc_tables()


def _rds_promotion(model: LatencyModel, clock: Clock) -> None:
    from moto.rds.exceptions import RDSClientError
    from moto.rds.models import RDSBackend

    def promote_read_replica(self: Any, db_kwargs: dict[str, Any]) -> Any:
        database = self.databases[db_kwargs["db_instance_identifier"]]
        if database.status != "available":
            raise RDSClientError("InvalidDBInstanceState",
                                 f"DB instance {database.db_instance_identifier} is "
                                 f"{database.status}, not available")
        if not database.is_replica:
            raise RDSClientError("InvalidDBInstanceState",
                                 f"DB instance {database.db_instance_identifier} is not a "
                                 "read replica")
        database.status = "modifying"

        def done() -> None:
            database.is_replica = False
            database.source_db_instance_identifier = None
            database.status = "available"

        _later(clock, model.rds_promote_s, done)
        return database

    RDSBackend.promote_read_replica = promote_read_replica  # type: ignore[method-assign]


def _aurora_global_failover(model: LatencyModel, clock: Clock) -> None:
    from moto.core.responses import ActionResult
    from moto.rds.exceptions import RDSClientError
    from moto.rds.responses import RDSResponse

    def swap(self: Any, status: str, seconds: float) -> ActionResult:
        params = self.params
        clusters = self.global_backend.global_clusters
        ident = params["GlobalClusterIdentifier"]
        if ident not in clusters:
            raise RDSClientError("GlobalClusterNotFoundFault", f"{ident} not found")
        cluster = clusters[ident]
        target = params["TargetDbClusterIdentifier"]
        if cluster.status != "available":
            raise RDSClientError("InvalidGlobalClusterStateFault",
                                 f"global cluster {ident} is {cluster.status}")
        if not any(m.db_cluster_arn == target for m in cluster.members):
            raise RDSClientError("DBClusterNotFoundFault", f"{target} is not a member")
        cluster.status = status

        def done() -> None:
            for member in cluster.members:
                member.is_writer = member.db_cluster_arn == target
            cluster.status = "available"

        _later(clock, seconds, done)
        return ActionResult({"GlobalCluster": cluster})

    def failover_global_cluster(self: Any) -> ActionResult:
        return swap(self, "failing-over", model.aurora_failover_s)

    def switchover_global_cluster(self: Any) -> ActionResult:
        return swap(self, "switching-over", model.aurora_switchover_s)

    RDSResponse.failover_global_cluster = failover_global_cluster  # type: ignore[attr-defined]
    RDSResponse.switchover_global_cluster = switchover_global_cluster  # type: ignore[attr-defined]


def _ec2_boot(model: LatencyModel, clock: Clock) -> None:
    from moto.ec2.models.instances import Instance
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    original = FakeTargetGroup.health_for
    ready_after_s = model.ec2_boot_s + model.alb_check_interval_s
    original_init = Instance.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.regionguard_launched_world = clock.time()  # the boot counts world time

    Instance.__init__ = init  # type: ignore[method-assign]

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        status = original(self, target, ec2_backend)
        if not str(target.get("Id", "")).startswith("i-") or status.status != "healthy":
            return status
        try:
            instance = ec2_backend.get_instance(target["Id"])
        except Exception:  # terminated meanwhile: moto's own answer stands
            return status
        started = datetime.fromisoformat(str(instance.launch_time).replace("Z", "+00:00"))
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        if started.timestamp() < _control().get("booted_before", 0.0):
            return status
        age_world_s = clock.time() - getattr(instance, "regionguard_launched_world",
                                             clock.time())
        if age_world_s >= ready_after_s:
            return status
        return FakeHealthStatus(target["Id"], target.get("Port", self.port),
                                self.health_check_port, "initial",
                                "Elb.RegistrationInProgress",
                                "Target registration is in progress")

    FakeTargetGroup.health_for = health_for  # type: ignore[method-assign]


def _control() -> dict[str, float]:
    path = os.environ.get(CONTROL_ENV)
    if not path:
        return {}
    try:
        with open(path) as f:
            data: dict[str, float] = json.load(f)
    except (OSError, ValueError):
        return {}
    return data


ITEM_OPERATIONS = ("get_item", "put_item", "update_item", "delete_item", "batch_get_item",
                   "batch_write_item", "query", "scan")


def _mrsc_tables() -> None:
    from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends

    serial = threading.RLock()  # one store: conditions are checked and applied atomically

    def serialised(name: str) -> None:
        method = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
            with serial:
                return method(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)

    for operation in ITEM_OPERATIONS:
        serialised(operation)
    original = DynamoDBBackend.create_table

    def create_table(self: Any, name: str, **params: Any) -> Any:
        table = original(self, name, **params)
        tags = {t["Key"]: t["Value"] for t in params.get("tags") or []}
        for region in filter(None, tags.get(MRSC_TAG, "").split(",")):
            backend = dynamodb_backends[self.account_id][region]
            if backend is not self:
                backend.tables[name] = table  # one table object: one linearizable store
        return table

    DynamoDBBackend.create_table = create_table  # type: ignore[method-assign,assignment]
