"""The guard Lambda's metrics, in CloudWatch's embedded metric format (EMF, through
aws-lambda-powertools): the AWS world's counterpart of each site's agent's /metrics.

Log lines become CloudWatch metrics in namespace `RegionGuard` (the dashboard's) with no API
call on the failover path (a metric call to a Region that is down would be one more thing to
wait for, and one more permission): `Failovers` (Count; dimensions `App`, `Kind`, `Outcome`,
`Region`) when the run finished or resumed a plan, with `RTO` and `StepDuration` (per `Step`);
`PrimaryDown` (0/1; per `Vantage`) from the guard's verdict on each scheduled run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from regionguard.orchestrator.readiness import Check

NAMESPACE = "RegionGuard"
PLAN_RESULTS = {"done": "done", "resumed": "done"}


def emit(result: Mapping[str, Any], region: str, app: str) -> None:
    """Write `result`'s metrics (a guard cycle's or a direct action's) as EMF lines."""
    outcome = result.get("outcome") if result.get("action") in ("guard", "alarm") else result
    if isinstance(outcome, Mapping) and outcome.get("result") in PLAN_RESULTS \
            and outcome.get("plan"):
        kind = str(outcome.get("kind") or "failover")
        with single_metric(name="Failovers", unit=MetricUnit.Count, value=1,
                           namespace=NAMESPACE) as m:
            m.add_dimension(name="App", value=app)
            m.add_dimension(name="Kind", value=kind)
            m.add_dimension(name="Outcome", value=PLAN_RESULTS[str(outcome["result"])])
            m.add_dimension(name="Region", value=region)
            m.add_metadata(key="plan", value=str(outcome["plan"]))
        summary = outcome.get("summary") or {}
        if summary.get("rto_s") is not None:
            with single_metric(name="RTO", unit=MetricUnit.Seconds,
                               value=float(summary["rto_s"]), namespace=NAMESPACE) as m:
                m.add_dimension(name="App", value=app)
        counted = [(step, seconds, "yes") for step, seconds in
                   (summary.get("steps") or {}).items()]
        after = [(step, seconds, "no") for step, seconds in
                 (summary.get("after_rto") or {}).items()]
        for step, seconds, in_rto in counted + after:
            with single_metric(name="StepDuration", unit=MetricUnit.Seconds,
                               value=float(seconds), namespace=NAMESPACE) as m:
                m.add_dimension(name="App", value=app)
                m.add_dimension(name="Step", value=str(step))
                m.add_dimension(name="InRto", value=in_rto)  # no: after traffic moved
    if result.get("action") == "guard" and result.get("verdict") is not None:
        with single_metric(name="PrimaryDown", unit=MetricUnit.Count,
                           value=1 if result["verdict"] == "down" else 0,
                           namespace=NAMESPACE) as m:
            m.add_dimension(name="App", value=app)
            m.add_dimension(name="Vantage", value=region)


def emit_readiness(checks: Sequence[Check], region: str, app: str) -> None:
    """`ReadinessFailing` per check (1 while it fails), as the local /metrics exports it."""
    for check in checks:
        with single_metric(name="ReadinessFailing", unit=MetricUnit.Count,
                           value=1 if check.status == "fail" else 0,
                           namespace=NAMESPACE) as m:
            m.add_dimension(name="App", value=app)
            m.add_dimension(name="Check", value=check.name)
            m.add_dimension(name="Region", value=region)
