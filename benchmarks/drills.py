"""Drills per strategy and replication mode: RTO p50/p95, availability, RPO, split brain.

The issue asks for 20 x kill-region and 10 x freeze-region per combination; a full run takes
about 40 minutes on 2 cores, so `--kill N --freeze M` choose the counts and the output states
them. Run: .venv/bin/python -m benchmarks.drills [--kill 20 --freeze 10]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.common import percentile, temp_sandbox
from regionguard.drill.runner import DrillSettings, run_drill
from regionguard.worlds.local_target import SandboxTarget

STRATEGY = {
    "pilot-light": {},
    "warm-standby": {'strategy = "pilot-light"': 'strategy = "warm-standby"',
                     "standby_capacity = 0": "standby_capacity = 1"},
    "active-active": {'strategy = "pilot-light"': 'strategy = "active-active"',
                      "standby_capacity = 0": "standby_capacity = 2"},
}
ASYNC = {'replication = "sync"': 'replication = "async"', "rpo_target_s = 0": "rpo_target_s = 1"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill", type=int, default=20)
    parser.add_argument("--freeze", type=int, default=10)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    print(f"counts per combination: {args.kill} x kill-region, {args.freeze} x freeze-region; "
          f"{args.duration:g} s at {args.rate:g} req/s each")
    header = (f"{'strategy':<14}{'repl':<6}{'fault':<14}{'n':>3}{'RTO p50':>9}{'RTO p95':>9}"
              f"{'avail p50':>10}{'RPO max':>8}{'split':>6}")
    print(header)
    for strategy, repl in [(s, r) for s in STRATEGY for r in ("sync", "async")]:
        replacements = dict(STRATEGY[strategy])
        if repl == "async":
            replacements.update(ASYNC)
        with temp_sandbox(**replacements) as (sandbox, config):
            sandbox.up()
            sandbox.start_supervisor(config)
            out = Path(tempfile.mkdtemp(prefix="rg-drills-"))
            target = SandboxTarget(sandbox)
            for fault, count in (("kill-region", args.kill), ("freeze-region", args.freeze)):
                runs = []
                for i in range(count):
                    settings = DrillSettings(fault=fault, duration_s=args.duration,
                                             rate=args.rate, workers=4, freeze_s=3.0,
                                             out_dir=out)
                    runs.append(run_drill(target, settings, lambda _: None, index=i).measures)
                rtos = [r.rto_s for r in runs if r.rto_s is not None]
                avail = [r.availability for r in runs]
                print(f"{strategy:<14}{repl:<6}{fault:<14}{len(runs):>3}"
                      f"{percentile(rtos, 50):>9.2f}{percentile(rtos, 95):>9.2f}"
                      f"{percentile(avail, 50):>10.1%}{max(r.rpo_count for r in runs):>8}"
                      f"{sum(len(r.split_brain) for r in runs):>6}", flush=True)


if __name__ == "__main__":
    main()
