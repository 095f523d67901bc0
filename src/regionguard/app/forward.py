"""Active-active on AWS: reads local, writes to the primary Region.

Every Region serves reads from its own database. A write that reaches a Region whose app does
not hold the write lease is sent, once, to the regional host of the Region the arbiter names
(its own copy of the arbiter, read in this Region: nothing here needs another Region to decide),
where that Region's app checks its own lease and writes. The hop is named in a header: a
forwarded write that lands on a Region without the lease is refused (503), never forwarded
again, so a lease in transit cannot bounce a write between Regions. Failures of the forward are
503 with Retry-After, like every other write the app cannot place safely; the client's
`request_id` makes the retry safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from regionguard.app.errors import Unavailable
from regionguard.app.lease import LeaseGuard

FORWARDED_HEADER = "X-Regionguard-Forwarded-From"
# the client's credential and body type, and CloudFront's origin header (app/origin.py): the
# writer Region's app checks it too, so the hop itself proves it came through the edge
PASSED_HEADERS = ("authorization", "content-type", "x-regionguard-origin")


@dataclass(frozen=True, slots=True)
class Forwarded:
    status_code: int
    body: Any
    writer: str


class WriteForwarder:
    def __init__(self, region: str, lease: LeaseGuard, hosts: Mapping[str, str],
                 timeout_s: float = 5.0, scheme: str = "https",
                 transport: httpx.BaseTransport | None = None) -> None:
        self.region = region
        self.lease = lease
        self.hosts = dict(hosts)
        self.timeout_s = timeout_s
        self.scheme = scheme
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def target(self, forwarded_from: str | None) -> str | None:
        """The writer Region to send this write to, or None to write here (or refuse here)."""
        if forwarded_from is not None or self.lease.current() is not None:
            return None  # one hop only; a Region holding the lease writes itself
        writer = self.lease.named_writer()
        if writer is None or writer == self.region or writer not in self.hosts:
            return None
        return writer

    def send(self, writer: str, method: str, path: str, body: bytes,
             headers: Mapping[str, str]) -> Forwarded:
        url = f"{self.scheme}://{self.hosts[writer]}{path}"
        passed = {k: v for k, v in headers.items() if k.lower() in PASSED_HEADERS}
        try:
            response = self._client.request(method, url, content=body,
                                             headers={**passed, FORWARDED_HEADER: self.region})
        except httpx.HTTPError as exc:
            raise Unavailable(f"the write could not reach the writer region {writer}: "
                              f"{type(exc).__name__}") from None
        if response.status_code >= 500:
            raise Unavailable(f"the writer region {writer} answered {response.status_code}")
        try:
            payload: Any = response.json()
        except ValueError:
            payload = {"detail": response.text[:200]}
        return Forwarded(response.status_code, payload, writer)

    def close(self) -> None:
        self._client.close()
