"""Only the edge reaches the API (AWS serverless): a pure ASGI check of CloudFront's origin
header.

An API Gateway HTTP API cannot take a web ACL, so the WAF guards what comes through CloudFront.
CloudFront adds `X-Regionguard-Origin` with a secret value to every API request (it replaces a
viewer's header of that name); the app refuses an API call without it (403, one line), so a
caller who finds `<region>.<domain>` cannot go around the web ACL. Exempt: the health endpoints
(Route 53's health checkers and the guards' probes call each Region directly) and the engine's
canary (the guards' `verify`, which carries the admin credential instead). A write forwarded to
the writer Region carries the header on, as it carries the client's others.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

ORIGIN_HEADER = b"x-regionguard-origin"
EXEMPT_PREFIXES = ("/health", "/_regionguard/")


class OriginCheck:
    def __init__(self, app: Any, secret: str) -> None:
        self.app = app
        self.secret = secret.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(ORIGIN_HEADER, b"")
        if hmac.compare_digest(sent, self.secret):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": "this API is served through the CloudFront distribution; "
                                     "requests that bypass it are refused"}).encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
