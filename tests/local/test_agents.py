"""Self-managed sites on loopback: the loopback lab (`regionguard lab up --loopback`, any
user): an etcd member, an agent and a site init per site on 127.77.0.x, TLS between them, and
the edge every client write goes through.

A person's switchover and failback move the writer by handover; then one site is hurt the way
a host is lost: every process of it at once. The survivors' agents judge the primary down by a
quorum of sites outside it, and the failover target's agent promotes only once etcd says the
old writer's lease has expired. Nothing here (and nothing in any agent) signals another site.
The faults that need separate network stacks (partitions) are proven in the namespaced lab
(tests/lab)."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Iterator

import httpx
import psutil
import psycopg
import pytest
from typer.testing import CliRunner, Result

from regionguard.agent.ports import SiteProber
from regionguard.agent.site import Site
from regionguard.cli import app
from regionguard.errors import ProviderError
from regionguard.lab.hosts import LoopbackHosts
from regionguard.lab.lab import Lab
from regionguard.lab.layout import sample_topology
from regionguard.providers.local.postgres.files import password_in
from regionguard.providers.local.postgres.monitor import MONITOR_USER

from ..chromium import chromium_page
from .sandbox_helpers import wait_for

pytestmark = [pytest.mark.local, pytest.mark.timeout(240)]
TTL_S = 4
def _journal(lab: Lab, name: str) -> list[dict[str, object]]:
    path = Site(lab.topology, name).journal_path
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _db(lab: Lab, region: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(Site(lab.topology, region).database(region).dsn(), connect_timeout=3,
                           autocommit=True)


def _rows(lab: Lab, region: str) -> set[str]:
    with _db(lab, region) as conn:
        return {str(r[0]) for r in conn.execute(
            "SELECT request_id FROM orders WHERE request_id LIKE 'edge-%'").fetchall()}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The sandbox's sites for the module, east primary, brought up and down by `regionguard
    up` and `down` (what `make run` does): the switchover test moves the writer and brings it
    home; the kill test then takes east's site away. `down` must leave no process of it."""
    root = tmp_path_factory.mktemp("loopback")
    config = root / "topology.toml"
    config.write_text(f'state_dir = "{root / "state"}"\n' + sample_topology("sync"))
    started = CliRunner().invoke(app, ["-c", str(config), "up", "--wait", "90"])
    sites = root / "state" / "sites"
    running = Lab.existing(sites)
    pids = [p.pid for s in running.layout.sites for p in running.processes(s.name)]
    try:
        assert started.exit_code == 0, started.output
        assert len(pids) > 10, pids  # etcd, agents, watchdogs, databases, apps, front doors
        again = CliRunner().invoke(app, ["-c", str(config), "up"])  # idempotent
        assert again.exit_code == 0 and "the sites already run" in again.output, again.output
        yield running
    finally:
        stopped = CliRunner().invoke(app, ["-c", str(config), "down"])
        assert stopped.exit_code == 0 and "nothing left" in stopped.output, stopped.output
        alive = [p for p in pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        assert not alive, f"processes of the loopback lab left running: {alive}"
        assert not LoopbackHosts().leftovers(running.layout)
        assert not sites.exists()


def _user_cli(lab: Lab, *args: str) -> Result:
    """A command given the user's topology file: it finds the sandbox's sites by itself."""
    return CliRunner().invoke(app, ["-c", str(lab.layout.root.parent.parent / "topology.toml"),
                                    *args])


def _cli(lab: Lab, *args: str) -> Result:
    return CliRunner().invoke(app, ["-c", str(lab.layout.config), *args])


def _standby_of(lab: Lab, region: str, primary: str) -> bool:
    """`region`'s database is a standby streaming from `primary` (the primary's own view)."""
    try:
        with _db(lab, primary) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_replication WHERE "
                               "application_name = %s AND state = 'streaming'",
                               (region,)).fetchone()
            return bool(row and row[0])
    except psycopg.Error:
        return False


def _longest_gap(acked: list[tuple[float, str, str]], since: float) -> float:
    times = sorted(t for t, *_ in acked if t >= since)
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


class EdgeClient:
    """Writes through the lab's edge (which follows each region's /health/route): what was
    acknowledged, and by which region, on this process's clock."""

    def __init__(self, lab: Lab) -> None:
        self.url = f"{lab.layout.edge_url}/orders"
        self.acked: list[tuple[float, str, str]] = []  # (time, request id, region)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with httpx.Client(timeout=1.0, trust_env=False) as http:
            for n in itertools.count(1):
                if self.stop.wait(0.02):
                    return
                rid = f"edge-{n}"
                try:
                    r = http.post(self.url, json={"request_id": rid, "customer": "c",
                                                  "item": "i", "quantity": 1})
                except httpx.HTTPError:
                    continue
                if r.status_code == 201:
                    self.acked.append((time.monotonic(), rid, str(r.json()["region"])))

    def acked_by(self, region: str, since: float = 0.0) -> int:
        return sum(r == region and t >= since for t, _, r in self.acked)

    def __enter__(self) -> EdgeClient:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(5)


def _in_sync(lab: Lab) -> bool:
    try:
        return lab.in_sync()
    except (psycopg.Error, ProviderError):
        return False


def test_the_loopback_lab_reports_its_sites_and_refuses_partitions_in_one_line(lab: Lab) -> None:
    """`lab status --json` names the hosts and no namespaces; a partition (which needs a
    network stack per site) is refused by the fault command and by the drill, in one line."""
    status = json.loads(_cli(lab, "lab", "status", "--json", "--lab", str(lab.layout.root)
                             ).stdout)
    assert status["hosts"] == "loopback" and status["client_namespace"] is None
    roles = {s["name"]: s["role"] for s in status["sites"]}
    assert roles == {"east": "primary", "west": "standby", "witness": "witness",
                     "client": "client"}, roles
    for args, code in ((("lab", "fault", "partition", "west"), 4),
                       (("drill", "--fault", "partition-primary"), 2)):
        refused = _cli(lab, *args, "--lab", str(lab.layout.root))
        assert refused.exit_code == code, refused.output
        assert len(refused.stderr.strip().splitlines()) == 1 and "partition" in refused.stderr
    for args in (("up",), ("down",), ("drill", "--fault", "kill-region")):
        refused = _cli(lab, *args)  # the embedded sandbox's commands: refused, with the way
        assert refused.exit_code == 2 and "run their own agents" in refused.stderr, args
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert Site(lab.topology, "witness").store().load().primary == "east"  # nothing happened
    # the witness probes the primary with a login-only role, and holds no superuser secret
    watcher = Site(lab.topology, "witness")
    as_witness = watcher.database("east")
    assert password_in(as_witness.passfile, "postgres") is None
    with psycopg.connect(as_witness.dsn(), connect_timeout=3) as conn:
        row = conn.execute("SELECT current_user, rolsuper, rolreplication FROM pg_roles "
                           "WHERE rolname = current_user").fetchone()
    assert row == (MONITOR_USER, False, False), row
    probe = SiteProber(watcher).probe("east", 1.0)
    assert probe.ok and probe.detail == "primary", probe
    seen = json.loads(_user_cli(lab, "status", "--json").stdout)  # the sites': etcd, doors
    assert seen["world"] == "sites" and seen["error"] is None and seen["primary"] == "east"
    assert seen["edge_url"] == lab.layout.edge_url
    assert seen["writer"]["region"] == "east" and seen["plan"] is None
    doors = {r["name"]: (r["role"], (r["route"] or {}).get("holds_lease") is True)
             for r in seen["regions"]}
    assert doors == {"east": ("primary", True), "west": ("standby", False)}, seen["regions"]
    table = _cli(lab, "status")
    assert table.exit_code == 0 and "epoch 1" in table.output and "writer east" in table.output
    # each agent's own endpoint (lab status names it): a fresh heartbeat, the roles it read,
    # the write lease held by east alone, the witness's probe of east
    agents = {site["name"]: site["agent_url"] for site in status["sites"]}
    assert agents["client"] is None
    assert seen["agent_urls"] == {k: v for k, v in agents.items() if v}
    assert f"live page and /metrics: each site's agent, e.g. {agents['east']}/" in table.output
    scraped = {}
    with httpx.Client(timeout=3, trust_env=False) as http:
        for name in ("east", "west", "witness"):
            assert http.get(f"{agents[name]}/health").json() == {"healthy": True}
            scraped[name] = text = http.get(f"{agents[name]}/metrics").text
            assert 'regionguard_region_role{region="east",role="primary"} 1.0' in text, text
            beat = re.search(rf'regionguard_agent_heartbeat_timestamp_seconds{{site="{name}"}} '
                             r"(\S+)", text)
            assert beat and time.time() - float(beat[1]) < 5, beat
        seen_by_west = http.get(f"{agents['west']}/api/status").json()
    assert 'regionguard_write_lease_held{region="east"} 1.0' in scraped["east"]
    assert 'regionguard_write_lease_held{region="west"} 0.0' in scraped["west"]
    assert 'regionguard_probe_ok{prober="witness",region="east"} 1.0' in scraped["witness"]
    assert 'regionguard_replication_lag_bytes{region="west"}' in scraped["west"]
    assert (seen_by_west["role"], seen_by_west["primary"], seen_by_west["holds_lease"]) == (
        "standby", "east", False), seen_by_west
    _the_sites_page_shows_every_region_and_agent(agents["west"], lab.layout.edge_url)
    # readiness from what the sites publish: everything holds but no drill has been run yet
    ready = _user_cli(lab, "readiness", "--json")
    assert ready.exit_code == 1, ready.output
    checks = {c["name"]: c for c in json.loads(ready.stdout)["checks"]}
    assert {n for n, c in checks.items() if c["status"] != "pass"} == {"last_drill"}, checks
    assert {"arbiter_members", "write_lease", "vantage_points", "front_doors",
            "standby_replication"} <= set(checks)
    assert "regionguard drill --fault kill-primary" in checks["last_drill"]["action"]
    # `regionguard drill` given the user's file drills the sandbox's sites, writes its report
    # and records itself in etcd, where readiness finds it
    reports = lab.layout.root.parent / "reports"  # the default: the state dir's reports/
    drilled = _user_cli(lab, "drill", "--fault", "kill-standby-db", "--rate", "50")
    assert drilled.exit_code == 0, drilled.output
    assert "no failover (east kept the writes)" in drilled.output, drilled.output
    assert "<svg" in (reports / "drill-001.html").read_text()
    assert json.loads((reports / "drill-001.json").read_text())["lost_acked"] == 0
    ready = _user_cli(lab, "readiness")
    assert ready.exit_code == 0, ready.output


def _the_sites_page_shows_every_region_and_agent(url: str, edge_url: str) -> None:
    """An agent's page in a real (headless) Chromium: the roles from etcd, each agent's health
    (asked of the others over the network), loaded from nowhere but the agent itself; the
    requests that clients sent through the edge, as the primary's front door counted them."""
    sites = httpx.get(f"{url}/api/sites", timeout=5, trust_env=False).json()
    assert sites["site"] == "west" and sites["primary"] == "east"
    assert [(a["name"], a["status"]["healthy"]) for a in sites["agents"]] == [
        ("east", True), ("west", True), ("witness", True)], sites["agents"]
    with chromium_page(url + "/") as (page, asked):
        page.wait_for_selector('#regions tr[data-region="east"][data-role="primary"]',
                               timeout=10_000)
        page.wait_for_selector('#agents tr[data-site="witness"] .healthy', timeout=10_000)
        assert page.inner_text("#writer") == "east"
        # the last minutes as sparklines, from the page's own polls: each site's probe of the
        # primary and health, and the standby's replication lag
        page.wait_for_function(
            "() => { const r = document.querySelector('#trends tr[data-site=\"west\"]');"
            " return r && [...r.querySelectorAll('.spark')].every("
            "s => +s.getAttribute('data-points') >= 2); }", timeout=15_000)
        assert page.locator('#trends tr[data-site="witness"] .spark-ok').count() >= 2
        # requests through the edge reach east's front door: its HAProxy's own totals (over
        # its stats socket) grow between two polls, a full-height bar; the witness has none
        east_requests = ('#trends tr[data-site="east"] [data-kind="requests"] '
                         '.spark-value[style*="height: 22px"]')
        # (the requests are sessions, which live in the primary's PostgreSQL on the sites)
        deadline, n = time.monotonic() + 20, 0
        with httpx.Client(timeout=3, trust_env=False) as http:
            while n == 0 or page.locator(east_requests).count() == 0:
                assert time.monotonic() < deadline, page.inner_html("#trends")
                for _ in range(5):
                    n += 1
                    put = http.put(f"{edge_url}/sessions/page-{n}", json={"data": {"n": n}})
                    assert put.status_code == 200 and put.json()["region"] == "east", put.text
                page.wait_for_timeout(200)
            got = http.get(f"{edge_url}/sessions/page-{n}")
            assert got.status_code == 200 and got.json()["data"] == {"n": n}, got.text
        assert page.locator('#trends tr[data-site="witness"] [data-kind="requests"] '
                            '.spark-value').count() == 0
        status = httpx.get(f"{url}/api/sites", timeout=5, trust_env=False).json()
        east = next(a["status"] for a in status["agents"] if a["name"] == "east")
        assert east["front_door_requests"] > 0 and east["front_door_5xx"] >= 0, east
    assert all(a.startswith(url + "/") for a in asked), asked


def test_a_switchover_and_a_failback_move_the_writer_by_handover_with_nothing_lost(
        lab: Lab) -> None:
    """`switchover --to west` is run by west's agent; east's agent, seeing a switchover take
    its writer, stops its database cleanly and writes its final LSN to etcd instead of fencing
    by an immediate stop; west replays to it and promotes; east's agent then rebuilds east as
    west's standby. `failback` moves the writer home the same way. Every acknowledged write
    is on the final primary, and writes stop only for the handover, never for a lease TTL."""
    store = Site(lab.topology, "witness").store()
    refused = _cli(lab, "switchover", "--to", "east", "--yes")
    assert refused.exit_code == 2 and "already the primary" in refused.output, refused.output
    manual = _cli(lab, "failover", "--yes")
    assert manual.exit_code == 2 and "switchover --to REGION" in manual.output
    with EdgeClient(lab) as client:
        wait_for("writes acknowledged by east",
                 lambda: client.acked_by("east") >= 20, timeout_s=20)
        asked_at = time.monotonic()
        moved = _cli(lab, "switchover", "--to", "west", "--yes")
        assert moved.exit_code == 0, moved.output
        assert store.load().primary == "west" and store.load().plan is None
        plan_id = re.findall(r"`regionguard report (switchover-\S+)`", moved.output)
        assert plan_id, moved.output  # its id, with the command that reports it
        last = json.loads(_cli(lab, "status", "--json").stdout)["last_plan"]
        assert (last["id"], last["status"], last["target"]) == (plan_id[0], "done", "west")
        assert f"`regionguard report {plan_id[0]}`" in _cli(lab, "status").output
        wait_for("writes acknowledged by west",
                 lambda: client.acked_by("west") >= 10, timeout_s=20)
        switch_gap = _longest_gap(client.acked, asked_at)
        wait_for("east to rejoin as west's standby",
                 lambda: _standby_of(lab, "east", "west"), timeout_s=60)
        back_at = time.monotonic()
        home = _cli(lab, "failback", "--yes")
        assert home.exit_code == 0, home.output
        assert store.load().primary == "east"
        wait_for("writes acknowledged by east again",
                 lambda: client.acked_by("east", back_at) >= 10, timeout_s=20)
        back_gap = _longest_gap(client.acked, back_at)
        wait_for("west to rejoin as east's standby",
                 lambda: _standby_of(lab, "west", "east"), timeout_s=60)
    handovers = [e for e in _journal(lab, "west") if e.get("event") == "step"
                 and e.get("step") == "stop_writes" and e.get("outcome") == "done"]
    assert handovers and "stopped cleanly at LSN" in str(handovers[0].get("detail"))
    waited = [e for e in _journal(lab, "west") + _journal(lab, "east")
              if e.get("event") == "lease_wait"]
    assert not waited, waited  # a clean stop leaves no lease to wait out
    acked = {rid for _, rid, _ in client.acked}
    missing = acked - _rows(lab, "east")
    assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:5]}"
    assert switch_gap < TTL_S and back_gap < TTL_S, (switch_gap, back_gap)
    print(f"switchover: writes paused {switch_gap:.2f} s; failback: {back_gap:.2f} s; "
          f"{len(acked)} writes acknowledged, 0 lost")


def test_killing_the_primary_site_fails_over_by_the_survivors_after_etcd_expired_its_lease(
        lab: Lab) -> None:
    store = Site(lab.topology, "witness").store()
    assert store.load().primary == "east"
    wait_for("west to stream in sync again (after the failback of the test before)",
             lambda: _in_sync(lab), timeout_s=60)
    wait_for("no sync degrade on record", lambda: store.load().sync_degraded_lsn is None,
             timeout_s=30)
    with EdgeClient(lab) as client:
        wait_for("writes acknowledged by east",
                 lambda: client.acked_by("east") >= 20, timeout_s=20)
        held = store.writer()
        assert held is not None and held.json()["region"] == "east"
        lab.kill("east")
        killed_at = time.monotonic()
        wait_for("west to take writes", lambda: client.acked_by("west") > 0, timeout_s=60)
        rto = min(t for t, _, r in client.acked if r == "west") - killed_at
        wait_for("a few more writes on west",
                 lambda: client.acked_by("west") >= 10, timeout_s=20)
    wait_for("the plan to end", lambda: store.load().plan is None, timeout_s=30)
    assert store.load().primary == "west"
    journal = _journal(lab, "west")
    journal = [e for e in journal if str(e.get("plan", "")).startswith("failover-")]
    finished = [e for e in journal if e.get("event") == "plan" and e.get("outcome") == "done"]
    assert finished, "west's agent ran no failover to its end"
    promoted = next(e for e in journal if e.get("event") == "step"
                    and e.get("step") == "promote" and e.get("outcome") == "done")
    assert "old write lease expired" in str(promoted.get("detail")), promoted
    verdict = next(e for e in journal if e.get("event") == "verdict")
    for vantage in ("west", "witness"):  # a quorum of sites outside east, both probing
        assert f"{vantage}: " in str(verdict["vantages"]), verdict
    assert "east:" not in str(verdict["vantages"]), verdict
    assert all(e.get("event") != "plan" for e in _journal(lab, "witness"))
    # sync replication: every write east acknowledged is on west
    acked = {rid for _, rid, _ in client.acked}
    missing = acked - _rows(lab, "west")
    assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:5]}"
    assert rto < TTL_S + 10, rto
    seen = [json.loads(line) for line in _cli(lab, "events", "--json", "--last", "0"
                                              ).stdout.splitlines()]  # every site's journal
    assert {e["site"] for e in seen} >= {"east", "west"}, {e["site"] for e in seen}
    assert any(e["site"] == "west" and e.get("event") == "plan" and e.get("outcome") == "done"
               and str(e.get("plan", "")).startswith("failover-") for e in seen)
    # the plan's id shows in `events` (in brackets, not eaten as markup), and its report is
    # rebuilt from the journal of the site that ran it
    text = _user_cli(lab, "events", "--last", "0").stdout
    plan_ids = re.findall(r"\[(failover-[0-9a-f]+)\]", text)
    assert plan_ids, text[-2000:]
    reported = _user_cli(lab, "report", plan_ids[-1])
    assert reported.exit_code == 0, reported.output
    assert f"failover {plan_ids[-1]}: east -> west, done" in reported.output, reported.output
    assert "promote" in reported.output
    # west's agent counts the failover it ran, and what it took
    west_metrics = httpx.get(f"http://{lab.topology.site_host('west')}:"
                             f"{lab.topology.arbiter.agent_port}/metrics", timeout=3,
                             trust_env=False).text
    assert 'regionguard_failovers_total{kind="failover",outcome="done"} 1.0' in west_metrics
    assert 'regionguard_write_lease_held{region="west"} 1.0' in west_metrics
    assert "regionguard_last_rto_seconds " in west_metrics
    # readiness names what a second failover would lack while east's site is gone
    ready = _cli(lab, "readiness", "--json")
    assert ready.exit_code == 1, ready.output
    after = {c["name"]: c["status"] for c in json.loads(ready.stdout)["checks"]}
    assert (after["standby_replication"], after["arbiter_members"], after["vantage_points"],
            after["write_lease"], after["front_doors"]) == ("fail", "warn", "fail", "pass",
                                                            "pass"), after
    print(f"kill-site RTO {rto:.2f} s, {len(acked)} writes acknowledged, 0 lost")
