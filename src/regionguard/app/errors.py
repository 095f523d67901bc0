"""The app's one error a request can end in besides bad input: try again later."""

from __future__ import annotations

import math


class Unavailable(Exception):
    """A request that cannot be served now but may succeed on retry (HTTP 503 + Retry-After)."""

    def __init__(self, reason: str, retry_after_s: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class BadValue(ValueError):
    """A value the database cannot store: the client's input (HTTP 400), never a 500."""


def json_safe(value: object) -> object:
    """`value` with every float JSON cannot carry (NaN, ±Infinity) as its name: Python's
    parser accepts them in a request, and a 422 that echoes the bad input must not fail to
    encode it (which would be a 500)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
