"""Free loopback ports, and whether a given one is free."""

from __future__ import annotations

import socket


def free_port(address: str = "127.0.0.1", avoid: set[int] | None = None) -> int:
    """A port the kernel says is free now on `address` (not 5432, never one in `avoid`)."""
    avoid = (avoid or set()) | {5432}
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((address, 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port
    raise OSError(f"no free port found on {address}")


def port_is_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True
