"""The per-region health Lambda: on its schedule it checks this region's `/health/deep` and
writes the result into the global table; behind `GET /health-check` (Cognito JWT) it returns
every region's latest row, with its age (`RG_REGIONS`)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx
from botocore.exceptions import ClientError

from regionguard.providers.aws.clients import AwsClients

STALE_AFTER_S = 180.0  # three missed runs of the one-minute schedule


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    table = os.environ["RG_STATE_TABLE"]
    ddb = AwsClients().get("dynamodb", os.environ.get("AWS_REGION", "us-east-1"))
    if "http" in event.get("requestContext", {}):  # GET /health-check (payload v2)
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps({"served_by": os.environ["RG_REGION"],
                                    "regions": every_region(ddb, table)})}
    started = time.monotonic()
    try:
        r = httpx.get(os.environ["RG_HEALTH_URL"], timeout=5)
        status, detail = ("ok" if r.status_code == 200 else "failed"), f"HTTP {r.status_code}"
    except httpx.HTTPError as exc:
        status, detail = "failed", type(exc).__name__
    ddb.put_item(TableName=table, Item={
        "pk": {"S": f"health#{os.environ['RG_REGION']}"}, "status": {"S": status},
        "detail": {"S": detail}, "checked_at": {"N": str(time.time())},
        "latency_s": {"N": f"{time.monotonic() - started:.3f}"},
        "expires_at": {"N": str(int(time.time()) + 86400)}})
    return {"status": status, "detail": detail}


def every_region(ddb: Any, table: str) -> list[dict[str, Any]]:
    """Each Region's latest row, read from this Region's replica of the table (strongly
    consistent: MRSC), so one call answers for all Regions, and a Region that stopped writing
    shows its age instead of vanishing."""
    now = time.time()
    out: list[dict[str, Any]] = []
    for region in filter(None, os.environ.get("RG_REGIONS", os.environ["RG_REGION"]).split(",")):
        key = {"pk": {"S": f"health#{region}"}}
        try:
            item = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
            consistent = True
        except ClientError:  # this replica lost its quorum: answer from what it has
            item = ddb.get_item(TableName=table, Key=key).get("Item")
            consistent = False
        if item is None:
            out.append({"region": region, "status": "unknown", "detail": "no report yet"})
            continue
        row: dict[str, Any] = {k: next(iter(v.values())) for k, v in item.items() if k != "pk"}
        checked = float(row.get("checked_at", 0))
        age = now - checked
        out.append({"region": region,
                    # a Region that stopped reporting is stale, whatever it last said
                    "status": "stale" if age > STALE_AFTER_S else row.get("status"),
                    "detail": row.get("detail"), "checked_at": checked,
                    "age_s": round(age, 1), "latency_s": float(row.get("latency_s", 0)),
                    "consistent": consistent})
    return out
