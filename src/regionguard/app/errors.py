"""The app's one error a request can end in besides bad input: try again later."""

from __future__ import annotations


class Unavailable(Exception):
    """A request that cannot be served now but may succeed on retry (HTTP 503 + Retry-After)."""

    def __init__(self, reason: str, retry_after_s: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class BadValue(ValueError):
    """A value the database cannot store: the client's input (HTTP 400), never a 500."""
