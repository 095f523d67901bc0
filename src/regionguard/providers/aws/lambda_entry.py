"""The failover Lambda: the regionguard engine with AWS providers.

Handles (a) an SNS message carrying a CloudWatch alarm state change (only `ALARM` acts; `OK`
and `INSUFFICIENT_DATA` are ignored), (b) a scheduled check (resumes an interrupted plan,
reports), (c) a direct `{"action": "failover"|"switchover"|"status", ...}` invocation.
SNS delivers at least once: alarm handling is idempotent per SNS message id (Powertools
idempotency on the state table), and the plan itself claims the epoch by compare-and-set.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, SNSEvent
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from regionguard.config import Topology
from regionguard.errors import RegionGuardError
from regionguard.orchestrator import plans
from regionguard.orchestrator.executor import Executor, Ports
from regionguard.orchestrator.ports import ProbeResult
from regionguard.providers.aws.probes import AlarmProber
from regionguard.providers.aws.wiring import build_ports, describe, topology_from_env

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "regionguard-failover"))
IDEMPOTENCY = IdempotencyConfig(event_key_jmespath="message_id", expires_after_seconds=24 * 3600)


def _persistence() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=os.environ["RG_STATE_TABLE"], key_attr="pk",
                                    expiry_attr="expires_at")


def _topology() -> Topology:
    return topology_from_env(os.environ["RG_TOPOLOGY"])


def _ports(topology: Topology, extra_probers: list[Any] | None = None) -> Ports:
    return build_ports(topology, runs_in=os.environ.get("AWS_REGION"),
                       probers=extra_probers or [],
                       canary=os.environ.get("RG_VERIFY_CANARY", "1") == "1",
                       poll_s=float(os.environ.get("RG_POLL_S", "5")))


def classify(event: dict[str, Any]) -> str:
    records = event.get("Records") or []
    if records and records[0].get("EventSource") == "aws:sns":
        return "alarm"
    if event.get("source") == "aws.events" or event.get("detail-type") == "Scheduled Event":
        return "check"
    if "action" in event:
        return "action"
    return "unknown"


def _run(ports: Ports, plan: plans.Plan, verdict: dict[str, Any] | None = None) -> dict[str, Any]:
    with ports.state.plan_lock() as held:
        if not held:
            return {"action": "none", "reason": "another plan holds the lease"}
        summary = Executor(ports).run(plan, verdict=verdict)
    return {"action": plan.kind.value, "plan": plan.id, "to": plan.target,
            "epoch": plan.base_epoch + 1, "rto": summary}


def _resume_if_interrupted(ports: Ports) -> dict[str, Any] | None:
    live = ports.state.load()
    if live.plan is None:
        return None
    with ports.state.plan_lock() as held:
        if not held:
            return {"action": "none", "reason": f"plan {live.plan.get('id')} is running"}
        summary = Executor(ports).run(plans.Plan.from_dict(live.plan), resume=live.plan)
    return {"action": "resumed", "plan": live.plan.get("id"), "rto": summary}


def on_alarm(alarm: dict[str, Any]) -> dict[str, Any]:
    """An ALARM on the primary's health check: fail over if a quorum of probers agree."""
    topology = _topology()
    probe_ports = _ports(topology)
    live = probe_ports.state.load()
    primary = live.primary
    ports = _ports(topology, [AlarmProber(primary)])
    resumed = _resume_if_interrupted(ports)
    if resumed is not None:
        return resumed
    results: list[ProbeResult] = [p.probe(primary, topology.health.timeout_s)
                                  for p in ports.probers]
    failing = [r for r in results if not r.ok]
    verdict = {"region": primary, "verdict": "down" if len(failing) >= topology.health.quorum
               else "up", "probes": {r.prober: r.detail for r in results},
               "alarm": alarm.get("AlarmName")}
    if len(failing) < topology.health.quorum:
        ports.journal.record("alarm_not_confirmed", **verdict)
        return {"action": "none", "reason": "alarm not confirmed by a quorum of probers",
                **verdict}
    obs = plans.Observation(live, {r: ports.database.status(r) for r in topology.regions})
    plan = plans.failover(topology, obs, reason=f"alarm {alarm.get('AlarmName')}: "
                          f"{alarm.get('NewStateReason', '')}"[:300], primary_confirmed_down=True)
    return _run(ports, plan, verdict=verdict)


def handle_alarm_once(delivery: dict[str, Any]) -> dict[str, Any]:
    """`on_alarm` at most once per SNS message id; a repeat returns the stored result."""

    @idempotent_function(data_keyword_argument="delivery", config=IDEMPOTENCY,
                         persistence_store=_persistence())
    def regionguard_alarm(delivery: dict[str, Any]) -> dict[str, Any]:
        return on_alarm(delivery["alarm"])

    return regionguard_alarm(delivery={"message_id": delivery["message_id"],
                                       "alarm": delivery["alarm"]})


def on_action(event: dict[str, Any]) -> dict[str, Any]:
    topology = _topology()
    ports = _ports(topology)
    action = event["action"]
    if action == "status":
        return describe(ports)
    obs = plans.Observation(ports.state.load(),
                            {r: ports.database.status(r) for r in topology.regions},
                            ports.database.zero_loss_switchover)
    if action == "failover":
        plan = plans.failover(topology, obs, event.get("to"), force=bool(event.get("force")),
                              reason="direct invocation")
    elif action == "switchover":
        plan = plans.switchover(topology, obs, event["to"], reason="direct invocation")
    else:
        return {"action": "error", "error": f"unknown action {action!r}; use failover, "
                "switchover or status"}
    return _run(ports, plan)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind = classify(event)
    try:
        if kind == "alarm":
            record = next(iter(SNSEvent(event).records)).sns
            alarm = json.loads(record.message)
            state = alarm.get("NewStateValue")
            if state != "ALARM":
                result = {"action": "ignored", "state": state, "alarm": alarm.get("AlarmName")}
            else:
                IDEMPOTENCY.register_lambda_context(context)
                result = handle_alarm_once(delivery={"message_id": record.message_id,
                                                     "alarm": alarm})
        elif kind == "check":
            EventBridgeEvent(event)
            ports = _ports(_topology())
            result = _resume_if_interrupted(ports) or describe(ports)
        elif kind == "action":
            result = on_action(event)
        else:
            result = {"action": "error", "error": "unrecognised event"}
    except RegionGuardError as exc:
        result = {"action": "refused" if exc.exit_code == 3 else "error", "error": str(exc)}
    logger.info("regionguard result", extra={"result": result, "event_kind": kind})
    return result
