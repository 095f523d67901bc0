"""boto3 clients per (service, region): short timeouts, and per-region endpoints when given.

In AWS the endpoints are AWS's own. In the emulated AWS world every Region has its own local
endpoint (a fault proxy in front of moto), passed as `RG_AWS_ENDPOINTS` = JSON {region: url},
so the providers are the same code and a dead Region really refuses their calls. A global
service is served from its home Region: Route 53's API (and IAM's) live in us-east-1, so a
us-east-1 outage takes them down wherever the caller is.

Timeouts are short because a dead Region often shows as a connect timeout, and the engine, not
botocore, owns the retry budget: each step retries within its deadline. In an emulated world the
timeouts shrink with its clock, so a timed-out call costs the same world time as in AWS.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, TypeVar, cast

import boto3
from botocore.config import Config

from regionguard.clock import SYSTEM_CLOCK, Clock

ENDPOINTS_ENV = "RG_AWS_ENDPOINTS"
GLOBAL_SERVICE_HOME = {"route53": "us-east-1", "iam": "us-east-1", "cloudfront": "us-east-1",
                       "route53domains": "us-east-1"}
CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 10.0
# An emulated call still needs real time to be served on a loaded machine; a dead endpoint
# costs its caller the (scaled) connect timeout anyway (the fault proxy drops it after that).
MIN_REAL_CONNECT_S = 0.1
MIN_REAL_READ_S = 1.0


def client_config(clock: Clock = SYSTEM_CLOCK) -> Config:
    if clock.factor == 1.0:
        return Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                      retries={"max_attempts": 3, "mode": "standard"})
    # emulated: botocore's own backoff would sleep real seconds (= minutes of world time)
    return Config(connect_timeout=max(MIN_REAL_CONNECT_S, CONNECT_TIMEOUT_S * clock.factor),
                  read_timeout=max(MIN_REAL_READ_S, READ_TIMEOUT_S * clock.factor),
                  retries={"total_max_attempts": 1, "mode": "standard"})


def endpoints_from_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    raw = (os.environ if env is None else env).get(ENDPOINTS_ENV, "")
    return {str(k): str(v) for k, v in json.loads(raw).items()} if raw else {}


class AwsClients:
    def __init__(self, session: boto3.session.Session | None = None,
                 endpoints: Mapping[str, str] | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.session = session or boto3.session.Session()
        self.endpoints = dict(endpoints_from_env() if endpoints is None else endpoints)
        self.config = client_config(clock)
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._orders: dict[str, NearestReplica] = {}

    def nearest(self, store: str, regions: Sequence[str],
                answered: Callable[[BaseException], bool] = lambda _exc: False
                ) -> NearestReplica:
        """One replica order per store for as long as these clients live: a warm Lambda keeps
        trying first the replica that answered last, so in an outage of the nearest one only
        the first invocation pays its timeout, not every scheduled run."""
        found = self._orders.get(store)
        if found is None or set(found.order) != set(regions):
            found = self._orders[store] = NearestReplica(regions, answered)
        return found

    def endpoint(self, service: str, region: str) -> str | None:
        """The URL serving `service` in `region`, or None for AWS's default endpoint."""
        return self.endpoints.get(GLOBAL_SERVICE_HOME.get(service, region))

    def get(self, service: str, region: str) -> Any:
        key = (service, region)
        with self._lock:  # a boto3 Session is not thread-safe: one client made at a time
            if key not in self._cache:
                self._cache[key] = self.session.client(
                    service, region_name=region, config=self.config,
                    endpoint_url=self.endpoint(service, region))
            return self._cache[key]


T = TypeVar("T")


class NoReplicaAnswered(Exception):
    """Every replica was tried and none answered; `errors` says what each did."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class NearestReplica:
    """Replicas of one store (the arbiter's), tried nearest first; the one that answered last
    is tried first next time, so a replica that timed out once does not cost a timeout on
    every later call. `answered(exc)` says which errors are answers (a failed condition), to
    be raised to the caller rather than trying the next replica."""

    def __init__(self, regions: Sequence[str],
                 answered: Callable[[BaseException], bool] = lambda _exc: False) -> None:
        self.order = list(regions)
        self.answered = answered
        self._lock = threading.Lock()

    def call(self, fn: Callable[[str], T]) -> T:
        errors: list[str] = []
        for region in list(self.order):
            answered, result = self._settle(region, functools.partial(fn, region), errors)
            if answered:
                return cast(T, result)
        raise NoReplicaAnswered(errors)

    def race(self, fn: Callable[[str], T]) -> T:
        """`fn` on every replica at once; the first answer wins (the others finish, or time
        out, on their own threads). Only for reads: a write's losing copy could land late and
        overwrite a newer item. A site with no replica of its own (the witness) races its
        reads: whichever replica is out, its vote costs no timeout."""
        futures = {_racers(region).submit(fn, region): region for region in self.order}
        errors: list[str] = []
        for done in as_completed(futures):
            answered, result = self._settle(futures[done], done.result, errors)
            if answered:
                return cast(T, result)
        raise NoReplicaAnswered(errors)

    def _settle(self, region: str, outcome: Callable[[], T],
                errors: list[str]) -> tuple[bool, T | None]:
        """One replica's outcome: (True, its result), or (False, None) with why in `errors`;
        an error that is an answer (a failed condition) is raised. Whichever answered is
        asked first next time."""
        try:
            result = outcome()
        except Exception as exc:
            if self.answered(exc):
                self._prefer(region)
                raise
            errors.append(f"{region}: {type(exc).__name__}: {exc}".splitlines()[0][:300])
            return False, None
        self._prefer(region)
        return True, result

    def _prefer(self, region: str) -> None:
        with self._lock:  # raced calls settle on several threads
            if self.order[0] != region:
                self.order.remove(region)
                self.order.insert(0, region)


_RACERS: dict[str, ThreadPoolExecutor] = {}
_RACERS_LOCK = threading.Lock()


def _racers(region: str) -> ThreadPoolExecutor:
    """One pool per Region and process (a warm Lambda environment keeps them): a replica that
    is out holds its own Region's threads until their timeouts, never the caller, and never a
    call to the replica that answers (it would queue behind them in a shared pool)."""
    with _RACERS_LOCK:
        pool = _RACERS.get(region)
        if pool is None:
            pool = _RACERS[region] = ThreadPoolExecutor(4, thread_name_prefix=f"rg-{region}")
        return pool
