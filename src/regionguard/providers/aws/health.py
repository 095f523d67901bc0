"""The per-region health Lambda: on its schedule it checks this region's `/health/deep` and
writes the result into the global table; behind `GET /health-check` (Cognito JWT) it returns
every region's latest row."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx

from regionguard.providers.aws.clients import AwsClients


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    table = os.environ["RG_STATE_TABLE"]
    ddb = AwsClients().get("dynamodb", os.environ.get("AWS_REGION", "us-east-1"))
    if event.get("requestContext", {}).get("http"):  # GET /health-check
        key = {":p": {"S": f"health#{os.environ['RG_REGION']}"}}
        rows = ddb.query(TableName=table, KeyConditionExpression="pk = :p",
                         ExpressionAttributeValues=key)
        items = [{k: next(iter(v.values())) for k, v in i.items()} for i in rows["Items"]]
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps({"regions": items})}
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
