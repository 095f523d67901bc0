"""Free loopback ports and who holds a taken one."""

from __future__ import annotations

import socket

import psutil


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


def port_holder(port: int) -> str:
    """'pid 123 (postgres)' for the process listening on `port`, or 'an unknown process'."""
    try:
        for conn in psutil.net_connections("tcp"):
            listening = conn.status == psutil.CONN_LISTEN
            if conn.laddr and conn.laddr.port == port and listening and conn.pid:
                try:
                    return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
                except psutil.NoSuchProcess:
                    return f"pid {conn.pid}"
    except psutil.AccessDenied:
        pass
    return "an unknown process"


def require_free(address: str, port: int, what: str) -> None:
    """Refuse, naming the port and its holder, when a port regionguard owns was taken."""
    from regionguard.errors import ProviderError

    if not port_is_free(address, port):
        raise ProviderError(
            f"{what}: port {address}:{port} is taken by {port_holder(port)}; stop that "
            "process, or `regionguard down --purge` and `up` again to choose new ports")
