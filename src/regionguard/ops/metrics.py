"""Prometheus metrics of the engine, computed at scrape time from what is true, not from
counters a process kept in memory.

Plans are counted from the journal (every process that runs a plan writes it there: a site's
agent, a person's command, a drill's heal), so a plan run by a person counts as much as an
automatic one, and a restarted agent does not lose the count. Verdicts, probe results and the
standby's lag come from the loop's last view (`TickView`); the epoch and the running plan from
the live state; readiness from the last evaluation.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from regionguard.orchestrator.journal import rto_breakdown
from regionguard.orchestrator.ports import Verdict
from regionguard.orchestrator.view import TickView

PLAN_OUTCOMES = ("done", "failed", "interrupted", "rejected", "expired")
VERDICTS = tuple(v.value for v in Verdict)
READINESS = ("pass", "warn", "fail")
PLAN_STATES = ("idle", "running", "awaiting_approval")


class JournalPlans:
    """The journal's plan events, read incrementally (the file only grows)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.kinds: dict[str, str] = {}  # plan id -> kind
        self.outcomes: dict[tuple[str, str], int] = {}  # (kind, outcome) -> count
        self.last_done: str | None = None
        self.entries_of_last: list[dict[str, Any]] = []  # the last finished plan's entries
        self._current: dict[str, list[dict[str, Any]]] = {}
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file read
        self._lock = threading.Lock()  # scrapes run concurrently, outside the registry's lock

    def refresh(self) -> None:
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        try:
            with self.path.open("rb") as f:
                st = os.fstat(f.fileno())
                if self._identity != (st.st_dev, st.st_ino) or st.st_size < self._offset:
                    self._reset((st.st_dev, st.st_ino))  # a new journal (a purged sandbox)
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        self._offset += end + 1
        for line in chunk[:end].splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            self._take(entry)

    def _reset(self, identity: tuple[int, int]) -> None:
        self._identity, self._offset = identity, 0
        self.kinds, self.outcomes, self._current = {}, {}, {}
        self.last_done, self.entries_of_last = None, []

    def _take(self, e: dict[str, Any]) -> None:
        plan = e.get("plan")
        if not plan:
            return
        if e.get("event") == "approval" and e.get("outcome") in ("requested", "withdrawn"):
            return  # not part of a plan's run
        if e.get("event") not in ("plan", "step", "verdict", "approval"):
            return
        self._current.setdefault(plan, []).append(e)
        if e.get("event") == "plan" and e.get("outcome") == "started":
            self.kinds[plan] = str(e.get("name", "unknown"))
        outcome = e.get("outcome")
        finished = (e.get("event") == "plan" and outcome in ("done", "failed", "interrupted")) \
            or (e.get("event") == "approval" and outcome in ("rejected", "expired"))
        if finished:
            kind = self.kinds.get(plan) or str(e.get("name", "failover"))
            self.outcomes[(kind, str(outcome))] = self.outcomes.get((kind, str(outcome)), 0) + 1
            if outcome == "done":
                self.last_done = plan
                self.entries_of_last = self._current.get(plan, [])
            if outcome != "interrupted":  # an interrupted plan goes on later
                self._current.pop(plan, None)
        elif e.get("event") == "plan" and outcome == "superseded":
            self._current.pop(plan, None)


class EngineCollector(Collector):
    def __init__(self, journal: Path, live: Callable[[], Mapping[str, Any]],
                 tick: Callable[[], TickView]) -> None:
        self.plans = JournalPlans(journal)
        self.live = live  # {"epoch": int, "plan": the running PlanRecord | None}
        self.tick = tick

    def collect(self) -> Iterator[Metric]:
        self.plans.refresh()
        plans = CounterMetricFamily("regionguard_plans", "Plans finished, by kind (failover, "
                                    "switchover, failback, restore) and outcome",
                                    labels=["kind", "outcome"])
        for kind in sorted({k for k, _ in self.plans.outcomes} | {"failover"}):
            for outcome in PLAN_OUTCOMES:
                plans.add_metric([kind, outcome], self.plans.outcomes.get((kind, outcome), 0))
        yield plans
        # failovers alone (an alert on failovers must not fire on a planned switchover)
        failovers = CounterMetricFamily("regionguard_failovers", "Failovers finished, by "
                                        "outcome (switchovers and failbacks: plans_total)",
                                        labels=["kind", "outcome"])
        for outcome in PLAN_OUTCOMES:
            failovers.add_metric(["failover", outcome],
                                 self.plans.outcomes.get(("failover", outcome), 0))
        yield failovers

        summary = (rto_breakdown(self.plans.entries_of_last, self.plans.last_done)
                   if self.plans.last_done else None)
        rto = GaugeMetricFamily("regionguard_last_rto_seconds",
                                "RTO of the last completed plan (first failure to last step)")
        steps = GaugeMetricFamily("regionguard_last_plan_step_seconds",
                                  "Duration of each step of the last completed plan, its "
                                  "attempts summed; in_rto: whether it counts toward the RTO "
                                  "(false: it ran once traffic was restored)",
                                  labels=["step", "in_rto"])
        attempts = GaugeMetricFamily("regionguard_last_plan_step_attempts",
                                     "Attempts of each step of the last completed plan",
                                     labels=["step"])
        if summary is not None:
            rto.add_metric([], float(summary["rto_s"]))
            for step, seconds in summary["steps"].items():
                steps.add_metric([step, "true"], float(seconds))
            for step, seconds in summary.get("after_rto", {}).items():
                steps.add_metric([step, "false"], float(seconds))
            for step, n in summary.get("attempts", {}).items():
                attempts.add_metric([step], float(n))
        yield rto
        yield steps
        yield attempts

        live = self.live()
        epoch = GaugeMetricFamily("regionguard_epoch", "The fencing token (only grows)")
        epoch.add_metric([], float(live.get("epoch", 0)))
        yield epoch

        view = self.tick()
        plan = live.get("plan")
        state = ("awaiting_approval" if view.awaiting_approval is not None
                 else "running" if plan is not None else "idle")
        plan_state = GaugeMetricFamily("regionguard_plan_state", "1 for the engine's state",
                                       labels=["state"])
        for s in PLAN_STATES:
            plan_state.add_metric([s], 1.0 if s == state else 0.0)
        yield plan_state

        verdict = GaugeMetricFamily("regionguard_region_verdict",
                                    "1 for each region's current verdict",
                                    labels=["region", "verdict"])
        for region, current in sorted(view.verdicts.items()):
            for v in VERDICTS:
                verdict.add_metric([region, v], 1.0 if v == current else 0.0)
        yield verdict
        probe = GaugeMetricFamily("regionguard_probe_ok", "Last probe result (1 ok, 0 failed)",
                                  labels=["region", "prober"])
        for (region, prober), ok in sorted(view.probes.items()):
            probe.add_metric([region, prober], 1.0 if ok else 0.0)
        yield probe

        lag_b = GaugeMetricFamily("regionguard_replication_lag_bytes",
                                  "The standby's replay lag in bytes", labels=["region"])
        lag_s = GaugeMetricFamily("regionguard_replication_lag_seconds",
                                  "The standby's replay lag in seconds", labels=["region"])
        for region, (lag_bytes, lag_seconds) in sorted(view.lag.items()):
            if lag_bytes is not None:
                lag_b.add_metric([region], float(lag_bytes))
            if lag_seconds is not None:
                lag_s.add_metric([region], float(lag_seconds))
        yield lag_b
        yield lag_s

        ready = GaugeMetricFamily("regionguard_readiness",
                                  "1 for each readiness check's current status",
                                  labels=["check", "status"])
        for check in view.readiness:
            for s in READINESS:
                ready.add_metric([str(check["name"]), s], 1.0 if s == check["status"] else 0.0)
        yield ready
