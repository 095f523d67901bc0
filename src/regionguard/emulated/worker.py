"""A Lambda execution environment, emulated: one warm process running a handler per request.

The parent writes one JSON line per invocation on stdin ({"event", "request_id",
"deadline_wall"}) and reads one JSON line back on the protocol channel (the process's original
stdout); whatever the handler prints goes to stderr, the function's log. A process is one
execution environment: killing it mid-invocation is a Lambda dying mid-plan.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

from regionguard.clock import ScaledClock, clock_from_env

PAUSE_HOLDER_HEADER = "x-regionguard-paused-by"  # the pid whose pause a modelled wait lifts


class Context:
    """The Lambda context object, with what handlers and Powertools read from it."""

    def __init__(self, request_id: str, deadline_wall: float) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
        self.function_version = "$LATEST"
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.invoked_function_arn = (f"arn:aws:lambda:{region}:123456789012:function:"
                                     f"{self.function_name}")
        self.memory_limit_in_mb = 512
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "emulated")
        self._deadline = deadline_wall

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def keep_own_work_out_of_world_time(clock: ScaledClock) -> None:
    """The handler's own work (Python, botocore building and parsing calls, and the emulator
    answering them) costs this machine's time, not AWS's: the handler runs with world time
    paused (see `main`), and every request it sends names this process, so the fault proxy can
    lift the pause while it models a wait for it (a request held as a timeout, a call's
    modelled latency). Scaled naively, each real millisecond of it counted 50 world
    milliseconds at factor 0.02, and a modelled RTO moved with the factor."""
    import httpx
    from botocore.httpsession import URLLib3Session

    pid = str(os.getpid())

    def naming(send: Any) -> Any:
        def send_named(self: Any, request: Any) -> Any:
            if clock.holds_pause():  # whichever thread sends it: the handler may wait on it
                request.headers[PAUSE_HOLDER_HEADER] = pid
            return send(self, request)
        return send_named

    URLLib3Session.send = naming(URLLib3Session.send)
    httpx.HTTPTransport.handle_request = naming(  # type: ignore[method-assign]
        httpx.HTTPTransport.handle_request)


def main() -> None:
    clock = clock_from_env()
    paused = clock if isinstance(clock, ScaledClock) and clock.paused else None
    if paused is not None:
        keep_own_work_out_of_world_time(paused)
    module_name, _, attr = sys.argv[1].partition(":")
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the handler's prints and Powertools' JSON logs go to the function log
    handler: Any = getattr(importlib.import_module(module_name), attr)
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context = Context(request["request_id"], float(request["deadline_wall"]))
        own_work = paused.pause() if paused is not None else contextlib.nullcontext()
        try:
            with own_work:
                answer = {"ok": True, "result": handler(request["event"], context)}
        except Exception as exc:  # an unhandled error ends the invocation, as in Lambda
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                      "trace": traceback.format_exc()[-2000:]}
        protocol.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
