"""RTO on the lab of namespaced sites (root): the primary's site killed, and the primary
partitioned from both peers, N drills each on one lab (they alternate; each drill heals, the
old primary rebuilt as a standby, before the next); and the primary cut from etcd only.

For each fault: the client's RTO (first failed request -> first write acknowledged after the
outage, the drills' own client through the edge), the new primary's journal (detect, the
wait for etcd's expiry of the old lease inside promote, route, verify), when the old primary's
database stopped (its own fence), when etcd ended its lease, and the longest time after the
fault it still acknowledged a write (below lease_ttl_s, or something is wrong).
Run: sudo .venv/bin/python -m benchmarks.lab_rto [--runs N] [--replication sync|async]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from benchmarks.common import summary
from regionguard.config import load_topology
from regionguard.lab.drill import LabDriller, LabDrillResult
from regionguard.lab.lab import Lab, down_anything
from regionguard.lab.layout import sample_topology

FAULTS = ("kill-primary", "partition-primary", "partition-primary-etcd")
LOOPBACK_FAULTS = ("kill-primary", "freeze-primary-agent")  # no partitions on loopback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="drills per fault")
    parser.add_argument("--replication", choices=("sync", "async"), default="sync")
    parser.add_argument("--loopback", action="store_true",
                        help="the loopback lab (any user): kill and freeze, no partitions")
    args = parser.parse_args()
    faults = LOOPBACK_FAULTS if args.loopback else FAULTS
    results: dict[str, list[LabDrillResult]] = {f: [] for f in faults}
    with tempfile.TemporaryDirectory(prefix="rg-lab-bench-") as tmp:
        config = Path(tmp) / "topology.toml"
        config.write_text(sample_topology(args.replication))
        lab = Lab.create(Path(tmp) / "lab", load_topology(config), loopback=args.loopback)
        lab.require_root("up")
        try:
            lab.up(timeout_s=90)
            driller = LabDriller(lab, Path(tmp) / "out")
            for n in range(args.runs):
                for fault in faults:
                    r = driller.run(len(results[fault]) + 1, fault)
                    results[fault].append(r)
                    print(json.dumps({"fault": fault, "run": n + 1, "rto_s": r.client_rto_s,
                                      "old_stopped_s": r.old_stopped_s,
                                      "lease_ended_s": r.lease_ended_s,
                                      "lost": r.lost_acked, "anomalies": len(r.anomalies),
                                      "two_writable": r.two_writable, "steps": r.steps},
                                     default=lambda v: round(v, 3)), flush=True)
                    if not r.healed:
                        raise SystemExit(f"drill did not heal: {r.detail}")
        finally:
            down_anything(Path(tmp) / "lab")
    for fault, runs in results.items():
        print(f"== {fault} ({args.replication}): client RTO "
              f"{summary([r.client_rto_s for r in runs if r.client_rto_s is not None])}")
        for step in ("detect", "fence", "promote", "await_ready", "route", "verify"):
            values = [r.steps[step] for r in runs if step in r.steps]
            if values:
                print(f"   {step:<12} {summary(values)}")
        for name in ("old_stopped_s", "lease_ended_s", "old_writable_until_s",
                     "old_last_ack_s"):
            values = [v for r in runs if (v := getattr(r, name)) is not None]
            if values:
                print(f"   {name:<21} {summary(values)}")
        print(f"   lost {sum(r.lost_acked for r in runs)}, anomalies "
              f"{sum(len(r.anomalies) for r in runs)}, two writable databases in "
              f"{sum(r.two_writable for r in runs)} of {len(runs)}, writes acknowledged by the "
              f"old primary after its lease ended: {sum(r.old_acked_after_lease_s for r in runs)}")


if __name__ == "__main__":
    main()
