"""A cap on request bodies, as plain ASGI: a declared length over the cap is refused before the
body is read, and a body of undeclared length (chunked) is read here, at most cap + 1 bytes,
then refused or handed on whole. The answer is 413 naming the limit, never a 5xx, and the app
never holds more than the cap."""

from __future__ import annotations

import json
from typing import Any

Message = dict[str, Any]


class BodyCap:
    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:  # undeclared length: read it here, bounded
            message: Message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body
            body += message.get("body", b"")
            more = bool(message.get("more_body"))
            if len(body) > self.limit:
                await self._refuse(send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            message: dict[str, Any] = await receive()  # only http.disconnect from here
            return message

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"detail": f"request body larger than {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
