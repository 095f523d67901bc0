"""The guard Lambda: the regionguard engine with AWS providers, deployed in all three sites.

An EventBridge Scheduler schedule runs it every minute in each app region and in the witness
Region. A run is a `Guard` that probes the live primary every `probe_interval_s` for about a
minute, publishes what it sees to the arbiter, and, in the failover target's Region, drives the
failover (or re-drives an interrupted one) through the engine's one entry point. A run that finds
a plan whose runner died takes it over once the runner's plan lease has run out.

Other events:
- an SNS message carrying a CloudWatch alarm (the Route 53 health check of the primary, in
  us-east-1): an extra, faster signal, never a required one. `ALARM` runs one guard cycle now
  (it still needs the vantage points' quorum); `OK` and `INSUFFICIENT_DATA` are ignored. SNS
  delivers at least once: a repeat of a message id replays the stored result (Powertools
  idempotency on the arbiter table).
- a direct `{"action": "status" | "failover" | "switchover", ...}` invocation.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import SNSEvent
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from regionguard.clock import clock_from_env
from regionguard.errors import RegionGuardError
from regionguard.infra.view import SECOND_PROBER
from regionguard.orchestrator import engine
from regionguard.orchestrator.plans import PlanKind
from regionguard.orchestrator.ports import Ports
from regionguard.providers.aws.clients import AwsClients
from regionguard.providers.aws.metrics import emit as emit_metrics
from regionguard.providers.aws.metrics import emit_readiness
from regionguard.providers.aws.state import DynamoDBStateStore
from regionguard.providers.aws.wiring import (
    build_guard,
    build_ports,
    describe,
    topology_from_env,
)

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "regionguard-guard"))
IDEMPOTENCY = IdempotencyConfig(event_key_jmespath="message_id", expires_after_seconds=24 * 3600)
RUN_S = 50.0  # world seconds a scheduled run keeps probing (the schedule fires every minute)
MARGIN_S = 5.0  # real seconds kept back from the function's timeout


# boto3 clients (about 117 ms of CPU each to create) and the arbiter's replica order, made once
# per execution environment, outside the handler as Lambda advises, and reused by every warm
# invocation; keyed by the Region and the clock's rate (one key per environment in practice)
_CLIENTS: dict[tuple[str, float], AwsClients] = {}


def _ports() -> Ports:
    clock = clock_from_env()
    key = (os.environ.get("AWS_REGION", ""), clock.factor)
    clients = _CLIENTS.get(key)
    if clients is None:
        clients = _CLIENTS[key] = AwsClients(clock=clock)
    ports = build_ports(topology_from_env(os.environ["RG_TOPOLOGY"]), clients=clients,
                        clock=clock)
    _INVOCATION_PORTS.append(ports)
    return ports


# the ports this invocation built: their journals are flushed before the handler returns (an
# execution environment is frozen after it, with its writer threads)
_INVOCATION_PORTS: list[Ports] = []


def classify(event: dict[str, Any]) -> str:
    records = event.get("Records") or []
    if records and records[0].get("EventSource") == "aws:sns":
        return "alarm"
    if event.get("regionguard") == "guard" or event.get("source") in ("aws.events",
                                                                     "aws.scheduler") \
            or event.get("detail-type") == "Scheduled Event":
        return "guard"
    if "action" in event:
        return "action"
    return "unknown"


def run_guard(ports: Ports, context: Any, prober: str | None = None) -> dict[str, Any]:
    """One scheduled run: probe, judge and act for about a minute, inside the timeout.
    `prober` = "b": an app region's second prober (its own schedule), which only reports."""
    remaining_real_s = context.get_remaining_time_in_millis() / 1000 - MARGIN_S
    world_s = min(float(os.environ.get("RG_GUARD_RUN_S", RUN_S)),
                  remaining_real_s / ports.clock.factor)
    second = prober == SECOND_PROBER
    results = build_guard(ports, second=second).run(max(0.0, world_s))
    acted = [r for r in results if r.acted or r.outcome is not None]
    last = acted[-1] if acted else results[-1]
    out = {"action": "guard", "cycles": len(results), **last.as_dict()}
    if second:
        out["prober"] = prober
    elif not acted:  # a quiet run: the failover target's guard evaluates readiness
        try:
            out["readiness"] = evaluate_readiness(ports)
        except RegionGuardError as exc:
            logger.warning("readiness not evaluated: %s", exc)
    return out


def evaluate_readiness(ports: Ports) -> str | None:
    """In the failover target's Region only (one evaluator): the checks, through the monitor
    every loop shares (journaled, a newly failing check alerted once), remembered in the
    arbiter between runs; their overall status (None elsewhere)."""
    from regionguard.orchestrator import readiness
    from regionguard.orchestrator.readiness_monitor import ReadinessMonitor
    from regionguard.providers.aws.readiness_facts import ArbiterReadinessMemory, gather

    store = ports.state
    assert isinstance(store, DynamoDBStateStore)
    ctx = store.ctx
    live = store.load()
    mine = ctx.view.region_by_aws(ctx.runs_in)
    if mine is None or mine.name != ports.topology.other_region(live.primary):
        return None
    checks = ReadinessMonitor(ports, ArbiterReadinessMemory(store.arbiter)).evaluate(
        gather(ports, ctx))
    emit_readiness(checks, ctx.runs_in, ctx.names.app)
    return readiness.overall(checks)


def _persistence(ports: Ports) -> DynamoDBPersistenceLayer:
    store = ports.state
    assert isinstance(store, DynamoDBStateStore)
    client = store.ctx.clients.get("dynamodb", store.nearest.order[0])
    return DynamoDBPersistenceLayer(table_name=store.table, key_attr="pk",
                                    expiry_attr="expires_at", boto3_client=client)


def handle_alarm_once(ports: Ports, delivery: dict[str, Any]) -> dict[str, Any]:
    """One guard cycle per SNS message id; a repeat returns the stored result."""

    def regionguard_alarm(delivery: dict[str, Any]) -> dict[str, Any]:
        result = build_guard(ports).cycle()
        # which execution produced this result: a repeat gets the stored copy, same id
        return {"action": "alarm", "alarm": delivery["alarm"].get("AlarmName"),
                "execution": uuid.uuid4().hex[:12], **result.as_dict()}

    once = cast(Callable[..., dict[str, Any]], idempotent_function(
        data_keyword_argument="delivery", config=IDEMPOTENCY,
        persistence_store=_persistence(ports))(regionguard_alarm))
    return once(delivery={"message_id": delivery["message_id"], "alarm": delivery["alarm"]})


def on_action(ports: Ports, event: dict[str, Any]) -> dict[str, Any]:
    action = event["action"]
    if action == "status":
        return describe(ports)
    kinds = {"failover": PlanKind.FAILOVER, "switchover": PlanKind.SWITCHOVER}
    if action not in kinds:
        return {"action": "error", "error": f"unknown action {action!r}; use failover, "
                "switchover or status"}
    outcome = engine.drive(ports, engine.Request(kinds[action], event.get("to"),
                                                 force=bool(event.get("force")),
                                                 reason="direct invocation"))
    return {"action": action, **outcome.as_dict(),
            "epoch": outcome.plan.base_epoch + 1 if outcome.plan else None}


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind = classify(event)
    try:
        if kind == "alarm":
            record = next(iter(SNSEvent(event).records)).sns
            try:
                alarm = json.loads(record.message)
            except json.JSONDecodeError:
                alarm = {}
            state = alarm.get("NewStateValue") if isinstance(alarm, dict) else None
            if state != "ALARM":
                result = {"action": "ignored", "state": state,
                          "alarm": alarm.get("AlarmName") if isinstance(alarm, dict) else None}
            else:
                IDEMPOTENCY.register_lambda_context(context)
                try:
                    result = handle_alarm_once(_ports(), {"message_id": record.message_id,
                                                          "alarm": alarm})
                except IdempotencyAlreadyInProgressError:  # a duplicate delivery, at once
                    result = {"action": "none", "reason": "this SNS message is being handled "
                              "by another invocation"}
        elif kind == "guard":
            result = run_guard(_ports(), context, event.get("prober"))
        elif kind == "action":
            result = on_action(_ports(), event)
        else:
            result = {"action": "error", "error": "unrecognised event"}
    except RegionGuardError as exc:
        result = {"action": "refused" if exc.exit_code == 3 else "error", "error": str(exc)}
    finally:
        while _INVOCATION_PORTS:
            _INVOCATION_PORTS.pop().journal.flush()
    logger.info("regionguard result", extra={"result": result, "event_kind": kind})
    try:
        app = topology_from_env(os.environ["RG_TOPOLOGY"]).app
        emit_metrics(result, os.environ.get("AWS_REGION", "unknown"), app)
    except Exception:  # metrics are a view of the result: never its cause of failure
        logger.exception("metrics not emitted")
    return result
