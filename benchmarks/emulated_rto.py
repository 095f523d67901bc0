"""Modelled RTO of a primary-region outage on the emulated AWS, per strategy and database.

Each drill brings the emulated AWS up, kills the primary's Region (us-east-1), and measures the
time from the fault to the resolver answering the standby (the resolver RTO), with the
breakdown from the journal, and the client RTO (plus the record's TTL). The figures come from
the latency models (docs/emulated.md) and the detection and DNS settings of the
topology; the emulator's own processing stands world time still (clock.PausedTime), so a
figure does not move with `--factor`. A parameter AWS publishes no figure for can be set with
`--model NAME=VALUE` (for example `--model rds_promote_s=600`) to report the RTO at the ends of
its range; `--aws NAME=VALUE` sets a topology `[aws]` key for every shape (for example
`--aws dns_record=cname --aws hosted_zone_name=example.com` for the 15 s CNAME).

    .venv/bin/python -m benchmarks.emulated_rto --runs 5 [--factor 0.02] [--only rds-ec2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, summary
from regionguard.config import Topology, parse_topology
from regionguard.drill.stats import percentile
from regionguard.emulated.domains import FaultKind
from regionguard.emulated.drill import EmulatedDrillSettings, run_emulated_drill
from regionguard.emulated.models import LatencyModel

CONFIGS: dict[str, dict[str, Any]] = {
    "rds-ec2": {},  # pilot light, as in the example file
    "aurora-lambda": {"strategy": "warm-standby", "aws": {"compute": "lambda",
                                                          "database": "aurora-global"}},
    "rds-lambda": {"strategy": "warm-standby", "aws": {"compute": "lambda", "database": "rds"}},
    "aurora-ec2": {"strategy": "warm-standby", "aws": {"compute": "ec2",
                                                       "database": "aurora-global"}},
}


def topology(overrides: dict[str, Any], aws: dict[str, str]) -> Topology:
    data = tomllib.loads((REPO / "regionguard.toml").read_text())
    data["aws"].update(aws)
    if "strategy" in overrides:
        data["strategy"] = overrides["strategy"]
        for region in data["regions"].values():
            region["standby_capacity"] = 1  # warm standby keeps one instance running
    data["aws"].update(overrides.get("aws", {}))
    return parse_topology(data, "regionguard.toml")


def latency_model(parser: argparse.ArgumentParser, settings: list[str]) -> LatencyModel:
    names = {f.name: f.type for f in dataclasses.fields(LatencyModel)}
    values: dict[str, float | int] = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        if name not in names:
            parser.error(f"--model {setting}: no parameter {name!r}; one of "
                         f"{', '.join(sorted(names))}")
        try:
            values[name] = int(value) if names[name] in ("int", int) else float(value)
        except ValueError:
            parser.error(f"--model {setting}: {value!r} is not a number")
    return dataclasses.replace(LatencyModel(), **values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--factor", type=float, default=0.02)
    parser.add_argument("--only", choices=sorted(CONFIGS))
    parser.add_argument("--json", type=Path, help="also write every drill's figures here")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=VALUE",
                        help="set one latency model parameter (emulated/models.py)")
    parser.add_argument("--aws", action="append", default=[], metavar="NAME=VALUE",
                        help="set one topology [aws] key (a string) for every shape")
    parser.add_argument("--app", choices=("real", "stub"), default="real",
                        help="each Region's app: the workload app over a real PostgreSQL "
                             "(default), or the stub that models it")
    args = parser.parse_args()
    model = latency_model(parser, args.model)
    rows: dict[str, list[dict[str, Any]]] = {}
    started = time.monotonic()
    for name, overrides in CONFIGS.items():
        if args.only and name != args.only:
            continue
        topo = topology(overrides, dict(a.partition("=")[::2] for a in args.aws))
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="rg-bench-aws-") as tmp:
                settings = EmulatedDrillSettings(FaultKind.REGION_OUTAGE, "us-east-1",
                                                 Path(tmp), factor=args.factor, model=model,
                                                 real_app=args.app == "real")
                r = run_emulated_drill(topo, settings, report=lambda _: None)
            rows.setdefault(name, []).append(r)
            print(f"{name} {i + 1}/{args.runs}: {r['outcome']} client rto "
                  f"{r['rto_client_s']} s, resolver {r['rto_modeled_s']} s "
                  f"({r['real_seconds']} s real) split brain {r['split_brain']}", flush=True)
    print(f"\n{sum(len(v) for v in rows.values())} drills in "
          f"{time.monotonic() - started:.0f} s, factor {args.factor}"
          + (f", {', '.join(args.model)}" if args.model else "") + "\n")
    print("| strategy, compute, database | n | failed over | client RTO p50 | client p95 | "
          "writes p50 | resolver p50 | detect | fence | handover | promote | route | dns | "
          "other |")
    print("| --- " * 14 + "|")
    for name, runs in rows.items():
        ok = [r for r in runs if r["outcome"] == "failed_over"]
        rto = [float(r["rto_modeled_s"]) for r in ok]
        client = [float(r["rto_client_s"]) for r in ok]
        writes = [float(r["rto_writes_s"]) for r in ok if r.get("rto_writes_s") is not None]

        def med(step: str, ok: list[dict[str, Any]] = ok) -> str:
            vals = [r["rto_breakdown_s"].get(step, 0.0) for r in ok]
            return f"{statistics.median(vals):.0f} s" if vals else "-"

        def pct(vals: list[float], p: int) -> str:
            return f"{percentile(vals, p):.0f} s" if vals else "-"

        label = f"{runs[0]['topology']['strategy']}, {runs[0]['topology']['compute']}, " \
                f"{runs[0]['topology']['database']}"
        print(f"| {label} | {len(runs)} | {len(ok)} | {pct(client, 50)} | {pct(client, 95)} | "
              f"{pct(writes, 50)} | {pct(rto, 50)} | {med('detect')} | {med('fence')} | "
              f"{med('handover')} | {med('promote')} | {med('route')} | {med('dns')} | "
              f"{med('other')} |")
        if rto:
            print(f"<!-- {name}: {summary(rto)}; split brain "
                  f"{sum(r['split_brain'] for r in runs)} -->")
    sessions_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))


def sessions_table(rows: dict[str, list[dict[str, Any]]]) -> None:
    """The data tiers side by side (real app only): the orders' RPO, and the sessions' global
    table through the same outage (summed over the runs)."""
    runs = [(name, r) for name, rs in rows.items() for r in rs if r.get("sessions")]
    if not runs:
        return
    print("\n| shape | orders lost (of acked before the fault) | orders RPO max | sessions "
          "acked in the survivor during the outage | sessions not replicated at the fault | "
          "sessions RPO max | conflicts resolved after heal | replicas converged |")
    print("| --- " * 8 + "|")
    for name in rows:
        mine = [r for n, r in runs if n == name]
        if not mine:
            continue
        s = [r["sessions"] for r in mine]
        print(f"| {name} | {sum(r['rpo']['lost'] for r in mine)} of "
              f"{sum(r['rpo']['acknowledged_before_fault'] for r in mine)} | "
              f"{max(r['rpo']['rpo_s'] for r in mine):.2f} s | "
              f"{sum(x['survivor_acked_after_fault'] for x in s)} of "
              f"{sum(x['survivor_writes_after_fault'] for x in s)} | "
              f"{sum(x['unreplicated_at_fault'] for x in s)} | "
              f"{max(x['rpo_s'] for x in s):.2f} s | "
              f"{sum(x['conflicts_resolved_after_heal'] for x in s)} | "
              f"{sum(x['converged'] for x in s)} of {len(s)} |")


if __name__ == "__main__":
    main()
