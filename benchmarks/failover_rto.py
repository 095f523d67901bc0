"""RTO of an automatic failover after a region kill, per strategy, with the per-step breakdown.

Each run: a trickle of writes through the front door, SIGKILL of every PostgreSQL and app process
of the primary region, wait for the controller's failover, measure RTO with the independent
client (first failed request -> first successful write after it) and from the journal; then
fail back with the drills' heal (not timed) so the next run starts from the same topology.
Run: .venv/bin/python -m benchmarks.failover_rto [--runs N] [--strategies pilot-light,...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import time

from benchmarks.common import summary, temp_sandbox
from regionguard.drill.faults import kill_region
from regionguard.drill.load import LoadGenerator, client_rto_s
from regionguard.drill.runner import heal_sandbox
from regionguard.orchestrator.journal import FileSink, Journal, rto_breakdown
from regionguard.orchestrator.records import PlanStatus
from regionguard.providers.local.status import sandbox_status
from regionguard.worlds.local_target import SandboxTarget

STRATEGIES = {
    "pilot-light": {},
    "warm-standby": {'strategy = "pilot-light"': 'strategy = "warm-standby"',
                     "standby_capacity = 0": "standby_capacity = 1"},
    "active-active": {'strategy = "pilot-light"': 'strategy = "active-active"',
                      "standby_capacity = 0": "standby_capacity = 2"},
}


def wait(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def one_run(sandbox, config, journal: Journal) -> tuple[float, dict]:  # type: ignore[no-untyped-def]
    url = sandbox.frontdoor.url(sandbox.store.read())
    load = LoadGenerator(url, rate=50, workers=2, duration_s=60).start()
    wait(lambda: len(load.result.acked_writes) >= 10, 20, "writes")
    primary = sandbox.primary(sandbox.store.read())
    status = sandbox_status(sandbox)
    r = next(x for x in status["regions"] if x["name"] == primary)
    for pid in r["db"]["pids"] + r["compute"]["pids"]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait(lambda: sandbox.primary(sandbox.store.read()) != primary
         and (rec := sandbox.store.read_plan()) is not None and rec.status is PlanStatus.DONE,
         60, "failover")
    new_primary = sandbox.primary(sandbox.store.read())
    wait(lambda: any(w.region == new_primary for w in load.result.acked_writes), 20, "writes")
    result = load.stop()
    record = sandbox.store.read_plan()
    assert record is not None
    plan_id = record.id
    return client_rto_s(result) or float("nan"), rto_breakdown(journal.entries(), plan_id) or {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--strategies", default="pilot-light,warm-standby")
    args = parser.parse_args()
    for name in args.strategies.split(","):
        with temp_sandbox(**STRATEGIES[name]) as (sandbox, config):
            sandbox.up()
            sandbox.start_supervisor(config)
            journal = Journal(FileSink(sandbox.state_dir / "journal.jsonl"))
            home = sandbox.primary(sandbox.store.read())
            time.sleep(1.0)  # let the controller reach an UP verdict
            client, engine, steps = [], [], {}
            for i in range(args.runs):
                rto, breakdown = one_run(sandbox, config, journal)
                client.append(rto)
                engine.append(breakdown.get("rto_s", float("nan")))
                for k, v in breakdown.get("steps", {}).items():
                    steps.setdefault(k, []).append(v)
                steps.setdefault("other", []).append(breakdown.get("other_s", 0.0))
                print(f"  {name} run {i + 1}: client RTO {rto:.2f} s, journal RTO "
                      f"{engine[-1]:.2f} s", flush=True)
                heal_sandbox(SandboxTarget(sandbox), kill_region(), home, lambda _: None)
                time.sleep(1.5)  # controller verdicts settle (recovery threshold)
            print(f"{name}: client RTO  {summary(client)}")
            print(f"{name}: journal RTO {summary(engine)}")
            for k, v in steps.items():
                print(f"    {k:<12} median {statistics.median(v):.3f} s  max {max(v):.3f} s")


if __name__ == "__main__":
    main()
