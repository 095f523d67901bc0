"""etcd v3, as the self-managed sites' arbiter: the few calls regionguard makes, across members.

etcd3gw speaks to one member's JSON gateway (`/v3/...`), as Patroni's etcd3 client does over
plain HTTP. A cluster of three members (one per site) stays writable while any two can reach
each other, so this client tries its own site's member first, then whichever answered last,
then the rest. A member cut off from the majority cannot serve a linearizable read or a write:
it times out or answers "no leader", and the next member is tried. Only when no member answers
is a `ProviderError` raised, one line naming each member and why: never a guess.

A request that timed out may still have been applied. Every write regionguard makes is a
compare-and-set on a key's `mod_revision` (or a lease call that is idempotent), so a repeat on
the next member either applies once or finds the key changed and re-reads: callers recognise
their own write there (a plan id, a lease id).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from etcd3gw import exceptions as etcd_errors
from etcd3gw.client import Etcd3Client
from etcd3gw.watch import Watcher

from regionguard.errors import ProviderError

T = TypeVar("T")
WATCH_RENEW_S = 30.0  # a watch stream is opened anew this often (a dead member's delivers nothing)

# a member that cannot reach the majority, is not up, or timed out: try the next one
_UNAVAILABLE = (etcd_errors.ConnectionFailedError, etcd_errors.ConnectionTimeoutError,
                etcd_errors.InternalServerError)


@dataclass(frozen=True, slots=True)
class Entry:
    """One key as etcd holds it: its value and the revisions a compare-and-set needs."""

    key: str
    value: bytes
    mod_revision: int
    lease: int = 0  # the lease the key is bound to (0: none)

    def json(self) -> Any:
        return json.loads(self.value)


def _b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def _entry(kv: Mapping[str, Any]) -> Entry:
    # the gateway renders int64 as strings and omits zero values (a key with no lease)
    return Entry(key=_unb64(kv["key"]).decode(), value=_unb64(kv.get("value", "")),
                 mod_revision=int(kv.get("mod_revision", 0)), lease=int(kv.get("lease", 0)))


@dataclass(frozen=True, slots=True)
class EtcdTls:
    """TLS to the members: the CA to trust (None: the system's), and this host's client
    certificate and key when the members ask for one."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def check(self) -> None:
        """Each file readable, or one line naming the field and the path."""
        for field_name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, field_name)
            if path is not None and not os.access(path, os.R_OK):
                raise ProviderError(f"arbiter.{field_name}: {path} cannot be read on this "
                                    "host; install it there, or fix the path")


def _member_client(url: str, timeout_s: float, tls: EtcdTls | None) -> Etcd3Client:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
        raise ProviderError(f"etcd member URL {url!r}: expected http(s)://HOST:PORT")
    tls = tls or EtcdTls()
    # our own session: the environment's proxies and CA bundle (REQUESTS_CA_BUNDLE wins over
    # a session's own `verify` in requests) never apply to the arbiter
    session = requests.Session()
    session.trust_env = False
    if tls.ca_file is not None:
        session.verify = tls.ca_file
    if tls.cert_file is not None and tls.key_file is not None:
        session.cert = (tls.cert_file, tls.key_file)
    # 3.4 and later serve the gateway at /v3/: no discovery round trip on every new client
    return Etcd3Client(host=parts.hostname, port=parts.port, protocol=parts.scheme,
                       timeout=timeout_s, api_path="/v3/", session=session)


class EtcdArbiter:
    """The calls the StateStore, the observations and the writer lease make, on whichever
    member of the cluster answers. `members` maps each site to its member's client URL."""

    def __init__(self, members: Mapping[str, str], *, timeout_s: float,
                 nearest: str | None = None, tls: EtcdTls | None = None) -> None:
        if not members:
            raise ProviderError("etcd: no members configured; list them in [arbiter] members")
        if tls is not None:
            tls.check()
        self.urls = dict(members)
        self._clients = {site: _member_client(url, timeout_s, tls)
                         for site, url in members.items()}
        order = sorted(members, key=lambda site: site != nearest)
        self._order = order
        self._lock = threading.Lock()

    def call(self, what: str, fn: Callable[[Etcd3Client], T]) -> T:
        """`fn` on the first member that answers; ProviderError (one line) when none does."""
        with self._lock:
            order = list(self._order)
        failures: list[str] = []
        for site in order:
            try:
                result = fn(self._clients[site])
            except _UNAVAILABLE as exc:
                failures.append(f"{site} ({self.urls[site]}): {_reason(exc)}")
                continue
            except etcd_errors.Etcd3Exception as exc:
                raise ProviderError(f"etcd {what} refused by {site}: {_reason(exc)}") from None
            if site != order[0]:
                with self._lock:  # stick to the member that answered
                    self._order = [site, *(s for s in self._order if s != site)]
            return result
        raise ProviderError(
            f"etcd {what}: no member answered ({'; '.join(failures)}); a majority of the "
            f"{len(self.urls)} members must run and be reachable from this host")

    def unhealthy_members(self) -> dict[str, str]:
        """Each member that does not answer its own status call (`/maintenance/status`), knows
        no leader (a member cut from the majority still answers, leaderless once its election
        timeout passed) or reports errors (an alarm), with why: readiness's view of the quorum;
        the other calls only need one member to answer."""
        down: dict[str, str] = {}
        for site, client in self._clients.items():
            try:
                status = client.status()
            except etcd_errors.Etcd3Exception as exc:
                down[site] = _reason(exc)
                continue
            if not isinstance(status, dict) or str(status.get("leader", "0")) in ("", "0"):
                down[site] = "no leader (cut from the majority?)"
            elif status.get("errors"):
                down[site] = "; ".join(map(str, status["errors"]))[:160]
        return down

    # -- keys -------------------------------------------------------------------------------

    def watch(self, key: str, on_change: Callable[[], None], stop: threading.Event,
              every_s: float = WATCH_RENEW_S) -> None:
        """Call `on_change` whenever `key` changes, until `stop` is set (blocks: run it in a
        thread of its own). A hint only, that wakes a loop at once instead of at its next
        turn; the loop still reads and decides. One watch stream at a time, on the member the
        calls reach, opened anew every `every_s`: a stream to a member that died or was cut
        off delivers nothing, and the woken loop's own period covers the gap."""
        while not stop.is_set():
            with self._lock:
                site = self._order[0]
            try:
                watcher = Watcher(self._clients[site], key, lambda _event: on_change())
            except (requests.RequestException, OSError, etcd_errors.Etcd3Exception):
                with self._lock:  # try the next member next time
                    self._order = [*self._order[1:], self._order[0]]
                stop.wait(1.0)
                continue
            try:
                stop.wait(every_s)
            finally:
                watcher.stop()

    def get(self, key: str) -> Entry | None:
        """A linearizable read (never a minority member's stale copy)."""
        result = self.call(f"read of {key}", lambda c: c.post(
            c.get_url("/kv/range"), json={"key": _b64(key)}))
        kvs = result.get("kvs") or []
        return _entry(kvs[0]) if kvs else None

    def get_prefix(self, prefix: str) -> list[Entry]:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        result = self.call(f"read of {prefix}*", lambda c: c.post(
            c.get_url("/kv/range"), json={"key": _b64(prefix), "range_end": _b64(end)}))
        return [_entry(kv) for kv in result.get("kvs") or []]

    def put(self, key: str, value: bytes) -> None:
        """An unconditional write: for a key only its writer ever changes (an observation)."""
        body = {"key": _b64(key), "value": _b64(value)}
        self.call(f"write of {key}", lambda c: c.post(c.get_url("/kv/put"), json=body))

    def delete(self, key: str) -> None:
        """Remove `key` (idempotent: a missing key is not an error)."""
        body = {"key": _b64(key)}
        self.call(f"delete of {key}", lambda c: c.post(c.get_url("/kv/deleterange"),
                                                        json=body))

    def lead_from(self, site: str) -> bool:
        """Make `site`'s member the raft leader (etcd's MoveLeader, asked of the leader of the
        moment; members are named after their sites). True when leadership moved now."""
        def move(client: Etcd3Client) -> bool:
            status = client.post(client.get_url("/maintenance/status"), json={})
            me, leader = status["header"]["member_id"], status.get("leader")
            if not leader or leader == me:
                return False
            members = client.post(client.get_url("/cluster/member/list"), json={})["members"]
            name = next((m.get("name") for m in members if m.get("ID") == leader), None)
            if name not in self._clients:
                raise ProviderError(f"etcd: the leader {name or leader} is not a member of the "
                                    "topology (members are named after their sites)")
            boss = self._clients[name]
            boss.post(boss.get_url("/maintenance/transfer-leadership"), json={"targetID": me})
            return True

        try:
            return move(self._clients[site])
        except _UNAVAILABLE as exc:
            raise ProviderError(f"etcd leadership to {site}: {_reason(exc)}") from None
        except etcd_errors.Etcd3Exception as exc:
            raise ProviderError(f"etcd leadership to {site} refused: {_reason(exc)}") from None

    def txn(self, what: str, compares: Mapping[str, int], puts: Mapping[str, bytes] = {},
            deletes: tuple[str, ...] = (), lease: int = 0) -> bool:
        """One transaction: apply `puts` (bound to `lease`, if any) and `deletes` only if each
        key in `compares` still has that `mod_revision` (0: the key does not exist). True
        when applied, False when a compare failed (someone else wrote first)."""
        compare = [{"key": _b64(k), "target": "MOD", "result": "EQUAL", "mod_revision": str(rev)}
                   for k, rev in compares.items()]
        success: list[dict[str, Any]] = []
        for key, value in puts.items():
            put: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
            if lease:
                put["lease"] = str(lease)
            success.append({"request_put": put})
        success += [{"request_delete_range": {"key": _b64(key)}} for key in deletes]
        result = self.call(what, lambda c: c.post(
            c.get_url("/kv/txn"), json={"compare": compare, "success": success}))
        return bool(result.get("succeeded", False))  # the gateway omits a false "succeeded"

    # -- leases -----------------------------------------------------------------------------

    def grant(self, ttl_s: int) -> int:
        result = self.call("lease grant", lambda c: c.post(
            c.get_url("/lease/grant"), json={"TTL": str(ttl_s), "ID": "0"}))
        return int(result["ID"])

    def keepalive(self, lease: int) -> int:
        """Renew `lease`; its new TTL in seconds, or -1 when etcd has expired it already (the
        gateway then omits the TTL)."""
        result = self.call("lease renewal", lambda c: c.post(
            c.get_url("/lease/keepalive"), json={"ID": str(lease)}))
        return int((result.get("result") or {}).get("TTL", -1))

    def time_to_live(self, lease: int) -> int:
        """What etcd (its leader's clock) says is left of `lease`: seconds, or -1 once it has
        expired or was revoked."""
        result = self.call("lease lookup", lambda c: c.post(
            c.get_url("/kv/lease/timetolive"), json={"ID": str(lease)}))
        # under a second left is TTL 0, which the gateway omits: absent is alive, not expired
        # (an expired lease is an explicit -1)
        return int(result.get("TTL", 0))

    def revoke(self, lease: int) -> None:
        """End `lease` at once (its keys go with it). Revoking an ended lease is not an
        error: the key is gone either way."""
        try:
            self.call("lease revoke", lambda c: c.post(
                c.get_url("/kv/lease/revoke"), json={"ID": str(lease)}))
        except ProviderError as exc:
            if "lease not found" not in str(exc):
                raise


def _reason(exc: etcd_errors.Etcd3Exception) -> str:
    """etcd's own message when it sent one ("etcdserver: no leader"), else the transport's."""
    text = exc.detail_text or str(exc) or type(exc).__name__
    try:
        body = json.loads(text)
        text = str(body.get("error") or body.get("message") or text)
    except (ValueError, AttributeError):
        pass
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "timed out"
    return text.splitlines()[0][:160] if text else type(exc).__name__
