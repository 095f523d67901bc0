"""A TCP relay between two Regions' databases that the failure domains can cut.

Cross-Region replication (an RDS read replica's, Aurora's storage-level one) travels between
the Regions, so a Region outage or a partition cuts it. The emulated AWS's databases are real
PostgreSQL clusters on loopback, whose streaming replication would otherwise never notice a
fault: the standby connects to its primary through this relay, which forwards bytes only while
`link_ok(source, target)` holds, and drops every connection the moment it stops holding (as a
cut link does: no FIN reaches either side in time, and the standby's receiver times out or
reconnects into a refused connection).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
from collections.abc import Callable

log = logging.getLogger("regionguard.emulated.relay")

CHECK_EVERY_S = 0.05  # real seconds between looks at the link while bytes flow


class Relay:
    def __init__(self, target: tuple[str, int], link_ok: Callable[[], bool]) -> None:
        self.target = target
        self.link_ok = link_ok
        self._server = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return int(self._server.getsockname()[1])

    def start(self) -> Relay:
        self._spawn(self._accept, "relay-accept")
        return self

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._server.close()
        for t in self._threads:
            t.join(timeout=2)

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=name)
        t.start()
        self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.link_ok():
                client.close()  # a cut link: the connection fails
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            self._spawn(self._pipe, "relay-pipe", client, upstream)

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while not self._stop.is_set() and self.link_ok():
                for key, _ in sel.select(CHECK_EVERY_S):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError as exc:
            log.debug("relay connection ended: %s", exc)
        finally:
            sel.close()
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()
