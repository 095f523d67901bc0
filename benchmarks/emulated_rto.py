"""Modelled RTO of a primary-region outage on the emulated AWS, per strategy and database.

Each drill brings the emulated AWS up, kills the primary's Region (us-east-1), and measures the
time from the fault to the resolver answering the standby, with the breakdown from the journal.
The figures come from the latency models (README, "Emulated AWS"), the detection and DNS
settings of the topology, and the emulator's own processing (each real millisecond counts
1/factor world milliseconds, which shows up mostly as "other").

    .venv/bin/python -m benchmarks.emulated_rto --runs 10 [--factor 0.02] [--only rds-ec2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, summary
from regionguard.config import Topology, parse_topology
from regionguard.drill.report import percentile
from regionguard.emulated.domains import FaultKind
from regionguard.emulated.drill import EmulatedDrillSettings, run_emulated_drill

CONFIGS: dict[str, dict[str, Any]] = {
    "rds-ec2": {},  # pilot light, as in the example file
    "aurora-lambda": {"strategy": "warm-standby", "aws": {"compute": "lambda",
                                                          "database": "aurora-global"}},
    "rds-lambda": {"strategy": "warm-standby", "aws": {"compute": "lambda", "database": "rds"}},
    "aurora-ec2": {"strategy": "warm-standby", "aws": {"compute": "ec2",
                                                       "database": "aurora-global"}},
}


def topology(overrides: dict[str, Any]) -> Topology:
    data = tomllib.loads((REPO / "regionguard.toml").read_text())
    if "strategy" in overrides:
        data["strategy"] = overrides["strategy"]
        for region in data["regions"].values():
            region["standby_capacity"] = 1  # warm standby keeps one instance running
    data["aws"].update(overrides.get("aws", {}))
    return parse_topology(data, "regionguard.toml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--factor", type=float, default=0.02)
    parser.add_argument("--only", choices=sorted(CONFIGS))
    parser.add_argument("--json", type=Path, help="also write every drill's figures here")
    args = parser.parse_args()
    rows: dict[str, list[dict[str, Any]]] = {}
    started = time.monotonic()
    for name, overrides in CONFIGS.items():
        if args.only and name != args.only:
            continue
        topo = topology(overrides)
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="rg-bench-aws-") as tmp:
                settings = EmulatedDrillSettings(FaultKind.REGION_OUTAGE, "us-east-1",
                                                 Path(tmp), factor=args.factor)
                r = run_emulated_drill(topo, settings, report=lambda _: None)
            rows.setdefault(name, []).append(r)
            print(f"{name} {i + 1}/{args.runs}: {r['outcome']} rto {r['rto_modeled_s']} s "
                  f"({r['real_seconds']} s real) split brain {r['split_brain']}", flush=True)
    print(f"\n{sum(len(v) for v in rows.values())} drills in "
          f"{time.monotonic() - started:.0f} s, factor {args.factor}\n")
    print("| strategy, compute, database | n | failed over | RTO p50 | RTO p95 | "
          "detect | promote | dns | other |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, runs in rows.items():
        ok = [r for r in runs if r["outcome"] == "failed_over"]
        rto = [float(r["rto_modeled_s"]) for r in ok]

        def med(step: str, ok: list[dict[str, Any]] = ok) -> str:
            vals = [r["rto_breakdown_s"].get(step, 0.0) for r in ok]
            return f"{statistics.median(vals):.0f} s" if vals else "-"

        label = f"{runs[0]['topology']['strategy']}, {runs[0]['topology']['compute']}, " \
                f"{runs[0]['topology']['database']}"
        print(f"| {label} | {len(runs)} | {len(ok)} | "
              f"{percentile(rto, 50):.0f} s | {percentile(rto, 95):.0f} s | {med('detect')} | "
              f"{med('promote')} | {med('dns')} | {med('other')} |")
        if rto:
            print(f"<!-- {name}: {summary(rto)}; split brain "
                  f"{sum(r['split_brain'] for r in runs)} -->")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
