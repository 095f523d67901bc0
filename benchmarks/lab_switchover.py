"""Planned switchovers on the lab of namespaced sites (root): N in a row, alternating between
the regions, under the drills' client load through the edge, each asked from the client site
as a person would (`regionguard switchover`, cli/site_plans.py).

For each: how long writes paused (the longest gap between two acknowledged writes from the ask
until two seconds after the answer), the plan's own RTO (its claim to its route), and how long
until the old primary followed the new one in sync. At the end every acknowledged write is
checked on the final primary with the drills' history checker (a switchover loses nothing).
Run: sudo .venv/bin/python -m benchmarks.lab_switchover [--runs N]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from benchmarks.common import summary
from regionguard.agent.site import Site
from regionguard.cli import site_plans
from regionguard.config import load_topology
from regionguard.drill.history_file import DrillHistory
from regionguard.drill.load import LoadGenerator, Request
from regionguard.lab.drill import run_rows
from regionguard.lab.lab import Lab, down_anything
from regionguard.lab.layout import sample_topology

AFTER_ANSWER_S = 2.0


def longest_pause(requests: list[Request], since_ns: int, until_ns: int) -> float:
    ends = sorted(r.end_ns for r in requests if r.kind == "write" and r.ok
                  and since_ns <= r.end_ns <= until_ns)
    return max(((b - a) / 1e9 for a, b in itertools.pairwise(ends)), default=0.0)


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    raise SystemExit(f"not within {timeout_s:g} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="switchovers (alternating)")
    parser.add_argument("--loopback", action="store_true", help="the loopback lab (any user)")
    args = parser.parse_args()
    pauses: list[float] = []
    plan_rtos: list[float] = []
    rejoins: list[float] = []
    with tempfile.TemporaryDirectory(prefix="rg-lab-switch-") as tmp:
        config = Path(tmp) / "topology.toml"
        config.write_text(sample_topology("sync"))
        lab = Lab.create(Path(tmp) / "lab", load_topology(config), loopback=args.loopback)
        lab.require_root("up")
        try:
            lab.up(timeout_s=90)
            store = Site(lab.topology, "witness").store()
            load = LoadGenerator(lab.layout.edge_url, rate=60, workers=3, duration_s=3600,
                                 enter=lab.enter_client).start()
            time.sleep(2)  # writes flowing before the first ask
            for n in range(args.runs):
                target = lab.topology.other_region(lab.client(store.load).primary)
                asked = time.monotonic_ns()
                answer = lab.client(partial(site_plans.switchover, lab.topology, target,
                                            "benchmark", 120), timeout_s=150)
                answered = time.monotonic_ns()
                rejoin_s = wait_until(lab.in_sync, 120)
                time.sleep(AFTER_ANSWER_S)
                pause = longest_pause(load.result.requests, asked,
                                      answered + int(AFTER_ANSWER_S * 1e9))
                rto = (answer.get("summary") or {}).get("rto_s")
                pauses.append(pause)
                rejoins.append(rejoin_s)
                if isinstance(rto, (int, float)):
                    plan_rtos.append(float(rto))
                print(json.dumps({"run": n + 1, "to": target, "write_pause_s": round(pause, 3),
                                  "plan_rto_s": rto, "in_sync_after_s": round(rejoin_s, 3)}),
                      flush=True)
            load.stop()
            final = lab.client(store.load).primary
            found = run_rows(lab, final, f"load-{load.run_id}-")
            verdict = DrillHistory(list(load.result.requests), found, [], []).check()
        finally:
            down_anything(Path(tmp) / "lab")
    print(f"== {args.runs} switchovers (sync): write pause {summary(pauses)}")
    if plan_rtos:
        print(f"   plan RTO (claim -> route) {summary(plan_rtos)}")
    print(f"   old primary in sync again after {summary(rejoins)}")
    print(f"   {verdict.acked_writes} writes acknowledged, {len(verdict.lost_acked)} lost, "
          f"{len(verdict.anomalies)} anomalies, split brain {verdict.split_brain}")


if __name__ == "__main__":
    main()
