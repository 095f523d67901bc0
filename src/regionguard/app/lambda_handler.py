"""The same workload app on AWS Lambda behind API Gateway (HTTP API, payload v2), via Mangum.

Settings come from the function's environment (`RG_REGION`, this Region's database endpoint
and the name of its replicated secret: see `app/settings.py`). The app is built on the first
invocation, so importing this module never touches a database, and its pools live as long as
the warm container.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from mangum import Mangum

from regionguard.app.main import create_app
from regionguard.app.settings import AppSettings, SettingsError

log = logging.getLogger("regionguard.app")

_handler: Mangum | None = None


def build_handler(settings: AppSettings | None = None) -> Mangum:
    """Open the pools once per container (not per invocation, as ASGI lifespan would)."""
    app = create_app(settings)
    app.state.router.open()
    return Mangum(app, lifespan="off", api_gateway_base_path="/")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A container that cannot build the app (its secret unreadable, a restored database not
    there yet) answers 503 with Retry-After and tries again on the next request: never a 500
    with a traceback."""
    global _handler
    if _handler is None:
        try:
            _handler = build_handler()
        except SettingsError as exc:
            log.error("app not started: %s", exc)
            return {"statusCode": 503, "headers": {"content-type": "application/json",
                                                   "retry-after": "5"},
                    "body": json.dumps({"detail": f"not started: {exc}"})}
    return _handler(event, context)
