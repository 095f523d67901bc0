"""The emulated AWS for one topology, whole: moto with the latency models, the failure domains
and their fault proxy, the estate, Route 53's data plane, each app region's entry point, and the
guard function deployed in all three sites with its one-minute schedule.

The guard functions run the same handler as in AWS (`providers/aws/lambda_entry.handler`) with
the same providers; only their environment differs: per-Region endpoints of the fault proxy
(`RG_AWS_ENDPOINTS`, `RG_APP_ENDPOINTS`) and the scaled clock (`RG_CLOCK`). Every process this
starts is stopped by `stop()`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3

from regionguard.clock import CLOCK_ENV, ScaledClock
from regionguard.config import Topology
from regionguard.emulated.apps import RegionalApp, WriteLog
from regionguard.emulated.databases import EmulatedDatabases
from regionguard.emulated.domains import INTERNET, FailMode, FailureDomains, Fault, FaultKind
from regionguard.emulated.estate import Estate, EstateBuilder
from regionguard.emulated.global_tables import GlobalTables
from regionguard.emulated.lambdas import FunctionSpec, LambdaRuntime, Schedule
from regionguard.emulated.models import LatencyModel
from regionguard.emulated.motoserver import MotoProcess
from regionguard.emulated.proxy import FaultProxy
from regionguard.emulated.real_app import ADMIN_TOKEN, RealRegionalApp
from regionguard.emulated.route53 import Route53DataPlane
from regionguard.errors import NotAvailable
from regionguard.infra.view import SECOND_PROBER, AwsView, aws_view
from regionguard.providers.aws.clients import ENDPOINTS_ENV
from regionguard.providers.aws.context import APP_ENDPOINTS_ENV

log = logging.getLogger("regionguard.emulated")

GUARD_HANDLER = "regionguard.providers.aws.lambda_entry:handler"
GUARD_TIMEOUT_S = 900.0  # Lambda's maximum: a longer plan is resumed by the next run


@dataclass
class EmulatedAws:
    topology: Topology
    workdir: Path
    factor: float = 0.02
    model: LatencyModel = field(default_factory=LatencyModel)
    # the apps' write lease when it is not the topology's: a drill of the guard's lease wait
    # cut below it (what removing the wait does), which must end in a split brain
    app_lease_s: float | None = None
    # the apps: the workload app itself over a real PostgreSQL per Region (real_app.py), or
    # the stub that models its database (apps.py; lighter, for the drills about the guards)
    real_app: bool = False
    view: AwsView = field(init=False)

    def __post_init__(self) -> None:
        self.view = aws_view(self.topology)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # the emulator's own work (moto and the apps answering a relayed call) stands world
        # time still: a modelled figure must not depend on how fast this machine runs moto
        self.clock = ScaledClock.starting_now(self.factor, str(self.workdir / "paused-time"))
        self.domains = FailureDomains(self.view.sites)
        self.writes = WriteLog()
        self.moto = MotoProcess(self.clock, self.model, self.workdir / "models-control.json")
        self.proxy: FaultProxy | None = None
        self.estate: Estate | None = None
        self.route53: Route53DataPlane | None = None
        self.apps: dict[str, RegionalApp] = {}
        self.runtime = LambdaRuntime(self.clock, self.workdir / "lambda-logs")
        self.schedules: list[Schedule] = []
        self.function = self.view.names.failover_function()
        self.databases: EmulatedDatabases | None = None
        self.global_tables: GlobalTables | None = None
        self._app_logs: Callable[[], None] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        port = self.moto.start()
        self.proxy = FaultProxy(self.domains, self.clock, ("127.0.0.1", port),
                                mrsc_tables={self.view.names.state_table()},
                                log_path=self.workdir / "requests.jsonl", model=self.model)
        app_regions = [r.aws_region for r in self.view.regions]
        self.proxy.start(app_regions)
        # the functions' environments start (import) while the estate is built
        self.runtime.deploy([self._guard_spec(site) for site in self.view.sites], warm=2)
        self.estate = EstateBuilder(self.moto.url, self.view).build()
        self.moto.mark_booted()
        self.global_tables = GlobalTables(
            [self.view.names.sessions_table()], self.view.replica_regions, self.moto.url,
            self.domains, self.clock, self.model.global_table_replication_s)
        self.proxy.global_tables = self.global_tables
        self.global_tables.start()
        if self.real_app:
            self._app_logs = app_logs_to(self.workdir / "apps.log")
            self.databases = EmulatedDatabases(self.view, self.workdir, self.domains)
            self.databases.start()
        for region in self.view.regions:
            app = (RealRegionalApp(self.view, region, self.moto.url,
                                   self.proxy.endpoints_for(region.aws_region), self.clock,
                                   self.writes, self.databases, self.app_lease_s)
                   if self.databases is not None else
                   RegionalApp(self.view, region, self.moto.url,
                               self.proxy.endpoints_for(region.aws_region), self.clock,
                               self.writes, self.app_lease_s))
            self.proxy.set_app_upstream(region.aws_region, app.address)
            self.apps[region.name] = app
        self._seed_arbiter()
        for app in self.apps.values():
            app.start()
        deadline = time.monotonic() + 60
        while not all(app.started() for app in self.apps.values()):
            if time.monotonic() > deadline:
                raise NotAvailable("emulated AWS: the apps did not start within 60 s")
            time.sleep(0.05)
        self.route53 = Route53DataPlane(self.view, self.moto.url,
                                        self.proxy.endpoints_for(INTERNET, "app"), self.clock,
                                        self.model.route53_checkers)
        self.route53.load(self.estate.zone_id)
        self.route53.start()
        self.runtime.await_deployed()
        for i, site in enumerate(self.view.sites):
            runs = [({"regionguard": "guard"}, 20.0 * i)]
            if site in self.view.replica_regions:  # the app region's second prober
                runs.append(({"regionguard": "guard", "prober": SECOND_PROBER}, 20.0 * i + 10))
            for payload, offset in runs:
                schedule = Schedule(self.runtime, self.function, site, payload,
                                    offset_s=offset)
                schedule.region_down = self.domains.is_down
                schedule.start()
                self.schedules.append(schedule)

    def stop_guard(self, site: str) -> None:
        """A site's guard function fails (its Lambda service, a broken deploy), while its
        arbiter replica keeps serving: its schedules stop firing and its runs die."""
        for schedule in self.schedules:
            if schedule.region == site:
                schedule.stop()
        self.runtime.kill(self.function, site, busy_only=False)

    def _guard_spec(self, site: str) -> FunctionSpec:
        assert self.proxy is not None
        env = {
            "RG_TOPOLOGY": self.topology.model_dump_json(exclude={"state_dir"}),
            "RG_STATE_TABLE": self.view.names.state_table(),
            ENDPOINTS_ENV: json.dumps(self.proxy.endpoints_for(site)),
            APP_ENDPOINTS_ENV: json.dumps(self.proxy.endpoints_for(site, "app")),
            CLOCK_ENV: self.clock.to_env(),
            "AWS_ACCESS_KEY_ID": "emulated", "AWS_SECRET_ACCESS_KEY": "emulated",
            "POWERTOOLS_SERVICE_NAME": "regionguard-guard", "POWERTOOLS_LOG_LEVEL": "INFO",
            "RG_ADMIN_TOKEN": ADMIN_TOKEN,  # `verify`'s canary credential (the real app asks)
        }
        return FunctionSpec(self.function, site, GUARD_HANDLER, env, GUARD_TIMEOUT_S,
                            concurrency=5)

    def _seed_arbiter(self) -> None:
        """The state item as a deploy leaves it: epoch 1, home roles, the home primary writing."""
        roles = {r.name: r.home_role.value for r in self.view.regions}
        self.moto_client("dynamodb", self.view.primary.aws_region).put_item(
            TableName=self.view.names.state_table(), Item={
                "pk": {"S": "state"}, "epoch": {"N": "1"}, "roles": {"S": json.dumps(roles)},
                "writer": {"S": self.view.primary.name}})

    def stop(self) -> None:
        for schedule in self.schedules:
            schedule.stop()
        self.runtime.stop()
        if self.route53 is not None:
            self.route53.stop()
        for app in self.apps.values():
            with contextlib.suppress(Exception):
                app.stop()
        if self.databases is not None:
            self.databases.stop()
        if self._app_logs is not None:
            self._app_logs()
        if self.proxy is not None:
            self.proxy.stop()
        if self.global_tables is not None:
            self.global_tables.stop()
        self.moto.stop()

    def __enter__(self) -> EmulatedAws:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults -----------------------------------------------------------------------------

    def inject(self, kind: FaultKind, region: str, mode: FailMode = FailMode.REFUSED) -> Fault:
        assert self.proxy is not None
        fault = Fault(kind, region, mode, self.clock.time())
        if self.global_tables is not None:  # what the model has replicated by now, arrived
            self.global_tables.deliver_due()  # (however far the emulator's own work lags)
        self.proxy.inject(fault)
        if kind is FaultKind.REGION_OUTAGE:
            self.runtime.kill_region(region)  # its functions die with it
        # measured from the moment the fault is in force (a request that arrived while it was
        # being injected may still have been answered)
        return replace(fault, at=self.clock.time())

    def heal(self) -> None:
        assert self.proxy is not None
        self.proxy.heal()

    # -- looking inside (as the operator would, from outside every failure domain) ----------

    def moto_client(self, service: str, region: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=self.moto.url,
                            aws_access_key_id="emulated", aws_secret_access_key="emulated")

    def arbiter(self) -> dict[str, Any]:
        item = self.moto_client("dynamodb", self.view.primary.aws_region).get_item(
            TableName=self.view.names.state_table(), Key={"pk": {"S": "state"}},
            ConsistentRead=True).get("Item", {})
        return {"epoch": int(item.get("epoch", {"N": "0"})["N"]),
                "writer": item.get("writer", {}).get("S", ""),
                "roles": json.loads(item["roles"]["S"]) if "roles" in item else {},
                "plan": json.loads(item["plan"]["S"]) if "plan" in item else None}

    def journal(self) -> list[dict[str, Any]]:
        pages = self.moto_client("dynamodb", self.view.primary.aws_region).get_paginator(
            "scan").paginate(TableName=self.view.names.state_table(),
                             FilterExpression="begins_with(pk, :j)",
                             ExpressionAttributeValues={":j": {"S": "journal#"}})
        items = sorted((i["pk"]["S"], i["line"]["S"]) for page in pages
                       for i in page.get("Items", []))
        return [json.loads(line) for _, line in items]

    def reports(self) -> list[dict[str, Any]]:
        client = self.moto_client("dynamodb", self.view.primary.aws_region)
        out = client.scan(TableName=self.view.names.state_table(),
                          FilterExpression="begins_with(pk, :o)",
                          ExpressionAttributeValues={":o": {"S": "obs#"}})
        return [{k: next(iter(v.values())) for k, v in i.items()} for i in out["Items"]]


APP_LOGGERS = ("regionguard.app", "regionguard.lease", "regionguard.fence")


def app_logs_to(path: Path) -> Callable[[], None]:
    """The real apps' log lines (a refused write, a fence not extended while a database is
    cut off) go to the drill's `apps.log`, as an app's would go to its instance's log, not to
    the drill's output; returns how to put them back."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(name) for name in APP_LOGGERS]
    before = [(lg.propagate, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
        lg.setLevel(logging.INFO)

    def restore() -> None:
        for lg, (propagate, level) in zip(loggers, before, strict=True):
            lg.removeHandler(handler)
            lg.propagate, lg.level = propagate, level
        handler.close()

    return restore
