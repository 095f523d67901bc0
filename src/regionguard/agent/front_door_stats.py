"""What a region's front door served, from HAProxy itself: its running totals of requests and
of 5xx answers, read over its stats socket (`show stat`, the runtime API's CSV).

The front door's counts are what clients got, including the 503 HAProxy gives when no app is
up, which no app could count. The live page turns two totals into a rate between its polls.
"""

from __future__ import annotations

import csv
import io
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# sun_path holds 108 bytes with its NUL; a longer path cannot be bound or connected to
UNIX_PATH_MAX = 107
TIMEOUT_S = 0.3  # a frozen front door costs the status this much, no more


@dataclass(frozen=True)
class FrontDoorCounts:
    """Since the front door started: HTTP requests received, and answers with a 5xx code."""

    requests: int
    errors_5xx: int


def socket_usable(path: Path) -> bool:
    """False when the path is too long for a unix socket (the front door then runs without
    one, and the page shows no request rate)."""
    return len(str(path).encode()) <= UNIX_PATH_MAX


def parse_show_stat(text: str, frontend: str) -> FrontDoorCounts | None:
    """The frontend's row of `show stat`: None when HAProxy did not list it."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("# ")))
    for row in reader:
        if row.get("pxname") == frontend and row.get("svname") == "FRONTEND":
            try:
                return FrontDoorCounts(int(row["req_tot"] or 0), int(row["hrsp_5xx"] or 0))
            except (KeyError, ValueError):
                return None
    return None


def read_counts(path: Path, frontend: str, timeout_s: float = TIMEOUT_S
                ) -> FrontDoorCounts | None:
    """The frontend's totals, or None when the socket does not answer (a front door down,
    frozen or started by an older regionguard without a socket)."""
    if not socket_usable(path):
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(path))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        log.debug("the front door's stats socket %s: %s", path, exc)
        return None
    return parse_show_stat(b"".join(chunks).decode(errors="replace"), frontend)
