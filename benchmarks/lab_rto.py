"""RTO on the lab of namespaced sites (root): the primary site killed, and the primary
partitioned from both peers, N runs each, a fresh lab per run.

Each run: a client load through the edge from the client site; the fault; the client's RTO
(the fault -> the first write acknowledged by the new primary), the failover target's journal
(detect, the wait for etcd's expiry of the old lease, promote, route, verify), and, for the
partition, how long the isolated primary still acknowledged writes after the cut (must stay
below lease_ttl_s) and when its database stopped. Asynchronous replication for the partition
(the lease alone stands between two writers), sync for the kill (0 acknowledged writes lost).
Run: sudo .venv/bin/python -m benchmarks.lab_rto [--runs N] [--faults kill,partition]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import summary
from regionguard.agent.site import Site
from regionguard.config import load_topology
from regionguard.lab.lab import Lab, down_anything, require_root
from regionguard.lab.layout import sample_topology
from regionguard.lab.observe import EdgeLoad, WriterWatch
from regionguard.orchestrator.journal import rto_breakdown


def wait(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


def one_run(fault: str, tmp: Path) -> dict[str, Any]:
    replication = "sync" if fault == "kill" else "async"
    config = tmp / "topology.toml"
    config.write_text(sample_topology(replication))
    lab = Lab.create(tmp / "lab", load_topology(config))
    try:
        lab.up(timeout_s=90)
        with EdgeLoad(lab) as load, WriterWatch(lab, "east") as watch:
            wait(lambda: len(load.by("east")) >= 20, 30, "writes on east")
            if fault == "kill":
                lab.kill("east")
            else:
                lab.partition("east", ["west", "witness"])
            hurt_at = time.monotonic()
            fenced_at = None
            deadline = time.monotonic() + 60
            while not load.by("west") and time.monotonic() < deadline:
                if fenced_at is None and not lab.pids("east")["postgres"]:
                    fenced_at = time.monotonic()
                time.sleep(0.02)
            wait(lambda: bool(load.by("west")), 1, "a write on west")
            east, west = load.by("east"), load.by("west")
            ended_at = watch.ended_at
        journal = Site(lab.topology, "west").journal_path.read_text().splitlines()
        entries = [json.loads(line) for line in journal]
        plan = next(e["plan"] for e in entries if e.get("event") == "plan")
        wait(lambda: any(json.loads(line).get("outcome") == "done"
                         and json.loads(line).get("event") == "plan" for line in
                         Site(lab.topology, "west").journal_path.read_text().splitlines()),
             30, "the plan's end")
        entries = [json.loads(line) for line in
                   Site(lab.topology, "west").journal_path.read_text().splitlines()]
        breakdown = rto_breakdown(entries, plan) or {}
        lease_wait = sum(float(e.get("seconds", 0)) for e in entries
                         if e.get("event") == "lease_wait" and e.get("plan") == plan)
        return {
            "fault": fault, "client_rto_s": min(west) - hurt_at,
            "east_acked_after_cut_s": max(max(east) - hurt_at, 0.0),
            "two_writers": max(east) >= min(west),
            "east_stopped_after_s": None if fenced_at is None else fenced_at - hurt_at,
            "etcd_ended_lease_after_s": None if ended_at is None else ended_at - hurt_at,
            "steps": breakdown.get("steps", {}), "lease_wait_estimate_s": lease_wait,
            "engine_rto_s": breakdown.get("rto_s"),
        }
    finally:
        down_anything(tmp / "lab")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--faults", default="kill,partition")
    args = parser.parse_args()
    require_root("up")
    for fault in args.faults.split(","):
        results = []
        for n in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="rg-lab-bench-") as tmp:
                result = one_run(fault, Path(tmp))
            results.append(result)
            print(json.dumps({"run": n + 1, **result}, default=lambda v: round(v, 3)))
        print(f"== {fault}: client RTO {summary([r['client_rto_s'] for r in results])}")
        for step in ("detect", "fence", "promote", "await_ready", "route", "verify"):
            values = [r["steps"][step] for r in results if step in r["steps"]]
            if values:
                print(f"   {step:<12} {summary(values)}")
        after = [r["east_acked_after_cut_s"] for r in results]
        print(f"   old primary acknowledged writes until {summary(after)} s after the fault; "
              f"two writers in {sum(r['two_writers'] for r in results)} runs")


if __name__ == "__main__":
    main()
