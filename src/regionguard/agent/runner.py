"""`regionguard agent --site NAME`: the one process each self-managed site runs.

Every `health.interval_s` it looks once (`Agent.cycle`):

- **its own site's upkeep** (regions only): the database in the role the arbiter gives this
  region (a primary's only while this agent holds the write lease; a demoted old primary stays
  stopped until `failback` rebuilds it), the apps at the role's capacity, the front door, and
  synchronous replication (a degrade is recorded in etcd *before* the primary writes alone);
- **the vantage point's guard** (`orchestrator/guard.py`, shared with the AWS world): probe the
  primary from here, publish the report to etcd, judge by a quorum of sites outside the
  primary's, and, in the failover target's agent only, run the plan through `engine.drive`;
- **a switchover asked of this region** (planned.py): run by this agent, the old primary's
  agent handing over (a clean stop, its final LSN in etcd) instead of fencing.

Beside the loop, the lease keeper (lease_keeper.py) holds the writer key while this region is
primary and fences this site's database when it cannot renew; the watchdog (a process of its
own, `regionguard _watchdog --site NAME`) fences it when this agent freezes or dies. Nothing
here ever acts on another site: a plan that needs the old primary fenced waits for etcd to
expire its lease.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from regionguard.agent.dataplane import SiteDataPlane
from regionguard.agent.lease_keeper import KeeperState, LeaseKeeper
from regionguard.agent.ops import AgentView, start_agent_ops
from regionguard.agent.planned import hand_over, planned_handover, run_asked
from regionguard.agent.ports import build_site_ports
from regionguard.agent.site import Site
from regionguard.agent.watchdog import Heartbeat, read_deadline
from regionguard.app import admin
from regionguard.app.migrate import migrate
from regionguard.config import Replication, Role, Topology
from regionguard.errors import RegionGuardError
from regionguard.ops.server import OpsServer
from regionguard.orchestrator.guard import CycleResult, Guard
from regionguard.orchestrator.ports import LiveState
from regionguard.providers.etcd.approvals import EtcdApprovals
from regionguard.providers.etcd.writer_lease import WriterLease
from regionguard.providers.local.postgres import monitor
from regionguard.providers.local.probes import ReplicationProber
from regionguard.providers.local.proctrack import ProcessRef

log = logging.getLogger("regionguard.agent")

# a vantage point's report stops counting this long after it was written: three probe
# rounds, and at least what one round can take against a hung database (libpq waits 2 s
# for a connection at the least) with room to spare
STALE_FLOOR_S = 5.0
LEADERSHIP_EVERY_S = 1.0
SYNC_STALL_FLOOR_S = 1.0
HANDOVER_STOP_MAX_S = 10.0  # a fast shutdown: sessions ended, a checkpoint, the WAL sent


def report_stale_after_s(topology: Topology) -> float:
    """A vantage point's report older than this does not vote (three missed probes, at the
    least STALE_FLOOR_S): the agents' guards, and readiness judging whether they could."""
    return max(3 * topology.health.interval_s, STALE_FLOOR_S)


@dataclass
class Upkeep:
    """What this cycle's upkeep did (for the log and the tests)."""

    actions: list[str] = field(default_factory=list)


class Agent:
    def __init__(self, site: Site, config: Path) -> None:
        self.site = site
        self.config = config
        topology = site.topology
        self.store = site.store()
        self.dataplane = SiteDataPlane(site) if site.is_region else None
        arbiter = topology.arbiter
        self.keeper = LeaseKeeper(
            WriterLease(self.store, ttl_s=arbiter.lease_ttl_s, margin_s=arbiter.fence_margin_s),
            site.name, self._self_fence, renew_every_s=arbiter.renew_interval_s,
            heartbeat=Heartbeat(site.heartbeat),
            watch=lambda wake, stop: self.store.arbiter.watch(self.store.key("state"), wake,
                                                              stop)) if site.is_region else None
        self.approvals = EtcdApprovals(self.store)  # failover.approval = "manual"
        self.ports = build_site_ports(site, self.store, self.dataplane,
                                      self.keeper.wake if self.keeper else lambda: None)
        health = topology.health
        self.guard = Guard(self.ports, self.store, self.ports.probers[0], vantage=site.name,
                           home=site.name if site.is_region else None,
                           sites_of=lambda region: frozenset({region}),
                           interval_s=health.interval_s, timeout_s=health.timeout_s,
                           stale_s=report_stale_after_s(topology),
                           approvals=self.approvals)
        self._standby_failures = 0  # the sync standby's failed probes in a row
        self._replication = ReplicationProber(
            lambda: (site.name, site.database(site.name).dsn()))
        self._leadership_due = 0.0  # the witness: when to look at etcd's leader again
        self._told: set[str] = set()  # troubles told since the last clean cycle
        self._noted: set[str] = set()
        self._migrated = False  # the schema checked once under this agent's lease
        self.view = AgentView()  # what the endpoint (agent/ops.py) reports
        self._ops: OpsServer | None = None

    # -- the fence -----------------------------------------------------------------------------

    def _self_fence(self, reason: str) -> None:
        """A switchover taking the writer from this region: a clean handover (planned.py).
        Anything else (a lease lost, etcd unreachable): read-only, sessions ended, stopped."""
        plan_id = self._handover_plan()
        if plan_id is not None:
            try:
                lsn = hand_over(self.site, self.store, plan_id, self._stop_budget_s())
                log.warning("%s handed over for %s: stopped cleanly at LSN %s (%s)",
                            self.site.name, plan_id, lsn, reason)
                return
            except RegionGuardError as exc:
                log.error("%s: the handover for %s failed (%s); fencing", self.site.name,
                          plan_id, exc)
        actions = self.site.database(self.site.name).self_fence()
        log.error("%s fenced itself (%s): %s", self.site.name, reason, "; ".join(actions))

    def _handover_plan(self) -> str | None:
        """The switchover behind this keeper's fence, if one was: its fence is the clean
        handover (set with the fence, under the keeper's lock: upkeep sees both or neither)."""
        return planned_handover(self.keeper.revoked_by if self.keeper else None,
                                self.site.name)

    def _stop_budget_s(self) -> float:
        """The time left before the watchdog's deadline (it stops the database immediately
        then), less a slack: a clean stop must be over by then or not be claimed at all."""
        try:
            deadline = read_deadline(self.site.heartbeat)
        except ValueError:
            deadline = None
        if deadline is None:
            return HANDOVER_STOP_MAX_S
        return max(0.5, min(HANDOVER_STOP_MAX_S, deadline - time.monotonic() - 0.3))

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        """Before the loop: this site's secrets and TLS files, its watchdog, its lease
        keeper."""
        self.site.root.mkdir(parents=True, exist_ok=True)
        # every site: the witness verifies the primary's database too
        if self.site.install_tls() and self.site.is_region:
            db = self.site.database(self.site.name)
            if db.is_running():
                db.reload_config()  # PostgreSQL outlives its agent: take renewed files now
        if self.site.is_region:
            admin.ensure_token(self.site.root / "secrets")
            self._ensure_watchdog()
            assert self.keeper is not None
            self.keeper.start()
        self._ops = start_agent_ops(
            self.site, self.store, self.view, self.keeper, self.guard.last_report,
            self.approvals.pending,
            front_door=self.dataplane.front_door_counts if self.dataplane else lambda: None)

    def stop(self) -> None:
        if self.keeper is not None:
            self.keeper.stop()
        if self._ops is not None:
            self._ops.stop()

    def run(self, stop: threading.Event) -> None:
        self.start()
        try:
            interval = self.site.topology.health.interval_s
            while not stop.is_set():
                began = time.monotonic()
                self.cycle()
                stop.wait(max(0.0, began + interval - time.monotonic()))
        finally:
            self.stop()

    def cycle(self) -> CycleResult | None:
        """One look: upkeep of this site, then the guard. Nothing it meets ends the loop: an
        unreachable etcd is told once per kind of trouble and looked at again next time."""
        live: LiveState | None = None
        self.view.began()
        try:
            if self.site.is_region:
                self._ensure_watchdog()  # beside the database, whatever became of it
                live = self.store.load()
                done = self.upkeep(live)
                for action in done.actions:
                    log.info("%s: %s", self.site.name, action)
                self._run_asked(live)
            else:
                try:
                    self._hold_leadership()
                except RegionGuardError as exc:  # the guard runs all the same
                    self._tell(f"etcd leadership: {exc}")
            result = self.guard.cycle()
            if result.acted or result.kind.value in ("refused", "down_seen"):
                log.info("%s: %s %s", self.site.name, result.kind.value, result.detail)
            self._told.clear()
            self.view.saw(self.guard.last_live or live,
                          result.verdict.verdict.value if result.verdict else None, None)
            return result
        except RegionGuardError as exc:
            self._tell(str(exc))
            self.view.saw(live, None, str(exc).splitlines()[0])
        except Exception as exc:  # a bug: told, never the end of the site's guard
            log.exception("agent cycle failed")
            self._tell(f"{type(exc).__name__}: {exc}")
            self.view.saw(live, None, f"{type(exc).__name__}: {exc}")
        return None

    def _run_asked(self, live: LiveState) -> None:
        """A switchover asked of this region: its own trouble is told, never the loop's."""
        try:
            asked = run_asked(self.site, self.store, self.ports, live)
        except RegionGuardError as exc:
            self._tell(f"switchover request: {exc}")
            return
        if asked is not None:
            log.info("%s: %s", self.site.name, asked)

    def _hold_leadership(self) -> None:
        """The witness keeps etcd's raft leadership (every LEADERSHIP_EVERY_S, when no plan
        runs): a region's loss then never costs an election, and etcd restarts every lease's
        TTL on a leader change, which would add a whole TTL to the failover that follows."""
        now = time.monotonic()
        if now < self._leadership_due:
            return
        self._leadership_due = now + LEADERSHIP_EVERY_S
        if self.store.load().plan is not None:
            return
        if self.store.arbiter.lead_from(self.site.name):
            log.info("%s: took etcd's leadership (a region's loss costs no election)",
                     self.site.name)

    def _tell(self, what: str) -> None:
        if what not in self._told:
            self._told.add(what)
            log.warning("%s: %s", self.site.name, what)

    # -- upkeep of this site -------------------------------------------------------------------

    def upkeep(self, live: LiveState) -> Upkeep:
        done = Upkeep()
        if live.plan is not None:
            return done  # the plan owns the databases and the apps until it ends
        assert self.keeper is not None and self.dataplane is not None
        region = self.site.name
        role = live.roles[region]
        db = self.site.database(region)
        topology = self.site.topology
        if role is Role.PRIMARY:
            if self.keeper.state is KeeperState.FENCED:
                if self._handover_plan() is not None:
                    return done  # a clean stop: an immediate one would spoil its end position
                if db.is_running():  # a fence that did not finish, or a start that raced it
                    done.actions.append("fenced again: " + "; ".join(db.self_fence()))
                return done  # stays fenced until the keeper holds the lease anew
            if self.keeper.state is not KeeperState.HOLDING or not self.keeper.lease.may_write():
                return done  # writes only under the lease: wait for the keeper to take it
            if not db.exists():
                if live.epoch != 1 or self.store.read_plan() is not None:
                    self._note(f"{region} is the primary but its data directory {db.data_dir} "
                               "is missing; not creating an empty one (restore it, or fail "
                               "over to the standby)")
                    return done
                db.create_primary()  # the very first start of the application
                done.actions.append("created the primary database")
            elif not db.is_running():
                db.start()
                done.actions.append("started the primary database (crash recovery)")
            if db.lift_self_fence():
                done.actions.append("lifted an earlier self-fence: the lease is held again")
            if self.keeper.state is not KeeperState.HOLDING:  # the fence raced the start
                if self._handover_plan() is not None:
                    return done  # the keeper stops it cleanly: no immediate stop beside it
                done.actions.append("fenced again: " + "; ".join(db.self_fence()))
                return done
            if not self._migrated:
                migrate(db.dsn())
                if monitor.ensure_role(db):
                    done.actions.append(f"the witness's role {monitor.MONITOR_USER} ready")
                self._migrated = True
            self._keep_sync(live, done)
        else:
            self._migrated = False  # checked again if a plan makes this region primary
            primary = self.site.database(live.primary)
            if not db.exists():
                db.create_standby(primary)
                done.actions.append(f"created a standby of {live.primary}")
            elif not (db.data_dir / "standby.signal").exists():
                asked = self.store.rejoin_requested(region)
                if asked is not None and asked.get("epoch") != live.epoch:
                    self.store.clear_rejoin(region)  # asked before the roles last moved
                    asked = None
                if asked is None:
                    self._note(f"{region}'s database is a demoted primary; it stays stopped "
                               f"until `regionguard rejoin {region}` rebuilds it as a standby")
                    return done
                method = db.rebuild_as_standby(primary)
                self.store.clear_rejoin(region)
                self._noted.clear()
                done.actions.append(f"rejoined as a standby of {live.primary} by {method} "
                                    f"(asked by {asked.get('by')})")
            elif not db.is_running():
                db.create_standby(primary)  # configures, follows the primary, starts
                done.actions.append("started the standby database")
            elif self.store.rejoin_requested(region) is not None:
                self.store.clear_rejoin(region)  # a standby already: nothing to rebuild
                done.actions.append("rejoin asked of a standby: nothing to rebuild")
        want = topology.desired_processes(region, role)
        if self.dataplane.ensure_front_door():
            done.actions.append("started the front door")
        started = self.dataplane.scale(want)
        if started:
            done.actions.append(f"started app slots {started}")
        return done

    def _note(self, what: str) -> None:
        """Told once for the life of this agent (a standing condition, not a trouble)."""
        if what not in self._noted:
            self._noted.add(what)
            log.warning("%s: %s", self.site.name, what)

    def _keep_sync(self, live: LiveState, done: Upkeep) -> None:
        """Synchronous replication on the primary. The standby keeps up (the primary's own
        view of it: `ReplicationProber`, the sandbox's): it is the sync standby, and an old
        degrade record goes once it confirms every write. It has failed that probe
        `failure_threshold` times in a row (WAL waiting and its replay not moving: a
        partition leaves the walsender "streaming" for `wal_sender_timeout`): the degrade is
        recorded in etcd first, and only then does the primary commit alone; a primary that
        cannot record it keeps waiting for its standby, and fences itself at the end of its
        lease."""
        topology = self.site.topology
        if topology.replication is not Replication.SYNC:
            return
        region = self.site.name
        standby = topology.other_region(region)
        db = self.site.database(region)
        health = topology.health
        # a replay stalled this long with WAL waiting is a failed look (a slow disk stalls
        # it for a few hundred ms; a partition, for good)
        stall_s = max(SYNC_STALL_FLOOR_S, health.failure_threshold * health.interval_s)
        if self._replication.probe(standby, stall_s).ok:
            self._standby_failures = 0
            if db.set_sync_standby(standby):
                done.actions.append(f"synchronous replication to {standby}")
            if live.sync_degraded_lsn is not None:
                db.confirm_sync(standby, 2.0)
                if self.store.clear_sync_degraded(live.sync_degraded_lsn):
                    done.actions.append(f"{standby} confirmed every write: degrade cleared")
            return
        self._standby_failures += 1
        if (topology.failover.sync_standby_lost != "degrade"
                or self._standby_failures < health.failure_threshold):
            return
        lsn = db.status().lsn
        if lsn is None or self.keeper is None or not self.keeper.lease.may_write():
            return  # only the lease's holder degrades; without it, it keeps waiting
        self.store.note_sync_degraded(lsn)  # in etcd first: the standby is ineligible now
        if db.set_sync_standby(None):
            done.actions.append(f"{standby} lost: degraded to writing alone from {lsn}")

    # -- the watchdog ------------------------------------------------------------------------

    @property
    def watchdog_record(self) -> Path:
        return self.site.watchdog_record

    def _ensure_watchdog(self) -> None:
        try:
            if ProcessRef.from_dict(json.loads(self.watchdog_record.read_text())).alive():
                return
        except (OSError, ValueError, KeyError, TypeError):
            pass
        self.watchdog_record.parent.mkdir(parents=True, exist_ok=True)
        with open(self.site.root / "agent" / "watchdog.log", "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "regionguard", "-c", str(self.config), "_watchdog",
                 "--site", self.site.name],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.watchdog_record.write_text(json.dumps(ProcessRef.of(proc.pid).as_dict()))
