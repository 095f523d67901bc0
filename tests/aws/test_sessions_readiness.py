"""Readiness of the sessions' global table, each way it can answer: both replicas ACTIVE and
replication within the bound (pass), a replica missing or not ACTIVE (fail), replication
behind or unknown, or a Region that could not be asked (warn). The guard's own run against
moto is in test_failover_lambda; here every answer is one the test chooses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from regionguard.providers.aws.sessions_table import check

pytestmark = pytest.mark.aws

E, W = "us-east-1", "us-west-2"
NOW = 1_800_000_000.0


@dataclass
class Answers:
    status: dict[str, Any] = field(default_factory=lambda: {E: "ACTIVE", W: "ACTIVE"})
    latency_ms: dict[str, Any] = field(default_factory=lambda: {E: 400.0, W: 300.0})

    def get(self, service: str, region: str) -> Any:
        return SimpleNamespace(describe_table=lambda **_: self._describe(region),
                               get_metric_statistics=lambda **_: self._metric(region))

    def _describe(self, region: str) -> dict[str, Any]:
        answer = self.status[region]
        if isinstance(answer, Exception):
            raise answer
        return {"Table": {"TableStatus": answer}}

    def _metric(self, region: str) -> dict[str, Any]:
        answer = self.latency_ms[region]
        if isinstance(answer, Exception):
            raise answer
        return {"Datapoints": [] if answer is None else [
            {"Timestamp": datetime.fromtimestamp(NOW - 60, UTC), "Average": answer}]}


def ctx(answers: Answers) -> Any:
    return SimpleNamespace(
        names=SimpleNamespace(sessions_table=lambda: "orders-sessions"),
        view=SimpleNamespace(replica_regions=(E, W),
                             settings=SimpleNamespace(sessions_replication_warn_s=5.0)),
        clock=SimpleNamespace(time=lambda: NOW), clients=answers)


def missing(region: str) -> ClientError:
    return ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}},
                       "DescribeTable")


@pytest.mark.parametrize(("change", "status", "says"), [
    ({}, "pass", "replicas ACTIVE in us-east-1, us-west-2"),
    ({"latency_ms": {E: None, W: None}}, "pass", "within 5 s"),  # no writes lately
    ({"latency_ms": {E: 9000.0, W: 300.0}}, "warn", "us-east-1 -> us-west-2 9.0 s"),
    ({"latency_ms": {E: EndpointConnectionError(endpoint_url="x"), W: 300.0}}, "warn",
     "latency unknown"),
    ({"status": {E: "ACTIVE", W: "UPDATING"}}, "fail", "us-west-2's replica is UPDATING"),
    ({"status": {E: "ACTIVE", W: missing(W)}}, "fail", "ResourceNotFound"),
    ({"status": {E: EndpointConnectionError(endpoint_url="x"), W: "ACTIVE"}}, "warn",
     "could not look"),
])
def test_each_answer(change: dict[str, Any], status: str, says: str) -> None:
    result = check(ctx(Answers(**change)))
    assert (result.status, says in result.observed) == (status, True), result
