"""Drills and a fault campaign on the lab: the drills' own client (drill/load.py) from the
client site through the edge, the same history checker (drill/history.py), and faults that
real hosts suffer, aimed at whichever site plays the part now (the live primary, its standby,
the witness).

A drill: load; the fault; the failover (or, for a fault that must not cause one, a quiet
window with the primary unchanged); the heal (the partition lifted, the site started again,
the agent thawed) and the old primary rebuilt as a standby by its own agent (`rejoin`), until
the pair replicates again; then the history is checked: every acknowledged write present
exactly once on the live primary, no read of an unwritten value, one writer per epoch, epochs
never backwards. Fences are not compared: they happen on another site's clock, and the lab
never compares clocks across sites. The roles stay where the last drill left them: the next
drill hurts the primary of the moment.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from regionguard.agent.site import Site
from regionguard.config import Replication
from regionguard.drill import history
from regionguard.drill.campaign_report import campaign_html
from regionguard.drill.history_file import DrillHistory, write_history
from regionguard.drill.load import LoadGenerator, LoadResult, client_rto_s
from regionguard.drill.stats import percentile
from regionguard.errors import ProviderError, UsageError
from regionguard.lab.drill_report import (
    lab_measures,
    on_driller_clock,
    wall_minus_mono_ns,
    write_lab_report,
)
from regionguard.lab.lab import Lab
from regionguard.lab.layout import ETCD_CLIENT_PORT, ETCD_PEER_PORT
from regionguard.lab.observe import WritableWatch, WriterWatch
from regionguard.orchestrator.journal import rto_breakdown
from regionguard.providers.local.postgres.queries import timeline_history

log = logging.getLogger("regionguard.lab.drill")

# fault -> does it take the primary's site away (a failover must follow)
LAB_FAULTS: dict[str, bool] = {
    "kill-primary": True,  # the host is lost: every process, and its link
    "partition-primary": True,  # cut from the standby and the witness (the client still sees it)
    "partition-primary-etcd": True,  # cut from etcd only: it cannot renew, so it fences itself
    "freeze-primary-agent": True,  # its watchdog stops the database
    "kill-standby-db": False,  # its agent starts it again; the primary degrades meanwhile
    "partition-standby": False,
    "partition-witness": False,
    "stop-witness-etcd": False,  # one etcd member of three lost
}
PARTITIONS = frozenset(f for f in LAB_FAULTS if f.startswith("partition-"))
WHAT_IT_DOES = {  # for the report
    "kill-primary": "every process of the site killed, its link down; started again to heal",
    "partition-primary": "nftables drops its traffic with the standby and the witness",
    "partition-primary-etcd": "nftables drops only its etcd traffic (client and peer ports) "
                              "with the other sites; replication and its apps still flow",
    "freeze-primary-agent": "its agent stopped (SIGSTOP) past the lease; thawed to heal",
    "kill-standby-db": "its PostgreSQL killed (SIGKILL); its agent starts it again",
    "partition-standby": "nftables drops its traffic with the other sites",
    "partition-witness": "nftables drops its traffic with the other sites",
    "stop-witness-etcd": "its etcd member stopped (one of three)",
}
QUIET_S = 6.0  # past detection (0.75 s) and the lease (4 s): long enough to see no failover


@dataclass
class LabDrillResult:
    index: int
    fault: str
    site: str
    old_primary: str
    new_primary: str
    failover: bool
    client_rto_s: float | None
    healed: bool
    acked_writes: int
    lost_acked: int
    split_brain: int
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""
    seconds: float = 0.0
    # a failover's safety, measured from the client site (seconds after the fault):
    old_stopped_s: float | None = None  # the old primary's PostgreSQL gone (its own fence)
    lease_ended_s: float | None = None  # etcd no longer names the old primary the writer
    old_writable_until_s: float | None = None  # last seen taking writes (not read-only)
    new_writable_from_s: float | None = None  # first seen taking writes
    old_acked_after_lease_s: int = 0  # writes the old primary acknowledged after that
    old_last_ack_s: float | None = None  # its last acknowledged write (after the fault)
    # a fault that must change nothing: writes the primary acknowledged in the last second of
    # the quiet window (past detection, the lease and a degrade)
    acked_late_in_fault: int = 0
    # the heal: the fault undone, and the pair replicating again (seconds after the fault)
    heal_started_s: float | None = None
    healed_s: float | None = None
    steps: dict[str, float] = field(default_factory=dict)  # the plan's, from its journal
    # what the old primary's rewind discarded, as its agent reported before it (None: no
    # rewind reported): transactions past the fork, this run's rows among them, and how
    # many of those were acknowledged (sync: must be 0)
    discarded_transactions: int | None = None
    discarded_rows: int = 0
    discarded_acked: int = 0
    report: str | None = None  # the drill's HTML report (lab/drill_report.py)

    @property
    def two_writable(self) -> bool:
        """Both databases were seen taking writes over the same time."""
        return (self.old_writable_until_s is not None and self.new_writable_from_s is not None
                and self.old_writable_until_s >= self.new_writable_from_s)


def timelines(lab: Lab, region: str) -> history.Timelines | None:
    """`region`'s timeline history, read from the client site (property 6 of the checker)."""
    db = Site(lab.topology, region).database(region)

    def read() -> history.Timelines:
        with psycopg.connect(db.dsn(), connect_timeout=3) as conn:
            return history.Timelines(*timeline_history(conn), region=region)

    try:
        return lab.client(read, timeout_s=30)
    except (psycopg.Error, ProviderError):
        return None


def rewind_reports(lab: Lab, region: str) -> list[dict[str, Any]]:
    """The reports `region`'s agent wrote before each rewind of its database
    (divergence.jsonl beside it), oldest first."""
    path = Site(lab.topology, region).database(region).root / "divergence.jsonl"
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line]
    except (OSError, ValueError):
        return []


def discarded(lab: Lab, region: str, before: int, prefix: str) -> tuple[int, list[str]] | None:
    """What `region`'s last rewind discarded, if it reported one after its first `before`
    reports: (transactions, request ids of this run's rows among them)."""
    recent = rewind_reports(lab, region)[before:]
    if not recent:
        return None
    last = recent[-1]
    ids = [str(r.get("request_id")) for r in last.get("rows", {}).get("public.orders", [])
           if str(r.get("request_id", "")).startswith(prefix)]
    return len(last.get("transactions", [])), ids


def run_rows(lab: Lab, region: str, prefix: str) -> list[history.Row]:
    """The rows a load run left in `region`'s database (request ids starting with `prefix`),
    read from the client site."""
    db = Site(lab.topology, region).database(region)

    def read() -> list[history.Row]:
        with psycopg.connect(db.dsn(), connect_timeout=3) as conn:
            rows = conn.execute("SELECT request_id, id::bigint, quantity::bigint FROM orders "
                                "WHERE request_id LIKE %s", (prefix + "%",)).fetchall()
        return [history.Row(str(r), int(i), int(q)) for r, i, q in rows]

    found: list[history.Row] = lab.client(read, timeout_s=30)
    return found


def _until(predicate: Callable[[], bool], timeout_s: float, every_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (ProviderError, psycopg.Error):
            pass
        time.sleep(every_s)
    return False


class LabDriller:
    """Runs drills on one lab; reads it from inside the client site."""

    def __init__(self, lab: Lab, out: Path, rate: float = 60.0, workers: int = 3) -> None:
        self.lab = lab
        self.out = out
        self.rate = rate
        self.workers = workers
        self.store = Site(lab.topology, "witness").store()

    # -- reading the lab ------------------------------------------------------------------------

    def live(self) -> tuple[str, bool]:
        """(the live primary, whether a plan is running)."""
        state = self.lab.client(self.store.load, timeout_s=10)
        return state.primary, state.plan is not None

    # -- one drill ------------------------------------------------------------------------------

    def run(self, index: int, fault: str) -> LabDrillResult:
        if fault not in faults_of(self.lab):
            raise UsageError(f"--fault {fault}: not a fault of this lab; use one of "
                             f"{', '.join(faults_of(self.lab))}"
                             + (" (partitions need the namespaced lab, as root)"
                                if fault in PARTITIONS else ""))
        started = time.monotonic()
        if not _until(self.lab.in_sync, 60, 0.25):  # a failover then can lose nothing
            raise ProviderError("lab drill: the standby does not replicate (or a sync degrade "
                                "stands) before the fault; see `regionguard lab status`")
        primary, _ = self.live()
        standby = self.lab.topology.other_region(primary)
        reports_before = len(rewind_reports(self.lab, primary))
        site = {"partition-witness": "witness", "stop-witness-etcd": "witness"}.get(
            fault, standby if "standby" in fault else primary)
        load = LoadGenerator(self.lab.layout.edge_url, rate=self.rate, workers=self.workers,
                             duration_s=900, enter=self.lab.enter_client)
        detail = ""
        safety: dict[str, Any] = {}
        with contextlib.ExitStack() as stack:
            writable = stack.enter_context(WritableWatch(self.lab, (primary, standby)))
            writer = stack.enter_context(WriterWatch(self.lab, primary))
            load.start()
            stack.callback(load.stop)
            fault_ns, now_primary, healed = self._fault_and_heal(
                index, fault, site, primary, standby, load, writable, writer, safety)
            detail = safety.pop("detail", "")
        result = load.result
        rows = run_rows(self.lab, now_primary, f"load-{load.run_id}-")
        failover = now_primary != primary
        async_loss = ([primary] if failover and self.lab.topology.replication
                      is Replication.ASYNC else [])
        thrown = discarded(self.lab, primary, reports_before, f"load-{load.run_id}-") \
            if failover else None
        plan_id, plan_entries, engine = self._plan(now_primary) if failover else (None, [], None)
        if engine is not None:
            safety["steps"] = dict(engine.get("steps", {}))
        if thrown is not None:
            acked_ids = {r.request_id for r in result.requests if r.kind == "write" and r.ok}
            safety.update(discarded_transactions=thrown[0], discarded_rows=len(thrown[1]),
                          discarded_acked=sum(rid in acked_ids for rid in thrown[1]))
        # the old primary's fence, for the checker: the moment etcd stopped naming it the
        # writer, seen from the client site on this driller's own clock (the requests' clock:
        # no two sites' clocks are compared); a write sent after it and acknowledged by the
        # old primary is `acked-by-fenced-region`
        writer_ended = safety.pop("writer_ended_at", None)  # (not a measure of the result)
        fences = ([history.Fence(primary, int(writer_ended * 1e9))]
                  if failover and writer_ended is not None else [])
        drill_history = DrillHistory(list(result.requests), rows, fences, async_loss,
                                     timelines(self.lab, now_primary),
                                     self.lab.topology.replication is Replication.SYNC,
                                     thrown[1] if thrown else [])
        write_history(self.out / f"drill-{index:03d}.history.jsonl", drill_history)
        verdict = drill_history.check()
        rto = client_rto_s(result, fault_ns) if failover else None
        detail = detail or ("" if healed else "the pair did not replicate again in 120 s")
        topology = self.lab.topology
        measures = lab_measures(
            fault=fault, site=site, strategy=topology.strategy.value,
            replication=topology.replication.value, load=result, verdict=verdict, rto_s=rto,
            engine=engine, new_primary=now_primary, failover=failover,
            detail=WHAT_IT_DOES[fault] + (f"; {detail}" if detail else ""))
        report = write_lab_report(self.out / f"drill-{index:03d}.html", measures, result,
                                  fault_ns, plan_entries, plan_id, safety)
        if healed and not detail and verdict.split_brain == 0:
            try:  # best effort: the drill's own result stands whether or not etcd took it
                self.lab.client(lambda: self.store.record_drill(
                    fault, time.time(), rto_s=rto, acked_writes=verdict.acked_writes,
                    lost_acked=len(verdict.lost_acked)), timeout_s=10)
            except ProviderError as exc:
                log.warning("drill %s measured but not recorded in etcd (%s); readiness's "
                            "last_drill misses it", index, exc)
        return LabDrillResult(
            index=index, fault=fault, site=site, old_primary=primary, new_primary=now_primary,
            failover=failover, client_rto_s=rto, healed=healed and not detail,
            acked_writes=verdict.acked_writes, lost_acked=len(verdict.lost_acked),
            split_brain=verdict.split_brain, anomalies=[a.to_dict() for a in verdict.anomalies],
            detail=detail, seconds=time.monotonic() - started, report=str(report), **safety)

    def _fault_and_heal(self, index: int, fault: str, site: str, primary: str, standby: str,
                        load: LoadGenerator, writable: WritableWatch, writer: WriterWatch,
                        safety: dict[str, Any]) -> tuple[int, str, bool]:
        """The fault, the failover (or the quiet window), the heal; fills `safety` with what
        was measured (and "detail" when something went wrong). Returns (the fault's time,
        the live primary after, whether the pair replicates again)."""
        if not _until(lambda: _acked_by(load.result, primary) >= 10, 30):
            raise ProviderError(f"lab drill: no writes acknowledged by {primary} before the "
                                "fault")
        fault_ns = time.monotonic_ns()
        fault_at = fault_ns / 1e9
        heal = self._apply(fault, site)
        if LAB_FAULTS[fault]:
            stopped: list[float] = []
            moved = _until(lambda: self._watch_stop(primary, stopped)
                           and self.live() == (standby, False)
                           and _acked_by(load.result, standby, fault_ns) > 0, 90, 0.02)
            if not moved:
                safety["detail"] = f"{standby} did not take writes within 90 s of the fault"
            safety.update(self._safety(primary, standby, fault_at, stopped, writable, writer,
                                       load.result))
        else:
            _until(lambda: False, QUIET_S)  # watch the whole quiet window
            if self.live()[0] != primary:
                safety["detail"] = f"a failover to {standby} followed a fault that needs none"
            safety["acked_late_in_fault"] = _acked_by(load.result, primary,
                                                      time.monotonic_ns() - 1_000_000_000)
        safety["heal_started_s"] = round(time.monotonic_ns() / 1e9 - fault_at, 3)
        heal()
        now_primary, _ = self.live()
        if now_primary != primary:  # the old primary stays fenced until rebuilt
            self.lab.rejoin(primary, by=f"lab drill {index}")
        healed = _until(self.lab.in_sync, 120, 0.25)
        after = time.monotonic_ns()
        if healed:  # the pair replicates again (no band for a heal that never came)
            safety["healed_s"] = round(after / 1e9 - fault_at, 3)
        _until(lambda: _acked_by(load.result, now_primary, after) >= 5, 20)
        return fault_ns, now_primary, healed

    def _plan(self, region: str) -> tuple[str | None, list[dict[str, Any]],
                                          dict[str, Any] | None]:
        """The last plan in `region`'s journal: its id, the journal on this driller's clock
        (for the report's waterfall only), and its detect and steps (durations on the site's
        own clock)."""
        path = Site(self.lab.topology, region).journal_path
        entries = [json.loads(line) for line in path.read_text().splitlines() if line]
        plans = [e["plan"] for e in entries if e.get("event") == "plan"
                 and e.get("outcome") == "started"]
        if not plans:
            return None, [], None
        return (plans[-1], on_driller_clock(entries, wall_minus_mono_ns()),
                rto_breakdown(entries, plans[-1]))

    def _watch_stop(self, primary: str, stopped: list[float]) -> bool:
        """Note when the old primary's PostgreSQL was first seen gone; always True (a
        predicate step of the failover wait)."""
        if not stopped and not self.lab.pids(primary)["postgres"]:
            stopped.append(time.monotonic())
        return True

    def _safety(self, primary: str, standby: str, fault_at: float, stopped: list[float],
                writable: WritableWatch, writer: WriterWatch,
                load: LoadResult) -> dict[str, Any]:
        _until(lambda: bool(writable.seen[standby]), 10)
        old, new = writable.seen[primary], writable.seen[standby]
        ended = writer.ended_at
        late = 0 if ended is None else sum(
            1 for r in list(load.requests) if r.kind == "write" and r.ok
            and r.region == primary and r.end_ns / 1e9 > ended)
        acks = [r.end_ns / 1e9 - fault_at for r in list(load.requests)
                if r.kind == "write" and r.ok and r.region == primary]
        return {
            "old_last_ack_s": max(acks) if acks and max(acks) > 0 else None,
            "old_stopped_s": stopped[0] - fault_at if stopped else None,
            "lease_ended_s": None if ended is None else ended - fault_at,
            "old_writable_until_s": max(old) - fault_at if old else None,
            "new_writable_from_s": min(t for t in new if t > fault_at) - fault_at
            if any(t > fault_at for t in new) else None,
            "old_acked_after_lease_s": late,
            "writer_ended_at": ended,  # for the checker's fence (popped before the report)
        }

    def _apply(self, fault: str, site: str) -> Callable[[], None]:
        """Hurt `site`; returns how to heal it."""
        lab = self.lab
        peers = [s.name for s in lab.layout.sites if s.name not in (site, "client")]
        match fault:
            case "kill-primary":
                lab.kill(site)
                return lambda: lab.start(site)
            case "partition-primary" | "partition-standby" | "partition-witness":
                lab.partition(site, peers)
                return lambda: lab.heal(site)
            case "partition-primary-etcd":
                lab.partition(site, peers, ports=(ETCD_CLIENT_PORT, ETCD_PEER_PORT))
                return lambda: lab.heal(site)
            case "freeze-primary-agent":
                lab.signal_site(site, signal.SIGSTOP, only="agent")
                return lambda: lab.heal(site)  # thaws it
            case "kill-standby-db":
                lab.signal_site(site, signal.SIGKILL, only="postgres")
                return lambda: None  # its agent starts it again
            case "stop-witness-etcd":
                lab.stop_etcd(site)
                return lambda: lab.heal(site)
        raise ProviderError(f"lab drill: no way to apply {fault}")


def _acked_by(result: LoadResult, region: str, since_ns: int = 0) -> int:
    return sum(1 for r in list(result.requests)
               if r.kind == "write" and r.ok and r.region == region and r.t_ns >= since_ns)


def faults_of(lab: Lab) -> list[str]:
    """The lab's faults: every one in the namespaced lab; no partition on loopback."""
    return [f for f in LAB_FAULTS if lab.hosts.partitions or f not in PARTITIONS]


def campaign_faults(count: int, seed: int, partitions: bool = True) -> list[str]:
    """The faults of a campaign: every kind once in an order the seed decides, then again;
    so even a short campaign mixes failovers, partitions and faults that must change nothing."""
    rng = random.Random(seed)
    order: list[str] = []
    while len(order) < count:
        kinds = [f for f in LAB_FAULTS if partitions or f not in PARTITIONS]
        rng.shuffle(kinds)
        order += kinds
    return order[:count]


def run_lab_campaign(lab: Lab, count: int, seed: int, out: Path,
                     report: Callable[[str], None] = lambda _: None, *,
                     rate: float = 60.0, workers: int = 3) -> dict[str, Any]:
    """`count` drills in the seed's order, each healed before the next, under a client load
    of `rate` requests a second from `workers` threads."""
    out.mkdir(parents=True, exist_ok=True)
    driller = LabDriller(lab, out, rate=rate, workers=workers)
    results = []
    for index, fault in enumerate(campaign_faults(count, seed, lab.hosts.partitions), start=1):
        result = driller.run(index, fault)
        results.append(result)
        report(f"drill {index}/{count}: {fault} on {result.site}: "
               + (f"failover {result.old_primary} -> {result.new_primary}, client RTO "
                  f"{result.client_rto_s:.2f} s" if result.failover and result.client_rto_s
                  else "no failover")
               + f", {result.acked_writes} writes, {result.lost_acked} lost, "
                 f"{len(result.anomalies)} anomalies" + (f" ({result.detail})"
                                                         if result.detail else ""))
        if not result.healed:
            break  # the next drill would start from a broken lab
    rtos = [r.client_rto_s for r in results if r.client_rto_s is not None]
    summary = {
        "seed": seed, "drills": len(results), "asked": count,
        "failovers": sum(r.failover for r in results),
        "client_rto_s": {"p50": percentile(rtos, 50) if rtos else None,
                         "p95": percentile(rtos, 95) if rtos else None,
                         "max": max(rtos) if rtos else None},
        "acked_writes": sum(r.acked_writes for r in results),
        "lost_acked": sum(r.lost_acked for r in results),
        "split_brain": sum(r.split_brain for r in results),
        "anomalies": [a for r in results for a in r.anomalies],
        "unhealed": [r.index for r in results if not r.healed],
        "two_writable": sum(r.two_writable for r in results),
        "old_acked_after_lease": sum(r.old_acked_after_lease_s for r in results),
        "per_drill": [{**asdict(r), "two_writable": r.two_writable} for r in results],
    }
    (out / "lab-campaign.json").write_text(json.dumps(summary, indent=1))
    (out / "lab-campaign.html").write_text(campaign_html(summary))
    return summary
